"""The states a row can be in, as `StrEnum`s: one definition for the whole node.

They live here, at the bottom of the layers, because the database enforces
them (each state column has a CHECK constraint built from these values) and
`storage/` may not import from `node/`. `node.domain.states` re-exports them
for the layers above, which name them through the domain. A `StrEnum` member
is its string, so rows, JSON and templates see plain values.
"""

from __future__ import annotations

from enum import StrEnum


class Visibility(StrEnum):
    """Who may see a local listing: its community, + active partners, + anyone."""

    COMMUNITY = "community"
    PARTNERS = "partners"
    PUBLIC = "public"


class LocationPrecision(StrEnum):
    """How precisely a listing's point is shown: `exact` to its own community only
    (other communities get it rounded to about 1 km), `neighbourhood` about 1 km and
    `area` about 10 km for everyone."""

    EXACT = "exact"
    NEIGHBOURHOOD = "neighbourhood"
    AREA = "area"


class Audience(StrEnum):
    """Under which audience another community shared a listing with us."""

    PUBLIC = "public"
    PARTNERS = "partners"


class Origin(StrEnum):
    """How a listing reached a member's list."""

    LOCAL = "local"
    PARTNER = "partner"
    PUBLIC = "public"


class Kind(StrEnum):
    OFFER = "offer"
    NEED = "need"


class ListingStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Role(StrEnum):
    MEMBER = "member"
    STEWARD = "steward"


class PartnershipState(StrEnum):
    """`proposed`: we asked; `pending`: they asked and our stewards have not answered."""

    PROPOSED = "proposed"
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    DISSOLVED = "dissolved"


class Initiator(StrEnum):
    US = "us"
    THEM = "them"


class FollowDirection(StrEnum):
    """`in`: they follow one of ours; `out`: one of ours follows them."""

    IN = "in"
    OUT = "out"


class FollowState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"


class RelayState(StrEnum):
    """A relay subscription: `pending` until the relay answers our Follow."""

    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"


class DeliveryState(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InboxState(StrEnum):
    RECEIVED = "received"
    HANDLED = "handled"
    IGNORED = "ignored"
    FAILED = "failed"


class JobState(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ExchangeStatus(StrEnum):
    """An exchange's life: `requested`, then `accepted` or `declined`; an accepted
    one ends `completed`; either party may `cancel` one that has not ended."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


def values(states: type[StrEnum]) -> tuple[str, ...]:
    """The stored spellings, for CHECK constraints and validation messages."""
    return tuple(state.value for state in states)
