"""Images for tests: a phone photo with GPS in its EXIF, and things that are not photos."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112
MAKE = 0x010F
SECRET_MAKE = "SecretPhoneMaker"


def phone_photo(width: int = 1600, height: int = 1200, orientation: int = 6) -> bytes:
    """A JPEG as a phone writes it: EXIF with GPS, maker, orientation, and a comment."""
    image = Image.new("RGB", (width, height), (30, 120, 200))
    for x in range(0, width, 50):  # some detail, so the JPEG is not trivially small
        image.paste((240, 200, 40), (x, 0, x + 20, height))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = SECRET_MAKE
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"taken at home", quality=90)
    return out.getvalue()


def png_bytes(width: int = 40, height: int = 30, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (10, 200, 10, 128) if mode == "RGBA" else 0).save(out, "PNG")
    return out.getvalue()


def decompression_bomb() -> bytes:
    """A few kilobytes of PNG that would decode to 400 million pixels."""
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG", optimize=True)
    return out.getvalue()


def has_metadata(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        keys = set(image.info) - {"jfif", "jfif_version", "jfif_unit", "jfif_density"}
        keys -= {"progressive", "progression", "dpi"}
        return bool(dict(exif)) or bool(keys) or b"GPS" in data or SECRET_MAKE.encode() in data


def scenic_photo(width: int = 1600, height: int = 1200) -> bytes:
    """Something that looks like a photo in a screenshot: sky, a hill, a red box; with GPS."""
    sky = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image = Image.merge(
        "RGB",
        (sky.getchannel(0).point(lambda v: 90 + v // 3),) * 2
        + (sky.getchannel(0).point(lambda v: 255 - v // 4),),
    )
    hill = Image.new("RGB", (width, height // 2), (70, 140, 60))
    image.paste(hill, (0, height // 2))
    image.paste((200, 40, 40), (width // 3, height // 3, width // 3 + width // 4, height * 2 // 3))
    exif = Image.Exif()
    exif[MAKE] = SECRET_MAKE
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=88)
    return out.getvalue()
