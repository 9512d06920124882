from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community, CommunityPartnership, Notification, utcnow
from storage.paging import Position, page_after
from storage.states import PartnershipState

OPEN_STATES = (PartnershipState.PROPOSED, PartnershipState.PENDING, PartnershipState.ACTIVE)


class PartnershipRepository:
    """Partnerships as seen from our side; at most one open one per pair of communities."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, partnership_id: str) -> CommunityPartnership | None:
        return await self.session.get(CommunityPartnership, partnership_id)

    async def add(self, partnership: CommunityPartnership) -> CommunityPartnership:
        self.session.add(partnership)
        await self.session.flush()
        return partnership

    async def get_by_follow_id(self, follow_activity_id: str) -> CommunityPartnership | None:
        result = await self.session.execute(
            select(CommunityPartnership).where(
                CommunityPartnership.follow_activity_id == follow_activity_id
            )
        )
        return result.scalars().first()

    async def get_open(
        self, local_community_id: int, remote_community_id: int
    ) -> CommunityPartnership | None:
        result = await self.session.execute(
            select(CommunityPartnership).where(
                CommunityPartnership.local_community_id == local_community_id,
                CommunityPartnership.remote_community_id == remote_community_id,
                CommunityPartnership.state.in_(OPEN_STATES),
            )
        )
        return result.scalars().first()

    async def list_for_community(self, local_community_id: int) -> Sequence[CommunityPartnership]:
        result = await self.session.execute(
            select(CommunityPartnership)
            .where(CommunityPartnership.local_community_id == local_community_id)
            .order_by(CommunityPartnership.updated_at.desc())
        )
        return result.scalars().all()

    async def page_for_community(
        self, local_community_id: int, after: Position | None, limit: int
    ) -> Sequence[CommunityPartnership]:
        """Newest first by when they began (which never changes), keyset-paged."""
        query = select(CommunityPartnership).where(
            CommunityPartnership.local_community_id == local_community_id
        )
        page = page_after(
            query, CommunityPartnership.created_at, CommunityPartnership.id, after, limit
        )
        return (await self.session.scalars(page)).all()

    async def get_active_for_community(
        self, local_community_id: int
    ) -> Sequence[CommunityPartnership]:
        result = await self.session.execute(
            select(CommunityPartnership).where(
                CommunityPartnership.local_community_id == local_community_id,
                CommunityPartnership.state == PartnershipState.ACTIVE,
            )
        )
        return result.scalars().all()

    async def active_partner_inboxes(
        self, local_community_id: int
    ) -> Sequence[tuple[str, str | None, str | None]]:
        """(actor id, inbox, shared inbox) of each active partner: only those columns,
        since publishing and the send-time check read them for every listing."""
        result = await self.session.execute(
            select(Community.ap_id, Community.inbox_url, Community.shared_inbox_url)
            .join(CommunityPartnership, CommunityPartnership.remote_community_id == Community.id)
            .where(
                CommunityPartnership.local_community_id == local_community_id,
                CommunityPartnership.state == PartnershipState.ACTIVE,
            )
        )
        return [(ap_id, inbox, shared) for ap_id, inbox, shared in result]

    async def active_between(self, local_community_id: int, remote_actor: str) -> bool:
        for partnership in await self.get_active_for_community(local_community_id):
            if partnership.remote_community.ap_id == remote_actor:
                return True
        return False

    async def is_anyone_partnered_with(self, remote_community_id: int) -> bool:
        """Whether any local community still has an active partnership with this one."""
        found = await self.session.scalar(
            select(CommunityPartnership.id)
            .where(
                CommunityPartnership.remote_community_id == remote_community_id,
                CommunityPartnership.state == PartnershipState.ACTIVE,
            )
            .limit(1)
        )
        return found is not None

    async def partnered_among(self, remote_community_ids: Collection[int]) -> set[int]:
        """`is_anyone_partnered_with` for many communities in one query."""
        if not remote_community_ids:
            return set()
        result = await self.session.scalars(
            select(CommunityPartnership.remote_community_id)
            .where(
                CommunityPartnership.remote_community_id.in_(sorted(remote_community_ids)),
                CommunityPartnership.state == PartnershipState.ACTIVE,
            )
            .distinct()
        )
        return set(result.all())

    async def count_pending_from_host(self, local_community_id: int, host: str) -> int:
        """Proposals from communities on `host` that our stewards have not answered."""
        result = await self.session.execute(
            select(func.count())
            .select_from(CommunityPartnership)
            .join(Community, Community.id == CommunityPartnership.remote_community_id)
            .where(
                CommunityPartnership.local_community_id == local_community_id,
                CommunityPartnership.state == PartnershipState.PENDING,
                Community.host == host,
            )
        )
        return int(result.scalar_one())

    async def all_active(self) -> Sequence[CommunityPartnership]:
        result = await self.session.execute(
            select(CommunityPartnership).where(
                CommunityPartnership.state == PartnershipState.ACTIVE
            )
        )
        return result.scalars().all()


class NotificationRepository:
    """Stewards' notifications (no `member_id`) by community; a member's own by member."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, notification: Notification) -> Notification:
        self.session.add(notification)
        await self.session.flush()
        return notification

    async def list_for_community(
        self, community_id: int, limit: int = 50
    ) -> Sequence[Notification]:
        result = await self.session.execute(
            select(Notification)
            .where(Notification.community_id == community_id, Notification.member_id.is_(None))
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def page_for_community(
        self, community_id: int, after: Position | None, limit: int
    ) -> Sequence[Notification]:
        query = select(Notification).where(
            Notification.community_id == community_id, Notification.member_id.is_(None)
        )
        page = page_after(query, Notification.created_at, Notification.id, after, limit)
        return (await self.session.scalars(page)).all()

    async def unread_count(self, community_id: int) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.community_id == community_id,
                Notification.member_id.is_(None),
                Notification.read_at.is_(None),
            )
        )
        return int(result.scalar_one())

    async def mark_read(self, community_id: int, partnership_id: str | None = None) -> None:
        stmt = update(Notification).where(
            Notification.community_id == community_id,
            Notification.member_id.is_(None),
            Notification.read_at.is_(None),
        )
        if partnership_id is not None:
            stmt = stmt.where(Notification.partnership_id == partnership_id)
        await self.session.execute(stmt.values(read_at=utcnow()))

    async def page_for_member(
        self, member_id: int, after: Position | None, limit: int
    ) -> Sequence[Notification]:
        query = select(Notification).where(Notification.member_id == member_id)
        page = page_after(query, Notification.created_at, Notification.id, after, limit)
        return (await self.session.scalars(page)).all()

    async def unread_for_member(self, member_id: int) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(Notification)
            .where(Notification.member_id == member_id, Notification.read_at.is_(None))
        )
        return int(result.scalar_one())

    async def mark_read_for_member(self, member_id: int, exchange_id: str | None = None) -> None:
        stmt = update(Notification).where(
            Notification.member_id == member_id, Notification.read_at.is_(None)
        )
        if exchange_id is not None:
            stmt = stmt.where(Notification.exchange_id == exchange_id)
        await self.session.execute(stmt.values(read_at=utcnow()))
