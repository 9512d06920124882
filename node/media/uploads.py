"""Reading a multipart form with files, under limits of our own.

The app's `client_max_size` (1 MB) bounds every body aiohttp reads for us;
a photo form needs more, on its routes only. This reader streams the parts
and stops at the first byte past a limit, so a 20 MB upload costs 10 MB of
reading, not 20 MB of memory, and answers 413 with a sentence a person can
act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, web
from multidict import MultiDict

from node.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_TEXT_BYTES = 64 * 1024
MAX_PARTS = 64
KEEP_FORM_FACTOR = 5
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class UploadedFile:
    """A file from the form; `too_large` when it passed the limit (then `data` is empty)."""

    filename: str
    content_type: str
    data: bytes
    too_large: bool = False


FormValue = str | UploadedFile


def _megabytes(size: int) -> str:
    return f"{size // (1024 * 1024)} MB"


async def _read_part(part: BodyPartReader, limit: int, too_large: str) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(too_large)
    return bytes(data)


async def _drain_or_read(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes, or None (having read past the rest) when it exceeds `limit`."""
    data = bytearray()
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size <= limit:
            data += chunk
        else:
            data.clear()
    return bytes(data) if size <= limit else None


async def read_multipart(
    request: web.Request, *, max_file_bytes: int, max_files: int, keep_form: bool = False
) -> MultiDict[FormValue]:
    """The form's fields (text as str, files as `UploadedFile`); an empty file input
    (nothing chosen) is left out.

    A file over the limit is a 413 at once; with `keep_form` (a page, whose
    form should come back with what the person typed) it is read past and
    marked `too_large` instead, for bodies up to `KEEP_FORM_FACTOR` times the
    limit.
    """
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send the form as multipart/form-data")
    declared = request.content_length
    allowed = max_files * max_file_bytes * (KEEP_FORM_FACTOR if keep_form else 1)
    if declared is not None and declared > allowed + MAX_TEXT_BYTES * 4:
        raise PayloadTooLarge(f"The photo is larger than {_megabytes(max_file_bytes)}.")
    try:
        reader = await request.multipart()
        return await _fields(reader, max_file_bytes, max_files, keep_form)
    except (ValueError, AssertionError, UnicodeDecodeError) as exc:
        raise BadRequest("The form could not be read. Reload the page and try again.") from exc


async def _fields(
    reader: MultipartReader, max_file_bytes: int, max_files: int, keep_form: bool
) -> MultiDict[FormValue]:
    fields: MultiDict[FormValue] = MultiDict()
    files = 0
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            return fields
        if not isinstance(part, BodyPartReader) or not part.name:
            raise BadRequest("The form has a part this page does not read.")
        if part.filename is None:
            text = await _read_part(part, MAX_TEXT_BYTES, "A field of the form is too long.")
            fields.add(part.name, text.decode("utf-8").replace("\r\n", "\n"))
            continue
        content_type = part.headers.get("Content-Type", "application/octet-stream")
        if keep_form:
            kept = await _drain_or_read(part, max_file_bytes)
            data = kept or b""
        else:
            data = await _read_part(
                part, max_file_bytes, f"The photo is larger than {_megabytes(max_file_bytes)}."
            )
            kept = data
        if not data and kept is not None and not part.filename:
            continue
        files += 1
        if files > max_files:
            raise PayloadTooLarge(f"Send at most {max_files} photos at once.")
        fields.add(part.name, UploadedFile(part.filename, content_type, data, kept is None))
    raise BadRequest("The form has too many fields.")
