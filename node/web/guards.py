"""Wrappers every page handler goes through: a database session, the signed-in
member, CSRF on POST, and domain errors shown as pages rather than JSON.

A handler that returns normally must commit what it wants kept; when it raises,
nothing it did is committed. That is what makes a rejected form change nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from node.appkeys import SESSIONS
from node.errors import ApiError, BadRequest
from node.media.uploads import read_multipart
from node.web.flash import set_flash
from node.web.sessions import WebSession, csrf_matches, load_session
from node.web.templating import render
from storage.models import Member

FormData = MultiDictProxy[Any]
PHOTO_LIMIT = web.RequestKey("photo_limit", int)
PARSED_FORM = web.RequestKey("parsed_form", MultiDictProxy)

_ERROR_TITLES = {
    400: "Not understood",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    422: "Not valid",
}


@dataclass
class Page:
    """One page request: the HTTP request, a database session and who is signed in."""

    request: web.Request
    db: AsyncSession
    session: WebSession | None

    @property
    def member(self) -> Member:
        assert self.session is not None, "handler is not wrapped in member_page"
        return self.session.member

    async def form(self) -> FormData:
        """The posted form; a body that cannot be decoded is the sender's mistake (400).

        On a page that takes photos (`accepts_photos`) a multipart form is read
        by our own reader, whose limit is the photo's rather than the app's.
        """
        if PARSED_FORM in self.request:
            parsed: FormData = self.request[PARSED_FORM]
            return parsed
        limit = self.request.get(PHOTO_LIMIT)
        if limit and self.request.content_type == "multipart/form-data":
            fields = await read_multipart(
                self.request, max_file_bytes=limit, max_files=1, keep_form=True
            )
            form: FormData = MultiDictProxy(fields)
            self.request[PARSED_FORM] = form
            return form
        try:
            return await self.request.post()
        except (ValueError, LookupError) as exc:  # bad UTF-8, an unknown charset
            raise BadRequest("The form could not be read. Reload the page and try again.") from exc

    def render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        return render(self.request, name, self.session, status, **context)


PageHandler = Callable[[Page], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def redirect(
    request: web.Request, location: str, flash: tuple[str, str] | None = None
) -> web.Response:
    """303 See Other: after a POST the browser follows with a GET, so reload is harmless."""
    response = web.Response(status=303, headers={"Location": location})
    if flash is not None:
        set_flash(response, request, *flash)
    return response


def error_page(page: Page, status: int, title: str, message: str) -> web.Response:
    return page.render("error.html", status=status, title=title, message=message)


def _csrf_failure(page: Page) -> web.Response:
    return error_page(
        page,
        403,
        "That form could not be accepted",
        "It was sent from an old or unknown page, so nothing was changed. "
        "Go back, reload the page and try again.",
    )


async def _run(handler: PageHandler, page: Page) -> web.StreamResponse:
    try:
        return await handler(page)
    except ApiError as exc:
        # Render before rolling back: a rollback expires the member the page header shows.
        response = error_page(page, exc.status, _ERROR_TITLES.get(exc.status, "Error"), exc.message)
        await page.db.rollback()
        return response


def accepts_photos(max_bytes: int) -> Callable[[Handler], Handler]:
    """Outside `member_page`: this page's multipart form may carry a photo of `max_bytes`."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            request[PHOTO_LIMIT] = max_bytes
            return await handler(request)

        return wrapped

    return decorate


def public_page(handler: PageHandler) -> Handler:
    """A page anyone may open; `page.session` is set when someone is signed in."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        async with request.app[SESSIONS]() as db:
            page = Page(request, db, await load_session(db, request))
            return await _run(handler, page)

    return wrapped


def member_page(handler: PageHandler) -> Handler:
    """A page for signed-in members only; every POST must carry the session's CSRF token."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        async with request.app[SESSIONS]() as db:
            page = Page(request, db, await load_session(db, request))
            if page.session is None:
                return _to_sign_in(request)
            if request.method == "POST" and not csrf_matches(page.session, await page.form()):
                return _csrf_failure(page)
            return await _run(handler, page)

    return wrapped


def _to_sign_in(request: web.Request) -> web.Response:
    if request.method != "GET":
        return redirect(request, "/signin", ("info", "Please sign in again to continue."))
    return redirect(request, "/signin?" + urlencode({"next": request.path_qs}))
