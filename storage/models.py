"""Database rows. Wire formats live in `federation/`; `node/services` converts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    inspect,
    true,
)
from sqlalchemy.orm import DeclarativeBase, InstanceState, Mapped, mapped_column, relationship

from storage.states import (
    Audience,
    DeliveryState,
    ExchangeStatus,
    FollowDirection,
    FollowState,
    InboxState,
    Initiator,
    JobState,
    Kind,
    ListingStatus,
    LocationPrecision,
    PartnershipState,
    RelayState,
    Role,
    Visibility,
    values,
)
from storage.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, states: type[StrEnum]) -> CheckConstraint:
    """The database refuses a state the code does not know (`ck_<table>_<column>`)."""
    allowed = ", ".join(f"'{value}'" for value in values(states))
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


STATE_COLUMNS: dict[str, dict[str, type[StrEnum]]] = {
    "members": {"role": Role},
    "listings": {
        "kind": Kind,
        "status": ListingStatus,
        "visibility": Visibility,
        "location_precision": LocationPrecision,
    },
    "remote_listings": {"kind": Kind, "status": ListingStatus, "audience": Audience},
    "follows": {"direction": FollowDirection, "state": FollowState},
    "inbox_log": {"state": InboxState},
    "deliveries": {"state": DeliveryState},
    "community_partnerships": {"state": PartnershipState, "initiated_by": Initiator},
    "jobs": {"state": JobState},
    "exchanges": {"status": ExchangeStatus, "listing_kind": Kind},
    "invitations": {"role": Role},
    "relays": {"state": RelayState},
}
"""Every state column and the states it may hold; the models read this, and
migrations 0008 (the tables before it), 0010 (exchanges) and 0013 (listing places)
freeze it."""


def _checks(table: str) -> tuple[CheckConstraint, ...]:
    return tuple(one_of(column, states) for column, states in STATE_COLUMNS[table].items())


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class Community(Base):
    """A community actor: one we host (`is_local`, with keys) or a cached remote one."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    is_local: Mapped[bool] = mapped_column(Boolean, default=False)
    actor_type: Mapped[str] = mapped_column(String(32), default="Group", server_default="Group")
    slug: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    base_url: Mapped[str] = mapped_column(String(2048))
    inbox_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    shared_inbox_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    outbox_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    followers_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    private_key_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    public_offer_count: Mapped[int] = mapped_column(Integer, default=0)
    public_need_count: Mapped[int] = mapped_column(Integer, default=0)
    # Listed in directories (ours, peers'); a remote one only when its actor says so.
    is_discoverable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    fetched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_communities_is_local_slug", "is_local", "slug"),
        Index("ix_communities_latitude_longitude", "latitude", "longitude"),
    )

    @property
    def handle(self) -> str:
        return f"{self.slug}@{self.host}"


class Member(Base):
    """A person in one local community. Stewards administer it; an operator (the
    first steward `init` creates, and whoever `member add --operator` names) also
    administers what is node-wide: domain blocks, delivery retries."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    display_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    bio: Mapped[str] = mapped_column(Text, default="", server_default="")
    # A deactivated member keeps its rows (listings, history) but cannot sign in.
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    community: Mapped[Community] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("community_id", "username"), *_checks("members"))

    @property
    def is_steward(self) -> bool:
        return self.role == Role.STEWARD

    @property
    def shown_name(self) -> str:
        """What others see: the display name the member chose, else the username."""
        return self.display_name or self.username


class AuthToken(Base):
    """A bearer token or a browser session. Only a hash of the secret is stored."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    csrf_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)

    member: Mapped[Member] = relationship(lazy="joined")


