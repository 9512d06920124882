"""The visibility rule. Every path that shows a listing to anyone asks this module.

| visibility | who sees it                                   |
|------------|-----------------------------------------------|
| community  | members of the home community                 |
| partners   | + communities in an active partnership        |
| public     | + anyone                                      |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from storage.models import Listing

Visibility = Literal["community", "partners", "public"]
VISIBILITIES: tuple[Visibility, ...] = ("community", "partners", "public")


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a local member's community, a remote community actor, or nobody."""

    local_community_id: int | None = None
    remote_actor: str | None = None
    is_active_partner: bool = False
    partner_actors: tuple[str, ...] = ()

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls()


def resolve_visibility(visibility: str | None, is_public: bool | None) -> Visibility:
    """Combine the two request fields; `is_public` is an alias kept for older clients."""
    if visibility is None:
        return "public" if is_public else "community"
    for known in VISIBILITIES:
        if visibility == known:
            if is_public is not None and is_public != (known == "public"):
                raise ValueError("is_public contradicts visibility")
            return known
    raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}")


def may_view(listing: Listing, viewer: Viewer) -> bool:
    if viewer.local_community_id is not None and viewer.local_community_id == listing.community_id:
        return True
    if listing.visibility == "public":
        return True
    return listing.visibility == "partners" and viewer.is_active_partner


def leaves_node(listing: Listing) -> bool:
    """Whether the listing may be serialised for anyone outside its community at all."""
    return listing.visibility in ("partners", "public")
