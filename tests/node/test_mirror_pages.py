"""A backfill writes a whole page at once, by the same rules as one listing at a time.

A page mixing new, changed, unchanged, older, future-stamped, deleted-then-listed,
repeated and not-ours items is mirrored twice from the same starting cache: once
one item at a time through `mirror_note` (how an inbox delivery is kept), once
as a page (how a backfill keeps it). Both caches must end up the same, and say
what a member would see: the newest version, each listing with its own origin,
shown as posted when it was published, and the photos the newest version
carries (even when nothing else about the listing changed). On SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.builders import build_note
from federation.vocab import PUBLIC, Attachment, Note, parse_note
from node.protocol.mirror import NotMirrored, _mirror_page, audience_of, mirror_note
from storage.engine import create_engine, create_session_factory
from storage.models import Community, RemoteListing
from storage.repositories import CommunityRepository

Sessions = async_sessionmaker[AsyncSession]
HOST = "https://shared.example"
GARDEN, MALLORY = f"{HOST}/c/garden", f"{HOST}/c/mallory"
T1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T2 = T1 + timedelta(hours=1)
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def communities(sessions: Sessions) -> tuple[Community, Community]:
    async with sessions() as session, session.begin():
        repo = CommunityRepository(session)
        made = [
            await repo.add(
                Community(
                    ap_id=f"{HOST}/c/{slug}",
                    is_local=False,
                    slug=slug,
                    host="shared.example",
                    name=slug.title(),
                    base_url=HOST,
                )
            )
            for slug in ("garden", "mallory")
        ]
    return made[0], made[1]


def note(
    path: str,
    title: str,
    *,
    by: str = GARDEN,
    updated: datetime | None = None,
    to: str = PUBLIC,
    visibility: str = "public",
    photos: tuple[str, ...] = (),
) -> Note:
    return parse_note(
        build_note(
            note_id=f"{HOST}{path}",
            attributed_to=by,
            title=title,
            description="",
            to=[to],
            cc=[],
            published=T1,
            updated=updated,
            kind="offer",
            visibility=visibility,
            attachments=[
                Attachment(f"{HOST}/media/{name}", "image/jpeg", name, None, None)
                for name in photos
            ],
        )
    )


async def starting_cache(sessions: Sessions, garden: Community, mallory: Community) -> None:
    """What was cached before the backfill: some of it from garden, one from mallory."""
    async with sessions() as session:
        await session.execute(delete(RemoteListing))
        for origin, documents in (
            (
                garden,
                [
                    note("/c/garden/listings/changed", "Ladder", updated=T1),
                    note("/c/garden/listings/older", "Saw, sharpened", updated=T2),
                    note("/c/garden/listings/unchanged", "Tent", updated=T1),
                    note("/c/garden/listings/deleted", "Kettle", updated=T1),
                    note("/c/garden/listings/photo-gone", "Chair", updated=T1, photos=("c",)),
                ],
            ),
            (mallory, [note("/notes/mallorys", "Mallory's drill", by=MALLORY, updated=T1)]),
        ):
            for document in documents:
                await mirror_note(session, document, origin, "public")
        await session.execute(
            update(RemoteListing)
            .where(RemoteListing.ap_id == f"{HOST}/c/garden/listings/deleted")
            .values(is_tombstoned=True)
        )
        await session.commit()


PAGE = [
    note("/c/garden/listings/new", "Pump"),
    note("/c/garden/listings/changed", "Ladder, taller", updated=T2),
    note("/c/garden/listings/older", "Saw", updated=T1, photos=("saw",)),
    note("/c/garden/listings/unchanged", "Tent", updated=T1),
    note("/c/garden/listings/deleted", "Kettle", updated=T1),
    note("/c/garden/listings/new-photo", "Lamp", photos=("lamp", "shade")),
    note("/c/garden/listings/photo-gone", "Chair", updated=T1),
    note("/c/garden/listings/changed", "Ladder, taller", updated=T2, photos=("ladder",)),
    note("/c/garden/listings/future", "Bike", updated=FAR_FUTURE),
    note("/c/garden/listings/twice", "Rake, newer", updated=T2),
    note("/c/garden/listings/twice", "Rake, older", updated=T1, photos=("rake",)),
    note("/notes/mallorys", "Drill, hijacked", updated=FAR_FUTURE),
    note("/c/mallory/listings/squatted", "Under mallory's id"),
    note("/c/garden/listings/not-attributed", "Someone else's", by=MALLORY),
    note("/c/garden/listings/partners", "Partners only", to=MALLORY, visibility="partners"),
]


async def one_by_one(sessions: Sessions, garden: Community) -> set[str]:
    """How an inbox keeps listings: each on its own, through `mirror_note`."""
    kept: set[str] = set()
    async with sessions() as session:
        for document in PAGE:
            if audience_of(document) != "public":
                continue
            try:
                await mirror_note(session, document, garden, "public")
                kept.add(document.id)
            except NotMirrored:
                pass
        await session.commit()
    return kept


async def cache(sessions: Sessions) -> dict[str, tuple[Any, ...]]:
    async with sessions() as session:
        rows = await session.scalars(select(RemoteListing))
        return {
            row.ap_id.removeprefix(HOST): (
                row.title,
                row.origin_community.slug,
                row.audience,
                row.is_tombstoned,
                tuple(image.source_url.removeprefix(HOST) for image in row.images),
                row.shown_at == (row.published_at or row.received_at),
                row.remote_updated_at,
            )
            for row in rows
        }


def context(sessions: Sessions) -> Any:
    return SimpleNamespace(sessions=sessions, config=SimpleNamespace(remote_images_per_source=2000))


async def test_a_page_is_mirrored_as_its_items_would_be_one_by_one(sessions: Sessions) -> None:
    garden, mallory = await communities(sessions)
    await starting_cache(sessions, garden, mallory)
    kept_singly = await one_by_one(sessions, garden)
    singly = await cache(sessions)

    await starting_cache(sessions, garden, mallory)
    ctx = context(sessions)
    kept = await _mirror_page(ctx, garden, PAGE, "public")
    paged = await cache(sessions)

    assert kept == kept_singly
    assert paged.keys() == singly.keys()
    for ap_id, row in paged.items():
        # The clamped future stamp is "now" at the time of each run.
        same = row[:-1] == singly[ap_id][:-1]
        assert same and (ap_id.endswith("/future") or row == singly[ap_id]), ap_id

    titles = {ap_id: (row[0], row[1]) for ap_id, row in paged.items()}
    assert titles == {
        "/c/garden/listings/new": ("Pump", "garden"),
        "/c/garden/listings/changed": ("Ladder, taller", "garden"),
        "/c/garden/listings/new-photo": ("Lamp", "garden"),
        "/c/garden/listings/photo-gone": ("Chair", "garden"),
        "/c/garden/listings/older": ("Saw, sharpened", "garden"),
        "/c/garden/listings/unchanged": ("Tent", "garden"),
        "/c/garden/listings/deleted": ("Kettle", "garden"),
        "/c/garden/listings/future": ("Bike", "garden"),
        "/c/garden/listings/twice": ("Rake, newer", "garden"),
        "/notes/mallorys": ("Mallory's drill", "mallory"),
    }
    assert not paged["/c/garden/listings/deleted"][3]  # listed again: shown again
    photos = {ap_id: row[4] for ap_id, row in paged.items() if row[4]}
    assert photos == {
        "/c/garden/listings/new-photo": ("/media/lamp", "/media/shade"),
        "/c/garden/listings/changed": ("/media/ladder",),
    }
    assert all(row[5] for row in paged.values())  # shown as posted
    future = paged["/c/garden/listings/future"][-1]
    assert future is not None and future <= datetime.now(UTC)
    assert {ap_id.removeprefix(HOST) for ap_id in kept} == set(titles) - {"/notes/mallorys"}


async def test_a_later_backfill_of_an_unchanged_page_writes_nothing(sessions: Sessions) -> None:
    garden, mallory = await communities(sessions)
    await starting_cache(sessions, garden, mallory)
    ctx = context(sessions)
    steady = [document for document in PAGE if document.updated != FAR_FUTURE]
    await _mirror_page(ctx, garden, steady, "public")
    before = await cache(sessions), await written_at(sessions)
    kept = await _mirror_page(ctx, garden, steady, "public")
    assert (await cache(sessions), await written_at(sessions)) == before
    assert f"{HOST}/c/garden/listings/older" in kept


async def written_at(sessions: Sessions) -> dict[str, datetime]:
    async with sessions() as session:
        rows = await session.execute(select(RemoteListing.ap_id, RemoteListing.updated_at))
        return {ap_id: at for ap_id, at in rows}
