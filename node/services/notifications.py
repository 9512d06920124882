"""Notifications: a member's own (an exchange requested, answered, written in,
ended) and, for stewards, the community's (partnership proposals and answers).

The community's belong to no one member: any steward reading them reads them
for all, on the dashboard or on the Notifications page beside their own.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Notification
from storage.paging import Position
from storage.repositories.partnerships import NotificationRepository


async def page_for_member(
    session: AsyncSession, member: Member, after: Position | None, limit: int
) -> tuple[list[Notification], Position | None]:
    """Newest first; the position to pass for the next page, or None on the last."""
    rows = await NotificationRepository(session).page_for_member(member.id, after, limit)
    page = list(rows[:limit])
    more = len(rows) > limit and page
    return page, Position(page[-1].created_at, page[-1].id) if more else None


async def unread_for_member(session: AsyncSession, member: Member) -> int:
    return await NotificationRepository(session).unread_for_member(member.id)


async def mark_all_read(session: AsyncSession, member: Member) -> None:
    await NotificationRepository(session).mark_read_for_member(member.id)


async def for_stewards(
    session: AsyncSession, member: Member, limit: int
) -> tuple[list[Notification], int]:
    """The community's newest notifications and its unread count; none for a non-steward."""
    if not member.is_steward:
        return [], 0
    repository = NotificationRepository(session)
    rows = await repository.list_for_community(member.community_id, limit=limit)
    return list(rows), await repository.unread_count(member.community_id)


async def mark_all_read_with_community(session: AsyncSession, member: Member) -> None:
    """The member's own read, and the community's too when a steward asks."""
    repository = NotificationRepository(session)
    await repository.mark_read_for_member(member.id)
    if member.is_steward:
        await repository.mark_read(member.community_id)
