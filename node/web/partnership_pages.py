"""Proposing, answering and ending partnerships, for stewards.

Each step that changes something comes after a page that says what it will
do: a proposal after a preview of the remote community (so a typo in a
handle is caught before anything is sent), an approval after a summary of
what the partner will see, a rejection or dissolution after a confirmation.
The calls and their order are the API's (`node.api.partnerships`).

Problems reaching or reading the other community are shown on the form,
never as an error page: the steward typed something and should be able to
correct it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from federation.discovery_docs import parse_acct
from node.errors import ApiError, Conflict, NotFound, ValidationFailed
from node.protocol.context import FederationContext
from node.services import partnerships as service
from node.web.guards import FormData, Page, member_page, redirect
from node.web.steward_pages import public_listing_count, require_steward
from storage.models import Community, CommunityPartnership
from storage.repositories.partnerships import PartnershipRepository
from storage.states import PartnershipState

routes = web.RouteTableDef()
ID = "{id:[0-9a-f]{32}}"
MAX_TARGET, MAX_MESSAGE = 2048, 2000
TARGET_HELP = "Enter the community's handle, like riverside@example.org, or its address."


@dataclass
class ProposalForm:
    """What the steward typed, and what went wrong, for re-display."""

    target: str = ""
    message: str = ""
    error: str | None = None
    detail: str | None = None

    @classmethod
    def from_post(cls, form: FormData) -> ProposalForm:
        def text(name: str) -> str:
            value = form.get(name, "")
            return value.replace("\r\n", "\n") if isinstance(value, str) else ""

        return cls(target=text("target").strip(), message=text("message").strip())

    def check(self) -> bool:
        """Catch what needs no network: an empty, overlong or malformed target."""
        if not self.target:
            self.error = TARGET_HELP
        elif len(self.target) > MAX_TARGET:
            self.error = "That is too long for a handle or an address."
        elif len(self.message) > MAX_MESSAGE:
            self.error = f"Please keep the message under {MAX_MESSAGE} characters."
        elif not self.target.startswith(("http://", "https://")):
            try:
                parse_acct(self.target)
            except ValueError:
                self.error = TARGET_HELP
        return self.error is None

    def failed(self, exc: ApiError) -> ProposalForm:
        """Word a service error for the form; the service's own text stays as detail."""
        if isinstance(exc, Conflict):
            self.error = "Your community already has a partnership or a proposal with them."
        elif isinstance(exc, ValidationFailed):
            self.error = "That is not a community you can partner with."
        else:
            self.error = (
                "That community could not be reached. "
                "Check the handle, and that their node is online."
            )
        self.detail = exc.message
        return self


def _render_form(page: Page, form: ProposalForm) -> web.Response:
    status = 200 if form.error is None else 422
    return page.render("partnerships/propose.html", status=status, form=form)


