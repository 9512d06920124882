"""Typed states for the layers above storage (see `storage.states` for why they live there)."""

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
    Origin,
    PartnershipState,
    Role,
    Visibility,
)

__all__ = [
    "Audience",
    "DeliveryState",
    "ExchangeStatus",
    "FollowDirection",
    "FollowState",
    "InboxState",
    "Initiator",
    "JobState",
    "Kind",
    "ListingStatus",
    "LocationPrecision",
    "Origin",
    "PartnershipState",
    "Role",
    "Visibility",
]
