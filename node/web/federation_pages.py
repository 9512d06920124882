"""The stewards' federation page: how each peer host fares, domain blocks,
following another node, and the background work (backfills, syncs, crawls).

Everything here is a plain form POST, so it works without JavaScript. Retries
and blocks are node-wide, so only the node's operator sees those forms; any
steward may look and may follow another node, as through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from aiohttp import web

from node.api.paging import decode_cursor, encode_cursor
from node.appkeys import CONFIG
from node.errors import ApiError, NotFound
from node.protocol.context import FederationContext
from node.protocol.peers import PeerUnavailable, learn_peer, normalize_peer_url
from node.services import federation as service
from node.services import relays as relay_service
from node.services.jobs import federation_jobs_page
from node.web.guards import FormData, Page, member_page, redirect
from node.web.steward_pages import require_steward

routes = web.RouteTableDef()
PEERS_PER_PAGE = 50
JOBS_PER_PAGE = 20
PAGE_PATH = "/steward/federation"

STATE_LABELS = {
    "ok": "Healthy",
    "backing_off": "Backing off",
    "unreachable": "Unreachable",
    "blocked": "Blocked",
}


RELAY_STATE_LABELS = {
    "pending": "Waiting for the relay",
    "active": "Subscribed",
    "rejected": "Refused by the relay",
}


def _text(form: FormData, name: str, limit: int = 2048) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


@dataclass(frozen=True)
class Skew:
    """A peer's clock against ours, in words: `level` is ok | warn | none."""

    text: str
    level: str


def describe_skew(seconds: float | None, allowed: int) -> Skew:
    """HTTP dates have whole seconds, so anything under two is 'in step'."""
    if seconds is None:
        return Skew("No signed request seen yet", "none")
    rounded = round(seconds)
    if abs(seconds) < 2:
        return Skew("In step with ours", "ok")
    direction = "ahead of" if rounded > 0 else "behind"
    text = f"{abs(rounded)} s {direction} ours"
    return Skew(text, "warn" if abs(seconds) * 2 >= allowed else "ok")


@dataclass
class FederationForms:
    """What the steward typed into the page's forms, kept when one is refused."""

    block_domain: str = ""
    block_reason: str = ""
    peer_url: str = ""
    relay_url: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _peers_window(
    peers: list[service.PeerStatus], after: str | None
) -> tuple[list[service.PeerStatus], str | None]:
    """Peers by host name after `after`, one page, and the host the next page starts after."""
    rest = [peer for peer in peers if after is None or peer.host > after]
    shown = rest[:PEERS_PER_PAGE]
    more = len(rest) > PEERS_PER_PAGE
    return shown, shown[-1].host if more else None


def _query(**values: str | None) -> str:
    return urlencode({key: value for key, value in values.items() if value})


async def _render(
    page: Page, forms: FederationForms | None = None, status: int = 200
) -> web.Response:
    query = page.request.query
    peers_after = query.get("peers_after") or None
    jobs_cursor = query.get("jobs_cursor") or None
    community = page.member.community
    peers, next_peers = _peers_window(await service.peer_hosts(page.db), peers_after)
    jobs, jobs_after = await federation_jobs_page(
        page.db, community, decode_cursor(jobs_cursor), JOBS_PER_PAGE
    )
    allowed = page.request.app[CONFIG].signature_max_skew_seconds
    next_jobs = encode_cursor(jobs_after) if jobs_after is not None else None
    return page.render(
        "steward/federation.html",
        status=status,
        peers=[(peer, describe_skew(peer.clock_skew_seconds, allowed)) for peer in peers],
        states=STATE_LABELS,
        blocks=await service.blocks(page.db),
        relays=await relay_service.list_relays(page.db, page.member),
        relay_states=RELAY_STATE_LABELS,
        jobs=jobs,
        next_peers_url=(
            f"{PAGE_PATH}?{_query(peers_after=next_peers, jobs_cursor=jobs_cursor)}#peers"
            if next_peers
            else None
        ),
        first_peers_url=f"{PAGE_PATH}?{_query(jobs_cursor=jobs_cursor)}#peers"
        if peers_after
        else None,
        next_jobs_url=(
            f"{PAGE_PATH}?{_query(peers_after=peers_after, jobs_cursor=next_jobs)}#jobs"
            if next_jobs
            else None
        ),
        first_jobs_url=f"{PAGE_PATH}?{_query(peers_after=peers_after)}#jobs"
        if jobs_cursor
        else None,
        can_change=page.member.is_operator,
        forms=forms or FederationForms(),
        allowed_skew=allowed,
        community=community,
    )


