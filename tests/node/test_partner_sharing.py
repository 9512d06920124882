"""Sending our partner-only listings to a new partner, and withdrawing them from a
former one, as background jobs that page through them (SQLite and PostgreSQL).

Pages of three here, so that seven listings take three pages: the Accept (or
the end of the partnership) only queues the job; the job queues one delivery
per listing, page by page, stops when the partnership changed under it, and a
job interrupted after some pages resumes after the last one it completed.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.keys import generate_key_pair
from federation.vocab import Activity
from node.protocol import partner_sharing
from node.protocol.jobs import JobRun, JobWorker
from node.protocol.partner_sharing import PARTNER_PUSH, PARTNER_WITHDRAW, partner_sharing_handlers
from node.protocol.partnerships import end_partnership, receive_accept
from node.services.jobs import job_status
from storage.engine import create_engine, create_session_factory
from storage.models import Community, CommunityPartnership, Delivery, Job, Listing, new_id
from storage.repositories import CommunityRepository
from storage.repositories.jobs import decode
from storage.repositories.partnerships import PartnershipRepository

Sessions = async_sessionmaker[AsyncSession]
HOME = "http://home.test/c/tools"
BIRCH = "http://birch.test/c/birch"
BIRCH_INBOX = f"{BIRCH}/inbox"  # its own inbox: only it may read what we send
PAGE = 3
SHARED = 7  # three pages of three
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(minutes=1)  # the jobs queued are due

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@dataclass
class World:
    sessions: Sessions
    home: Community
    birch: Community
    shared: set[str]
    clock: Clock

    def worker(self) -> JobWorker:
        ctx: Any = SimpleNamespace(sessions=self.sessions)
        return JobWorker(
            self.sessions,
            partner_sharing_handlers(ctx, page_size=PAGE),
            clock=self.clock,
            rng=random.Random(1),
        )

    async def partnership(self) -> CommunityPartnership:
        async with self.sessions() as session:
            rows = await PartnershipRepository(session).list_for_community(self.home.id)
            return rows[0]

    async def accept(self) -> None:
        """Birch's Accept of our proposal arrives (the inbox handler's transaction)."""
        async with self.sessions() as session, session.begin():
            partnership = await PartnershipRepository(session).get_by_follow_id(FOLLOW)
            assert partnership is not None
            activity = Activity(
                id=f"{BIRCH}/activities/accept",
                type="Accept",
                actor=BIRCH,
                object=FOLLOW,
                to=(HOME,),
                cc=(),
                published=None,
                partnership=True,
                raw={},
            )
            await receive_accept(session, activity, partnership)

    async def end(self) -> None:
        async with self.sessions() as session, session.begin():
            partnership = await PartnershipRepository(session).get_by_follow_id(FOLLOW)
            assert partnership is not None
            await end_partnership(session, partnership, "dissolved")

    async def set_state(self, state: str) -> None:
        """Only the partnership row changes (nothing cancels the job)."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(CommunityPartnership)
                .where(CommunityPartnership.follow_activity_id == FOLLOW)
                .values(state=state)
            )

    async def deliveries(self) -> list[tuple[str, str, str, str]]:
        """(activity type, object id, inbox, state) of every delivery."""
        async with self.sessions() as session:
            rows = await session.scalars(select(Delivery).order_by(Delivery.id))
            out = []
            for row in rows:
                body = orjson.loads(row.body)
                obj = body["object"]
                out.append((body["type"], obj["id"], row.target_inbox, row.state))
                assert body["to"] == [BIRCH]
            return out

    async def jobs(self, kind: str) -> list[Job]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Job).where(Job.kind == kind)))


FOLLOW = f"{HOME}/activities/follow-birch"


@pytest.fixture
async def world(sessions: Sessions) -> World:
    private_pem, public_pem = generate_key_pair()
    async with sessions() as session, session.begin():
        communities = CommunityRepository(session)
        home = await communities.add(
            Community(
                ap_id=HOME,
                is_local=True,
                slug="tools",
                host="home.test",
                name="Tools",
                base_url="http://home.test",
                followers_url=f"{HOME}/followers",
                key_id=f"{HOME}#main-key",
                public_key_pem=public_pem,
                private_key_pem=private_pem,
            )
        )
        birch = await communities.add(
            Community(
                ap_id=BIRCH,
                slug="birch",
                host="birch.test",
                name="Birch",
                base_url="http://birch.test",
                inbox_url=f"{BIRCH}/inbox",
                shared_inbox_url="http://birch.test/inbox",
            )
        )
        await PartnershipRepository(session).add(
            CommunityPartnership(
                local_community_id=home.id,
                remote_community_id=birch.id,
                state="proposed",
                initiated_by="us",
                follow_activity_id=FOLLOW,
            )
        )
        shared = set()
        visibilities = ["partners"] * SHARED + ["public", "community"]
        for n, visibility in enumerate(visibilities):
            listing_id = new_id()
            ap_id = f"{HOME}/listings/{listing_id}"
            session.add(
                Listing(
                    id=listing_id,
                    ap_id=ap_id,
                    community_id=home.id,
                    kind="offer",
                    title=f"Tool {n}",
                    visibility=visibility,
                    is_public=visibility == "public",
                    # Two share a creation time: the keyset position tells them apart.
                    created_at=START + timedelta(minutes=min(n, 5)),
                )
            )
            if visibility == "partners":
                shared.add(ap_id)
    return World(sessions, home, birch, shared, Clock())


