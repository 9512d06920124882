"""The count of unread steward notifications, shown in the header of every page.

The header is shared by every template, but templates render synchronously
from what their handler passes, and the page handlers belong to many modules.
Rather than have each of them fetch the count, a middleware looks it up once
per page request, only for a signed-in steward, and the header reads it
through a template global backed by a context variable (the middleware and
the handler run in the same task). The API, federation endpoints and static
files never pay for the query; a plain member pays one token lookup.
"""

from __future__ import annotations

from contextvars import ContextVar

from aiohttp import web

from node.appkeys import SESSIONS, TEMPLATES
from node.web.guards import Handler
from node.web.sessions import SESSION_COOKIE, load_session
from storage.repositories.partnerships import NotificationRepository

_UNREAD: ContextVar[int] = ContextVar("steward_unread", default=0)
NOT_PAGES = ("/api/", "/static/", "/inbox", "/c/", "/.well-known/", "/nodeinfo/", "/ns")


def steward_unread() -> int:
    """For templates: unread notifications of the signed-in steward's community, else 0."""
    return _UNREAD.get()


async def _unread_for(request: web.Request) -> int:
    async with request.app[SESSIONS]() as db:
        session = await load_session(db, request)
        if session is None or not session.member.is_steward:
            return 0
        return await NotificationRepository(db).unread_count(session.member.community_id)


@web.middleware
async def steward_alerts_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if SESSION_COOKIE not in request.cookies or request.path.startswith(NOT_PAGES):
        return await handler(request)
    token = _UNREAD.set(await _unread_for(request))
    try:
        return await handler(request)
    finally:
        _UNREAD.reset(token)


def setup_nav_alerts(app: web.Application) -> None:
    """Call after the template environment exists and before the app starts."""
    app[TEMPLATES].globals["steward_unread"] = steward_unread
    app.middlewares.append(steward_alerts_middleware)
