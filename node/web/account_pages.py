"""A member's own page (profile, password, signed-in browsers and tokens), and the two
pages a link opens without an account session: joining by invitation, and
setting a new password with a steward's one-time link.

Refused forms are shown again with what was typed (never the passwords).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.domain.people import BIO_MAX, DISPLAY_NAME_MAX
from node.errors import ApiError
from node.services import invitations, members
from node.services.accounts import (
    AccountError,
    change_password,
    issue_token,
    revoke_token_of,
    token_digest,
)
from node.web.guards import FormData, Page, error_page, member_page, public_page, redirect
from node.web.sessions import clear_session_cookie, end_session, is_same_origin, set_session_cookie
from storage.models import AuthToken, utcnow
from storage.repositories import TokenRepository

routes = web.RouteTableDef()
TOKENS_SHOWN = 50


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


async def _current_token(page: Page) -> AuthToken | None:
    assert page.session is not None
    return await TokenRepository(page.db).get_valid(
        token_digest(page.session.secret), "session", utcnow()
    )


async def _account_page(page: Page, status: int = 200, **context: Any) -> web.Response:
    current = await _current_token(page)
    tokens = await TokenRepository(page.db).list_for_member(
        page.member.id, utcnow(), limit=TOKENS_SHOWN
    )
    defaults: dict[str, Any] = {
        "profile": {"display_name": page.member.display_name, "bio": page.member.bio},
        "profile_error": None,
        "password_error": None,
    }
    return page.render(
        "people/account.html",
        status=status,
        tokens=tokens,
        current_id=current.id if current else None,
        display_name_max=DISPLAY_NAME_MAX,
        bio_max=BIO_MAX,
        **(defaults | context),
    )


@routes.get("/account", name="account")
@member_page
async def account(page: Page) -> web.StreamResponse:
    return await _account_page(page)


@routes.post("/account/profile", name="account_profile")
@member_page
async def save_profile(page: Page) -> web.StreamResponse:
    form = await page.form()
    typed = {"display_name": _text(form, "display_name"), "bio": _text(form, "bio")}
    try:
        await members.update_profile(
            page.db, page.member, display_name=typed["display_name"], bio=typed["bio"]
        )
    except ApiError as exc:
        response = await _account_page(
            page, status=exc.status, profile=typed, profile_error=exc.message
        )
        await page.db.rollback()
        return response
    await page.db.commit()
    return redirect(page.request, "/account", ("success", "Profile saved."))


@routes.post("/account/password", name="account_password")
@member_page
async def set_password(page: Page) -> web.StreamResponse:
    form = await page.form()
    current, new = _text(form, "current"), _text(form, "new")
    if new != _text(form, "confirm"):
        return await _account_page(
            page, status=422, password_error="The two new passwords differ. Type them again."
        )
    try:
        changed = await change_password(
            page.db, page.member, current, new, keep=await _current_token(page)
        )
    except AccountError as exc:
        return await _account_page(page, status=422, password_error=f"Not changed: {exc}.")
    if not changed:
        return await _account_page(
            page, status=403, password_error="Not changed: the current password is wrong."
        )
    await page.db.commit()
    message = "Password changed. Every other browser and token of yours is signed out."
    return redirect(page.request, "/account", ("success", message))


@routes.post("/account/tokens/{id}/revoke", name="account_token_revoke")
@member_page
async def revoke_token(page: Page) -> web.StreamResponse:
    raw = page.request.match_info["id"]
    token_id = int(raw) if raw.isdecimal() and len(raw) <= 18 else -1
    current = await _current_token(page)
    if not await revoke_token_of(page.db, page.member, token_id):
        return error_page(page, 404, "Not found", "You have no token or session with that id.")
    await page.db.commit()
    if current is not None and current.id == token_id:
        response = redirect(page.request, "/signin", ("info", "You have signed out."))
        clear_session_cookie(response, page.request)
        return response
    return redirect(page.request, "/account#sessions", ("success", "Signed out there."))


@routes.post("/account/signout-all", name="account_signout_all")
@member_page
async def sign_out_everywhere(page: Page) -> web.StreamResponse:
    await members.sign_out_everywhere(page.db, page.member, keep_id=None)
    await page.db.commit()
    message = "You have signed out everywhere, this browser included."
    response = redirect(page.request, "/signin", ("info", message))
    clear_session_cookie(response, page.request)
    return response


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."


def _refused_elsewhere(page: Page) -> web.Response:
    return error_page(page, 403, "Not accepted", "The form was sent from another site.")


@routes.get("/join/{token}", name="join")
@public_page
async def join_form(page: Page) -> web.StreamResponse:
    invitation = await invitations.usable_invitation(page.db, page.request.match_info["token"])
    if invitation is None:
        return page.render("people/join.html", status=400, invitation=None, form={}, error=None)
    return page.render("people/join.html", invitation=invitation, form={}, error=None)


@routes.post("/join/{token}")
@public_page
async def join(page: Page) -> web.StreamResponse:
    if not is_same_origin(page.request):
        return _refused_elsewhere(page)
    secret = page.request.match_info["token"]
    form = await page.form()
    typed = {"username": _text(form, "username"), "display_name": _text(form, "display_name")}
    try:
        member = await invitations.register(
            page.db, secret, typed["username"], _text(form, "password"), typed["display_name"]
        )
    except ApiError as exc:
        response = page.render(
            "people/join.html",
            status=exc.status,
            invitation=await invitations.usable_invitation(page.db, secret),
            form=typed,
            error=_sentence(exc.message),
        )
        await page.db.rollback()
        return response
    if page.session is not None:
        await end_session(page.db, page.session)
    issued = await issue_token(page.db, member, "session")
    await page.db.commit()
    welcome = f"Welcome to {member.community.name}, {member.shown_name}."
    response = redirect(page.request, "/listings", ("success", welcome))
    set_session_cookie(response, page.request, issued)
    return response


@routes.get("/reset/{token}", name="reset")
@public_page
async def reset_form(page: Page) -> web.StreamResponse:
    reset = await members.usable_reset(page.db, page.request.match_info["token"])
    return page.render("people/reset.html", status=200 if reset else 400, reset=reset, error=None)


@routes.post("/reset/{token}")
@public_page
async def reset(page: Page) -> web.StreamResponse:
    if not is_same_origin(page.request):
        return _refused_elsewhere(page)
    secret = page.request.match_info["token"]
    form = await page.form()
    password = _text(form, "password")
    usable = await members.usable_reset(page.db, secret)
    if usable is not None and password != _text(form, "confirm"):
        return page.render(
            "people/reset.html",
            status=422,
            reset=usable,
            error="The two passwords differ. Type them again.",
        )
    try:
        member = await members.use_reset(page.db, secret, password)
    except ApiError as exc:
        response = page.render(
            "people/reset.html",
            status=exc.status,
            reset=await members.usable_reset(page.db, secret),
            error=_sentence(exc.message),
        )
        await page.db.rollback()
        return response
    await page.db.commit()
    response = redirect(
        page.request,
        "/signin",
        ("success", f"Password set for {member.username}. Sign in with it now."),
    )
    clear_session_cookie(response, page.request)
    return response
