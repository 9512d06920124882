"""The stewards' pages for people: the member list and the invitations.

A link with a secret in it (an invitation, a password link) is shown once, on
the page the POST answers with, never carried in a cookie or a URL the
browser keeps in its history.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from node.api.paging import decode_cursor, encode_cursor
from node.domain.people import INVITE_DEFAULT_HOURS, invitation_state
from node.errors import ApiError, BadRequest
from node.services import invitations, members
from node.web.guards import FormData, Page, member_page, redirect
from node.web.steward_pages import require_steward
from storage.models import Member, utcnow
from storage.paging import Position
from storage.states import Role

routes = web.RouteTableDef()
PAGE_SIZE = 25
EXPIRY_CHOICES = ((24, "1 day"), (72, "3 days"), (INVITE_DEFAULT_HOURS, "1 week"), (720, "30 days"))


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _cursor(page: Page) -> Position | None:
    """A bad cursor in a link is a 400 page, as in the API."""
    return decode_cursor(page.request.query.get("cursor") or None)


async def _members_page(
    page: Page, *, status: int = 200, error: str | None = None, reset: object = None
) -> web.Response:
    search = page.request.query.get("q", "").strip()[:100]
    after = _cursor(page)
    rows = await members.list_members(page.db, page.member, search, after, PAGE_SIZE)
    shown = rows[:PAGE_SIZE]
    next_url = None
    if len(rows) > PAGE_SIZE:
        last = shown[-1]
        query = {"q": search} if search else {}
        query["cursor"] = encode_cursor(Position(last.username, last.id))
        next_url = "/steward/members?" + urlencode(query)
    return page.render(
        "people/members.html",
        status=status,
        people=shown,
        search=search,
        next_url=next_url,
        paged=after is not None,
        error=error,
        reset=reset,
    )


@routes.get("/steward/members", name="members")
@member_page
async def members_page(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    return await _members_page(page)


def _back_to_members(page: Page, form: FormData) -> str:
    """Back to the list as it was: the same search (the form carries it)."""
    search = _text(form, "q").strip()[:100]
    return "/steward/members" + (f"?{urlencode({'q': search})}" if search else "")


@routes.post("/steward/members/{username}", name="member_change")
@member_page
async def change_member(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    form = await page.form()
    role, active = _text(form, "role") or None, _text(form, "active") or None
    if role is not None and role not in (Role.MEMBER, Role.STEWARD):
        raise BadRequest("Choose member or steward.")
    if active not in (None, "yes", "no"):
        raise BadRequest("That change is not one this page offers.")
    username = page.request.match_info["username"]
    try:
        changed = await members.update_member(
            page.db,
            page.member,
            username,
            role=role,
            active=None if active is None else active == "yes",
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
        return await _members_page(page, status=409, error=exc.message)  # nothing was changed
    message = _change_message(changed, role, active)
    await page.db.commit()
    if changed.id == page.member.id and not changed.is_active:
        return redirect(page.request, "/signin", ("info", message))
    return redirect(page.request, _back_to_members(page, form), ("success", message))


def _change_message(member: Member, role: str | None, active: str | None) -> str:
    name = member.username
    if active == "no":
        return f"{name} is deactivated: signed out everywhere, their listings closed."
    if active == "yes":
        return f"{name} can sign in again. Their closed listings stay closed."
    return f"{name} is now a {role}."


@routes.post("/steward/members/{username}/reset", name="member_reset")
@member_page
async def make_reset_link(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    try:
        issued = await members.issue_reset(
            page.db, page.member, page.request.match_info["username"]
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
        return await _members_page(page, status=409, error=exc.message)  # nothing was changed
    await page.db.commit()
    return await _members_page(page, reset=issued)


async def _invitations_page(
    page: Page, *, status: int = 200, issued: object = None, form: dict[str, str] | None = None
) -> web.Response:
    after = _cursor(page)
    rows = await invitations.list_invitations(page.db, page.member, after, PAGE_SIZE)
    shown = rows[:PAGE_SIZE]
    next_url = None
    if len(rows) > PAGE_SIZE:
        last = shown[-1]
        next_url = "/steward/invitations?" + urlencode(
            {"cursor": encode_cursor(Position(last.created_at, last.id))}
        )
    now = utcnow()
    return page.render(
        "people/invitations.html",
        status=status,
        items=[(item, invitation_state(item, now).value) for item in shown],
        issued=issued,
        next_url=next_url,
        paged=after is not None,
        expiry_choices=EXPIRY_CHOICES,
        form=form or {"role": "member", "hours": str(INVITE_DEFAULT_HOURS)},
    )


@routes.get("/steward/invitations", name="invitations")
@member_page
async def invitations_page(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    return await _invitations_page(page)


@routes.post("/steward/invitations", name="invitation_create")
@member_page
async def create_invitation(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    form = await page.form()
    role, hours = _text(form, "role"), _text(form, "hours")
    if not hours.isdecimal() or len(hours) > 4:
        raise BadRequest("Choose how long the invitation lasts.")
    issued = await invitations.create_invitation(page.db, page.member, role, int(hours))
    await page.db.commit()
    return await _invitations_page(page, issued=issued, form={"role": role, "hours": hours})


@routes.post("/steward/invitations/{id}/revoke", name="invitation_revoke")
@member_page
async def revoke_invitation(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    await invitations.revoke_invitation(page.db, page.member, page.request.match_info["id"])
    await page.db.commit()
    return redirect(page.request, "/steward/invitations", ("success", "Invitation revoked."))
