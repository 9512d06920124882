"""Rows <-> wire types, in one place (the Lemmy `into_json`/`from_json` pair).

Every listing that leaves the node is built by `listing_to_note()`, which asks
the visibility rule for the audience first: a community-only listing has no
audience and cannot be serialised at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation.builders import build_note
from federation.html_text import html_to_plain_text
from federation.vocab import PUBLIC, Attachment, Note, Place
from node.domain import urls
from node.domain.places import SHARED_RADIUS_M, precision_of, shared_place
from node.domain.places import Place as DomainPlace
from node.domain.visibility import leaves_node
from storage.models import Community, Listing, loaded_images
from storage.states import Kind, ListingStatus, Visibility, values

KINDS = frozenset(values(Kind))
STATUSES = frozenset(values(ListingStatus))
TITLE_MAX = 200
DESCRIPTION_MAX = 5000
CATEGORY_MAX = 64
AUTHOR_MAX = 100


class NotShareable(Exception):
    """Raised when asked to serialise a listing that must not leave its community."""


def audience(
    listing: Listing, community: Community, partners: list[str]
) -> tuple[list[str], list[str]]:
    """(to, cc) for a listing: public to everyone plus followers; partners by name only."""
    if listing.visibility == Visibility.PUBLIC:
        return [PUBLIC], [community.followers_url or urls.followers(community.ap_id)]
    if listing.visibility == Visibility.PARTNERS:
        return sorted(partners), []
    raise NotShareable(f"listing {listing.id} is community-only")


def listing_to_note(
    listing: Listing, community: Community, partners: list[str] | None = None
) -> dict[str, Any]:
    if not leaves_node(listing):
        raise NotShareable(f"listing {listing.id} is community-only")
    to, cc = audience(listing, community, partners or [])
    return build_note(
        note_id=listing.ap_id,
        attributed_to=community.ap_id,
        title=listing.title,
        description=listing.description,
        to=to,
        cc=cc,
        published=listing.created_at,
        updated=listing.updated_at if listing.updated_at != listing.created_at else None,
        kind=listing.kind,
        category=listing.category or None,
        status=listing.status,
        visibility=listing.visibility,
        location=_federated_place(listing),
        url=listing.ap_id,
        author_name=_federated_author(listing),
        attachments=_attachments(listing, community),
    )


def _attachments(listing: Listing, community: Community) -> list[Attachment]:
    """The listing's photos at their public address on this node (display size)."""
    return [
        Attachment(
            url=urls.media(community.base_url, image.storage_key, "display"),
            media_type=image.media_type,
            name=image.description or None,
            width=image.width,
            height=image.height,
        )
        for image in loaded_images(listing)
        if image.storage_key
    ]


def _federated_place(listing: Listing) -> Place | None:
    """Only the coarse place leaves the node, however precisely the member gave it."""
    if listing.latitude is None or listing.longitude is None:
        return None
    precision = precision_of(listing.location_precision)
    shared = shared_place(DomainPlace(listing.latitude, listing.longitude), precision)
    return Place(shared.lat, shared.lon, radius=SHARED_RADIUS_M[precision])


def _federated_author(listing: Listing) -> str | None:
    """The display name the member chose; a username alone never leaves the node
    (`attributedTo` stays the community, which speaks for its members)."""
    author = listing.author
    return author.display_name if author is not None and author.display_name else None


@dataclass(frozen=True)
class MirroredFields:
    """What we keep of a remote Note, already cleaned and bounded."""

    kind: str
    title: str
    description: str
    category: str
    status: str
    latitude: float | None
    longitude: float | None
    url: str | None
    published_at: datetime | None
    remote_updated_at: datetime | None
    author_name: str | None


def _title_and_description(note: Note) -> tuple[str, str]:
    """Our notes carry the title in `name`; a plain fediverse post has only content."""
    text = html_to_plain_text(note.content)
    if note.name:
        title = note.name.strip()
        lines = text.splitlines()
        if lines and lines[0].strip() == title:
            text = "\n".join(lines[1:]).strip()
    else:
        first, _, rest = text.partition("\n")
        title, text = first.strip(), rest.strip()
    return (title or "(untitled)")[:TITLE_MAX], text[:DESCRIPTION_MAX]


def note_to_mirrored_fields(note: Note) -> MirroredFields:
    title, description = _title_and_description(note)
    kind = note.kind if note.kind in KINDS else Kind.OFFER
    status = note.status if note.status in STATUSES else ListingStatus.ACTIVE
    return MirroredFields(
        kind=kind,
        title=title,
        description=description,
        category=(note.category or "").strip().lower()[:CATEGORY_MAX],
        status=status,
        latitude=round(note.location.latitude, 2) if note.location else None,
        longitude=round(note.location.longitude, 2) if note.location else None,
        url=note.url,
        published_at=note.published,
        remote_updated_at=note.updated or note.published,
        author_name=_author_name(note.author_name),
    )


def _author_name(name: str | None) -> str | None:
    """One printable line, bounded as our own display names are."""
    if name is None:
        return None
    words = ("".join(c for c in word if c.isprintable()) for word in name.split())
    cleaned = " ".join(word for word in words if word)
    return cleaned[:AUTHOR_MAX] or None
