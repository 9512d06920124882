"""Listing photos: upload (multipart) and removal."""

from __future__ import annotations

from node.api.converters import image_out
from node.api.router import api
from node.api.routing import ApiCall, base_url
from node.api.schemas import ImageOut
from node.appkeys import CONFIG
from node.errors import ValidationFailed
from node.media.imaging import MAX_IMAGE_BYTES
from node.media.store import MediaStore
from node.media.uploads import UploadedFile, read_multipart
from node.services import images as service


@api.route(
    "POST",
    "/listings/{id}/images",
    summary="Add a photo to a listing (author or steward): multipart field `file`, "
    "JPEG, PNG or WebP, at most 10 MB, and optional `description` (alt text). "
    "Stored re-encoded, without EXIF, GPS or any other metadata.",
    tag="listings",
    status=201,
    response=ImageOut,
    errors=(401, 403, 404, 409, 413, 415, 422),
)
async def upload_image(call: ApiCall[None, None]) -> ImageOut:
    listing_id = call.request.match_info["id"]
    await service.check_room(call.session, call.me, listing_id)
    form = await read_multipart(call.request, max_file_bytes=MAX_IMAGE_BYTES, max_files=1)
    upload = form.get("file")
    if not isinstance(upload, UploadedFile):
        raise ValidationFailed("send the photo in a multipart field named `file`")
    description = form.get("description", "")
    view = await service.add_image(
        call.session,
        call.me,
        listing_id,
        upload.data,
        description if isinstance(description, str) else "",
        MediaStore.of(call.request.app[CONFIG]),
    )
    out = image_out(view, base_url(call))
    assert out is not None, "an uploaded image is stored at once"
    return out


@api.route(
    "DELETE",
    "/listings/{id}/images/{image_id}",
    summary="Remove a photo from a listing (author or steward); its files are deleted",
    tag="listings",
    status=204,
    errors=(401, 403, 404),
)
async def delete_image(call: ApiCall[None, None]) -> None:
    match = call.request.match_info
    await service.remove_image(call.session, call.me, match["id"], match["image_id"])