async def test_the_accept_queues_one_job_which_sends_every_partner_listing_page_by_page(
    world: World,
) -> None:
    await world.accept()

    assert await world.deliveries() == []
    [job] = await world.jobs(PARTNER_PUSH)
    assert job.state == "queued" and job.subject == BIRCH

    assert await world.worker().run_once() == 1

    sent = await world.deliveries()
    assert sorted(obj for _, obj, _, _ in sent) == sorted(world.shared)
    assert {(kind, inbox) for kind, _, inbox, _ in sent} == {("Create", BIRCH_INBOX)}
    [job] = await world.jobs(PARTNER_PUSH)
    assert job.state == "done"
    progress = decode(job.progress)
    assert (progress["queued"], progress["total"], progress["pages"]) == (SHARED, SHARED, 3)
    status = job_status(job, {BIRCH: "Birch"})
    assert status.label == "Sending our partner-only listings to a new partner"
    assert status.summary == "7 of 7 listings queued"


async def test_the_end_of_the_partnership_queues_one_job_which_withdraws_them_all(
    world: World,
) -> None:
    await world.set_state("active")

    await world.end()

    assert await world.deliveries() == []
    [job] = await world.jobs(PARTNER_WITHDRAW)
    await world.worker().run_once()
    sent = await world.deliveries()
    assert sorted(obj for _, obj, _, _ in sent) == sorted(world.shared)
    assert {(kind, inbox) for kind, _, inbox, _ in sent} == {("Delete", BIRCH_INBOX)}
    [job] = await world.jobs(PARTNER_WITHDRAW)
    assert job.state == "done"
    assert job_status(job, {}).summary == "7 of 7 listings queued"


PageStep = Callable[[Any, JobRun, int], Awaitable[bool]]


def after_pages(
    monkeypatch: pytest.MonkeyPatch, pages: int, then: Callable[[], Awaitable[None]]
) -> None:
    """Run `then` once `pages` pages of the job have been written."""
    real: PageStep = partner_sharing.walk_page
    done = 0

    async def step(ctx: Any, run: JobRun, page_size: int) -> bool:
        nonlocal done
        more = await real(ctx, run, page_size)
        done += 1
        if done == pages:
            await then()
        return more

    monkeypatch.setattr(partner_sharing, "walk_page", step)


async def test_a_push_stops_when_the_partnership_ends_mid_way(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.accept()
    after_pages(monkeypatch, 1, world.end)

    await world.worker().run_once()

    [push] = await world.jobs(PARTNER_PUSH)
    assert push.state == "cancelled" and push.last_error == "the partnership ended"
    assert decode(push.progress)["queued"] == PAGE
    sent = await world.deliveries()
    # The first page's Creates were cancelled with the rest of what was queued
    # for Birch; nothing more was queued; the withdrawal waits to run.
    assert len(sent) == PAGE
    assert {(kind, state) for kind, _, _, state in sent} == {("Create", "cancelled")}
    [withdrawal] = await world.jobs(PARTNER_WITHDRAW)
    assert withdrawal.state == "queued"


async def test_a_push_rechecks_the_partnership_at_every_page(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.accept()
    after_pages(monkeypatch, 2, lambda: world.set_state("dissolved"))

    await world.worker().run_once()

    [push] = await world.jobs(PARTNER_PUSH)
    progress = decode(push.progress)
    assert push.state == "done" and progress["stopped"] == "the partnership ended"
    assert progress["queued"] == 2 * PAGE and len(await world.deliveries()) == 2 * PAGE
    assert job_status(push, {}).summary == "6 of 7 listings queued; stopped: the partnership ended"


async def test_a_withdrawal_stops_when_they_are_partners_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.set_state("active")
    await world.end()

    async def partners_again() -> None:
        async with world.sessions() as session, session.begin():
            await PartnershipRepository(session).add(
                CommunityPartnership(
                    local_community_id=world.home.id,
                    remote_community_id=world.birch.id,
                    state="active",
                    initiated_by="them",
                    follow_activity_id=f"{BIRCH}/activities/follow-again",
                )
            )

    after_pages(monkeypatch, 1, partners_again)
    await world.worker().run_once()

    [withdrawal] = await world.jobs(PARTNER_WITHDRAW)
    progress = decode(withdrawal.progress)
    assert progress["stopped"] == "the partnership is active again"
    assert [kind for kind, _, _, _ in await world.deliveries()] == ["Delete"] * PAGE


@pytest.mark.parametrize("kind", [PARTNER_PUSH, PARTNER_WITHDRAW])
async def test_an_interrupted_job_resumes_after_the_last_page_it_completed(
    world: World, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    if kind == PARTNER_PUSH:
        await world.accept()
    else:
        await world.set_state("active")
        await world.end()

    async def worker_dies() -> None:
        raise RuntimeError("the node stopped")

    after_pages(monkeypatch, 2, worker_dies)
    await world.worker().run_once()
    [job] = await world.jobs(kind)
    assert job.state == "queued" and job.attempts == 1
    assert decode(job.progress)["queued"] == 2 * PAGE
    assert len(await world.deliveries()) == 2 * PAGE

    # A new worker (after a restart), once the retry is due.
    monkeypatch.undo()
    world.clock.now += timedelta(hours=1)
    assert await world.worker().run_once() == 1

    [job] = await world.jobs(kind)
    assert job.state == "done"
    assert decode(job.progress)["pages"] == 3
    sent = await world.deliveries()
    objects = [obj for _, obj, _, _ in sent]
    assert sorted(objects) == sorted(world.shared)  # each exactly once
