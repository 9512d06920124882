"""Plain follows, both directions, on SQLite and PostgreSQL.

"in": a remote actor follows one of our communities and gets its public
listings; "out": one of our communities follows a remote one. Who receives a
listing is decided by `followers()`, so it must name exactly the active
followers of that one community.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory
from storage.models import Community, Follow
from storage.repositories import CommunityRepository
from storage.repositories.follows import FollowRepository

Sessions = async_sessionmaker[AsyncSession]
ALICE = "https://mastodon.example/users/alice"
BOB = "https://pleroma.example/users/bob"
GARDEN = "https://garden.example/c/garden"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def local_community(sessions: Sessions, slug: str) -> int:
    async with sessions() as session, session.begin():
        community = await CommunityRepository(session).add(
            Community(
                ap_id=f"https://home.example/c/{slug}",
                is_local=True,
                slug=slug,
                host="home.example",
                name=slug.title(),
                base_url="https://home.example",
            )
        )
        return community.id


@pytest.fixture
async def tools(sessions: Sessions) -> int:
    return await local_community(sessions, "tools")


@pytest.fixture
async def seeds(sessions: Sessions) -> int:
    return await local_community(sessions, "seeds")


async def follow(
    sessions: Sessions,
    community_id: int,
    remote: str,
    *,
    direction: str = "in",
    state: str = "active",
    activity: str | None = None,
    inbox: str | None = None,
    shared_inbox: str | None = None,
) -> None:
    async with sessions() as session, session.begin():
        await FollowRepository(session).upsert(
            direction=direction,
            local_community_id=community_id,
            remote_actor=remote,
            follow_activity_id=activity or f"{remote}#follows/{direction}/{community_id}",
            state=state,
            remote_inbox=inbox,
            remote_shared_inbox=shared_inbox,
        )


async def followers(sessions: Sessions, community_id: int) -> set[str]:
    async with sessions() as session:
        return {f.remote_actor for f in await FollowRepository(session).followers(community_id)}


async def test_followers_are_the_active_incoming_follows_of_that_community(
    sessions: Sessions, tools: int, seeds: int
) -> None:
    await follow(sessions, tools, ALICE)
    await follow(sessions, tools, BOB, state="pending")
    await follow(sessions, tools, GARDEN, direction="out")
    await follow(sessions, seeds, BOB)

    assert await followers(sessions, tools) == {ALICE}
    assert await followers(sessions, seeds) == {BOB}


async def test_following_again_updates_the_one_follow_instead_of_adding_another(
    sessions: Sessions, tools: int
) -> None:
    await follow(sessions, tools, ALICE, state="pending", activity=f"{ALICE}#follow-1")
    await follow(sessions, tools, ALICE, state="active", activity=f"{ALICE}#follow-2")

    async with sessions() as session:
        repo = FollowRepository(session)
        current = await repo.get("in", tools, ALICE)
        assert current is not None
        assert (current.state, current.follow_activity_id) == ("active", f"{ALICE}#follow-2")
        assert await repo.get_by_activity_id(f"{ALICE}#follow-1") is None
        assert await repo.get_by_activity_id(f"{ALICE}#follow-2") is not None
        count = await session.scalar(select(func.count()).select_from(Follow))
    assert count == 1


async def test_a_refollow_without_inboxes_keeps_the_known_ones(
    sessions: Sessions, tools: int
) -> None:
    await follow(
        sessions,
        tools,
        ALICE,
        inbox=f"{ALICE}/inbox",
        shared_inbox="https://mastodon.example/inbox",
    )
    await follow(sessions, tools, ALICE, activity=f"{ALICE}#again")

    async with sessions() as session:
        current = await FollowRepository(session).get("in", tools, ALICE)
    assert current is not None
    assert (current.remote_inbox, current.remote_shared_inbox) == (
        f"{ALICE}/inbox",
        "https://mastodon.example/inbox",
    )


async def test_an_incoming_and_an_outgoing_follow_of_the_same_actor_are_separate(
    sessions: Sessions, tools: int
) -> None:
    await follow(sessions, tools, GARDEN, direction="in")
    await follow(sessions, tools, GARDEN, direction="out", state="pending")

    async with sessions() as session:
        repo = FollowRepository(session)
        incoming = await repo.get("in", tools, GARDEN)
        outgoing = await repo.get("out", tools, GARDEN)
        assert incoming is not None and outgoing is not None
        assert (incoming.state, outgoing.state) == ("active", "pending")
        assert [f.direction for f in await repo.following(GARDEN)] == ["out"]
    assert await followers(sessions, tools) == {GARDEN}


async def test_outgoing_follows_are_found_by_target_and_by_follower(
    sessions: Sessions, tools: int, seeds: int
) -> None:
    await follow(sessions, tools, GARDEN, direction="out", state="pending")
    await follow(sessions, seeds, GARDEN, direction="out", state="active")
    await follow(sessions, tools, BOB, direction="out", state="rejected")
    await follow(sessions, tools, ALICE, direction="in")

    async with sessions() as session:
        repo = FollowRepository(session)
        of_garden = await repo.following(GARDEN)
        from_tools = await repo.following_from(tools)
    assert sorted((f.local_community_id, f.state) for f in of_garden) == sorted(
        [(tools, "pending"), (seeds, "active")]
    )
    assert {(f.remote_actor, f.state) for f in from_tools} == {
        (GARDEN, "pending"),
        (BOB, "rejected"),
    }


async def test_an_unfollow_removes_the_follower(sessions: Sessions, tools: int) -> None:
    await follow(sessions, tools, ALICE, activity=f"{ALICE}#follow")
    await follow(sessions, tools, BOB)

    async with sessions() as session, session.begin():
        repo = FollowRepository(session)
        found = await repo.get_by_activity_id(f"{ALICE}#follow")
        assert found is not None
        await repo.delete(found)

    assert await followers(sessions, tools) == {BOB}


async def test_unknown_follows_are_not_found(sessions: Sessions, tools: int) -> None:
    async with sessions() as session:
        repo = FollowRepository(session)
        assert await repo.get("in", tools, ALICE) is None
        assert await repo.get_by_activity_id(f"{ALICE}#never") is None
        assert await repo.followers(tools) == []
        assert await repo.following(GARDEN) == []


async def test_deleting_a_community_drops_its_follows(
    sessions: Sessions, tools: int, seeds: int
) -> None:
    await follow(sessions, tools, ALICE)
    await follow(sessions, seeds, ALICE)

    async with sessions() as session, session.begin():
        community = await CommunityRepository(session).get(tools)
        assert community is not None
        await session.delete(community)

    assert await followers(sessions, seeds) == {ALICE}
    async with sessions() as session:
        assert await FollowRepository(session).get("in", tools, ALICE) is None
