"""Exchange use cases: a member asks for a listing, the other side answers,
either side completes or cancels, and the two members talk it through.

Whatever a member may request is decided by the visibility rule: their own
community's listings, those an active partner shares with their community,
and public ones. A listing the member may not see is answered as if it did
not exist. When both parties are on this node there is one row and nothing
is sent; otherwise each change is queued for the other node in the same
transaction as the change itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from node.domain import urls
from node.domain.exchanges import (
    TRANSITIONS,
    Action,
    ExchangeView,
    Standing,
    display_name,
    member_handle,
    refusal,
    standing_of,
    view_of_exchange,
)
from node.domain.visibility import Viewer, may_view
from node.errors import Conflict, Forbidden, NotFound, ValidationFailed
from node.protocol import exchanges as protocol
from storage.models import (
    Community,
    Exchange,
    ExchangeMessage,
    Listing,
    Member,
    RemoteListing,
    new_id,
    utcnow,
)
from storage.paging import Position
from storage.repositories import BlockRepository, ListingRepository
from storage.repositories.actors import host_is_blocked
from storage.repositories.exchanges import ExchangeRepository
from storage.repositories.partnerships import NotificationRepository, PartnershipRepository
from storage.repositories.remote_listings import RemoteListingRepository
from storage.states import Audience, ExchangeStatus, Kind, ListingStatus

__all__ = [
    "Action",
    "ExchangeView",
    "MessageView",
    "accept",
    "cancel",
    "complete",
    "decline",
    "get_cross_community_exchanges",
    "get_exchange",
    "list_exchanges",
    "list_messages",
    "post_message",
    "request_exchange",
]

MAX_QUANTITY = 1_000_000
MAX_HOURS = 100_000.0
MAX_NOTE = protocol.MAX_NOTE
MAX_MESSAGE = protocol.MAX_MESSAGE


@dataclass(frozen=True)
class MessageView:
    id: str
    author: str  # user@host
    author_name: str
    is_mine: bool
    text: str
    created_at: datetime


@dataclass(frozen=True)
class _Target:
    """The listing asked for, wherever it is held."""

    ap_id: str
    title: str
    kind: str
    status: str
    community: Community
    local: Listing | None


async def _resolve_listing(session: AsyncSession, member: Member, ref: str) -> _Target:
    """A listing by local id, mirror id or AP id, if `member` may see it; else 404."""
    listings = ListingRepository(session)
    local = await listings.get(ref) if len(ref) <= 32 else None
    local = local or await listings.get_by_ap_id(ref)
    if local is not None:
        if not may_view(local, Viewer(local_community_id=member.community_id)):
            raise NotFound("no such listing")
        return _Target(local.ap_id, local.title, local.kind, local.status, local.community, local)
    mirror = RemoteListingRepository(session)
    remote: RemoteListing | None = await session.get(RemoteListing, ref) if len(ref) <= 32 else None
    remote = remote or await mirror.get_by_ap_id(ref)
    if remote is None or remote.is_tombstoned or not await _may_see_remote(session, member, remote):
        raise NotFound("no such listing")
    return _Target(
        remote.ap_id, remote.title, remote.kind, remote.status, remote.origin_community, None
    )


async def _may_see_remote(session: AsyncSession, member: Member, remote: RemoteListing) -> bool:
    """Public, or shared with partners while the member's community is an active one."""
    if host_is_blocked(await BlockRepository(session).domains(), remote.origin_community.host):
        return False
    if remote.audience == Audience.PUBLIC:
        return True
    return remote.audience == Audience.PARTNERS and await PartnershipRepository(
        session
    ).active_between(member.community_id, remote.origin_community.ap_id)


def _checked_amounts(quantity: int | None, hours: float | None) -> None:
    if quantity is not None and not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationFailed(f"quantity must be between 1 and {MAX_QUANTITY}")
    if hours is not None and not 0 < hours <= MAX_HOURS:
        raise ValidationFailed(f"hours must be more than 0 and at most {MAX_HOURS:g}")


