"""The rules of an exchange: who may do what, and how two ledgers stay equal.

Both nodes of a cross-community exchange change its status on their own
and tell the other. Messages can arrive twice, late, or in another order
than they were sent (a completion before the acceptance it follows), so
the status is not a sequence of steps to replay but a value that only
moves forward: each status has a rank, and a node holding one status that
hears of another keeps the higher of the two. Taking the maximum is
idempotent and does not depend on order, so once both nodes have heard
everything they hold the same status.

The ranks put the ends above the open states and break the ties between
ends: a completion outranks a cancellation (the exchange did happen),
and a cancellation outranks a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from storage.models import Exchange, Member
from storage.states import ExchangeStatus, Kind

REQUESTED, ACCEPTED = ExchangeStatus.REQUESTED, ExchangeStatus.ACCEPTED
DECLINED, CANCELLED, COMPLETED = (
    ExchangeStatus.DECLINED,
    ExchangeStatus.CANCELLED,
    ExchangeStatus.COMPLETED,
)

RANK: dict[str, int] = {REQUESTED: 0, ACCEPTED: 1, DECLINED: 2, CANCELLED: 3, COMPLETED: 4}
ENDED = frozenset({DECLINED, CANCELLED, COMPLETED})


def merged(current: str, heard: str) -> ExchangeStatus:
    """The status after hearing `heard` while holding `current`: the higher rank."""
    return ExchangeStatus(max(current, heard, key=RANK.__getitem__))


class Action(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    COMPLETE = "complete"
    CANCEL = "cancel"


TRANSITIONS: dict[Action, tuple[frozenset[str], ExchangeStatus]] = {
    Action.ACCEPT: (frozenset({REQUESTED}), ACCEPTED),
    Action.DECLINE: (frozenset({REQUESTED}), DECLINED),
    Action.COMPLETE: (frozenset({ACCEPTED}), COMPLETED),
    Action.CANCEL: (frozenset({REQUESTED, ACCEPTED}), CANCELLED),
}
"""Which statuses an action may start from, and where it leads."""


def member_handle(member: Member) -> str:
    """`user@host`: how a member is named to other nodes and in the API."""
    return f"{member.username}@{member.community.host}"


def display_name(member: Member) -> str:
    """The name shown for a member: the display name it chose, else its username."""
    return member.shown_name


def roles_for_kind(kind: str) -> tuple[str, str]:
    """(listing side, requester side) as (provider|receiver): whoever asks for an
    offer receives it; whoever answers a need provides."""
    return ("provider", "receiver") if kind == Kind.OFFER else ("receiver", "provider")


@dataclass(frozen=True)
class Standing:
    """How one local member stands to one exchange."""

    is_provider: bool = False
    is_receiver: bool = False
    answers_for_listing: bool = False  # the listing's author, or a steward of its community
    is_party_steward: bool = False  # a steward of a local community that is a party

    @property
    def is_party(self) -> bool:
        return self.is_provider or self.is_receiver

    @property
    def may_see(self) -> bool:
        return self.is_party or self.answers_for_listing or self.is_party_steward


def standing_of(member: Member, exchange: Exchange, listing_author_id: int | None) -> Standing:
    """`listing_author_id` is the author of the listing when it is one of ours."""
    listing_side_local = exchange.listing_community_id == member.community_id
    steward_here = member.is_steward and member.community_id in (
        exchange.provider_community_id,
        exchange.receiver_community_id,
    )
    return Standing(
        is_provider=exchange.provider_member_id == member.id,
        is_receiver=exchange.receiver_member_id == member.id,
        answers_for_listing=listing_side_local
        and (
            member.is_steward or (listing_author_id is not None and listing_author_id == member.id)
        ),
        is_party_steward=steward_here,
    )


def may_take(action: Action, standing: Standing) -> bool:
    """Accept and decline: whoever answers for the listing. Complete: either member
    party. Cancel: either member party, or a steward of a party community."""
    if action in (Action.ACCEPT, Action.DECLINE):
        return standing.answers_for_listing
    if action == Action.COMPLETE:
        return standing.is_party
    return standing.is_party or standing.is_party_steward


def refusal(action: Action, status: str, standing: Standing) -> tuple[int, str] | None:
    """(403|409, why) when `action` may not be taken now, else None."""
    if not may_take(action, standing):
        return 403, f"you may not {action} this exchange"
    sources, _ = TRANSITIONS[action]
    if status not in sources:
        return 409, f"a {status} exchange cannot be {TRANSITIONS[action][1]}"
    return None


def actions_open_to(status: str, standing: Standing) -> tuple[Action, ...]:
    return tuple(action for action in Action if refusal(action, status, standing) is None)


@dataclass(frozen=True)
class Party:
    member: str | None  # user@host, None until the other node has named its member
    name: str
    community_id: str  # the community's actor id
    community_name: str


@dataclass(frozen=True)
class ExchangeView:
    """An exchange as one member sees it: the API and the pages read this."""

    id: str
    agreement_id: str
    status: ExchangeStatus
    listing_ap_id: str
    listing_title: str
    listing_kind: str
    listing_id: str | None
    provider: Party
    receiver: Party
    is_cross_community: bool
    quantity: int | None
    hours: float | None
    note: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    role: str  # provider | receiver | steward
    other_party_name: str
    actions: tuple[Action, ...]
    messages_count: int

    @property
    def provider_community_id(self) -> str:
        return self.provider.community_id

    @property
    def receiver_community_id(self) -> str:
        return self.receiver.community_id


def _party(exchange: Exchange, side: str) -> Party:
    community = exchange.provider_community if side == "provider" else exchange.receiver_community
    handle = exchange.provider_handle if side == "provider" else exchange.receiver_handle
    name = exchange.provider_name if side == "provider" else exchange.receiver_name
    return Party(handle, name or (handle or ""), community.ap_id, community.name)


def view_of_exchange(exchange: Exchange, standing: Standing, messages_count: int) -> ExchangeView:
    provider, receiver = _party(exchange, "provider"), _party(exchange, "receiver")
    if standing.is_provider:
        role, other = "provider", receiver
    elif standing.is_receiver:
        role, other = "receiver", provider
    else:
        role = "steward"
        other = receiver if exchange.listing_kind == Kind.OFFER else provider
    return ExchangeView(
        id=exchange.id,
        agreement_id=exchange.agreement_id,
        status=ExchangeStatus(exchange.status),
        listing_ap_id=exchange.listing_ap_id,
        listing_title=exchange.listing_title,
        listing_kind=exchange.listing_kind,
        listing_id=exchange.listing_id,
        provider=provider,
        receiver=receiver,
        is_cross_community=exchange.is_cross_community,
        quantity=exchange.quantity,
        hours=exchange.hours,
        note=exchange.note,
        created_at=exchange.created_at,
        updated_at=exchange.updated_at,
        completed_at=exchange.completed_at,
        role=role,
        other_party_name=other.name or other.community_name,
        actions=actions_open_to(exchange.status, standing),
        messages_count=messages_count,
    )
