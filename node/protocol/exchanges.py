"""The exchange protocol: what we send for each change, and what we do with
what the other node sends.

Each change is queued for the other party's community only (its own inbox,
`to` naming only it): never public, never to partners or followers. Inbound,
every activity is checked against the exchange it names: only the two party
communities may speak for it, the listing's side alone answers the Offer,
and a status is applied with `merged` (see `node.domain.exchanges`), so a
message heard twice or out of order leaves both ledgers equal.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from federation.builders import build_activity
from federation.exchanges import (
    Agreement,
    ThreadMessage,
    build_agreement,
    build_thread_message,
    parse_agreement,
    parse_thread_message,
)
from federation.html_text import html_to_plain_text
from federation.inbox_processor import IgnoreActivity
from federation.jsonld import normalize_activity
from federation.vocab import Activity, VocabError
from node.domain import urls
from node.domain.exchanges import display_name, merged
from node.domain.visibility import Viewer, may_view
from node.protocol.context import FederationContext
from node.protocol.publishing import enqueue, send
from node.protocol.remote_actors import resolve_actor
from storage.models import Community, Exchange, ExchangeMessage, Notification, utcnow
from storage.repositories import ListingRepository, MemberRepository
from storage.repositories.exchanges import ExchangeRepository
from storage.repositories.partnerships import NotificationRepository, PartnershipRepository
from storage.states import ExchangeStatus, Kind, ListingStatus

log = logging.getLogger(__name__)

MAX_NOTE = 2000
MAX_MESSAGE = 5000


class ExchangeIgnored(IgnoreActivity):
    """An exchange activity that names nothing we hold from this sender; recorded, not retried."""


# --- the agreement as both sides hold it ------------------------------------------


def agreement_of(exchange: Exchange, status: str | None = None) -> Agreement:
    return Agreement(
        id=exchange.agreement_id,
        listing=exchange.listing_ap_id,
        provider=exchange.provider_community.ap_id,
        receiver=exchange.receiver_community.ap_id,
        provider_member=exchange.provider_handle,
        receiver_member=exchange.receiver_handle,
        provider_name=exchange.provider_name or None,
        receiver_name=exchange.receiver_name or None,
        title=exchange.listing_title,
        note=exchange.note or None,
        quantity=exchange.quantity,
        hours=exchange.hours,
        status=status,
    )


def local_side(exchange: Exchange) -> Community:
    """The party community on this node (the listing's, when both are)."""
    if exchange.provider_community.is_local and exchange.receiver_community.is_local:
        return (
            exchange.provider_community
            if exchange.listing_kind == Kind.OFFER
            else exchange.receiver_community
        )
    return (
        exchange.provider_community
        if exchange.provider_community.is_local
        else exchange.receiver_community
    )


def counterpart(exchange: Exchange) -> Community | None:
    """The party community on another node, or None when both are here."""
    for community in (exchange.provider_community, exchange.receiver_community):
        if not community.is_local:
            return community
    return None


def _inbox(remote: Community) -> set[str]:
    inbox = urls.delivery_inbox(remote.inbox_url, remote.shared_inbox_url, fan_out=False)
    return {inbox} if inbox else set()


async def _send(
    session: AsyncSession, exchange: Exchange, activity_type: str, obj: Any, **extra: Any
) -> dict[str, Any] | None:
    remote = counterpart(exchange)
    if remote is None:
        return None
    return await send(
        session,
        local_side(exchange),
        activity_type,
        obj,
        _inbox(remote),
        to=[remote.ap_id],
        **extra,
    )


async def send_offer(session: AsyncSession, exchange: Exchange) -> None:
    """The requester's Offer; its id was fixed when the exchange was created, so
    the listing's side can name it in its answer."""
    remote = counterpart(exchange)
    if remote is None:
        return
    requester = local_side(exchange)
    offer = build_activity(
        "Offer",
        exchange.offer_activity_id,
        requester.ap_id,
        build_agreement(agreement_of(exchange)),
        to=[remote.ap_id],
    )
    await enqueue(session, requester, offer, _inbox(remote))


async def send_status(session: AsyncSession, exchange: Exchange, status: str) -> None:
    """Accept or Reject the Offer (the listing's side), or Update the agreement."""
    agreement = build_agreement(agreement_of(exchange, status))
    if status == ExchangeStatus.ACCEPTED:
        await _send(session, exchange, "Accept", exchange.offer_activity_id, result=agreement)
    elif status == ExchangeStatus.DECLINED:
        await _send(session, exchange, "Reject", exchange.offer_activity_id, result=agreement)
    else:
        await _send(session, exchange, "Update", agreement)


async def send_message(session: AsyncSession, exchange: Exchange, message: ExchangeMessage) -> None:
    remote = counterpart(exchange)
    if remote is None:
        return
    note = build_thread_message(
        ThreadMessage(
            id=message.ap_id,
            agreement=exchange.agreement_id,
            attributed_to=local_side(exchange).ap_id,
            member=message.author_handle,
            member_name=message.author_name or None,
            content=message.text,
            published=message.created_at,
        ),
        remote.ap_id,
    )
    await _send(session, exchange, "Create", note)


# --- notifications ------------------------------------------------------------------


async def notify(
    session: AsyncSession,
    exchange: Exchange,
    member_id: int | None,
    kind: str,
    text: str,
    *,
    stewards_of: int | None = None,
) -> None:
    """A member's notification; with no member, one for the stewards of `stewards_of`."""
    community_id = stewards_of
    if member_id is not None:
        member = await MemberRepository(session).get(member_id)
        if member is None:
            return
        community_id = member.community_id
    if community_id is None:
        return
    await NotificationRepository(session).add(
        Notification(
            community_id=community_id,
            member_id=member_id,
            exchange_id=exchange.id,
            kind=kind,
            text=text[:1000],
        )
    )


def listing_side_member(exchange: Exchange) -> int | None:
    return (
        exchange.provider_member_id
        if exchange.listing_kind == Kind.OFFER
        else exchange.receiver_member_id
    )


def requester_member(exchange: Exchange) -> int | None:
    return (
        exchange.receiver_member_id
        if exchange.listing_kind == Kind.OFFER
        else exchange.provider_member_id
    )


async def notify_requested(session: AsyncSession, exchange: Exchange, who: str) -> None:
    member_id = listing_side_member(exchange)
    text = f"{who} asks for “{exchange.listing_title}”"
    await notify(
        session,
        exchange,
        member_id,
        "exchange_requested",
        text,
        stewards_of=exchange.listing_community_id if member_id is None else None,
    )


STATUS_NOTICES = {
    ExchangeStatus.ACCEPTED: ("exchange_answered", "accepted"),
    ExchangeStatus.DECLINED: ("exchange_answered", "declined"),
    ExchangeStatus.COMPLETED: ("exchange_completed", "marked as completed"),
    ExchangeStatus.CANCELLED: ("exchange_cancelled", "cancelled"),
}


async def notify_status(
    session: AsyncSession, exchange: Exchange, status: str, *, except_member: int | None
) -> None:
    """Tell the local member parties, other than whoever made the change."""
    kind, verb = STATUS_NOTICES[ExchangeStatus(status)]
    text = f"Your exchange for “{exchange.listing_title}” was {verb}"
    for member_id in {exchange.provider_member_id, exchange.receiver_member_id}:
        if member_id is not None and member_id != except_member:
            await notify(session, exchange, member_id, kind, text)


def apply_status(exchange: Exchange, heard: str) -> bool:
    """Move to `merged(current, heard)`; True when that changed anything."""
    new = merged(exchange.status, heard)
    if new == exchange.status:
        return False
    now = utcnow()
    exchange.status = new
    exchange.updated_at = now
    if new != ExchangeStatus.REQUESTED and exchange.answered_at is None:
        exchange.answered_at = now
    if new == ExchangeStatus.COMPLETED:
        exchange.completed_at = now
    return True


# --- inbound ------------------------------------------------------------------------


def _agreement_in(value: Any) -> Agreement:
    if not isinstance(value, dict):
        raise ExchangeIgnored("the agreement must be embedded")
    try:
        return parse_agreement(normalize_activity(value))
    except VocabError as exc:
        raise ExchangeIgnored(f"unreadable agreement: {exc}") from exc


async def on_offer(ctx: FederationContext, activity: Activity) -> None:
    """A member of another community asks for one of our listings.

    The agreement must be minted on the sender's host and name the sender as
    the requesting side; the listing must be ours, active, and one the
    sender's community may see. Anything else is recorded and ignored, so
    nothing about a listing it may not see is revealed to it.
    """
    agreement = _agreement_in(activity.object)
    if urls.host_of(agreement.id) != urls.host_of(activity.actor):
        raise ExchangeIgnored("an agreement is minted by the requester's node")
    sender = await resolve_actor(ctx, activity.actor)
    async with ctx.sessions() as session:
        exchanges = ExchangeRepository(session)
        if await exchanges.get_by_agreement_id(agreement.id) is not None:
            return
        listing = await ListingRepository(session).get_by_ap_id(agreement.listing)
        if listing is None or listing.status != ListingStatus.ACTIVE:
            raise ExchangeIgnored(f"{agreement.listing} is no active listing of ours")
        partnered = await PartnershipRepository(session).active_between(
            listing.community_id, sender.ap_id
        )
        viewer = Viewer(remote_actor=sender.ap_id, is_active_partner=partnered)
        if not may_view(listing, viewer):
            raise ExchangeIgnored(f"{sender.ap_id} may not see {agreement.listing}")
        ours = listing.community.ap_id
        expected = (ours, sender.ap_id) if listing.kind == Kind.OFFER else (sender.ap_id, ours)
        if (agreement.provider, agreement.receiver) != expected:
            raise ExchangeIgnored("the agreement's parties do not match the listing")
        requester_handle = (
            agreement.receiver_member if listing.kind == Kind.OFFER else agreement.provider_member
        )
        if requester_handle is None or requester_handle.rpartition("@")[2].lower() != sender.host:
            raise ExchangeIgnored("the requesting member must belong to the sender's node")
        author = listing.author
        ours_handle = f"{author.username}@{listing.community.host}" if author else None
        ours_name = display_name(author) if author else ""
        theirs_name = (
            agreement.receiver_name if listing.kind == Kind.OFFER else agreement.provider_name
        ) or requester_handle
        is_offer = listing.kind == Kind.OFFER
        now = utcnow()
        exchange = await exchanges.add(
            Exchange(
                agreement_id=agreement.id,
                offer_activity_id=activity.id,
                status=ExchangeStatus.REQUESTED,
                listing_id=listing.id,
                listing_ap_id=listing.ap_id,
                listing_title=listing.title,
                listing_kind=listing.kind,
                provider_community_id=listing.community_id if is_offer else sender.id,
                receiver_community_id=sender.id if is_offer else listing.community_id,
                is_cross_community=True,
                provider_member_id=(author.id if author else None) if is_offer else None,
                receiver_member_id=None if is_offer else (author.id if author else None),
                provider_handle=ours_handle if is_offer else requester_handle,
                receiver_handle=requester_handle if is_offer else ours_handle,
                provider_name=(ours_name if is_offer else theirs_name)[:200],
                receiver_name=(theirs_name if is_offer else ours_name)[:200],
                quantity=agreement.quantity,
                hours=agreement.hours,
                note=html_to_plain_text(agreement.note or "")[:MAX_NOTE],
                created_at=now,
                updated_at=now,
            )
        )
        await session.refresh(exchange)
        await notify_requested(session, exchange, f"{theirs_name} ({sender.name})")
        await session.commit()


def _listing_side(exchange: Exchange) -> Community:
    """The community whose listing the exchange is about: the one that answers the Offer."""
    return (
        exchange.provider_community
        if exchange.listing_kind == Kind.OFFER
        else exchange.receiver_community
    )


async def exchange_answered(
    session: AsyncSession, activity: Activity, exchange: Exchange, sender: Community
) -> None:
    """Accept or Reject of our Offer, from the listing's community only."""
    listing_side = _listing_side(exchange)
    if listing_side.id != sender.id or listing_side.is_local:
        raise ExchangeIgnored(f"{sender.ap_id} does not answer for {exchange.listing_ap_id}")
    heard = ExchangeStatus.ACCEPTED if activity.type == "Accept" else ExchangeStatus.DECLINED
    result = activity.raw.get("result")
    if isinstance(result, dict):
        agreement = _agreement_in({"@context": activity.raw.get("@context"), **result})
        if agreement.id != exchange.agreement_id:
            raise ExchangeIgnored("the answer's agreement is another one")
        _learn_listing_member(exchange, agreement)
    exchange.answer_activity_id = exchange.answer_activity_id or activity.id
    if apply_status(exchange, heard):
        await notify_status(session, exchange, exchange.status, except_member=None)


def _learn_listing_member(exchange: Exchange, agreement: Agreement) -> None:
    """The requester's node learns who answers for the listing from the agreement."""
    if exchange.listing_kind == Kind.OFFER:
        if exchange.provider_handle is None and agreement.provider_member:
            exchange.provider_handle = agreement.provider_member
            exchange.provider_name = (agreement.provider_name or agreement.provider_member)[:200]
    elif exchange.receiver_handle is None and agreement.receiver_member:
        exchange.receiver_handle = agreement.receiver_member
        exchange.receiver_name = (agreement.receiver_name or agreement.receiver_member)[:200]


async def _exchange_from(session: AsyncSession, agreement_id: str, sender: Community) -> Exchange:
    """The exchange `agreement_id` names, if `sender` is its other party."""
    exchange = await ExchangeRepository(session).get_by_agreement_id(agreement_id)
    if exchange is None:
        raise ExchangeIgnored(f"no exchange {agreement_id}")
    remote = counterpart(exchange)
    if remote is None or remote.id != sender.id:
        raise ExchangeIgnored(f"{sender.ap_id} is not a party to {agreement_id}")
    return exchange


async def on_agreement_update(ctx: FederationContext, activity: Activity) -> None:
    """The other party completed or cancelled."""
    agreement = _agreement_in(activity.object)
    if agreement.status not in (ExchangeStatus.COMPLETED, ExchangeStatus.CANCELLED):
        raise ExchangeIgnored(f"an Update may complete or cancel, not {agreement.status}")
    sender = await resolve_actor(ctx, activity.actor)
    async with ctx.sessions() as session:
        exchange = await _exchange_from(session, agreement.id, sender)
        if (
            agreement.status == ExchangeStatus.COMPLETED
            and exchange.status == ExchangeStatus.REQUESTED
        ):
            if _listing_side(exchange).is_local:
                # Only this node accepts; the requester cannot complete past it.
                raise ExchangeIgnored(f"{agreement.id} was never accepted here")
            # The acceptance is still on its way; the completion implies it.
            _learn_listing_member(exchange, agreement)
        if apply_status(exchange, agreement.status):
            await notify_status(session, exchange, exchange.status, except_member=None)
        await session.commit()


async def on_thread_message(ctx: FederationContext, activity: Activity) -> None:
    if not isinstance(activity.object, dict):
        raise ExchangeIgnored("the message must be embedded")
    try:
        message = parse_thread_message(normalize_activity(activity.object))
    except VocabError as exc:
        raise ExchangeIgnored(f"unreadable message: {exc}") from exc
    if message.attributed_to != activity.actor or urls.host_of(message.id) != urls.host_of(
        activity.actor
    ):
        raise ExchangeIgnored("a message is written and named by its sender")
    sender = await resolve_actor(ctx, activity.actor)
    async with ctx.sessions() as session:
        exchange = await _exchange_from(session, message.agreement, sender)
        exchanges = ExchangeRepository(session)
        if await exchanges.get_message_by_ap_id(message.id) is not None:
            return
        handle = (
            exchange.provider_handle
            if exchange.provider_community_id == sender.id
            else exchange.receiver_handle
        )
        author = handle or message.member or sender.handle
        name = (message.member_name or author)[:200]
        row = await exchanges.add_message(
            ExchangeMessage(
                ap_id=message.id,
                exchange_id=exchange.id,
                author_community_id=sender.id,
                author_handle=author[:320],
                author_name=name,
                text=html_to_plain_text(message.content)[:MAX_MESSAGE],
                created_at=utcnow(),
            )
        )
        exchange.updated_at = row.created_at
        for member_id in {exchange.provider_member_id, exchange.receiver_member_id}:
            if member_id is not None:
                await notify(
                    session,
                    exchange,
                    member_id,
                    "exchange_message",
                    f"{name} wrote about “{exchange.listing_title}”",
                )
        await session.commit()


def is_exchange_update(activity: Activity) -> bool:
    obj = activity.object
    return isinstance(obj, dict) and obj.get("type") == "Agreement"


def is_exchange_message(activity: Activity) -> bool:
    obj = activity.object
    return isinstance(obj, dict) and obj.get("type") == "Note" and obj.get("context") is not None


async def lookup_answered(session: AsyncSession, object_id: str) -> Exchange | None:
    return await ExchangeRepository(session).get_by_offer_id(object_id)
