"""Photos on the listing pages: the form's photo field, and removing a photo.

The form posts as multipart, so a photo taken with a phone's camera goes up
with the listing in one request, without JavaScript. A refused photo (too
large, not an image) sends the form back with everything typed still in it
and a sentence on the photo field; a browser cannot refill a file input, so
the sentence asks for the photo again.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from node.appkeys import CONFIG
from node.media.imaging import MAX_IMAGE_BYTES
from node.media.store import MediaStore
from node.media.uploads import UploadedFile
from node.services import images as service
from node.web.guards import FormData, Page, member_page, redirect
from node.web.listing_forms import ListingForm
from storage.models import Listing, loaded_images

routes = web.RouteTableDef()
PHOTO, DESCRIPTION = "photo", "photo_description"
MEGABYTES = MAX_IMAGE_BYTES // (1024 * 1024)
TOO_LARGE = f"This photo is larger than {MEGABYTES} MB. Choose a smaller one."


@dataclass
class PhotoField:
    """What the form's photo field brought: a prepared photo, or an error to show."""

    description: str = ""
    photo: service.PreparedPhoto | None = None
    error: str | None = None
    status: int = 200


async def read_photo(page: Page, posted: FormData, listing: Listing | None) -> PhotoField:
    """Re-encode the posted photo, if any; an error goes on the form (`form.errors["photo"]`)."""
    description = posted.get(DESCRIPTION, "")
    field = PhotoField(description=description if isinstance(description, str) else "")
    upload = posted.get(PHOTO)
    if not isinstance(upload, UploadedFile):
        return field
    if upload.too_large:
        field.error, field.status = TOO_LARGE, 413
        return field
    if listing is not None and len(loaded_images(listing)) >= service.MAX_IMAGES_PER_LISTING:
        field.error = (
            f"This listing has {service.MAX_IMAGES_PER_LISTING} photos, as many as it can "
            "have. Remove one first."
        )
        field.status = 409
        return field
    if len(" ".join(field.description.split())) > service.MAX_DESCRIPTION:
        field.error = (
            f"Please keep the photo description under {service.MAX_DESCRIPTION} characters."
        )
        field.status = 422
        return field
    try:
        field.photo = await service.prepare_photo(
            upload.data, MediaStore.of(page.request.app[CONFIG])
        )
    except service.ImageNotAccepted as exc:
        field.error, field.status = _sentence(exc.message), exc.status
    return field


def _sentence(message: str) -> str:
    return f"{message} Please choose another photo."


def refused_status(form: ListingForm, photo: PhotoField) -> int:
    """The form's own errors are 422; a photo refused alone answers for the photo."""
    if photo.error is not None:
        form.errors[PHOTO] = photo.error
    return photo.status if photo.error and len(form.errors) == 1 else 422


def attach(listing: Listing, photo: PhotoField) -> None:
    if photo.photo is not None:
        service.attach(listing, photo.photo, photo.description)


@routes.post(
    "/listings/{id:[0-9a-f]{32}}/photos/{image_id:[0-9a-f]{32}}/remove", name="remove_photo"
)
@member_page
async def remove_photo(page: Page) -> web.StreamResponse:
    match = page.request.match_info
    await service.remove_image(page.db, page.member, match["id"], match["image_id"])
    await page.db.commit()
    return redirect(page.request, f"/listings/{match['id']}", ("success", "The photo is removed."))