@routes.get("/steward/partnerships/new", name="propose_partnership")
@member_page
async def proposal_form(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    return _render_form(page, ProposalForm(target=page.request.query.get("target", "")[:200]))


async def _open_partnership(page: Page, remote: Community) -> None:
    """The conflict `propose` would raise, found before the steward writes a message."""
    if remote.is_local:
        raise ValidationFailed("a community cannot partner with a community on its own node")
    existing = await PartnershipRepository(page.db).get_open(page.member.community_id, remote.id)
    if existing is not None:
        raise Conflict(f"a partnership with {remote.handle} is already {existing.state}")


@routes.post("/steward/partnerships/preview", name="preview_partnership")
@member_page
async def preview(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    form = ProposalForm.from_post(await page.form())
    if not form.check():
        return _render_form(page, form)
    try:
        remote = await service.resolve_target(
            FederationContext.from_app(page.request.app), form.target
        )
        await _open_partnership(page, remote)
    except ApiError as exc:
        return _render_form(page, form.failed(exc))
    return page.render(
        "partnerships/preview.html",
        form=form,
        remote=remote,
        shared_with_partners=await service.partner_shared_count(page.db, page.member.community),
    )


@routes.post("/steward/partnerships/propose", name="send_proposal")
@member_page
async def send_proposal(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    form = ProposalForm.from_post(await page.form())
    if not form.check():
        return _render_form(page, form)
    ctx = FederationContext.from_app(page.request.app)
    try:
        partnership = await service.propose(ctx, page.db, page.member, form.target, form.message)
    except ApiError as exc:
        response = _render_form(page, form.failed(exc))
        await page.db.rollback()  # after rendering: a rollback expires the member the header shows
        return response
    await page.db.commit()
    name = partnership.remote_community.name
    message = (
        f"Proposal sent to {name}. It shows under “Waiting for them” until a steward there answers."
    )
    return redirect(page.request, "/steward#awaiting-them", ("success", message))


async def _own(page: Page) -> CommunityPartnership:
    require_steward(page.member)
    partnership = await PartnershipRepository(page.db).get(page.request.match_info["id"])
    if partnership is None or partnership.local_community_id != page.member.community_id:
        raise NotFound("There is no such partnership in your community.")
    return partnership


def _require_state(partnership: CommunityPartnership, states: tuple[str, ...], doing: str) -> None:
    if partnership.state not in states:
        name = partnership.remote_community.name
        raise Conflict(
            f"The partnership with {name} is {partnership.state}, so it cannot be {doing}."
        )


@routes.get(f"/steward/partnerships/{ID}/approve", name="approve_partnership")
@member_page
async def approve_confirm(page: Page) -> web.StreamResponse:
    partnership = await _own(page)
    _require_state(partnership, (PartnershipState.PENDING,), "approved")
    return page.render(
        "partnerships/approve.html",
        partnership=partnership,
        shared_with_partners=await service.partner_shared_count(page.db, page.member.community),
        shared_publicly=await public_listing_count(page),
    )


@routes.post(f"/steward/partnerships/{ID}/approve")
@member_page
async def approve(page: Page) -> web.StreamResponse:
    partnership = await service.approve(page.db, page.member, page.request.match_info["id"])
    await page.db.commit()
    name = partnership.remote_community.name
    message = f"You are now partners with {name}. Their shared listings appear under Listings."
    return redirect(page.request, "/steward#active", ("success", message))


@routes.get(f"/steward/partnerships/{ID}/reject", name="reject_partnership")
@member_page
async def reject_confirm(page: Page) -> web.StreamResponse:
    partnership = await _own(page)
    _require_state(partnership, (PartnershipState.PENDING,), PartnershipState.REJECTED)
    return page.render("partnerships/reject.html", partnership=partnership)


@routes.post(f"/steward/partnerships/{ID}/reject")
@member_page
async def reject(page: Page) -> web.StreamResponse:
    partnership = await service.reject(page.db, page.member, page.request.match_info["id"])
    await page.db.commit()
    message = f"You declined the proposal from {partnership.remote_community.name}."
    return redirect(page.request, "/steward#history", ("info", message))


@routes.get(f"/steward/partnerships/{ID}/dissolve", name="dissolve_partnership")
@member_page
async def dissolve_confirm(page: Page) -> web.StreamResponse:
    partnership = await _own(page)
    _require_state(partnership, (PartnershipState.ACTIVE, PartnershipState.PROPOSED), "ended")
    return page.render("partnerships/dissolve.html", partnership=partnership)


@routes.post(f"/steward/partnerships/{ID}/dissolve")
@member_page
async def dissolve(page: Page) -> web.StreamResponse:
    was_active = (await _own(page)).state == PartnershipState.ACTIVE
    partnership = await service.dissolve(page.db, page.member, page.request.match_info["id"])
    await page.db.commit()
    name = partnership.remote_community.name
    if was_active:
        message = f"The partnership with {name} has ended. Nothing is shared with them any more."
    else:
        message = f"Your proposal to {name} is withdrawn."
    return redirect(page.request, "/steward#history", ("info", message))
