"""Home, sign-in and sign-out."""

from __future__ import annotations

from aiohttp import web

from node.appkeys import CONFIG, LOGIN_THROTTLE
from node.services.accounts import authenticate, issue_token
from node.web.guards import Page, error_page, member_page, public_page, redirect
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


def safe_next(target: str | None) -> str:
    """Only paths on this node: `next=https://evil.example` must not become a redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    return target


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


@routes.post("/signin")
@public_page
async def signin(page: Page) -> web.StreamResponse:
    if not is_same_origin(page.request):
        return error_page(
            page, 403, "Sign-in refused", "The sign-in form was sent from another site."
        )
    form = await page.form()
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")))
    community = await _community(page)
    throttle = page.request.app[LOGIN_THROTTLE]
    keys = throttle.keys(page.request.app[CONFIG].slug, username, page.request.remote)
    wait = throttle.retry_after(keys)
    if wait is not None:
        minutes = max(1, round(wait / 60))
        error = f"Too many attempts. Please wait about {minutes} minute(s) and try again."
        return page.render(
            "signin.html", status=429, next_path=next_path, username=username, error=error
        )
    member = None
    if community is not None and username and password:
        member = await authenticate(page.db, community, username[:64], password[:1024])
    if member is None:
        throttle.failed(keys)
        error = "That username and password do not match. Please try again."
        return page.render(
            "signin.html", status=401, next_path=next_path, username=username, error=error
        )
    throttle.succeeded(keys)
    if page.session is not None:
        await end_session(page.db, page.session)
    issued = await issue_token(page.db, member, "session")
    await page.db.commit()
    response = redirect(page.request, next_path, ("success", f"Welcome, {member.username}."))
    set_session_cookie(response, page.request, issued)
    return response


@routes.post("/signout", name="signout")
@member_page
async def signout(page: Page) -> web.StreamResponse:
    assert page.session is not None
    await end_session(page.db, page.session)
    await page.db.commit()
    response = redirect(page.request, "/signin", ("info", "You have signed out."))
    clear_session_cookie(response, page.request)
    return response
