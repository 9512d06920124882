"""Photos on listings: adding and removing them, and who may load which file.

An upload is re-encoded before anything is stored (`node.media.imaging`);
refused bytes leave no row and no file. Adding or removing a photo changes
the listing, so it is federated as an Update to whoever may see the listing,
under the same rule as any other change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from node.domain.listings import ImageView, ListingDraft, image_view
from node.domain.visibility import Viewer, may_view
from node.errors import ApiError, Conflict, Forbidden, NotFound, ValidationFailed
from node.media.imaging import ImageRefused, Reencoded, reencode
from node.media.store import MediaStore
from node.protocol.publishing import publish_listing_change
from node.services.listings import create_listing, get_visible_listing, may_edit
from storage.models import (
    Community,
    Listing,
    ListingImage,
    Member,
    loaded_images,
    new_id,
    utcnow,
)
from storage.repositories.images import ImageRepository
from storage.repositories.remote_listings import RemoteListingRepository
from storage.states import Visibility

MAX_IMAGES_PER_LISTING = 4
MAX_DESCRIPTION = 500


class ImageNotAccepted(ApiError):
    """An upload refused for what it is (too large, not an image, too many pixels)."""

    def __init__(self, refused: ImageRefused) -> None:
        super().__init__(refused.message)
        self.status = refused.status
        self.code = {413: "payload_too_large", 415: "unsupported_media_type"}.get(
            refused.status, "validation_error"
        )


async def _editable(session: AsyncSession, member: Member, listing_id: str) -> Listing:
    listing = await get_visible_listing(session, member, listing_id)
    if not may_edit(member, listing):
        raise Forbidden("only the author or a steward may change this listing's photos")
    return listing


def check_description(description: str) -> str:
    text = " ".join(description.split())
    if len(text) > MAX_DESCRIPTION:
        raise ValidationFailed(f"keep the description under {MAX_DESCRIPTION} characters")
    return text


async def check_room(session: AsyncSession, member: Member, listing_id: str) -> Listing:
    """The listing, if `member` may add a photo to it now (cheap: before any decoding)."""
    listing = await _editable(session, member, listing_id)
    if len(loaded_images(listing)) >= MAX_IMAGES_PER_LISTING:
        raise Conflict(
            f"a listing has at most {MAX_IMAGES_PER_LISTING} photos; remove one to add another"
        )
    return listing


@dataclass(frozen=True)
class PreparedPhoto:
    """An upload already re-encoded and written, waiting for its listing."""

    encoded: Reencoded
    key: str


async def prepare_photo(data: bytes, store: MediaStore) -> PreparedPhoto:
    """Re-encode and write the files; `ImageNotAccepted` says why an upload is refused."""
    try:
        encoded = await asyncio.to_thread(reencode, data)
    except ImageRefused as exc:
        raise ImageNotAccepted(exc) from exc
    return PreparedPhoto(encoded, await asyncio.to_thread(store.write, encoded))


def attach(listing: Listing, photo: PreparedPhoto, description: str) -> ListingImage:
    """Add the row for a prepared photo (caller's transaction; the caller publishes)."""
    if len(loaded_images(listing)) >= MAX_IMAGES_PER_LISTING:
        raise Conflict(
            f"a listing has at most {MAX_IMAGES_PER_LISTING} photos; remove one to add another"
        )
    image = ListingImage(
        id=new_id(),
        position=max((i.position for i in loaded_images(listing)), default=-1) + 1,
        description=check_description(description),
        storage_key=photo.key,
        media_type=photo.encoded.media_type,
        width=photo.encoded.display.width,
        height=photo.encoded.display.height,
    )
    listing.images.append(image)
    return image


async def create_listing_with_photo(
    session: AsyncSession,
    member: Member,
    draft: ListingDraft,
    photo: PreparedPhoto,
    description: str,
) -> Listing:
    """A new listing with its first photo, federated as one Create that carries it."""
    listing = await create_listing(session, member, draft, publish=False)
    attach(listing, photo, description)
    await session.flush()
    await publish_listing_change(session, listing, None, "create")
    return listing


async def add_image(
    session: AsyncSession,
    member: Member,
    listing_id: str,
    data: bytes,
    description: str,
    store: MediaStore,
) -> ImageView:
    listing = await check_room(session, member, listing_id)
    description = check_description(description)
    image = attach(listing, await prepare_photo(data, store), description)
    listing.updated_at = utcnow()
    await session.flush()
    await publish_listing_change(session, listing, listing.visibility, "update")
    return image_view(image)


async def remove_image(
    session: AsyncSession, member: Member, listing_id: str, image_id: str
) -> Listing:
    listing = await _editable(session, member, listing_id)
    image = next((i for i in loaded_images(listing) if i.id == image_id), None)
    if image is None:
        raise NotFound("no such image on this listing")
    await ImageRepository(session).remove(image)
    listing.images.remove(image)
    listing.updated_at = utcnow()
    await session.flush()
    await publish_listing_change(session, listing, listing.visibility, "update")
    return listing


ViewerOf = Callable[[Community], Awaitable[Viewer]]


async def image_for_viewer(
    session: AsyncSession, storage_key: str, member: Member | None, viewer_of: ViewerOf
) -> ListingImage | None:
    """The image under `storage_key` if whoever asks may see its listing, else None.

    One of ours follows the visibility rule: its community's members, active
    partners (a signed fetch, read by `viewer_of` only when needed), everyone
    for a public listing. A cached copy of a remote image is for the members
    of a community here that may see the mirrored listing, and for nobody
    else: this node is not a proxy for other nodes' files.
    """
    image = await ImageRepository(session).by_key(storage_key)
    if image is None:
        return None
    if image.listing_id is not None:
        listing = await session.get(Listing, image.listing_id)
        if listing is None:
            return None
        if member is not None and member.community_id == listing.community_id:
            return image
        if listing.visibility == Visibility.PUBLIC:
            return image
        if listing.visibility != Visibility.PARTNERS:
            return None
        return image if may_view(listing, await viewer_of(listing.community)) else None
    if member is None or image.remote_listing_id is None:
        return None
    cached = await RemoteListingRepository(session).get_visible_to(
        member.community_id, image.remote_listing_id
    )
    return image if cached is not None else None
