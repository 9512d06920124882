"""The delivery queue's rows and leases, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory, is_sqlite
from storage.models import Community, Delivery, PeerHost
from storage.repositories import BlockRepository, CommunityRepository, DeliveryRepository
from storage.repositories.deliveries import HostCaps, LeasedRow, PreLease, inbox_host

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def sender(sessions: Sessions) -> Community:
    async with sessions() as session, session.begin():
        return await CommunityRepository(session).add(
            Community(
                ap_id="http://home.test/c/tools",
                is_local=True,
                slug="tools",
                host="home.test",
                name="Tools",
                base_url="http://home.test",
            )
        )


async def enqueue(
    sessions: Sessions,
    sender: Community,
    inboxes: list[str],
    activity: str = "a1",
    *,
    at: datetime | None = None,
) -> int:
    async with sessions() as session, session.begin():
        repo = DeliveryRepository(session)
        activity_id = f"http://home.test/activities/{activity}"
        return await repo.enqueue(activity_id, sender.id, inboxes, "{}", now=at)


async def claim(sessions: Sessions, now: datetime = T0, limit: int = 50) -> list[str]:
    async with sessions() as session, session.begin():
        claimed = await DeliveryRepository(session).claim_due(now, limit, LEASE)
        return [delivery.target_inbox for delivery, _ in claimed]


async def rows(sessions: Sessions) -> dict[str, Delivery]:
    async with sessions() as session:
        result = await session.scalars(select(Delivery))
        return {d.target_inbox: d for d in result}


async def host_failure(sessions: Sessions, host: str, now: datetime) -> PeerHost:
    async with sessions() as session, session.begin():
        return await DeliveryRepository(session).record_host_failure(
            host, now, "HTTP 503", lambda failures: timedelta(minutes=10 * failures)
        )


def test_inbox_host_is_the_authority_as_signed() -> None:
    assert inbox_host("https://Example.COM:443/inbox") == "example.com"
    assert inbox_host("http://127.0.0.1:8080/inbox") == "127.0.0.1:8080"
    with pytest.raises(ValueError):
        inbox_host("/inbox")


async def test_enqueue_is_idempotent_per_activity_and_inbox(
    sessions: Sessions, sender: Community
) -> None:
    inboxes = ["http://a.test/inbox", "http://b.test:8080/inbox", "http://a.test/inbox"]
    assert await enqueue(sessions, sender, inboxes, at=T0) == 2
    assert await enqueue(sessions, sender, inboxes, at=T0) == 0
    assert await enqueue(sessions, sender, [*inboxes, "http://c.test/inbox"], at=T0) == 1
    assert await enqueue(sessions, sender, inboxes, "a2", at=T0) == 2
    stored = await rows(sessions)
    assert stored["http://b.test:8080/inbox"].host == "b.test:8080"
    assert {d.state for d in stored.values()} == {"queued"}
    assert await enqueue(sessions, sender, []) == 0


async def test_claim_takes_only_due_rows_oldest_first(
    sessions: Sessions, sender: Community
) -> None:
    await enqueue(sessions, sender, ["http://late.test/inbox"], "a1", at=T0 + timedelta(minutes=1))
    await enqueue(sessions, sender, ["http://early.test/inbox"], "a2", at=T0 - timedelta(hours=1))
    await enqueue(sessions, sender, ["http://future.test/inbox"], "a3", at=T0 + timedelta(hours=1))
    assert await claim(sessions, T0 + timedelta(minutes=1)) == [
        "http://early.test/inbox",
        "http://late.test/inbox",
    ]


async def test_claim_returns_the_sender(sessions: Sessions, sender: Community) -> None:
    await enqueue(sessions, sender, ["http://a.test/inbox"], at=T0)
    async with sessions() as session, session.begin():
        [(delivery, community)] = await DeliveryRepository(session).claim_due(T0, 10, LEASE)
    assert community.ap_id == sender.ap_id
    assert delivery.locked_until == T0 + LEASE


async def test_claim_respects_limit(sessions: Sessions, sender: Community) -> None:
    await enqueue(sessions, sender, [f"http://h{n}.test/inbox" for n in range(5)], at=T0)
    assert len(await claim(sessions, limit=3)) == 3
    assert len(await claim(sessions, limit=3)) == 2


async def test_leased_rows_are_not_claimed_again_until_the_lease_expires(
    sessions: Sessions, sender: Community
) -> None:
    await enqueue(sessions, sender, ["http://a.test/inbox"], at=T0)
    assert await claim(sessions, T0) == ["http://a.test/inbox"]
    assert await claim(sessions, T0 + LEASE - timedelta(seconds=1)) == []
    assert await claim(sessions, T0 + LEASE) == ["http://a.test/inbox"]


async def test_release_makes_rows_claimable_at_once_without_an_attempt(
    sessions: Sessions, sender: Community
) -> None:
    await enqueue(sessions, sender, ["http://a.test/inbox"], at=T0)
    async with sessions() as session, session.begin():
        [(delivery, _)] = await DeliveryRepository(session).claim_due(T0, 10, LEASE)
        assert await DeliveryRepository(session).release([delivery.id]) == 1
    assert await claim(sessions, T0) == ["http://a.test/inbox"]
    assert (await rows(sessions))["http://a.test/inbox"].attempts == 0


async def test_outcomes_end_the_lease_and_count_the_attempt(
    sessions: Sessions, sender: Community
) -> None:
    inboxes = ["http://ok.test/inbox", "http://later.test/inbox", "http://gone.test/inbox"]
    await enqueue(sessions, sender, inboxes, at=T0)
    async with sessions() as session, session.begin():
        repo = DeliveryRepository(session)
        ids = {d.target_inbox: d.id for d, _ in await repo.claim_due(T0, 10, LEASE)}
        assert await repo.mark_delivered(ids[inboxes[0]], T0, 202)
        assert await repo.mark_retry(ids[inboxes[1]], T0 + timedelta(hours=1), 500, "HTTP 500")
        assert await repo.mark_failed(ids[inboxes[2]], 410, "HTTP 410")
    stored = await rows(sessions)
    ok, later, gone = (stored[i] for i in inboxes)
    assert (ok.state, ok.last_status, ok.delivered_at, ok.attempts) == ("delivered", 202, T0, 1)
    assert (later.state, later.next_attempt_at, later.last_error) == (
        "queued",
        T0 + timedelta(hours=1),
        "HTTP 500",
    )
    assert (gone.state, gone.last_status) == ("failed", 410)
    assert all(d.locked_until is None and d.attempts == 1 for d in stored.values())
    assert await claim(sessions, T0 + timedelta(hours=1)) == ["http://later.test/inbox"]


async def test_a_finished_row_is_never_reopened(sessions: Sessions, sender: Community) -> None:
    await enqueue(sessions, sender, ["http://a.test/inbox"], at=T0)
    async with sessions() as session, session.begin():
        repo = DeliveryRepository(session)
        [(delivery, _)] = await repo.claim_due(T0, 10, LEASE)
        assert await repo.mark_delivered(delivery.id, T0, 202)
        assert not await repo.mark_retry(delivery.id, T0, 500, "late worker")
        assert await repo.release([delivery.id]) == 0
    assert (await rows(sessions))["http://a.test/inbox"].state == "delivered"


async def test_a_host_in_backoff_is_skipped_as_a_whole(
    sessions: Sessions, sender: Community
) -> None:
    await enqueue(sessions, sender, ["http://down.test/inbox", "http://up.test/inbox"], at=T0)
    peer = await host_failure(sessions, "down.test", T0)
    assert (peer.consecutive_failures, peer.backoff_until) == (1, T0 + timedelta(minutes=10))
    assert await claim(sessions, T0) == ["http://up.test/inbox"]
    await enqueue(sessions, sender, ["http://down.test/other-inbox"], "a2", at=T0)
    # up.test is claimable again only because its lease has lapsed.
    assert await claim(sessions, T0 + timedelta(minutes=9)) == ["http://up.test/inbox"]
    assert sorted(await claim(sessions, T0 + timedelta(minutes=10))) == [
        "http://down.test/inbox",
        "http://down.test/other-inbox",
    ]


async def test_host_backoff_escalates_per_round_not_per_delivery(sessions: Sessions) -> None:
    await host_failure(sessions, "down.test", T0)
    again = await host_failure(sessions, "down.test", T0 + timedelta(seconds=1))
    assert (again.consecutive_failures, again.backoff_until) == (1, T0 + timedelta(minutes=10))
    later = T0 + timedelta(minutes=11)
    third = await host_failure(sessions, "down.test", later)
    assert (third.consecutive_failures, third.backoff_until) == (2, later + timedelta(minutes=20))
    assert third.last_failure_at == later


async def test_host_success_resets_the_host(sessions: Sessions, sender: Community) -> None:
    await enqueue(sessions, sender, ["http://down.test/inbox"], at=T0)
    await host_failure(sessions, "down.test", T0)
    async with sessions() as session, session.begin():
        await DeliveryRepository(session).record_host_success("down.test", T0)
    assert await claim(sessions, T0) == ["http://down.test/inbox"]
    async with sessions() as session:
        peer = await session.get(PeerHost, "down.test")
    assert peer is not None
    assert (peer.consecutive_failures, peer.backoff_until, peer.last_success_at) == (0, None, T0)


async def test_blocked_hosts_get_nothing(sessions: Sessions, sender: Community) -> None:
    inboxes = [
        "http://blocked.test/inbox",
        "http://sub.blocked.test:8443/inbox",
        "http://port.test:8443/inbox",
        "http://port.test/inbox",
        "http://fine.test/inbox",
    ]
    await enqueue(sessions, sender, inboxes, at=T0)
    async with sessions() as session, session.begin():
        blocks = BlockRepository(session)
        await blocks.add("blocked.test")
        await blocks.add("port.test:8443")
    assert sorted(await claim(sessions, T0)) == ["http://fine.test/inbox", "http://port.test/inbox"]
    assert await enqueue(sessions, sender, inboxes, "a2", at=T0) == 2


async def test_retry_host_resets_backoff_and_makes_its_deliveries_due(
    sessions: Sessions, sender: Community
) -> None:
    later = T0 + timedelta(hours=6)
    await enqueue(sessions, sender, ["http://down.test/inbox"], at=later)
    await enqueue(sessions, sender, ["http://down.test/inbox2"], "a2", at=later)
    await enqueue(sessions, sender, ["http://other.test/inbox"], at=later)
    await host_failure(sessions, "down.test", T0)
    async with sessions() as session, session.begin():
        assert await DeliveryRepository(session).retry_host("down.test", T0) == 2
    assert sorted(await claim(sessions, T0)) == [
        "http://down.test/inbox",
        "http://down.test/inbox2",
    ]
    async with sessions() as session:
        peer = await session.get(PeerHost, "down.test")
    assert peer is not None
    assert (peer.consecutive_failures, peer.backoff_until) == (0, None)


async def test_host_summaries_show_health_per_host(sessions: Sessions, sender: Community) -> None:
    await enqueue(sessions, sender, ["http://down.test/inbox"], "a1", at=T0)
    await enqueue(sessions, sender, ["http://down.test/inbox"], "a2", at=T0 + timedelta(hours=1))
    await enqueue(sessions, sender, ["http://up.test/inbox"], "a1", at=T0)
    await host_failure(sessions, "down.test", T0)
    async with sessions() as session, session.begin():
        repo = DeliveryRepository(session)
        [(up, _)] = await repo.claim_due(T0, 10, LEASE)
        await repo.mark_failed(up.id, 404, "HTTP 404")
        await repo.record_host_success("gone-quiet.test", T0)
    async with sessions() as session:
        summaries = {s.host: s for s in await DeliveryRepository(session).host_summaries()}
    assert list(summaries) == ["down.test", "gone-quiet.test", "up.test"]
    down = summaries["down.test"]
    assert (down.queued, down.failed, down.consecutive_failures) == (2, 0, 1)
    assert down.next_attempt_at == T0 + timedelta(minutes=10)
    assert down.last_error == "HTTP 503"
    assert (summaries["up.test"].queued, summaries["up.test"].failed) == (0, 1)
    assert summaries["up.test"].next_attempt_at is None
    assert summaries["gone-quiet.test"].last_success_at == T0


async def test_concurrent_claims_never_overlap(sessions: Sessions, sender: Community) -> None:
    await enqueue(sessions, sender, [f"http://h{n}.test/inbox" for n in range(40)], at=T0)

    async def drain() -> list[str]:
        taken: list[str] = []
        while batch := await claim(sessions, T0, limit=3):
            taken += batch
        return taken

    results = await asyncio.gather(*(drain() for _ in range(4)))
    everything = [inbox for taken in results for inbox in taken]
    assert len(everything) == len(set(everything)) == 40


async def test_postgres_claim_skips_rows_locked_by_an_open_claim(
    database_url: str, sessions: Sessions, sender: Community
) -> None:
    if is_sqlite(database_url):
        pytest.skip("SQLite has one writer; a second claim waits for the first to commit")
    await enqueue(sessions, sender, [f"http://h{n}.test/inbox" for n in range(6)], at=T0)
    async with sessions() as first, first.begin():
        mine = await DeliveryRepository(first).claim_due(T0, 4, LEASE)
        # The first transaction has not committed: its rows are locked, not yet leased.
        theirs = await asyncio.wait_for(claim(sessions, T0, limit=10), timeout=5)
    assert len(mine) == 4
    assert len(theirs) == 2
    assert not {d.target_inbox for d, _ in mine} & set(theirs)


async def fair_claim(
    sessions: Sessions, limit: int, per_host: int, room: dict[str, int] | None = None
) -> list[str]:
    async with sessions() as session, session.begin():
        caps = HostCaps(per_host, room or {})
        claimed = await DeliveryRepository(session).claim_due_rows(T0, limit, LEASE, caps)
        return [delivery.target_inbox for delivery, _ in claimed]


async def test_a_capped_claim_takes_hosts_in_turn_and_no_more_than_each_has_room_for(
    sessions: Sessions, sender: Community
) -> None:
    busy = [f"http://busy.test/inbox/{n}" for n in range(10)]
    await enqueue(sessions, sender, busy, at=T0 - timedelta(hours=1))  # the oldest by far
    await enqueue(sessions, sender, ["http://new.test/inbox"], "a2", at=T0)
    await enqueue(sessions, sender, ["http://full.test/inbox"], "a3", at=T0)

    # Round-robin: each host's oldest, then the next of those that have more.
    taken = await fair_claim(sessions, limit=4, per_host=3, room={"full.test": 0})
    assert sorted(taken) == sorted([*busy[:3], "http://new.test/inbox"])
    held = {"busy.test": 1, "full.test": 0}
    assert await fair_claim(sessions, limit=10, per_host=3, room=held) == busy[3:4]
    taken = await fair_claim(sessions, limit=10, per_host=3)
    assert sorted(taken) == sorted([*busy[4:7], "http://full.test/inbox"])


async def test_claimed_rows_carry_what_a_worker_sends(
    sessions: Sessions, sender: Community
) -> None:
    await enqueue(sessions, sender, ["http://far.test/inbox"], at=T0)
    async with sessions() as session, session.begin():
        repo = DeliveryRepository(session)
        [(delivery, community)] = await repo.claim_due_rows(T0, 10, LEASE, HostCaps(2, {}))
    assert (delivery.target_inbox, delivery.host, delivery.body) == (
        "http://far.test/inbox",
        "far.test",
        "{}",
    )
    assert (delivery.attempts, community.ap_id) == (0, sender.ap_id)
    assert (await rows(sessions))["http://far.test/inbox"].locked_until == T0 + LEASE


async def test_rows_queued_for_this_process_are_leased_within_its_room(
    sessions: Sessions, sender: Community
) -> None:
    await host_failure(sessions, "down.test", T0)
    inboxes = [f"http://busy.test/u{n}/inbox" for n in range(4)]
    inboxes += ["http://down.test/inbox", "http://full.test/inbox", "http://other.test/inbox"]
    lease = PreLease(T0 + LEASE, limit=10, per_host=2, room={"full.test": 0})
    leased: list[LeasedRow] = []
    async with sessions() as session, session.begin():
        added = await DeliveryRepository(session).enqueue(
            "http://home.test/activities/a1",
            sender.id,
            inboxes,
            "{}",
            now=T0,
            lease=lease,
            leased_out=leased,
        )
    assert added == 7
    # two of the busy host (its room), none of a host backing off or with no room
    assert sorted(row.target_inbox for row in leased) == [
        "http://busy.test/u0/inbox",
        "http://busy.test/u1/inbox",
        "http://other.test/inbox",
    ]
    stored = await rows(sessions)
    assert {inbox for inbox, row in stored.items() if row.locked_until is not None} == {
        row.target_inbox for row in leased
    }
    assert {row.id for row in leased} <= {row.id for row in stored.values()}
    # the others are claimed as usual (once the host's backoff ends), the leased
    # ones not while their lease runs
    assert sorted(await claim(sessions, T0 + timedelta(minutes=1))) == [
        "http://busy.test/u2/inbox",
        "http://busy.test/u3/inbox",
        "http://full.test/inbox",
    ]
