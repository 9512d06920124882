"""The counts of unread notifications shown in the header of every page: a
member's own (about its exchanges) and, for a steward, the community's.

The header is shared by every template, but templates render synchronously
from what their handler passes, and the page handlers belong to many modules.
Rather than have each of them fetch the count, a middleware looks it up once
per page request, only for a signed-in member, and the header reads them
through template globals backed by context variables (the middleware and
the handler run in the same task). The API, federation endpoints and static
files never pay for the queries.
"""

from __future__ import annotations

from contextvars import ContextVar

from aiohttp import web

from node.appkeys import SESSIONS, TEMPLATES
from node.web.guards import Handler
from node.web.sessions import SESSION_COOKIE, load_session
from storage.repositories.partnerships import NotificationRepository

_UNREAD: ContextVar[int] = ContextVar("steward_unread", default=0)
_MINE: ContextVar[int] = ContextVar("member_unread", default=0)
NOT_PAGES = ("/api/", "/static/", "/inbox", "/c/", "/.well-known/", "/nodeinfo/", "/ns")


def steward_unread() -> int:
    """For templates: unread notifications of the signed-in steward's community, else 0."""
    return _UNREAD.get()


def member_unread() -> int:
    """For templates: unread notifications of the signed-in member's own, else 0."""
    return _MINE.get()


async def _unread_for(request: web.Request) -> tuple[int, int]:
    """(the steward's community's, the member's own) unread counts."""
    async with request.app[SESSIONS]() as db:
        session = await load_session(db, request)
        if session is None:
            return 0, 0
        member, notifications = session.member, NotificationRepository(db)
        mine = await notifications.unread_for_member(member.id)
        if not member.is_steward:
            return 0, mine
        return await notifications.unread_count(member.community_id), mine


@web.middleware
async def steward_alerts_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if SESSION_COOKIE not in request.cookies or request.path.startswith(NOT_PAGES):
        return await handler(request)
    community, mine = await _unread_for(request)
    token, own = _UNREAD.set(community), _MINE.set(mine)
    try:
        return await handler(request)
    finally:
        _MINE.reset(own)
        _UNREAD.reset(token)


def setup_nav_alerts(app: web.Application) -> None:
    """Call after the template environment exists and before the app starts."""
    app[TEMPLATES].globals["steward_unread"] = steward_unread
    app[TEMPLATES].globals["member_unread"] = member_unread
    app.middlewares.append(steward_alerts_middleware)
