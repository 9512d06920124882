"""The steward dashboard: the community's partnerships and what needs an answer.

Partnerships are grouped by what a steward can do about them, not by their
stored state names: proposals waiting for us come first because nothing
happens until a steward answers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web

from node.errors import Forbidden
from node.services import partnerships as service
from node.services.jobs import community_jobs
from node.web.guards import Page, member_page, redirect
from storage.models import CommunityPartnership, Member
from storage.repositories import ListingRepository
from storage.repositories.partnerships import NotificationRepository
from storage.states import PartnershipState

routes = web.RouteTableDef()


def require_steward(member: Member) -> None:
    if not member.is_steward:
        raise Forbidden(
            "Only stewards can see this page. Ask a steward of your community if you need "
            "something changed."
        )


@dataclass
class PartnershipGroups:
    """The dashboard's sections, each newest first (the repository's order)."""

    active: list[CommunityPartnership] = field(default_factory=list)
    awaiting_us: list[CommunityPartnership] = field(default_factory=list)
    awaiting_them: list[CommunityPartnership] = field(default_factory=list)
    history: list[CommunityPartnership] = field(default_factory=list)

    @classmethod
    def of(cls, partnerships: Sequence[CommunityPartnership]) -> PartnershipGroups:
        groups = cls()
        sections = {
            PartnershipState.ACTIVE: groups.active,
            PartnershipState.PENDING: groups.awaiting_us,
            PartnershipState.PROPOSED: groups.awaiting_them,
        }
        for partnership in partnerships:
            sections.get(PartnershipState(partnership.state), groups.history).append(partnership)
        return groups


async def public_listing_count(page: Page) -> int:
    repo = ListingRepository(page.db)
    community_id = page.member.community_id
    return await repo.count_public(community_id, "offer") + await repo.count_public(
        community_id, "need"
    )


@routes.get("/steward", name="steward")
@member_page
async def dashboard(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    community = page.member.community
    notifications = NotificationRepository(page.db)
    return page.render(
        "steward/dashboard.html",
        groups=PartnershipGroups.of(await service.list_partnerships(page.db, page.member)),
        notifications=await notifications.list_for_community(community.id, limit=20),
        unread=await notifications.unread_count(community.id),
        shared_with_partners=await service.partner_shared_count(page.db, community),
        shared_publicly=await public_listing_count(page),
        jobs=await community_jobs(page.db, community),
        community=community,
    )


@routes.post("/steward/notifications/read", name="read_notifications")
@member_page
async def mark_notifications_read(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    await NotificationRepository(page.db).mark_read(page.member.community_id)
    await page.db.commit()
    return redirect(page.request, "/steward#notifications", ("info", "Notifications marked read."))
