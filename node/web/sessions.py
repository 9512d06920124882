"""Browser sessions: an HttpOnly cookie holding a session token, plus CSRF checks.

The cookie carries only the token secret; the database keeps its hash, the
member and the session's CSRF token (see `node.services.accounts`). Forms echo
the CSRF token in a hidden field, which a page on another site cannot read.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from node.appkeys import CONFIG
from node.services.accounts import SESSION_LIFETIME, IssuedToken, resolve_token, revoke_token
from storage.models import Member

SESSION_COOKIE = "commons_session"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: who it is and the token its forms must echo."""

    secret: str
    member: Member
    csrf_token: str


def _cookie_is_secure(request: web.Request) -> bool:
    return request.app[CONFIG].base_url.startswith("https://")


async def load_session(db: AsyncSession, request: web.Request) -> WebSession | None:
    secret = request.cookies.get(SESSION_COOKIE, "")
    if not secret or len(secret) > 256:
        return None
    token = await resolve_token(db, secret, "session")
    if token is None or not token.csrf_token:
        return None
    return WebSession(secret=secret, member=token.member, csrf_token=token.csrf_token)


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, issued: IssuedToken
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        issued.secret,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=_cookie_is_secure(request),
    )


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=_cookie_is_secure(request)
    )


async def end_session(db: AsyncSession, session: WebSession) -> None:
    """Revoke server-side, so a copied cookie stops working too."""
    await revoke_token(db, session.secret)


def csrf_matches(session: WebSession, form: Mapping[str, object]) -> bool:
    submitted = form.get(CSRF_FIELD)
    if not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(submitted.encode(), session.csrf_token.encode())


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def is_same_origin(request: web.Request) -> bool:
    """Guard for forms posted before any session exists (sign-in).

    Browsers send `Origin` on every cross-site POST; failing that, `Referer`.
    Either must name this node: its configured base URL, or the host the
    request came to (for a node reached by another name on a LAN).
    """
    claimed = request.headers.get("Origin")
    if claimed is None:
        referer = request.headers.get("Referer")
        claimed = _origin_of(referer) if referer else None
    if not claimed or claimed == "null":
        return False
    allowed = {
        _origin_of(request.app[CONFIG].base_url),
        f"{request.scheme}://{request.host.lower()}",
    }
    return claimed.lower() in allowed
