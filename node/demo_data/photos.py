"""Simple generated pictures for the demo's listings, one look per category.

A flat PNG drawn in pure Python (no imaging library): a background in the
category's colour, a ground band, and a few shapes placed by a seed, so the
same listing always gets the same picture. `node.demo.attach_generated_photos`
is where they would be stored with a listing once the node has listing images.
"""

from __future__ import annotations

import random
import struct
import zlib
from typing import Final

Colour = tuple[int, int, int]

WIDTH: Final = 320
HEIGHT: Final = 240
PALETTE: Final[dict[str, tuple[Colour, Colour]]] = {
    # category: (background, shapes)
    "tools": ((222, 231, 240), (52, 84, 122)),
    "kitchen": ((250, 236, 222), (196, 98, 45)),
    "garden": ((226, 240, 220), (58, 122, 62)),
    "bikes": ((236, 236, 250), (70, 70, 150)),
    "electronics": ((228, 232, 236), (40, 48, 56)),
    "books": ((246, 240, 226), (128, 72, 40)),
    "clothing": ((246, 230, 238), (160, 60, 110)),
    "childcare": ((252, 244, 214), (214, 150, 20)),
    "transport": ((230, 238, 246), (30, 110, 170)),
    "skills": ((238, 232, 246), (110, 70, 160)),
    "food": ((248, 238, 220), (170, 110, 20)),
    "housing": ((238, 234, 228), (120, 90, 70)),
    "repairs": ((236, 240, 232), (90, 110, 60)),
}
OTHER: Final[tuple[Colour, Colour]] = ((236, 236, 236), (90, 90, 90))


def _mix(a: Colour, b: Colour, share: float) -> Colour:
    r, g, bl = (round(x + (y - x) * share) for x, y in zip(a, b, strict=True))
    return (r, g, bl)


def _rows(category: str, seed: str) -> list[bytearray]:
    background, ink = PALETTE.get(category, OTHER)
    rng = random.Random(f"{category}:{seed}")
    rows = [bytearray(bytes(background) * WIDTH) for _ in range(HEIGHT)]
    ground = _mix(background, ink, 0.25)
    for y in range(HEIGHT * 3 // 4, HEIGHT):
        rows[y][:] = bytes(ground) * WIDTH
    for _ in range(rng.randint(2, 4)):  # circles, drawn one row span at a time
        colour = _mix(background, ink, rng.uniform(0.45, 1.0))
        cx, cy = rng.randint(40, WIDTH - 40), rng.randint(50, HEIGHT - 70)
        radius = rng.randint(18, 52)
        for y in range(max(0, cy - radius), min(HEIGHT, cy + radius)):
            half = int((radius**2 - (y - cy) ** 2) ** 0.5)
            left, right = max(0, cx - half), min(WIDTH, cx + half)
            rows[y][left * 3 : right * 3] = bytes(colour) * (right - left)
    for _ in range(rng.randint(1, 3)):  # blocks standing on the ground
        colour = _mix(background, ink, rng.uniform(0.6, 1.0))
        width, height = rng.randint(24, 90), rng.randint(30, 110)
        left = rng.randint(0, WIDTH - width)
        for y in range(HEIGHT * 3 // 4 - height, HEIGHT * 3 // 4 + 6):
            rows[y][left * 3 : (left + width) * 3] = bytes(colour) * width
    return rows


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def draw_photo(category: str, seed: str) -> bytes:
    """A WIDTH x HEIGHT RGB PNG for a listing in `category`; the same seed, the same picture."""
    raw = b"".join(b"\x00" + bytes(row) for row in _rows(category, seed))
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw, 9)),
            _chunk(b"IEND", b""),
        )
    )
