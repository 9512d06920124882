"""Home, sign-in and sign-out."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from aiohttp import hdrs, web

from node.appkeys import CONFIG
from node.services.accounts import MAX_USERNAME_LENGTH, authenticate, issue_token
from node.services.login_throttle import LOGIN_THROTTLE, Attempt
from node.web.guards import FormData, Page, error_page, member_page, public_page, redirect
from node.web.sessions import (
    clear_session_cookie,
    end_session,
    is_same_origin,
    set_session_cookie,
)
from storage.models import Community
from storage.repositories import CommunityRepository

routes = web.RouteTableDef()
HOME = "/listings"
MAX_NEXT_LENGTH = 2048
URL_SAFE = "/?#[]@!$&'()*+,;=:%"  # RFC 3986 reserved characters, and escapes already made
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this node, never anywhere else.

    `next` comes from a link anyone can craft. It is judged as a browser will read
    the Location header: browsers drop tab, CR and LF anywhere in a URL (so a slash,
    a tab and `/evil` make `//evil`, another host) and read a backslash as a
    slash. So any control character refuses it outright, backslashes count as
    slashes, and what is left must be a path (one leading slash, no scheme, no
    host). The answer is percent-encoded ASCII: the header cannot be split or
    read two ways.
    """
    if not target or len(target) > MAX_NEXT_LENGTH or _CONTROL.search(target):
        return HOME
    as_browser = target.replace("\\", "/")
    if not as_browser.startswith("/") or as_browser.startswith("//"):
        return HOME
    parts = urlsplit(as_browser)
    if parts.scheme or parts.netloc:
        return HOME
    return quote(as_browser, safe=URL_SAFE)


@routes.get("/", name="home")
@public_page
async def home(page: Page) -> web.StreamResponse:
    return redirect(page.request, HOME if page.session else "/signin")


@routes.get("/signin", name="signin")
@public_page
async def signin_form(page: Page) -> web.StreamResponse:
    next_path = safe_next(page.request.query.get("next"))
    if page.session is not None:
        return redirect(page.request, next_path)
    return page.render("signin.html", next_path=next_path, username="", error=None)


async def _community(page: Page) -> Community | None:
    return await CommunityRepository(page.db).get_local_by_slug(page.request.app[CONFIG].slug)


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _attempt(page: Page, username: str) -> Attempt:
    request = page.request
    forwarded = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
    slug = request.app[CONFIG].slug
    return request.app[LOGIN_THROTTLE].attempt(slug, username, request.remote, forwarded)


@routes.post("/signin")
@public_page
async def signin(page: Page) -> web.StreamResponse:
    if not is_same_origin(page.request):
        return error_page(
            page, 403, "Sign-in refused", "The sign-in form was sent from another site."
        )
    form = await page.form()
    username, password = _text(form, "username").strip(), _text(form, "password")
    next_path = safe_next(_text(form, "next"))
    shown_name = username[:MAX_USERNAME_LENGTH]
    throttle = page.request.app[LOGIN_THROTTLE]
    attempt = _attempt(page, username)
    wait = throttle.retry_after(attempt)
    if wait is not None:
        error = f"Too many attempts. Please wait {_duration(wait)} and try again."
        response = page.render(
            "signin.html", status=429, next_path=next_path, username=shown_name, error=error
        )
        response.headers["Retry-After"] = str(wait)
        return response
    community = await _community(page)
    member = None
    if community is not None:
        member = await authenticate(page.db, community, username, password)
    if member is None:
        throttle.failed(attempt)
        error = "That username and password do not match. Please try again."
        return page.render(
            "signin.html", status=401, next_path=next_path, username=shown_name, error=error
        )
    throttle.succeeded(attempt)
    if page.session is not None:
        await end_session(page.db, page.session)
    issued = await issue_token(page.db, member, "session")
    await page.db.commit()
    response = redirect(page.request, next_path, ("success", f"Welcome, {member.username}."))
    set_session_cookie(response, page.request, issued)
    return response


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"about {round(seconds / 60)} minutes"


@routes.post("/signout", name="signout")
@member_page
async def signout(page: Page) -> web.StreamResponse:
    assert page.session is not None
    await end_session(page.db, page.session)
    await page.db.commit()
    response = redirect(page.request, "/signin", ("info", "You have signed out."))
    clear_session_cookie(response, page.request)
    return response
