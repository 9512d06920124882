"""A member's own notifications: an exchange requested, answered, written in, ended.

Stewards' notifications (about partnerships) are the community's, not one
member's, and stay on the steward dashboard; these are the member's alone.
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