async def request_exchange(
    session: AsyncSession,
    member: Member,
    listing_ref: str,
    quantity: int | None = None,
    hours: float | None = None,
    note: str = "",
) -> ExchangeView:
    """Ask for a listing: for an offer the member receives, for a need it provides."""
    _checked_amounts(quantity, hours)
    if len(note) > MAX_NOTE:
        raise ValidationFailed(f"a note is at most {MAX_NOTE} characters")
    target = await _resolve_listing(session, member, listing_ref.strip())
    if target.status != ListingStatus.ACTIVE:
        raise Conflict("this listing is closed")
    if target.local is not None and target.local.author_id == member.id:
        raise Conflict("you cannot request your own listing")
    mine, theirs = member.community, target.community
    author = target.local.author if target.local is not None else None
    me = (member.id, member_handle(member), display_name(member))
    them = (
        (author.id, member_handle(author), display_name(author))
        if author is not None
        else (None, None, "")
    )
    provider, receiver = (them, me) if target.kind == Kind.OFFER else (me, them)
    exchange_id, now = new_id(), utcnow()
    exchange = await ExchangeRepository(session).add(
        Exchange(
            id=exchange_id,
            agreement_id=urls.agreement(mine.ap_id, exchange_id),
            offer_activity_id=urls.new_activity_id(mine.ap_id),
            status=ExchangeStatus.REQUESTED,
            listing_id=target.local.id if target.local is not None else None,
            listing_ap_id=target.ap_id,
            listing_title=target.title,
            listing_kind=target.kind,
            provider_community_id=(theirs if target.kind == Kind.OFFER else mine).id,
            receiver_community_id=(mine if target.kind == Kind.OFFER else theirs).id,
            is_cross_community=mine.id != theirs.id,
            provider_member_id=provider[0],
            receiver_member_id=receiver[0],
            provider_handle=provider[1],
            receiver_handle=receiver[1],
            provider_name=provider[2],
            receiver_name=receiver[2],
            quantity=quantity,
            hours=hours,
            note=note.strip(),
            created_at=now,
            updated_at=now,
        )
    )
    await session.refresh(exchange)
    if theirs.is_local:
        await protocol.notify_requested(session, exchange, display_name(member))
    else:
        await protocol.send_offer(session, exchange)
    return await _view(session, member, exchange)


async def _listing_author_id(session: AsyncSession, exchange: Exchange) -> int | None:
    if exchange.listing_id is None:
        return None
    listing = await ListingRepository(session).get(exchange.listing_id)
    return listing.author_id if listing is not None else None


async def _visible(
    session: AsyncSession, member: Member, exchange_id: str, *, for_update: bool = False
) -> tuple[Exchange, Standing]:
    repo = ExchangeRepository(session)
    exchange = await (repo.get_for_update if for_update else repo.get)(exchange_id)
    if exchange is None:
        raise NotFound("no such exchange")
    standing = standing_of(member, exchange, await _listing_author_id(session, exchange))
    if not standing.may_see:
        raise NotFound("no such exchange")
    return exchange, standing


async def _counterpart_blocked(session: AsyncSession, exchange: Exchange) -> bool:
    remote = protocol.counterpart(exchange)
    return remote is not None and host_is_blocked(
        await BlockRepository(session).domains(), remote.host
    )


async def _transition(
    session: AsyncSession, member: Member, exchange_id: str, action: Action
) -> ExchangeView:
    exchange, standing = await _visible(session, member, exchange_id, for_update=True)
    refused = refusal(action, exchange.status, standing)
    if refused is not None:
        status, why = refused
        raise (Forbidden if status == 403 else Conflict)(why)
    if action != Action.CANCEL and await _counterpart_blocked(session, exchange):
        raise Conflict("the other community's server is blocked on this node")
    target = TRANSITIONS[action][1]
    if action == Action.ACCEPT:
        _answering_member(exchange, member)
    protocol.apply_status(exchange, target)
    await session.flush()
    await protocol.send_status(session, exchange, target)
    await protocol.notify_status(session, exchange, target, except_member=member.id)
    await NotificationRepository(session).mark_read_for_member(member.id, exchange.id)
    return await _view(session, member, exchange)


def _answering_member(exchange: Exchange, member: Member) -> None:
    """A steward accepting for a listing whose author is gone becomes its party."""
    if exchange.listing_kind == Kind.OFFER and exchange.provider_handle is None:
        exchange.provider_member_id = member.id
        exchange.provider_handle = member_handle(member)
        exchange.provider_name = display_name(member)
    elif exchange.listing_kind == Kind.NEED and exchange.receiver_handle is None:
        exchange.receiver_member_id = member.id
        exchange.receiver_handle = member_handle(member)
        exchange.receiver_name = display_name(member)


async def accept(session: AsyncSession, member: Member, exchange_id: str) -> ExchangeView:
    return await _transition(session, member, exchange_id, Action.ACCEPT)


async def decline(session: AsyncSession, member: Member, exchange_id: str) -> ExchangeView:
    return await _transition(session, member, exchange_id, Action.DECLINE)


async def complete(session: AsyncSession, member: Member, exchange_id: str) -> ExchangeView:
    return await _transition(session, member, exchange_id, Action.COMPLETE)


async def cancel(session: AsyncSession, member: Member, exchange_id: str) -> ExchangeView:
    return await _transition(session, member, exchange_id, Action.CANCEL)