class Listing(Base):
    """An offer or a need posted by a local member."""

    __tablename__ = "listings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default=ListingStatus.ACTIVE)
    visibility: Mapped[str] = mapped_column(
        String(16), default=Visibility.COMMUNITY, server_default="community"
    )
    is_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    location_precision: Mapped[str] = mapped_column(
        String(16), default=LocationPrecision.EXACT, server_default="exact"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    community: Mapped[Community] = relationship(lazy="joined")
    author: Mapped[Member | None] = relationship(lazy="joined")
    images: Mapped[list[ListingImage]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ListingImage.position",
        foreign_keys="ListingImage.listing_id",
    )

    __table_args__ = (
        Index("ix_listings_is_public_status", "is_public", "status"),
        Index("ix_listings_community_id_created_at", "community_id", "created_at"),
        Index("ix_listings_latitude_longitude", "latitude", "longitude"),
        Index("ix_listings_created_at", "created_at"),
        *_checks("listings"),
    )


def _shown_at(context: Any) -> datetime:
    """`published_at`, else `received_at`, else now, of the row being inserted."""
    params = context.get_current_parameters()
    return params.get("published_at") or params.get("received_at") or utcnow()


class RemoteListing(Base):
    """The mirror: a listing another community shared with us, as we last heard of it."""

    __tablename__ = "remote_listings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    origin_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    audience: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default=ListingStatus.ACTIVE)
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)
    remote_updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    is_tombstoned: Mapped[bool] = mapped_column(Boolean, default=False)
    author_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    shown_at: Mapped[datetime] = mapped_column(default=_shown_at)
    """When the listing is shown as posted (`published_at`, else `received_at`): the
    newest-first sort key, stored so that an index can serve it."""

    origin_community: Mapped[Community] = relationship(lazy="joined")
    images: Mapped[list[ListingImage]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ListingImage.position",
        foreign_keys="ListingImage.remote_listing_id",
    )

    __table_args__ = (
        Index("ix_remote_listings_audience_status", "audience", "status"),
        Index("ix_remote_listings_latitude_longitude", "latitude", "longitude"),
        Index("ix_remote_listings_published_at", "published_at"),
        Index("ix_remote_listings_browse", "audience", "status", "shown_at"),
        Index("ix_remote_listings_browse_category", "audience", "status", "category", "shown_at"),
        *_checks("remote_listings"),
    )


class Follow(Base):
    """A plain (public-listing) follow, in either direction.

    `direction` "in": a remote actor follows one of our communities (they get our
    public listings). "out": one of our communities follows a remote community.
    """

    __tablename__ = "follows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))
    local_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    remote_actor: Mapped[str] = mapped_column(String(2048))
    remote_inbox: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    remote_shared_inbox: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    follow_activity_id: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16), default=FollowState.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("direction", "local_community_id", "remote_actor"),
        Index("ix_follows_follow_activity_id", "follow_activity_id"),
        *_checks("follows"),
    )


class Relay(Base):
    """A relay one of our communities subscribes to (the Mastodon/LitePub relay protocol).

    The community sends the relay a `Follow` of the Public collection; once the
    relay accepts, our public listings also go to its inbox, and what it
    announces is fetched from each object's own origin (`node.protocol.relays`).
    `fetch_window_*` count the fetches it caused in the current minute, so one
    relay cannot make us fetch without limit.
    """

    __tablename__ = "relays"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    local_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    actor_id: Mapped[str] = mapped_column(String(2048))
    inbox_url: Mapped[str] = mapped_column(String(2048))
    name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    follow_activity_id: Mapped[str] = mapped_column(String(2048), index=True)
    state: Mapped[str] = mapped_column(String(16), default=RelayState.PENDING)
    fetch_window_start: Mapped[datetime | None] = mapped_column(nullable=True)
    fetch_window_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("local_community_id", "actor_id"),
        Index("ix_relays_actor_id", "actor_id"),
        *_checks("relays"),
    )


class InboxEntry(Base):
    """Every activity we accepted: the dedupe key, the audit trail, and work to handle."""

    __tablename__ = "inbox_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(2048), unique=True)
    activity_type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(2048))
    raw: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=InboxState.RECEIVED, index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    # Which local inbox it came to (a community's actor id); None: the shared inbox.
    recipient: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = _checks("inbox_log")


