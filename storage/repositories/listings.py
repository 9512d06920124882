from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Listing
from storage.paging import Position, page_after
from storage.repositories.images import ImageRepository
from storage.search import terms, text_condition
from storage.states import ListingStatus, Visibility


@dataclass(frozen=True)
class ListingFilters:
    kind: str | None = None
    category: str | None = None
    status: str | None = None
    limit: int = 200
    offset: int = 0
    q: str | None = None
    """Words every listing shown must contain (title, description or category)."""
    author_id: int | None = None


def words_match(
    session: AsyncSession, model: Any, source: str, q: str | None
) -> ColumnElement[bool]:
    """The text-search condition for `q` on a listing table; true when `q` has no words.

    `source` is what the search index calls the table ("local" or "remote").
    """
    words = terms(q or "")
    if not words:
        return true()
    return text_condition(session, SimpleNamespace(model=model, search_key=source), words)


def _filtered(query: Select[Listing], filters: ListingFilters) -> Select[Listing]:
    if filters.kind:
        query = query.where(Listing.kind == filters.kind)
    if filters.category:
        query = query.where(Listing.category == filters.category)
    if filters.status:
        query = query.where(Listing.status == filters.status)
    if filters.author_id is not None:
        query = query.where(Listing.author_id == filters.author_id)
    return query


def _apply_filters(query: Select[Listing], filters: ListingFilters) -> Select[Listing]:
    query = _filtered(query, filters)
    return (
        query.order_by(Listing.created_at.desc(), Listing.id)
        .limit(filters.limit)
        .offset(filters.offset)
    )


class ListingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, listing_id: str) -> Listing | None:
        return await self.session.get(Listing, listing_id)

    async def get_by_ap_id(self, ap_id: str) -> Listing | None:
        result = await self.session.execute(select(Listing).where(Listing.ap_id == ap_id))
        return result.scalar_one_or_none()

    async def add(self, listing: Listing) -> Listing:
        self.session.add(listing)
        await self.session.flush()
        return listing

    async def active_by_author(self, author_id: int) -> list[Listing]:
        result = await self.session.execute(
            select(Listing)
            .where(Listing.author_id == author_id, Listing.status == ListingStatus.ACTIVE)
            .order_by(Listing.created_at, Listing.id)
        )
        return list(result.unique().scalars().all())

    async def delete(self, listing: Listing) -> None:
        await ImageRepository(self.session).forget_listing(listing.id)
        await self.session.delete(listing)
        await self.session.flush()

    async def list_for_community(
        self, community_id: int, filters: ListingFilters = ListingFilters()
    ) -> Sequence[Listing]:
        query = select(Listing).where(Listing.community_id == community_id)
        result = await self.session.execute(_apply_filters(query, filters))
        return result.scalars().all()

    async def get_public_listings(
        self, community_id: int | None = None, filters: ListingFilters = ListingFilters()
    ) -> Sequence[Listing]:
        """Public listings (served on the `(is_public, status)` index), newest first."""
        query = select(Listing).where(Listing.is_public.is_(True))
        if community_id is not None:
            query = query.where(Listing.community_id == community_id)
        result = await self.session.execute(_apply_filters(query, filters))
        return result.scalars().all()

    async def page_partners_only(
        self, community_id: int, after: Position | None, limit: int
    ) -> Sequence[Listing]:
        """A community's listings shared with partners only (not public), a page at
        a time, newest first by (created_at, id), keyset-paged: up to `limit + 1`
        rows after `after`."""
        query = select(Listing).where(
            Listing.community_id == community_id, Listing.visibility == Visibility.PARTNERS
        )
        page = page_after(query, Listing.created_at, Listing.id, after, limit)
        return (await self.session.scalars(page)).all()

    async def count_partners_only(self, community_id: int, status: str | None = None) -> int:
        query = (
            select(func.count())
            .select_from(Listing)
            .where(Listing.community_id == community_id, Listing.visibility == Visibility.PARTNERS)
        )
        if status is not None:
            query = query.where(Listing.status == status)
        return int((await self.session.execute(query)).scalar_one())

    async def count_public(self, community_id: int, kind: str) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(Listing)
            .where(
                Listing.is_public.is_(True),
                Listing.status == ListingStatus.ACTIVE,
                Listing.community_id == community_id,
                Listing.kind == kind,
            )
        )
        return int(result.scalar_one())
