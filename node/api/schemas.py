"""Request and response models. They validate input and generate the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    ValidationInfo,
    field_validator,
)

from storage.states import (
    ExchangeStatus,
    Initiator,
    ListingStatus,
    LocationPrecision,
    PartnershipState,
    RelayState,
)
from storage.states import Kind as KindState
from storage.states import Origin as OriginState
from storage.states import Role as RoleState
from storage.states import Visibility as VisibilityState


def _state(states: type[StrEnum]) -> BeforeValidator:
    """Accept a state's spelling in (strictly validated) JSON, with a plain message."""
    allowed = ", ".join(state.value for state in states)

    def coerce(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return states(value)
        except ValueError:
            raise ValueError(f"must be one of {allowed}") from None

    return BeforeValidator(coerce)


Kind = Annotated[KindState, _state(KindState)]
Status = Annotated[ListingStatus, _state(ListingStatus)]
VisibilityField = Annotated[VisibilityState, _state(VisibilityState)]
Origin = Annotated[OriginState, _state(OriginState)]
PrecisionField = Annotated[LocationPrecision, _state(LocationPrecision)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _raw_string_rules(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        # PostgreSQL cannot store NUL in text; no field has a use for it.
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        # The documented maxLength holds for what is sent, before whitespace is stripped.
        assert info.field_name is not None
        for rule in cls.model_fields[info.field_name].metadata:
            limit = getattr(rule, "max_length", None)  # annotated_types.MaxLen
            if limit is not None and len(value) > limit:
                raise ValueError(f"must have at most {limit} characters")
        return value


def _lower(value: Any) -> Any:
    """Lower-case before the length check: some characters grow ("İ" becomes two)."""
    return value.lower() if isinstance(value, str) else value


class Location(StrictModel):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class ListingLocation(Location):
    precision: PrecisionField = Field(
        default=LocationPrecision.EXACT,
        description="`exact`: the point as given, for our own community (other communities "
        "get it rounded to ~1 km); `neighbourhood` (~1 km) or `area` (~10 km): the point is "
        "snapped to that grid before it is stored, for everyone.",
    )


class TokenRequest(StrictModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    community: str | None = Field(
        default=None,
        max_length=64,
        description="Slug of the community, when the node hosts several.",
    )


class TokenResponse(BaseModel):
    token: str
    expires_at: datetime


class TokenOut(BaseModel):
    """A token or browser session of the caller; never its secret."""

    id: int
    kind: Literal["api", "session"] = Field(description="`session`: a signed-in browser.")
    created_at: datetime
    expires_at: datetime | None
    current: bool = Field(description="True for the token this request was made with.")


class TokenList(BaseModel):
    items: list[TokenOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class PageQuery(StrictModel):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=64)


class PasswordChange(StrictModel):
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(
        min_length=1, max_length=1024, description="At least 8 characters, as everywhere."
    )


class ListingCreate(StrictModel):
    kind: Kind
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    category: str = Field(default="", max_length=64)
    visibility: VisibilityField | None = None
    is_public: bool | None = Field(
        default=None, description="Alias: true means visibility `public`."
    )
    location: ListingLocation | None = None

    _lower_category = field_validator("category", mode="before")(_lower)


class ListingUpdate(StrictModel):
    kind: Kind | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    category: str | None = Field(default=None, max_length=64)
    status: Status | None = None
    visibility: VisibilityField | None = None
    is_public: bool | None = None
    location: ListingLocation | None = None

    _lower_category = field_validator("category", mode="before")(_lower)


class ListingQuery(StrictModel):
    q: str | None = Field(default=None, max_length=200, description="Words to look for.")
    kind: Kind | None = None
    category: str | None = Field(default=None, max_length=64)
    status: Status | None = None
    include_public: bool = False
    include_partners: bool = False
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)


class CommunityRef(BaseModel):
    id: str = Field(description="The community's actor URL.")
    handle: str
    name: str


RoleField = Annotated[RoleState, _state(RoleState)]


class AuthorRef(BaseModel):
    name: str = Field(description="The display name the poster chose (else their username).")


class ImageOut(BaseModel):
    id: str
    url: str = Field(description="The photo (up to 1280 px), served by this node.")
    thumbnail_url: str = Field(description="The same photo, up to 320 px.")
    width: int
    height: int
    description: str = Field(description="Alt text: what the photo shows, for who cannot see it.")


class ListingOut(BaseModel):
    id: str
    ap_id: str
    kind: Kind
    title: str
    description: str
    category: str
    status: Status
    visibility: VisibilityField
    is_public: bool
    location: ListingLocation | None = Field(
        description="Another community's listing always has a coarse place "
        "(its precision is given as `neighbourhood` or coarser)."
    )
    community: CommunityRef
    origin: Origin
    author: AuthorRef | None = Field(
        default=None, description="Who posted it, by display name; null when not known."
    )
    created_at: datetime
    updated_at: datetime
    images: list[ImageOut] = Field(
        default_factory=list,
        description="Its photos, served by this node (a remote listing's once fetched).",
    )


class ListingList(BaseModel):
    items: list[ListingOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class PeerRequest(StrictModel):
    url: str = Field(min_length=8, max_length=2048, description="Base URL of another node.")


class PeerLearned(BaseModel):
    url: str
    communities: list[CommunityRef]


class PeerHealth(BaseModel):
    host: str = Field(description="host, or host:port when the port is not the default")
    communities: list[str]
    queued: int
    cancelled: int = Field(
        0, description="deliveries never sent because their audience no longer allowed it"
    )
    failed: int = Field(0, description="deliveries given up on (the peer refused them)")
    failures: int = Field(description="consecutive failed delivery rounds to this host")
    last_success_at: datetime | None
    last_failure_at: datetime | None = None
    last_error: str | None = Field(None, description="what the last failed delivery met")
    next_attempt_at: datetime | None
    state: Literal["ok", "backing_off", "unreachable", "blocked"]
    clock_skew_seconds: float | None = Field(
        None,
        description="the signed Date of the host's last verified request minus our clock "
        "(positive: its clock is ahead); null until one arrived",
    )
    clock_skew_at: datetime | None = Field(None, description="when that request arrived")


class PeerHealthList(BaseModel):
    items: list[PeerHealth]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class BlockRequest(StrictModel):
    domain: str = Field(min_length=1, max_length=255, description="host or host:port")
    reason: str = Field(default="", max_length=500, description="why, for the other stewards")


class BlockOut(BaseModel):
    domain: str
    created_at: datetime
    reason: str = ""


class BlockList(BaseModel):
    items: list[BlockOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class RelayRequest(StrictModel):
    url: str = Field(
        min_length=8, max_length=2048, description="the relay's actor URL or its inbox URL"
    )


class RelayOut(BaseModel):
    id: str
    actor_id: str = Field(description="the relay's actor URL")
    inbox: str = Field(description="where our Follow and our public listings go")
    name: str | None
    state: RelayState = Field(
        description="pending until the relay answers our Follow; active; or rejected"
    )
    created_at: datetime
    updated_at: datetime


class RelayList(BaseModel):
    items: list[RelayOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class ProposeRequest(StrictModel):
    target: str = Field(min_length=3, max_length=2048, description="slug@host or actor URL")
    message: str = Field(default="", max_length=2000)


class PartnershipOut(BaseModel):
    id: str
    state: PartnershipState
    partner: CommunityRef
    initiated_by: Initiator
    message: str = ""
    created_at: datetime
    updated_at: datetime


class PartnershipList(BaseModel):
    items: list[PartnershipOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class NotificationOut(BaseModel):
    id: int
    kind: str
    text: str
    partnership_id: str | None
    exchange_id: str | None = Field(
        default=None, description="The exchange it is about, for a member's notification"
    )
    created_at: datetime
    read: bool


class NotificationList(BaseModel):
    items: list[NotificationOut]
    unread: int
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


# --- discovery and categories ---------------------------------------------------


class BrowseSort(StrEnum):
    NEWEST = "newest"
    DISTANCE = "distance"
    RELEVANCE = "relevance"


class NearQuery(StrictModel):
    """A point and an optional radius; both coordinates or neither."""

    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    radius_km: float | None = Field(default=None, ge=0.1, le=20_100, allow_inf_nan=False)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)


# --- exchanges ----------------------------------------------------------------------


class ExchangeCreate(StrictModel):
    listing: str = Field(min_length=1, max_length=2048, description="Listing id or AP id")
    quantity: int | None = Field(default=None, ge=1, le=1_000_000)
    hours: float | None = Field(default=None, ge=0.01, le=100_000)
    note: str = Field(default="", max_length=2000)


class ExchangeQuery(StrictModel):
    cross_community: bool | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)


class CommunityQuery(NearQuery):
    q: str | None = Field(default=None, max_length=200, description="Words in name or description.")


class BrowseQuery(NearQuery):
    q: str | None = Field(default=None, max_length=200, description="Words to find (prefixes).")
    kind: Kind | None = None
    category: str | None = Field(default=None, max_length=64)
    community: str | None = Field(default=None, max_length=320, description="slug@host")
    origin: Origin | None = None
    sort: BrowseSort = Field(
        default=BrowseSort.NEWEST,
        description="`distance` needs lat and lon; `relevance` needs q. Otherwise newest first.",
    )

    _lower_category = field_validator("category", mode="before")(_lower)


class BrowseListing(ListingOut):
    distance_km: float | None = Field(
        description="From the point asked about (the listing's place, else its community's)."
    )


class BrowseList(BaseModel):
    items: list[BrowseListing]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class CommunityCardOut(BaseModel):
    id: str = Field(description="The community's actor URL.")
    handle: str
    name: str
    description: str
    location: Location | None
    public_offer_count: int
    public_need_count: int
    distance_km: float | None
    partnership: PartnershipState | None = Field(description="Our partnership with it, if any.")
    is_local: bool = Field(description="Hosted on this node.")


class CommunityCardList(BaseModel):
    items: list[CommunityCardOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class CategoryOut(BaseModel):
    slug: str
    label: str


class CategoryList(BaseModel):
    items: list[CategoryOut]


class CategoryCreate(StrictModel):
    slug: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=100)


class CommunitySettings(StrictModel):
    discoverable: bool | None = Field(
        default=None, description="Listed in directories (ours and other nodes')."
    )


class CommunitySettingsOut(BaseModel):
    handle: str
    name: str
    discoverable: bool


class InstancePeers(RootModel[list[str]]):
    """Host names (with the port where it is not the default), as Mastodon lists them."""


class ExchangeListingRef(BaseModel):
    ap_id: str
    title: str
    kind: KindState
    id: str | None = Field(description="The listing's id when it is one of this node's")


class ExchangeParty(BaseModel):
    member: str | None = Field(description="user@host; null until the other node names it")
    name: str
    community_id: str = Field(description="The community's actor URL")
    community_name: str


class ExchangeOut(BaseModel):
    id: str
    agreement_id: str
    status: ExchangeStatus
    listing: ExchangeListingRef
    provider: ExchangeParty
    receiver: ExchangeParty
    provider_community_id: str
    receiver_community_id: str
    is_cross_community: bool
    quantity: int | None
    hours: float | None
    note: str
    role: Literal["provider", "receiver", "steward"]
    other_party_name: str
    actions: list[Literal["accept", "decline", "complete", "cancel"]]
    messages_count: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class ExchangeList(BaseModel):
    items: list[ExchangeOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class MessageCreate(StrictModel):
    text: str = Field(min_length=1, max_length=5000)


class MessageOut(BaseModel):
    id: str
    author: str = Field(description="user@host")
    author_name: str
    is_mine: bool
    text: str
    created_at: datetime


class MessageList(BaseModel):
    items: list[MessageOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


def _zoned_time(value: Any) -> Any:
    """An ISO 8601 time with a zone, as API.md promises; not a number of seconds."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time with a zone")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            "must be an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-01-01T00:00:00Z")
    return moment


ZonedTime = Annotated[datetime, BeforeValidator(_zoned_time)]


class FlowQuery(StrictModel):
    since: ZonedTime | None = Field(default=None, description="ISO 8601 with a zone; inclusive")
    until: ZonedTime | None = Field(default=None, description="ISO 8601 with a zone; exclusive")


class FlowTotals(BaseModel):
    count: int
    hours: float


class FlowPartner(BaseModel):
    community_id: str
    name: str
    outgoing_count: int
    incoming_count: int
    outgoing_hours: float
    incoming_hours: float
    net_hours: float = Field(description="incoming_hours - outgoing_hours")


class FlowsOut(BaseModel):
    internal: FlowTotals
    outgoing: FlowTotals
    incoming: FlowTotals
    leakage_ratio: float
    by_community: list[FlowPartner]


# --- members and accounts -------------------------------------------------------


class InviteCreate(StrictModel):
    role: RoleField = RoleState.MEMBER
    expires_in_hours: int | None = Field(
        default=None, ge=1, le=720, description="1 to 720 hours; 168 (a week) when not given."
    )


class InviteIssued(BaseModel):
    """The only time the secret is shown: only its hash is kept."""

    id: str
    token: str
    url: str = Field(description="The sign-up link to hand to the person invited.")
    role: RoleField
    expires_at: datetime


class InviteOut(BaseModel):
    id: str = Field(description="Pass to DELETE /invites/{id} to revoke.")
    role: RoleField
    state: Literal["unused", "used", "expired", "revoked"]
    created_by: str | None = Field(description="Username of the steward who made it.")
    created_at: datetime
    expires_at: datetime
    used_by: str | None
    used_at: datetime | None
    revoked_at: datetime | None


class InviteList(BaseModel):
    items: list[InviteOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class RegisterRequest(StrictModel):
    invite: str = Field(min_length=1, max_length=256, description="The token from the link.")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    display_name: str = Field(default="", max_length=100)


class MemberOut(BaseModel):
    username: str
    display_name: str
    role: RoleField
    active: bool
    created_at: datetime


class MemberList(BaseModel):
    items: list[MemberOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class MemberQuery(StrictModel):
    q: str | None = Field(default=None, max_length=100, description="Part of a username or name.")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)


class MemberUpdate(StrictModel):
    role: RoleField | None = None
    active: bool | None = None


class ResetIssued(BaseModel):
    """The only time the secret is shown; the link works once, for 24 hours."""

    username: str
    token: str
    url: str
    expires_at: datetime


class ResetRequest(StrictModel):
    token: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


class ProfileOut(BaseModel):
    username: str
    display_name: str
    bio: str
    role: RoleField
    created_at: datetime


class ProfileUpdate(StrictModel):
    display_name: str | None = Field(default=None, max_length=100)
    bio: str | None = Field(default=None, max_length=1000)
