"""ListingRepository queries, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import create_engine, create_session_factory
from storage.models import Community, Listing
from storage.paging import Position
from storage.repositories import CommunityRepository, ListingFilters, ListingRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _community(session: AsyncSession, slug: str) -> Community:
    return await CommunityRepository(session).add(
        Community(
            ap_id=f"http://{slug}.test/c/{slug}",
            is_local=True,
            slug=slug,
            host=f"{slug}.test",
            name=slug.title(),
            base_url=f"http://{slug}.test",
        )
    )


def _listing(community: Community, n: int, visibility: str, **kw: object) -> Listing:
    return Listing(
        id=f"{community.slug}{n}",
        ap_id=f"{community.ap_id}/listings/{n}",
        community_id=community.id,
        kind=kw.pop("kind", "offer"),
        title=f"item {n}",
        visibility=visibility,
        is_public=visibility == "public",
        created_at=T0 + timedelta(minutes=n),
        updated_at=T0 + timedelta(minutes=n),
        **kw,
    )


async def test_public_listings_exclude_community_and_partner_ones(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            a, b = await _community(session, "a"), await _community(session, "b")
            repo = ListingRepository(session)
            for n, vis in enumerate(["public", "community", "partners", "public"]):
                await repo.add(_listing(a, n, vis))
            await repo.add(_listing(b, 9, "public", status="closed", kind="need"))
            await session.commit()

            everything = await repo.get_public_listings()
            assert [x.id for x in everything] == ["b9", "a3", "a0"]
            assert [x.id for x in await repo.get_public_listings(a.id)] == ["a3", "a0"]
            active = await repo.get_public_listings(filters=ListingFilters(status="active"))
            assert [x.id for x in active] == ["a3", "a0"]
            assert await repo.count_public(a.id, "offer") == 2
            assert await repo.count_public(b.id, "need") == 0
            mine = await repo.list_for_community(a.id, ListingFilters(limit=2))
            assert [x.id for x in mine] == ["a3", "a2"]
            fetched = await repo.get("a0")
            assert fetched is not None
            assert fetched.created_at == T0
            assert fetched.created_at.tzinfo is not None
    finally:
        await engine.dispose()


async def test_partner_only_listings_page_newest_first_each_once_while_listings_arrive(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            a, b = await _community(session, "a"), await _community(session, "b")
            repo = ListingRepository(session)
            for n in range(7):
                await repo.add(_listing(a, n, "partners", status="closed" if n == 2 else "active"))
            await repo.add(_listing(a, 20, "public"))
            await repo.add(_listing(a, 21, "community"))
            await repo.add(_listing(b, 22, "partners"))
            # Two listings at the same moment still page by id.
            tied = _listing(a, 30, "partners")
            tied.created_at = T0 + timedelta(minutes=3)
            await repo.add(tied)
            await session.commit()
            assert await repo.count_partners_only(a.id) == 8

            seen: list[str] = []
            after: Position | None = None
            while True:
                rows = await repo.page_partners_only(a.id, after, 3)
                page = list(rows[:3])
                seen += [row.id for row in page]
                if len(rows) <= 3:
                    break
                after = Position(page[-1].created_at, page[-1].id)
                if len(seen) == 3:  # a listing added mid-walk never shifts one onto a read page
                    await repo.add(_listing(a, 40, "partners"))
                    await session.commit()
            assert seen == ["a6", "a5", "a4", "a30", "a3", "a2", "a1", "a0"]
    finally:
        await engine.dispose()
