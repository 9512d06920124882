"""Inbox log, remote actor cache and domain blocks, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory
from storage.models import Community
from storage.repositories import (
    BlockRepository,
    CommunityRepository,
    InboxRepository,
    RemoteActorRepository,
)
from storage.repositories.actors import RemoteActorData, block_candidates
from storage.repositories.inbox import EntryOutcome

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(minutes=5)
ALICE = "https://mastodon.example/users/alice"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def add(sessions: async_sessionmaker[AsyncSession], n: int) -> bool:
    async with sessions() as session:
        added = await InboxRepository(session).add_if_new(
            f"https://mastodon.example/a/{n}", "Follow", ALICE, "{}"
        )
        await session.commit()
    return added


async def test_activity_is_stored_once_even_when_delivered_concurrently(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    results = await asyncio.gather(*(add(sessions, 1) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert await add(sessions, 1) is False
    async with sessions() as session:
        [entry] = await InboxRepository(session).recent()
    assert (entry.state, entry.attempts, entry.recipient) == ("received", 0, None)


async def test_claim_leases_oldest_first_and_counts_attempts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for n in range(3):
        await add(sessions, n)
    async with sessions() as session:
        repo = InboxRepository(session)
        first = await repo.claim(T0, 2, LEASE)
        assert [e.activity_id[-1] for e in first] == ["0", "1"]
        assert all(e.attempts == 1 and e.locked_until == T0 + LEASE for e in first)
        assert [e.activity_id[-1] for e in await repo.claim(T0, 10, LEASE)] == ["2"]
        assert await repo.claim(T0 + timedelta(minutes=1), 10, LEASE) == []
        expired = await repo.claim(T0 + LEASE, 10, LEASE)
        assert [e.attempts for e in expired] == [2, 2, 2], "a dead worker's lease runs out"
        await session.commit()


async def test_marked_entries_are_never_claimed_and_released_ones_wait(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for n in range(3):
        await add(sessions, n)
    async with sessions() as session:
        repo = InboxRepository(session)
        a, b, c = await repo.claim(T0, 10, LEASE)
        await repo.mark(a.id, "handled", None, now=T0)
        await repo.mark(b.id, "failed", "KeyError: 'x'", now=T0)
        await repo.release(c.id, "remote down", T0 + timedelta(seconds=30))
        await session.commit()
    async with sessions() as session:
        repo = InboxRepository(session)
        assert await repo.claim(T0 + timedelta(seconds=29), 10, LEASE) == []
        [again] = await repo.claim(T0 + timedelta(seconds=30), 10, LEASE)
        assert (again.id, again.attempts, again.error) == (c.id, 2, "remote down")
        states = {e.id: (e.state, e.error, e.handled_at) for e in await repo.recent()}
        assert states[a.id] == ("handled", None, T0)
        assert states[b.id] == ("failed", "KeyError: 'x'", T0)
        with pytest.raises(ValueError):
            await repo.mark(a.id, "received", None)


async def test_outcomes_of_a_batch_are_recorded_in_one_statement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for n in range(3):
        await add(sessions, n)
    async with sessions() as session:
        repo = InboxRepository(session)
        a, b, c = await repo.claim(T0, 10, LEASE)
        await repo.record(
            [
                EntryOutcome(a.id, "handled"),
                EntryOutcome(b.id, "retry", "remote down", T0 + timedelta(minutes=5)),
                EntryOutcome(c.id, "ignored", "not ours"),
            ],
            now=T0,
        )
        await session.commit()
        rows = {e.id: (e.state, e.error, e.handled_at, e.locked_until) for e in await repo.recent()}
    assert rows == {
        a.id: ("handled", None, T0, None),
        b.id: ("received", "remote down", None, T0 + timedelta(minutes=5)),
        c.id: ("ignored", "not ours", T0, None),
    }
    async with sessions() as session:
        with pytest.raises(ValueError):
            await InboxRepository(session).record([EntryOutcome(a.id, "retry", "no time")])


async def test_two_workers_never_claim_the_same_entry(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for n in range(20):
        await add(sessions, n)

    async def worker() -> list[int]:
        claimed: list[int] = []
        while True:
            async with sessions() as session:
                batch = await InboxRepository(session).claim(T0, 3, LEASE)
                await session.commit()
            if not batch:
                return claimed
            claimed.extend(e.id for e in batch)

    results = await asyncio.gather(worker(), worker(), worker())
    every = [entry_id for claimed in results for entry_id in claimed]
    assert len(every) == 20
    assert len(set(every)) == 20


# --- remote actors ---------------------------------------------------------------------------


def alice(**changes: object) -> RemoteActorData:
    fields: dict[str, object] = {
        "ap_id": ALICE,
        "actor_type": "Person",
        "inbox_url": f"{ALICE}/inbox",
        "preferred_username": "alice",
        "name": "Alice\x00 Moreau",
        "description": "Bike mechanic",
        "shared_inbox_url": "https://mastodon.example/inbox",
        "key_id": f"{ALICE}#main-key",
        "public_key_pem": "PEM-1",
    }
    fields.update(changes)
    return RemoteActorData(**fields)  # type: ignore[arg-type]


async def test_remote_actor_is_inserted_then_refreshed_in_place(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        repo = RemoteActorRepository(session)
        first = await repo.upsert(alice(), fetched_at=T0)
        await session.commit()
    assert (first.is_local, first.actor_type, first.slug, first.host) == (
        False,
        "Person",
        "alice",
        "mastodon.example",
    )
    assert first.name == "Alice Moreau", "NUL is dropped: PostgreSQL cannot store it"
    assert first.base_url == "https://mastodon.example"
    async with sessions() as session:
        repo = RemoteActorRepository(session)
        later = T0 + timedelta(days=1)
        second = await repo.upsert(alice(public_key_pem="PEM-2", name=None), fetched_at=later)
        await session.commit()
        assert second.id == first.id
        assert (second.public_key_pem, second.name, second.fetched_at) == ("PEM-2", "alice", later)
        by_key = await repo.get_by_key_id(f"{ALICE}#main-key")
        assert by_key is not None and by_key.id == first.id


async def test_slug_and_host_are_derived_when_the_actor_does_not_say(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    actor = alice(ap_id="http://127.0.0.1:8081/actors/x9", preferred_username=None)
    async with sessions() as session:
        row = await RemoteActorRepository(session).upsert(actor)
        await session.commit()
    assert (row.slug, row.host) == ("x9", "127.0.0.1:8081")


async def test_remote_document_cannot_overwrite_a_local_community(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    local_id = "http://tools.test/c/tools"
    async with sessions() as session:
        await CommunityRepository(session).add(
            Community(
                ap_id=local_id,
                is_local=True,
                slug="tools",
                host="tools.test",
                name="Tools",
                base_url="http://tools.test",
                public_key_pem="OUR-KEY",
            )
        )
        await session.commit()
    async with sessions() as session:
        row = await RemoteActorRepository(session).upsert(
            alice(ap_id=local_id, public_key_pem="EVIL")
        )
        await session.commit()
    assert (row.is_local, row.public_key_pem, row.name) == (True, "OUR-KEY", "Tools")


async def test_unstorable_urls_are_refused_not_truncated(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError):
            await RemoteActorRepository(session).upsert(alice(inbox_url=ALICE + "/" * 3000))


# --- blocks ----------------------------------------------------------------------------------


def test_block_candidates_cover_ports_and_parent_domains() -> None:
    assert block_candidates("Social.Example.COM:8443") == [
        "social.example.com:8443",
        "social.example.com",
        "example.com",
        "com",
    ]
    assert block_candidates("127.0.0.1:80") == ["127.0.0.1:80", "127.0.0.1"]
    assert block_candidates("[::1]:8080") == ["[::1]:8080", "[::1]"]
    assert block_candidates("a.example") == [
        "a.example:443",
        "a.example:80",
        "a.example",
        "example",
    ]
    assert block_candidates("not a/host") == []


async def test_blocks_match_host_any_port_and_subdomains(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        blocks = BlockRepository(session)
        assert await blocks.add("Spam.Example") == "spam.example"
        assert await blocks.add("spam.example") == "spam.example"
        await blocks.add("127.0.0.1:9000")
        await session.commit()
        assert await blocks.is_blocked("spam.example")
        assert await blocks.is_blocked("spam.example:8443")
        assert await blocks.is_blocked("eu.spam.example")
        assert not await blocks.is_blocked("notspam.example")
        assert await blocks.is_blocked("127.0.0.1:9000")
        assert not await blocks.is_blocked("127.0.0.1:9001")
        assert not await blocks.is_blocked("127.0.0.1")
        await blocks.add("tls.example:443")
        assert await blocks.is_blocked("tls.example"), "the default port is implied"
        assert not await blocks.is_blocked("tls.example:8443")
        await blocks.remove("tls.example:443")
        assert [b.domain for b in await blocks.list()] == ["127.0.0.1:9000", "spam.example"]
        assert await blocks.domains() == {"127.0.0.1:9000", "spam.example"}
        assert await blocks.remove("SPAM.example")
        assert not await blocks.remove("spam.example")
        await session.commit()
        assert not await blocks.is_blocked("spam.example")
