"""One-shot messages ("Offer posted") carried across a redirect in a signed cookie.

A cookie rather than the session row, so that messages also work around
sign-in and sign-out; signed with the node's secret key, so another site
cannot make the node display text of its choosing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import orjson
from aiohttp import web

from node.appkeys import CONFIG

FLASH_COOKIE = "commons_flash"
FLASH_MAX_AGE = 120
LEVELS = ("success", "info", "error")


@dataclass(frozen=True)
class Flash:
    level: str
    text: str


def _signature(secret_key: str, payload: str) -> str:
    digest = hmac.new(secret_key.encode(), b"flash:" + payload.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def set_flash(response: web.StreamResponse, request: web.Request, level: str, text: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"flash level must be one of {LEVELS}")
    payload = base64.urlsafe_b64encode(orjson.dumps([level, text[:300]])).decode().rstrip("=")
    value = f"{payload}.{_signature(request.app[CONFIG].secret_key, payload)}"
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=FLASH_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.app[CONFIG].base_url.startswith("https://"),
    )


def read_flash(request: web.Request) -> Flash | None:
    """The pending message, or None when absent, tampered with or malformed."""
    payload, _, signature = request.cookies.get(FLASH_COOKIE, "").partition(".")
    if not payload or not signature:
        return None
    expected = _signature(request.app[CONFIG].secret_key, payload)
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        level, text = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    if level not in LEVELS or not isinstance(text, str):
        return None
    return Flash(level=level, text=text)


def clear_flash(response: web.StreamResponse) -> None:
    response.del_cookie(FLASH_COOKIE, path="/")