class Delivery(Base):
    """One activity to POST to one inbox; survives restarts, retried with backoff.

    A delivery that carries a listing records which one (`listing_id`), under
    which audience its body shares it (`audience`: `public` or `partners`) and,
    for a partner, the actor it names (`recipient_actor`; None for follower
    fan-out), so the queue can check at send time that the audience still
    allows it. `cancelled` is the state of one that it no longer does.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(2048))
    sender_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    target_inbox: Mapped[str] = mapped_column(String(2048))
    host: Mapped[str] = mapped_column(String(255), index=True)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    listing_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    audience: Mapped[str | None] = mapped_column(String(16), nullable=True)
    recipient_actor: Mapped[str | None] = mapped_column(String(2048), nullable=True)

    __table_args__ = (
        UniqueConstraint("activity_id", "target_inbox"),
        Index("ix_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        *_checks("deliveries"),
    )


class PeerHost(Base):
    """Health of a remote host as a whole, so one dead server is backed off once."""

    __tablename__ = "peer_hosts"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    backoff_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    clock_skew_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    clock_skew_at: Mapped[datetime | None] = mapped_column(nullable=True)


class KnownPeer(Base):
    """A node we learn communities from: one a steward pointed us at (`depth` 0),
    or one a known peer lists among its own peers (`depth` one more than that
    peer's, `learned_from` its base URL). Crawled and refreshed by jobs."""

    __tablename__ = "known_peers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_url: Mapped[str] = mapped_column(String(2048), unique=True)
    added_by_community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="SET NULL"), nullable=True
    )
    depth: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    learned_from: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BlockedDomain(Base):
    """Nothing is sent to or accepted from a blocked host (`host` or `host:port`)."""

    __tablename__ = "blocked_domains"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(500), default="", server_default="")


class CommunityPartnership(Base):
    """A partnership between one of our communities and a remote one, from our side.

    `proposed`: we asked; `pending`: they asked and our stewards have not answered;
    then `active`, `rejected` or `dissolved`. `follow_activity_id` is the proposal's
    Follow id, which the answering Accept/Reject/Undo must name.
    """

    __tablename__ = "community_partnerships"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    local_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    remote_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(16))
    initiated_by: Mapped[str] = mapped_column(String(4))
    message: Mapped[str] = mapped_column(Text, default="")
    follow_activity_id: Mapped[str] = mapped_column(String(2048), index=True)
    proposed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    approved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    local_community: Mapped[Community] = relationship(
        lazy="joined", foreign_keys=[local_community_id]
    )
    remote_community: Mapped[Community] = relationship(
        lazy="joined", foreign_keys=[remote_community_id]
    )

    __table_args__ = (
        Index(
            "ix_community_partnerships_local_remote",
            "local_community_id",
            "remote_community_id",
        ),
        *_checks("community_partnerships"),
    )


class Exchange(Base):
    """A request for a listing between two members, possibly of two communities.

    Each node that holds a party keeps one row, and both rows carry the same
    `agreement_id` (the requester's node mints it), so the two ledgers can be
    compared line by line. Parties on this node are `*_member_id`; every party
    is also named by handle (`user@host`) and display name, which is all we
    know of a member of another node. The listing is a snapshot (`listing_*`)
    plus `listing_id` when it is one of ours. `offer_activity_id` is the Offer
    that an Accept or Reject must name; `answer_activity_id` what answered it.
    """

    __tablename__ = "exchanges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    agreement_id: Mapped[str] = mapped_column(String(2048), unique=True)
    offer_activity_id: Mapped[str] = mapped_column(String(2048), index=True)
    answer_activity_id: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=ExchangeStatus.REQUESTED)
    listing_id: Mapped[str | None] = mapped_column(
        ForeignKey("listings.id", ondelete="SET NULL"), nullable=True, index=True
    )
    listing_ap_id: Mapped[str] = mapped_column(String(2048))
    listing_title: Mapped[str] = mapped_column(String(200))
    listing_kind: Mapped[str] = mapped_column(String(8))
    provider_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    receiver_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    is_cross_community: Mapped[bool] = mapped_column(Boolean)
    provider_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True, index=True
    )
    receiver_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True, index=True
    )
    provider_handle: Mapped[str | None] = mapped_column(String(320), nullable=True)
    receiver_handle: Mapped[str | None] = mapped_column(String(320), nullable=True)
    provider_name: Mapped[str] = mapped_column(String(200), default="")
    receiver_name: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)

    provider_community: Mapped[Community] = relationship(
        lazy="joined", foreign_keys=[provider_community_id]
    )
    receiver_community: Mapped[Community] = relationship(
        lazy="joined", foreign_keys=[receiver_community_id]
    )

    __table_args__ = (
        Index("ix_exchanges_provider_community_id_status", "provider_community_id", "status"),
        Index("ix_exchanges_receiver_community_id_status", "receiver_community_id", "status"),
        *_checks("exchanges"),
    )

    @property
    def listing_community_id(self) -> int:
        """The side that posted the listing: the provider of an offer, the receiver of a need."""
        return (
            self.provider_community_id
            if self.listing_kind == Kind.OFFER
            else self.receiver_community_id
        )

    @property
    def requester_community_id(self) -> int:
        return (
            self.receiver_community_id
            if self.listing_kind == Kind.OFFER
            else self.provider_community_id
        )


