"""Re-encoding an image so that nothing but its pixels survives.

A photo from a phone carries where it was taken (GPS), the device, times
and sometimes a thumbnail of what it looked like before an edit. None of it
may reach other members or other nodes, so an image is decoded, turned the
right way up (its EXIF orientation), converted to sRGB, and written again
from its pixels alone, in the few sizes pages show. The same function reads
our members' uploads and remote nodes' images, whose bytes are equally
untrusted: a decompression bomb (a small file that decodes to billions of
pixels) is refused by its declared size before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
"""About 8000 by 5000: more than any phone camera writes by default."""
SIZES: dict[str, int] = {"thumb": 320, "display": 1280}
ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
ACCEPTED_MEDIA_TYPES = frozenset(ACCEPTED.values())
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


class ImageRefused(ValueError):
    """The bytes are not an image we keep; `status` is the HTTP answer (413, 415, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Variant:
    name: str
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Reencoded:
    """What is stored: one media type for every size, largest (`display`) first."""

    media_type: str
    variants: tuple[Variant, ...]

    @property
    def display(self) -> Variant:
        return self.variants[0]


def _open(data: bytes) -> Image.Image:
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused(413, f"The image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(422, "The image has far too many pixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(415, "That is not a JPEG, PNG or WebP image.") from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise ImageRefused(
            422, f"The image has too many pixels (at most {MAX_PIXELS // 1_000_000} million)."
        )
    return image


def _decoded(image: Image.Image) -> Image.Image:
    """Pixels only, upright, in sRGB; every `info` entry (EXIF, XMP, ICC, comments) dropped."""
    if image.format == "JPEG" and max(image.size) > 2 * SIZES["display"]:
        image.draft("RGB", (SIZES["display"], SIZES["display"]))  # decode at a reduced scale
    try:
        image.load()
        upright = ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRefused(422, "The image is damaged and could not be read.") from exc
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    icc = upright.info.get("icc_profile")
    mode = "RGBA" if has_alpha else "RGB"
    if icc and upright.mode in ("RGB", "RGBA", "CMYK"):
        upright = _to_srgb(upright, icc, mode)
    clean = upright.convert(mode)
    if clean is upright:
        clean = upright.copy()
    clean.info = {}
    return clean


def _to_srgb(image: Image.Image, icc: bytes, mode: str) -> Image.Image:
    """Colours as the camera meant them (a Display P3 photo, say), before its profile goes."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    return converted if converted is not None else image


def _encode(image: Image.Image, media_type: str) -> bytes:
    out = io.BytesIO()
    if media_type == "image/png":
        image.save(out, format="PNG", optimize=True)
    else:
        image.save(out, format="JPEG", quality=85, optimize=True, progressive=True)
    return out.getvalue()


def reencode(data: bytes) -> Reencoded:
    """The stored sizes of an image, or `ImageRefused` saying why not.

    Photos become JPEG; an image with transparency stays PNG. CPU-bound:
    call it in a thread (`asyncio.to_thread`).
    """
    with _open(data) as image:
        clean = _decoded(image)
    media_type = "image/png" if clean.mode == "RGBA" else "image/jpeg"
    variants = []
    for name, edge in SIZES.items():
        sized = clean.copy()
        sized.thumbnail((edge, edge), Image.Resampling.LANCZOS, reducing_gap=3.0)
        variants.append(Variant(name, _encode(sized, media_type), sized.width, sized.height))
    variants.sort(key=lambda variant: -variant.width * variant.height)
    return Reencoded(media_type, tuple(variants))
