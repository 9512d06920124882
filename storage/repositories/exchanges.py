"""Exchanges, their message threads, and the flow sums stewards read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Exchange, ExchangeMessage
from storage.paging import Position, page_after
from storage.states import ExchangeStatus


def _cross(query: Select[Exchange], cross_community: bool | None) -> Select[Exchange]:
    if cross_community is None:
        return query
    return query.where(Exchange.is_cross_community.is_(cross_community))


class ExchangeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, exchange: Exchange) -> Exchange:
        self.session.add(exchange)
        await self.session.flush()
        return exchange

    async def get(self, exchange_id: str) -> Exchange | None:
        return await self.session.get(Exchange, exchange_id)

    async def get_for_update(self, exchange_id: str) -> Exchange | None:
        """The row locked against a concurrent transition (PostgreSQL; SQLite has one writer)."""
        result = await self.session.execute(
            select(Exchange).where(Exchange.id == exchange_id).with_for_update(of=Exchange)
        )
        return result.unique().scalar_one_or_none()

    async def get_by_agreement_id(self, agreement_id: str) -> Exchange | None:
        result = await self.session.execute(
            select(Exchange).where(Exchange.agreement_id == agreement_id)
        )
        return result.unique().scalar_one_or_none()

    async def get_by_offer_id(self, offer_activity_id: str) -> Exchange | None:
        result = await self.session.execute(
            select(Exchange).where(Exchange.offer_activity_id == offer_activity_id)
        )
        return result.unique().scalar_one_or_none()

    async def page_for_member(
        self,
        member_id: int,
        cross_community: bool | None,
        after: Position | None,
        limit: int,
    ) -> Sequence[Exchange]:
        """Exchanges the member is a party to, newest first."""
        query = select(Exchange).where(
            or_(Exchange.provider_member_id == member_id, Exchange.receiver_member_id == member_id)
        )
        query = page_after(
            _cross(query, cross_community), Exchange.created_at, Exchange.id, after, limit
        )
        return (await self.session.scalars(query)).unique().all()

    async def page_for_community(
        self,
        community_id: int,
        cross_community: bool | None,
        after: Position | None,
        limit: int,
        status: str | None = None,
    ) -> Sequence[Exchange]:
        """Exchanges a community is a party to (either side), newest first."""
        query = select(Exchange).where(
            or_(
                Exchange.provider_community_id == community_id,
                Exchange.receiver_community_id == community_id,
            )
        )
        if status is not None:
            query = query.where(Exchange.status == status)
        query = page_after(
            _cross(query, cross_community), Exchange.created_at, Exchange.id, after, limit
        )
        return (await self.session.scalars(query)).unique().all()

    async def completed_touching(
        self, community_id: int, since: datetime | None, until: datetime | None
    ) -> Sequence[Exchange]:
        """Completed exchanges in which the community provided or received, by completion time."""
        conditions: list[ColumnElement[bool]] = [
            Exchange.status == ExchangeStatus.COMPLETED,
            or_(
                Exchange.provider_community_id == community_id,
                Exchange.receiver_community_id == community_id,
            ),
        ]
        if since is not None:
            conditions.append(Exchange.completed_at >= since)
        if until is not None:
            conditions.append(Exchange.completed_at < until)
        result = await self.session.scalars(select(Exchange).where(*conditions))
        return result.unique().all()

    # --- messages ---------------------------------------------------------------

    async def add_message(self, message: ExchangeMessage) -> ExchangeMessage:
        self.session.add(message)
        await self.session.flush()
        return message

    async def get_message_by_ap_id(self, ap_id: str) -> ExchangeMessage | None:
        result = await self.session.execute(
            select(ExchangeMessage).where(ExchangeMessage.ap_id == ap_id)
        )
        return result.scalar_one_or_none()

    async def page_messages(
        self, exchange_id: str, after: Position | None, limit: int
    ) -> Sequence[ExchangeMessage]:
        """A thread oldest first, as it is read."""
        query = select(ExchangeMessage).where(ExchangeMessage.exchange_id == exchange_id)
        query = page_after(
            query, ExchangeMessage.created_at, ExchangeMessage.id, after, limit, descending=False
        )
        return (await self.session.scalars(query)).all()

    async def message_counts(self, exchange_ids: Sequence[str]) -> dict[str, int]:
        if not exchange_ids:
            return {}
        result = await self.session.execute(
            select(ExchangeMessage.exchange_id, func.count())
            .where(ExchangeMessage.exchange_id.in_(exchange_ids))
            .group_by(ExchangeMessage.exchange_id)
        )
        return {exchange_id: int(count) for exchange_id, count in result.all()}
