"""Partnerships and stewards' notifications, on SQLite and PostgreSQL.

What a partner may see hangs on these queries: `active_between` and
`get_active_for_community` decide who gets partner-only listings, so a
proposal, a refusal or a dissolved partnership must never count as active,
and one community's partners must never be another's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory
from storage.models import Community, CommunityPartnership, Notification
from storage.repositories import CommunityRepository
from storage.repositories.partnerships import (
    OPEN_STATES,
    NotificationRepository,
    PartnershipRepository,
)

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def community(sessions: Sessions, ap_id: str, *, local: bool) -> Community:
    host = ap_id.split("/")[2]
    async with sessions() as session, session.begin():
        return await CommunityRepository(session).add(
            Community(
                ap_id=ap_id,
                is_local=local,
                slug=ap_id.rsplit("/", 1)[1],
                host=host,
                name=ap_id,
                base_url=f"https://{host}",
            )
        )


@pytest.fixture
async def tools(sessions: Sessions) -> Community:
    return await community(sessions, "https://home.example/c/tools", local=True)


@pytest.fixture
async def seeds(sessions: Sessions) -> Community:
    return await community(sessions, "https://home.example/c/seeds", local=True)


@pytest.fixture
async def garden(sessions: Sessions) -> Community:
    return await community(sessions, "https://garden.example/c/garden", local=False)


@pytest.fixture
async def bikes(sessions: Sessions) -> Community:
    return await community(sessions, "https://bikes.example/c/bikes", local=False)


async def partnership(
    sessions: Sessions,
    local: Community,
    remote: Community,
    state: str,
    *,
    updated: datetime = T0,
    follow: str | None = None,
) -> str:
    async with sessions() as session, session.begin():
        row = await PartnershipRepository(session).add(
            CommunityPartnership(
                local_community_id=local.id,
                remote_community_id=remote.id,
                state=state,
                initiated_by="us",
                follow_activity_id=follow or f"{local.ap_id}#follows/{remote.slug}/{state}",
                created_at=updated,
                updated_at=updated,
            )
        )
        return row.id


async def test_only_active_partnerships_make_partners(
    sessions: Sessions, tools: Community, garden: Community, bikes: Community
) -> None:
    await partnership(sessions, tools, garden, "active")
    await partnership(sessions, tools, bikes, "dissolved")

    async with sessions() as session:
        repo = PartnershipRepository(session)
        assert await repo.active_between(tools.id, garden.ap_id)
        assert not await repo.active_between(tools.id, bikes.ap_id)
        assert not await repo.active_between(tools.id, "https://stranger.example/c/x")
        active = await repo.get_active_for_community(tools.id)
    assert [p.remote_community.ap_id for p in active] == [garden.ap_id]


@pytest.mark.parametrize("state", ["proposed", "pending", "rejected", "dissolved"])
async def test_a_partnership_that_is_not_active_shares_nothing(
    sessions: Sessions, tools: Community, garden: Community, state: str
) -> None:
    await partnership(sessions, tools, garden, state)

    async with sessions() as session:
        repo = PartnershipRepository(session)
        assert not await repo.active_between(tools.id, garden.ap_id)
        assert await repo.get_active_for_community(tools.id) == []
        assert await repo.all_active() == []


async def test_one_communitys_partner_is_not_anothers(
    sessions: Sessions, tools: Community, seeds: Community, garden: Community
) -> None:
    await partnership(sessions, tools, garden, "active")

    async with sessions() as session:
        repo = PartnershipRepository(session)
        assert not await repo.active_between(seeds.id, garden.ap_id)
        assert await repo.get_active_for_community(seeds.id) == []
        assert await repo.list_for_community(seeds.id) == []
        assert [p.local_community_id for p in await repo.all_active()] == [tools.id]


@pytest.mark.parametrize("state", ["proposed", "pending", "active", "rejected", "dissolved"])
async def test_the_open_partnership_of_a_pair_is_found_until_it_ends(
    sessions: Sessions, tools: Community, garden: Community, state: str
) -> None:
    made = await partnership(sessions, tools, garden, state)

    async with sessions() as session:
        found = await PartnershipRepository(session).get_open(tools.id, garden.id)
    assert (found.id if found else None) == (made if state in OPEN_STATES else None)


async def test_a_new_proposal_after_a_dissolved_one_is_the_open_one(
    sessions: Sessions, tools: Community, garden: Community
) -> None:
    await partnership(sessions, tools, garden, "dissolved", updated=T0)
    newer = await partnership(sessions, tools, garden, "proposed", updated=T0 + timedelta(days=1))

    async with sessions() as session:
        repo = PartnershipRepository(session)
        found = await repo.get_open(tools.id, garden.id)
        listed = await repo.list_for_community(tools.id)
        assert found is not None and found.id == newer
        assert await repo.get_open(tools.id, tools.id) is None
    assert [p.state for p in listed] == ["proposed", "dissolved"]


async def test_partnerships_are_listed_most_recently_changed_first(
    sessions: Sessions, tools: Community, garden: Community, bikes: Community
) -> None:
    older = await partnership(sessions, tools, garden, "active", updated=T0)
    newer = await partnership(sessions, tools, bikes, "pending", updated=T0 + timedelta(hours=1))

    async with sessions() as session:
        listed = await PartnershipRepository(session).list_for_community(tools.id)
    assert [p.id for p in listed] == [newer, older]


async def test_a_partnership_is_found_by_its_proposal_follow(
    sessions: Sessions, tools: Community, garden: Community
) -> None:
    follow = "https://home.example/activities/follow/1"
    made = await partnership(sessions, tools, garden, "proposed", follow=follow)

    async with sessions() as session:
        repo = PartnershipRepository(session)
        found = await repo.get_by_follow_id(follow)
        assert found is not None and found.id == made
        assert (await repo.get(made)) is not None
        assert found.local_community.ap_id == tools.ap_id
        assert found.remote_community.ap_id == garden.ap_id
        assert await repo.get_by_follow_id("https://home.example/activities/follow/2") is None
        assert await repo.get("no-such-id") is None


# --- notifications -----------------------------------------------------------


async def notify(
    sessions: Sessions, community: Community, text: str, at: datetime, partnership: str | None
) -> None:
    async with sessions() as session, session.begin():
        await NotificationRepository(session).add(
            Notification(
                community_id=community.id,
                kind="partnership_proposed",
                text=text,
                partnership_id=partnership,
                created_at=at,
            )
        )


async def test_notifications_are_newest_first_and_per_community(
    sessions: Sessions, tools: Community, seeds: Community, garden: Community
) -> None:
    made = await partnership(sessions, tools, garden, "pending")
    for minute, text in enumerate(["first", "second", "third"]):
        await notify(sessions, tools, text, T0 + timedelta(minutes=minute), made)
    await notify(sessions, seeds, "elsewhere", T0, None)

    async with sessions() as session:
        repo = NotificationRepository(session)
        assert [n.text for n in await repo.list_for_community(tools.id)] == [
            "third",
            "second",
            "first",
        ]
        assert [n.text for n in await repo.list_for_community(tools.id, limit=2)] == [
            "third",
            "second",
        ]
        assert await repo.unread_count(tools.id) == 3
        assert await repo.unread_count(seeds.id) == 1


async def test_reading_one_partnerships_notifications_leaves_the_rest_unread(
    sessions: Sessions, tools: Community, seeds: Community, garden: Community, bikes: Community
) -> None:
    with_garden = await partnership(sessions, tools, garden, "pending")
    with_bikes = await partnership(sessions, tools, bikes, "pending")
    await notify(sessions, tools, "garden asks", T0, with_garden)
    await notify(sessions, tools, "bikes ask", T0, with_bikes)
    await notify(sessions, seeds, "elsewhere", T0, None)

    async with sessions() as session, session.begin():
        await NotificationRepository(session).mark_read(tools.id, with_garden)
    async with sessions() as session:
        repo = NotificationRepository(session)
        assert await repo.unread_count(tools.id) == 1
        unread = [n.text for n in await repo.list_for_community(tools.id) if n.read_at is None]
    assert unread == ["bikes ask"]

    async with sessions() as session, session.begin():
        await NotificationRepository(session).mark_read(tools.id)
    async with sessions() as session:
        repo = NotificationRepository(session)
        assert await repo.unread_count(tools.id) == 0
        assert await repo.unread_count(seeds.id) == 1
