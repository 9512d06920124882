"""Sending our partner-only listings to a new partner, and withdrawing them from a
former one, as durable background jobs that page through the listings.

When a partnership becomes active on the proposing side (its `Accept` arrives),
the other side cannot yet page our partner collection: its backfill, queued at
its steward's approval, asks before our Accept handler has run and is refused.
So we send a `Create` of every partner-only listing ourselves. When a
partnership ends, we send a `Delete` of each, so the former partner drops its
copies. A community may have tens of thousands of such listings: the Accept
handler and the steward's Dissolve only queue a job (`partner_push`,
`partner_withdraw`), in their own transaction, and answer at once.

The job walks the listings newest first, `PAGE_SIZE` at a time, keyset-paged
by (created_at, id). Each page is one transaction that queues the page's
deliveries and stores the position reached in the job's progress, so a
restart resumes after the last page committed and no page is queued twice.
At every page it asks again whether the partnership is still what the job is
for: a push stops once the partnership has ended, a withdrawal once the two
communities are partners again. Ending a partnership also cancels its push
(and a new one cancels the withdrawal), which the next page notices.

Listings created or made partner-only while a push walks reach the partner
the usual way (`publish_listing_change`), so the walk never needs to see
them: it starts after none and only goes to older listings. A `Create` the
partner already holds is taken as an update of its copy, a `Delete` of what it
does not hold changes nothing, so a page sent twice does no harm either.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from federation.builders import build_tombstone
from node.domain import urls
from node.protocol.context import FederationContext
from node.protocol.jobs import JobFailed, JobHandler, JobRun, enqueue_job
from node.protocol.publishing import send, send_to_partner
from storage.models import Community, Listing, utcnow
from storage.paging import Position, position_from_token, position_token
from storage.repositories import CommunityRepository, ListingRepository
from storage.repositories.jobs import JobRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.write_turns import write_turn

PARTNER_PUSH = "partner_push"
PARTNER_WITHDRAW = "partner_withdraw"
PAGE_SIZE = 250
"""Listings a page queues in one transaction: a few hundred rows, well under a second."""


def _key(kind: str, local: Community, remote: Community) -> str:
    return f"{kind}:{local.id}:{remote.id}"


async def _enqueue(session: AsyncSession, kind: str, local: Community, remote: Community) -> bool:
    return await enqueue_job(
        session,
        kind,
        {"local_id": local.id, "remote_id": remote.id},
        dedupe_key=_key(kind, local, remote),
        community_id=local.id,
        subject=remote.ap_id,
    )


async def cancel_withdrawal(session: AsyncSession, local: Community, remote: Community) -> None:
    """The two are partners again: a withdrawal still walking stops."""
    await JobRepository(session).cancel(
        _key(PARTNER_WITHDRAW, local, remote), "the partnership is active again"
    )


async def start_push(session: AsyncSession, local: Community, remote: Community) -> bool:
    """The partnership is active: stop any withdrawal still walking, queue the push."""
    await cancel_withdrawal(session, local, remote)
    return await _enqueue(session, PARTNER_PUSH, local, remote)


async def start_withdrawal(session: AsyncSession, local: Community, remote: Community) -> bool:
    """The partnership ended: stop the push, queue the withdrawal (caller's transaction).

    Cancel the push before the deliveries queued for the partner are cancelled:
    on PostgreSQL a page being written holds the job's row, so the cancellation
    waits for it and the deliveries it queued are then cancelled with the rest.
    """
    await JobRepository(session).cancel(_key(PARTNER_PUSH, local, remote), "the partnership ended")
    return await _enqueue(session, PARTNER_WITHDRAW, local, remote)


async def _pair(session: AsyncSession, run: JobRun) -> tuple[Community, Community]:
    communities = CommunityRepository(session)
    local = await communities.get(int(run.payload.get("local_id", 0)))
    remote = await communities.get(int(run.payload.get("remote_id", 0)))
    if local is None or remote is None or not local.is_local or remote.is_local:
        raise JobFailed("the communities this job was for no longer exist")
    return local, remote


def _position(progress: dict[str, Any]) -> Position | None:
    token = progress.get("after")
    if not isinstance(token, str):
        return None
    try:
        return position_from_token(token)
    except ValueError:
        return None


async def _push_one(
    session: AsyncSession, local: Community, remote: Community, listing: Listing, inbox: str
) -> None:
    await send_to_partner(session, local, "Create", listing, remote.ap_id, inbox)


async def _withdraw_one(
    session: AsyncSession, local: Community, remote: Community, listing: Listing, inbox: str
) -> None:
    tombstone = build_tombstone(listing.ap_id, former_type="Note", deleted=utcnow())
    await send(session, local, "Delete", tombstone, {inbox}, to=[remote.ap_id])


async def walk_page(ctx: FederationContext, run: JobRun, page_size: int) -> bool:
    """Queue one page of deliveries and store the position reached, in one
    transaction; True while more pages remain and the job should go on."""
    push = run.kind == PARTNER_PUSH
    async with write_turn(ctx.sessions), ctx.sessions() as session, session.begin():
        # Write the job's row first: it renews the lease, tells us if the job was
        # cancelled, and (PostgreSQL) holds the row while this page is written.
        await run.record(session)
        local, remote = await _pair(session, run)
        active = await PartnershipRepository(session).active_between(local.id, remote.ap_id)
        if active != push:
            reason = "the partnership ended" if push else "the partnership is active again"
            await run.record(session, stopped=reason)
            return False
        inbox = urls.delivery_inbox(remote.inbox_url, remote.shared_inbox_url, fan_out=False)
        if not inbox:
            await run.record(session, stopped="the partner has no inbox")
            return False
        listings = ListingRepository(session)
        if "total" not in run.progress:
            run.progress.update(total=await listings.count_partners_only(local.id), queued=0)
        rows = await listings.page_partners_only(local.id, _position(run.progress), page_size)
        page = rows[:page_size]
        one = _push_one if push else _withdraw_one
        for listing in page:
            await one(session, local, remote, listing, inbox)
        more = len(rows) > page_size
        progress: dict[str, Any] = {
            "queued": int(run.progress.get("queued", 0)) + len(page),
            "pages": int(run.progress.get("pages", 0)) + 1,
        }
        if page:
            progress["after"] = position_token(Position(page[-1].created_at, page[-1].id))
        await run.record(session, **progress)
        return more


def run_partner_sharing(ctx: FederationContext, page_size: int = PAGE_SIZE) -> JobHandler:
    """The handler of both kinds: page until done, stopped, or cancelled."""

    async def handle(run: JobRun) -> None:
        while await walk_page(ctx, run, page_size):
            pass

    return handle


def partner_sharing_handlers(
    ctx: FederationContext, page_size: int = PAGE_SIZE
) -> dict[str, JobHandler]:
    handler = run_partner_sharing(ctx, page_size)
    return {PARTNER_PUSH: handler, PARTNER_WITHDRAW: handler}
