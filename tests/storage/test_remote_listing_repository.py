"""The mirror of listings other communities share with us, on SQLite and PostgreSQL.

What members see of other communities comes from `list_visible`: only the
audiences asked for, nothing deleted, nothing from a blocked domain, and an
older copy of a listing arriving late must never replace a newer one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory
from storage.models import Community, RemoteListing
from storage.repositories import BlockRepository, CommunityRepository, ListingFilters
from storage.repositories.remote_listings import RemoteListingRepository

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def origin(sessions: Sessions, host: str, slug: str = "shared") -> Community:
    async with sessions() as session, session.begin():
        return await CommunityRepository(session).add(
            Community(
                ap_id=f"https://{host}/c/{slug}",
                is_local=False,
                slug=slug,
                host=host,
                name=f"{slug} at {host}",
                base_url=f"https://{host}",
            )
        )


@pytest.fixture
async def garden(sessions: Sessions) -> Community:
    return await origin(sessions, "garden.example", "garden")


@pytest.fixture
async def bikes(sessions: Sessions) -> Community:
    return await origin(sessions, "bikes.example", "bikes")


def fields(title: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": "offer",
        "title": title,
        "description": "",
        "category": "",
        "status": "active",
        "latitude": None,
        "longitude": None,
        "url": None,
        "published_at": T0,
        "remote_updated_at": None,
    }
    values.update(changes)
    return values


async def mirror(
    sessions: Sessions, source: Community, number: int, audience: str = "public", **changes: Any
) -> str:
    ap_id = f"{source.ap_id}/listings/{number}"
    title = changes.pop("title", f"{source.slug} {number}")
    async with sessions() as session, session.begin():
        await RemoteListingRepository(session).upsert(
            ap_id, source, audience, fields(title, **changes)
        )
    return ap_id


async def cached(sessions: Sessions, ap_id: str) -> RemoteListing | None:
    async with sessions() as session:
        return await RemoteListingRepository(session).get_by_ap_id(ap_id)


async def visible(
    sessions: Sessions, audiences: list[str], filters: ListingFilters | None = None
) -> list[str]:
    async with sessions() as session:
        found = await RemoteListingRepository(session).list_visible(
            audiences, filters or ListingFilters()
        )
    return [listing.title for listing in found]


async def test_a_mirrored_listing_is_kept_once_with_its_origin(
    sessions: Sessions, garden: Community
) -> None:
    ap_id = await mirror(sessions, garden, 1, title="Ladder")
    await mirror(sessions, garden, 1, title="Tall ladder")

    row = await cached(sessions, ap_id)
    assert row is not None
    assert (row.title, row.audience, row.origin_community.ap_id) == (
        "Tall ladder",
        "public",
        garden.ap_id,
    )
    assert await visible(sessions, ["public"]) == ["Tall ladder"]


async def test_an_older_copy_arriving_late_does_not_replace_a_newer_one(
    sessions: Sessions, garden: Community
) -> None:
    ap_id = await mirror(sessions, garden, 1, title="Closed", remote_updated_at=T0 + timedelta(1))
    await mirror(sessions, garden, 1, title="Open", remote_updated_at=T0)

    row = await cached(sessions, ap_id)
    assert row is not None and row.title == "Closed"

    await mirror(sessions, garden, 1, title="Reopened", remote_updated_at=T0 + timedelta(2))
    row = await cached(sessions, ap_id)
    assert row is not None and row.title == "Reopened"


async def test_a_copy_without_a_date_replaces_the_cached_one(
    sessions: Sessions, garden: Community
) -> None:
    ap_id = await mirror(sessions, garden, 1, title="Dated", remote_updated_at=T0)
    await mirror(sessions, garden, 1, title="Undated", remote_updated_at=None)

    row = await cached(sessions, ap_id)
    assert row is not None and row.title == "Undated"


async def test_only_the_audiences_asked_for_are_shown(
    sessions: Sessions, garden: Community, bikes: Community
) -> None:
    await mirror(sessions, garden, 1, "public", title="Public ladder")
    await mirror(sessions, bikes, 1, "partners", title="Partners pump")

    assert await visible(sessions, ["public"]) == ["Public ladder"]
    assert await visible(sessions, ["partners"]) == ["Partners pump"]
    assert sorted(await visible(sessions, ["public", "partners"])) == [
        "Partners pump",
        "Public ladder",
    ]
    assert await visible(sessions, []) == []


async def test_a_tombstoned_listing_is_hidden_until_it_comes_back(
    sessions: Sessions, garden: Community
) -> None:
    ap_id = await mirror(sessions, garden, 1, title="Ladder")
    async with sessions() as session, session.begin():
        row = await RemoteListingRepository(session).get_by_ap_id(ap_id)
        assert row is not None
        row.is_tombstoned = True
    assert await visible(sessions, ["public"]) == []

    await mirror(sessions, garden, 1, title="Ladder again")
    assert await visible(sessions, ["public"]) == ["Ladder again"]


async def test_listings_from_a_blocked_domain_are_hidden(
    sessions: Sessions, garden: Community, bikes: Community
) -> None:
    sub = await origin(sessions, "social.bikes.example", "riders")
    await mirror(sessions, garden, 1, title="Garden ladder")
    await mirror(sessions, bikes, 1, title="Bikes pump")
    await mirror(sessions, sub, 1, title="Riders lock")

    async with sessions() as session, session.begin():
        await BlockRepository(session).add("Bikes.Example.")

    assert await visible(sessions, ["public"]) == ["Garden ladder"]


async def test_filters_narrow_by_kind_category_and_status(
    sessions: Sessions, garden: Community
) -> None:
    await mirror(sessions, garden, 1, title="Ladder", kind="offer", category="tools")
    await mirror(sessions, garden, 2, title="Seeds wanted", kind="need", category="garden")
    await mirror(sessions, garden, 3, title="Old drill", kind="offer", status="closed")

    assert await visible(sessions, ["public"], ListingFilters(kind="need")) == ["Seeds wanted"]
    assert await visible(sessions, ["public"], ListingFilters(category="tools")) == ["Ladder"]
    assert await visible(sessions, ["public"], ListingFilters(status="closed")) == ["Old drill"]
    assert await visible(sessions, ["public"], ListingFilters(kind="offer", status="active")) == [
        "Ladder"
    ]


async def test_newest_first_with_limit_and_offset(sessions: Sessions, garden: Community) -> None:
    for number in range(5):
        await mirror(
            sessions, garden, number, title=f"L{number}", published_at=T0 + timedelta(hours=number)
        )

    assert await visible(sessions, ["public"]) == ["L4", "L3", "L2", "L1", "L0"]
    assert await visible(sessions, ["public"], ListingFilters(limit=2)) == ["L4", "L3"]
    assert await visible(sessions, ["public"], ListingFilters(limit=2, offset=2)) == ["L2", "L1"]


async def test_removing_one_listing(sessions: Sessions, garden: Community) -> None:
    first = await mirror(sessions, garden, 1, title="Ladder")
    await mirror(sessions, garden, 2, title="Pump")

    async with sessions() as session, session.begin():
        repo = RemoteListingRepository(session)
        assert await repo.remove(first)
        assert not await repo.remove(first)
    assert await cached(sessions, first) is None
    assert await visible(sessions, ["public"]) == ["Pump"]


async def test_purging_an_origin_removes_only_its_listings_of_that_audience(
    sessions: Sessions, garden: Community, bikes: Community
) -> None:
    await mirror(sessions, garden, 1, "partners", title="Garden partners 1")
    await mirror(sessions, garden, 2, "partners", title="Garden partners 2")
    await mirror(sessions, garden, 3, "public", title="Garden public")
    await mirror(sessions, bikes, 1, "partners", title="Bikes partners")

    async with sessions() as session, session.begin():
        repo = RemoteListingRepository(session)
        assert len(await repo.list_from_origin(garden.id, "partners")) == 2
        assert await repo.remove_from_origin(garden.id, "partners") == 2
        assert await repo.list_from_origin(garden.id, "partners") == []

    assert await visible(sessions, ["partners"]) == ["Bikes partners"]
    assert await visible(sessions, ["public"]) == ["Garden public"]


async def test_a_page_write_leaves_a_listing_stored_meanwhile_as_it_was(
    sessions: Sessions, garden: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inbox mirrors a listing while a backfill walks the same collection: the
    # page write read the cache before the inbox's row was committed.
    ap_id = await mirror(sessions, garden, 1, title="From the inbox")

    async def cache_read_too_early(self: RemoteListingRepository, ap_ids: Any) -> dict[str, Any]:
        return {}

    monkeypatch.setattr(RemoteListingRepository, "_cached_rows", cache_read_too_early)
    items = [
        (ap_id, fields("From the backfill")),
        ("https://garden.example/listings/2", fields("New")),
    ]
    async with sessions() as session, session.begin():
        written = await RemoteListingRepository(session).upsert_page(garden, "public", items)
    assert written.inserted == 1
    first, second = await cached(sessions, ap_id), await cached(sessions, items[1][0])
    assert first is not None and first.title == "From the inbox"
    assert second is not None and second.title == "New"