class ExchangeMessage(Base):
    """One message in an exchange's thread, written by a member of either party."""

    __tablename__ = "exchange_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    exchange_id: Mapped[str] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    author_community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    author_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    author_handle: Mapped[str] = mapped_column(String(320))
    author_name: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_exchange_messages_exchange_id_created_at", "exchange_id", "created_at"),
    )


class Notification(Base):
    """Something to see: for a community's stewards (a partnership proposal) when
    `member_id` is None, else for that one member (an exchange answered)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    partnership_id: Mapped[str | None] = mapped_column(
        ForeignKey("community_partnerships.id", ondelete="CASCADE"), nullable=True
    )
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), nullable=True, index=True
    )
    exchange_id: Mapped[str | None] = mapped_column(
        ForeignKey("exchanges.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CommunityCategory(Base):
    """A category a community's stewards added to the defaults its forms offer."""

    __tablename__ = "community_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("community_id", "slug"),)


class Job(Base):
    """Long network work (backfill, reconciliation, actor refresh) done in the background.

    A row survives restarts and is claimed with a lease, like a delivery.
    `dedupe_key` is set while the job is unfinished, so asking twice for the
    same work (two Accepts, a reconciliation round during a backfill) queues
    it once; it is cleared when the job ends, so the same work can be asked
    for again later. `progress` is JSON the job reports as it goes, which the
    steward's pages show.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    dedupe_key: Mapped[str | None] = mapped_column(String(512), nullable=True, unique=True)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), nullable=True, index=True
    )
    subject: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_run_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    progress: Mapped[str] = mapped_column(Text, default="{}")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (Index("ix_jobs_state_next_run_at", "state", "next_run_at"), *_checks("jobs"))


class Invitation(Base):
    """A single-use sign-up link a steward handed out. Only a hash of its secret is kept.

    Its state is read from the times: `revoked_at`, else `used_at`, else
    `expires_at` passed, else unused. Claiming it is one conditional UPDATE
    that sets `used_at` only while all three are unset, so two people racing
    for one link cannot both get in.
    """

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    used_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)

    created_by: Mapped[Member | None] = relationship(lazy="joined", foreign_keys=[created_by_id])
    used_by: Mapped[Member | None] = relationship(lazy="joined", foreign_keys=[used_by_id])

    __table_args__ = (
        Index("ix_invitations_community_id_created_at", "community_id", "created_at"),
        *_checks("invitations"),
    )


class PasswordReset(Base):
    """A one-time link a steward made so a member can set a new password without email.

    Like an invitation: hashed, expiring, claimed by one conditional UPDATE.
    """

    __tablename__ = "password_resets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)

    member: Mapped[Member] = relationship(lazy="joined", foreign_keys=[member_id])


class RetiredKey(Base):
    """A local community's earlier public key, still published until `expires_at`.

    After a key rotation, messages signed with the old key may still be in
    flight (queued by a process that had not seen the new key, or retried by
    a peer's cache); publishing the old key beside the new one for a grace
    period lets them verify. Past `expires_at` it is no longer served.
    """

    __tablename__ = "retired_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[str] = mapped_column(String(2048), unique=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    retired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class ListingImage(Base):
    """A photo on a listing: one of ours (`listing_id`) or one a remote listing carries
    (`remote_listing_id`); exactly one of the two is set.

    `storage_key` names the re-encoded files in the media folder (random, so
    their URLs cannot be guessed); it is None for a remote image not yet
    fetched. `source_url` is where a remote image came from: it is fetched
    by a job and never shown to members, whose browsers only load our copy.
    """

    __tablename__ = "listing_images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    listing_id: Mapped[str | None] = mapped_column(
        ForeignKey("listings.id", ondelete="CASCADE"), nullable=True, index=True
    )
    remote_listing_id: Mapped[str | None] = mapped_column(
        ForeignKey("remote_listings.id", ondelete="CASCADE"), nullable=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    storage_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    media_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def loaded_images(owner: Listing | RemoteListing) -> list[ListingImage]:
    """A listing's images if they are loaded (always, for a listing read from the
    database), else none: never a lazy load, which async sessions cannot do."""
    state: InstanceState[Any] = inspect(owner)
    loaded = state.attrs.images.loaded_value
    return list(loaded) if isinstance(loaded, list) else []
