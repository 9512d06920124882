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

from storage.states import Initiator, ListingStatus, PartnershipState
from storage.states import Kind as KindState
from storage.states import Origin as OriginState
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
    location: Location | None = None

    _lower_category = field_validator("category", mode="before")(_lower)


class ListingUpdate(StrictModel):
    kind: Kind | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    category: str | None = Field(default=None, max_length=64)
    status: Status | None = None
    visibility: VisibilityField | None = None
    is_public: bool | None = None
    location: Location | None = None

    _lower_category = field_validator("category", mode="before")(_lower)


class ListingQuery(StrictModel):
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
    location: Location | None
    community: CommunityRef
    origin: Origin
    created_at: datetime
    updated_at: datetime


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
    failures: int
    last_success_at: datetime | None
    next_attempt_at: datetime | None
    state: Literal["ok", "backing_off", "unreachable", "blocked"]


class PeerHealthList(BaseModel):
    items: list[PeerHealth]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class BlockRequest(StrictModel):
    domain: str = Field(min_length=1, max_length=255, description="host or host:port")


class BlockOut(BaseModel):
    domain: str
    created_at: datetime


class BlockList(BaseModel):
    items: list[BlockOut]
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
    radius_km: float | None = Field(default=None, gt=0, le=20_100, allow_inf_nan=False)
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
