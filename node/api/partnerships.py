"""Partnership endpoints (stewards only, except the list) and steward notifications."""

from __future__ import annotations

from node.api.converters import partnership_out
from node.api.paging import PageQuery, decode_cursor, page_of
from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import (
    NotificationList,
    NotificationOut,
    PartnershipList,
    PartnershipOut,
    ProposeRequest,
)
from node.protocol.context import FederationContext
from node.services import partnerships as service
from storage.paging import Position
from storage.repositories.partnerships import NotificationRepository, PartnershipRepository


@api.route(
    "POST",
    "/partnerships/propose",
    summary="Propose a partnership to another community",
    tag="partnerships",
    auth="steward",
    status=201,
    body=ProposeRequest,
    response=PartnershipOut,
    errors=(400, 401, 403, 409, 422),
)
async def propose_partnership(call: ApiCall[ProposeRequest, None]) -> PartnershipOut:
    ctx = FederationContext.from_app(call.request.app)
    partnership = await service.propose(
        ctx, call.session, call.me, call.body.target, call.body.message
    )
    return partnership_out(partnership)


@api.route(
    "GET",
    "/partnerships",
    summary="The community's partnerships, newest first",
    tag="partnerships",
    query=PageQuery,
    response=PartnershipList,
    errors=(400, 401, 422),
)
async def list_partnerships(call: ApiCall[None, PageQuery]) -> PartnershipList:
    rows = await PartnershipRepository(call.session).page_for_community(
        call.me.community_id, decode_cursor(call.query.cursor), call.query.limit
    )
    items, after = page_of(rows, call.query.limit, lambda p: Position(p.created_at, p.id))
    return PartnershipList(items=[partnership_out(p) for p in items], next=after)


@api.route(
    "POST",
    "/partnerships/{id}/approve",
    summary="Approve a pending proposal",
    tag="partnerships",
    auth="steward",
    response=PartnershipOut,
    errors=(401, 403, 404, 409),
)
async def approve_partnership(call: ApiCall[None, None]) -> PartnershipOut:
    partnership = await service.approve(call.session, call.me, call.request.match_info["id"])
    await call.session.commit()
    return partnership_out(partnership)


@api.route(
    "POST",
    "/partnerships/{id}/reject",
    summary="Reject a pending proposal",
    tag="partnerships",
    auth="steward",
    response=PartnershipOut,
    errors=(401, 403, 404, 409),
)
async def reject_partnership(call: ApiCall[None, None]) -> PartnershipOut:
    partnership = await service.reject(call.session, call.me, call.request.match_info["id"])
    return partnership_out(partnership)


@api.route(
    "POST",
    "/partnerships/{id}/dissolve",
    summary="End an active partnership (or withdraw our unanswered proposal)",
    tag="partnerships",
    auth="steward",
    response=PartnershipOut,
    errors=(401, 403, 404, 409),
)
async def dissolve_partnership(call: ApiCall[None, None]) -> PartnershipOut:
    partnership = await service.dissolve(call.session, call.me, call.request.match_info["id"])
    return partnership_out(partnership)


@api.route(
    "GET",
    "/notifications",
    summary="Steward notifications, newest first",
    tag="partnerships",
    auth="steward",
    query=PageQuery,
    response=NotificationList,
    errors=(400, 401, 403, 422),
)
async def list_notifications(call: ApiCall[None, PageQuery]) -> NotificationList:
    repo = NotificationRepository(call.session)
    community_id = call.me.community_id
    rows = await repo.page_for_community(
        community_id, decode_cursor(call.query.cursor), call.query.limit
    )
    page, after = page_of(rows, call.query.limit, lambda n: Position(n.created_at, n.id))
    items = [
        NotificationOut(
            id=n.id,
            kind=n.kind,
            text=n.text,
            partnership_id=n.partnership_id,
            created_at=n.created_at,
            read=n.read_at is not None,
        )
        for n in page
    ]
    unread = await repo.unread_count(community_id)
    return NotificationList(items=items, unread=unread, next=after)