@routes.get(PAGE_PATH, name="federation")
@member_page
async def federation_page(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    return await _render(page)


@routes.post(PAGE_PATH + "/retry", name="federation_retry")
@member_page
async def retry_now(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    host = _text(await page.form(), "host", 255).strip().lower()
    try:
        count = await service.retry_host(page.db, page.member, host)
    except NotFound:
        return redirect(
            page.request, PAGE_PATH + "#peers", ("info", f"Nothing is queued for {host}.")
        )
    await page.db.commit()  # wakes the delivery worker
    noun = "delivery" if count == 1 else "deliveries"
    return redirect(
        page.request,
        PAGE_PATH + "#peers",
        ("success", f"Retrying {host} now: {count} {noun} due."),
    )


@routes.post(PAGE_PATH + "/blocks", name="federation_block")
@member_page
async def add_block(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    form = await page.form()
    forms = FederationForms(
        block_domain=_text(form, "domain", 300).strip(),
        block_reason=_text(form, "reason", 600).strip(),
    )
    if not forms.block_domain:
        forms.errors["domain"] = "Give the domain to block, such as example.org."
        return await _render(page, forms, 422)
    try:
        domain = await service.block_domain(
            page.db, page.member, forms.block_domain, forms.block_reason
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        # Refused before anything was written; returning without a commit keeps nothing.
        field_name = "reason" if "reason" in exc.message else "domain"
        forms.errors[field_name] = exc.message
        return await _render(page, forms, 422)
    await page.db.commit()
    return redirect(
        page.request,
        PAGE_PATH + "#blocks",
        ("success", f"{domain} is blocked: nothing is sent to it or accepted from it."),
    )


@routes.post(PAGE_PATH + "/blocks/remove", name="federation_unblock")
@member_page
async def remove_block(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    domain = await service.unblock_domain(
        page.db, page.member, _text(await page.form(), "domain", 300)
    )
    await page.db.commit()
    return redirect(
        page.request, PAGE_PATH + "#blocks", ("success", f"{domain} is no longer blocked.")
    )


@routes.post(PAGE_PATH + "/peers", name="federation_follow_node")
@member_page
async def follow_node(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    forms = FederationForms(peer_url=_text(await page.form(), "url").strip())
    try:
        url = normalize_peer_url(forms.peer_url)
    except ValueError:
        forms.errors["url"] = "Give the node's address, such as https://commons.example.org."
        return await _render(page, forms, 422)
    ctx = FederationContext.from_app(page.request.app)
    try:
        learned = await learn_peer(ctx, url, page.member.community)
    except PeerUnavailable as exc:
        forms.errors["url"] = f"That node could not be read: {exc}"
        return await _render(page, forms, 422)
    names = ", ".join(community.name for community in learned.communities) or "no communities yet"
    return redirect(
        page.request,
        PAGE_PATH + "#follow",
        ("success", f"Following {learned.base_url} ({names}). Its neighbours are read next."),
    )


@routes.post(PAGE_PATH + "/relays", name="federation_add_relay")
@member_page
async def add_relay(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    forms = FederationForms(relay_url=_text(await page.form(), "url").strip())
    if not forms.relay_url:
        forms.errors["relay"] = "Give the relay's address, such as https://relay.example/actor."
        return await _render(page, forms, 422)
    ctx = FederationContext.from_app(page.request.app)
    try:
        relay = await relay_service.add_relay(ctx, page.db, page.member, forms.relay_url)
    except ApiError as exc:
        if exc.status not in (400, 409, 422):
            raise
        # Refused before anything was written; returning without a commit keeps nothing.
        forms.errors["relay"] = exc.message[:1].upper() + exc.message[1:] + "."
        return await _render(page, forms, 422)
    await page.db.commit()  # sends the Follow
    return redirect(
        page.request,
        PAGE_PATH + "#relays",
        ("success", f"Asked {relay.name or relay.actor_id} to relay our public listings."),
    )


@routes.post(PAGE_PATH + "/relays/remove", name="federation_remove_relay")
@member_page
async def remove_relay(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    relay = await relay_service.remove_relay(
        page.db, page.member, _text(await page.form(), "relay", 64)
    )
    await page.db.commit()  # sends the Undo
    return redirect(
        page.request,
        PAGE_PATH + "#relays",
        ("success", f"Unsubscribed from {relay.name or relay.actor_id}."),
    )