async def _view(session: AsyncSession, member: Member, exchange: Exchange) -> ExchangeView:
    standing = standing_of(member, exchange, await _listing_author_id(session, exchange))
    counts = await ExchangeRepository(session).message_counts([exchange.id])
    return view_of_exchange(exchange, standing, counts.get(exchange.id, 0))


async def _views(
    session: AsyncSession, member: Member, rows: Sequence[Exchange]
) -> list[ExchangeView]:
    counts = await ExchangeRepository(session).message_counts([row.id for row in rows])
    views = []
    for row in rows:
        standing = standing_of(member, row, await _listing_author_id(session, row))
        views.append(view_of_exchange(row, standing, counts.get(row.id, 0)))
    return views


async def get_exchange(session: AsyncSession, member: Member, exchange_id: str) -> ExchangeView:
    exchange, standing = await _visible(session, member, exchange_id)
    await NotificationRepository(session).mark_read_for_member(member.id, exchange.id)
    counts = await ExchangeRepository(session).message_counts([exchange.id])
    return view_of_exchange(exchange, standing, counts.get(exchange.id, 0))


def _next(rows: Sequence[Exchange], limit: int) -> tuple[list[Exchange], Position | None]:
    page = list(rows[:limit])
    more = len(rows) > limit and page
    return page, Position(page[-1].created_at, page[-1].id) if more else None


async def list_exchanges(
    session: AsyncSession,
    member: Member,
    cross_community: bool | None = None,
    after: Position | None = None,
    limit: int = 50,
) -> tuple[list[ExchangeView], Position | None]:
    """The member's own exchanges (as provider or receiver), newest first, keyset-paged."""
    rows = await ExchangeRepository(session).page_for_member(
        member.id, cross_community, after, limit
    )
    page, next_position = _next(rows, limit)
    return await _views(session, member, page), next_position


async def get_cross_community_exchanges(
    session: AsyncSession,
    steward: Member,
    after: Position | None = None,
    limit: int = 50,
    status: str | None = None,
) -> tuple[list[ExchangeView], Position | None]:
    """Every exchange between the steward's community and another, for stewards."""
    if not steward.is_steward:
        raise Forbidden("stewards only")
    rows = await ExchangeRepository(session).page_for_community(
        steward.community_id, True, after, limit, status
    )
    page, next_position = _next(rows, limit)
    return await _views(session, steward, page), next_position


async def post_message(
    session: AsyncSession, member: Member, exchange_id: str, text: str
) -> MessageView:
    """A message from one party to the other: only the two members may write."""
    exchange, standing = await _visible(session, member, exchange_id)
    if not standing.is_party:
        raise Forbidden("only the two members of an exchange may write in its thread")
    text = text.strip()
    if not text or len(text) > MAX_MESSAGE:
        raise ValidationFailed(f"a message has 1 to {MAX_MESSAGE} characters")
    if await _counterpart_blocked(session, exchange):
        raise Conflict("the other community's server is blocked on this node")
    message_id, now = new_id(), utcnow()
    message = await ExchangeRepository(session).add_message(
        ExchangeMessage(
            id=message_id,
            ap_id=urls.exchange_message(member.community.ap_id, message_id),
            exchange_id=exchange.id,
            author_community_id=member.community_id,
            author_member_id=member.id,
            author_handle=member_handle(member),
            author_name=display_name(member),
            text=text,
            created_at=now,
        )
    )
    exchange.updated_at = now
    await protocol.send_message(session, exchange, message)
    other = exchange.receiver_member_id if standing.is_provider else exchange.provider_member_id
    if other is not None:
        await protocol.notify(
            session,
            exchange,
            other,
            "exchange_message",
            f"{display_name(member)} wrote about “{exchange.listing_title}”",
        )
    return _message_view(message, member)


def _message_view(message: ExchangeMessage, member: Member) -> MessageView:
    return MessageView(
        id=message.id,
        author=message.author_handle,
        author_name=message.author_name or message.author_handle,
        is_mine=message.author_member_id == member.id,
        text=message.text,
        created_at=message.created_at,
    )


async def list_messages(
    session: AsyncSession,
    member: Member,
    exchange_id: str,
    after: Position | None = None,
    limit: int = 50,
) -> tuple[list[MessageView], Position | None]:
    """The thread oldest first; reading it marks the member's notices about it read."""
    exchange, _ = await _visible(session, member, exchange_id)
    await NotificationRepository(session).mark_read_for_member(member.id, exchange.id)
    rows = await ExchangeRepository(session).page_messages(exchange.id, after, limit)
    page = list(rows[:limit])
    next_position = (
        Position(page[-1].created_at, page[-1].id) if len(rows) > limit and page else None
    )
    return [_message_view(row, member) for row in page], next_position
