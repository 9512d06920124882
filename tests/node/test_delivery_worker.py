"""The delivery worker against real fake inboxes on 127.0.0.1, on SQLite and PostgreSQL.

Time is a settable clock shared by the queue and the worker, so "an hour
later" is one assignment; the worker is stepped with `run_once()` except where
the background loop itself is under test.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from federation.delivery import DeliveryJob, DeliveryWorker, Settlement
from federation.http_client import HttpLimits, create_client_session
from federation.keys import generate_key_pair
from federation.signatures import PublicKeyRecord, SignatureInfo, verify_request
from node.app import init_app
from node.appkeys import ENGINE, SESSIONS, WORKER_POLL_SECONDS
from node.config import write_config
from node.protocol.delivery_queue import SqlDeliveryQueue, enqueue_activity
from node.protocol.handoff import HANDED
from node.protocol.workers import DELIVERY_WAKE, delivery_worker_ctx, wake_delivery
from storage.engine import create_engine, create_session_factory
from storage.models import Community, Delivery, PeerHost
from storage.repositories import CommunityRepository
from tests.conftest import create_node_community
from tests.support.fake_remote import own_host

Sessions = async_sessionmaker[AsyncSession]
AiohttpServer = Callable[..., Awaitable[TestServer]]
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
LIMITS = HttpLimits(total_timeout=5.0)
EVENT_TIMEOUT = 10.0


# --- a fake remote inbox ----------------------------------------------------------


@dataclass
class Received:
    path: str
    body: bytes
    signature: SignatureInfo


@dataclass
class FakeInbox:
    """A remote server's inbox that records what arrives and answers as told.

    `answer` is a status to reply with, or "hold" to keep the request open
    until the test ends (a POST in flight when the worker is stopped).
    """

    public_key: PublicKeyRecord
    answer: int | str = 202
    retry_after: str | None = None
    received: list[Received] = field(default_factory=list)
    accepted: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    wanted: int = 1
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None

    def url(self, path: str = "/inbox") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def resolve_key(self, key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        return self.public_key if key_id == self.public_key.key_id else None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        url = request.rel_url
        info = await verify_request(
            request.method,
            url.raw_path,
            url.raw_query_string,
            request.headers,
            body,
            self.resolve_key,
            expected_host=own_host(request),
        )
        self.received.append(Received(request.path, body, info))
        self.arrived.set()
        if len(self.received) >= self.wanted:
            self.enough.set()
        if self.answer == "hold":
            await self.release.wait()
            return web.Response(status=503)
        assert isinstance(self.answer, int)
        if 200 <= self.answer < 300:
            self.accepted.append(body)
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return web.Response(status=self.answer, headers=headers, text="fake inbox says so")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    async def start(self, aiohttp_server: AiohttpServer, port: int | None = None) -> FakeInbox:
        self.server = await aiohttp_server(self.app(), port=port)
        return self


def free_port() -> int:
    """A loopback port with nothing listening on it: a host that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- fixtures ---------------------------------------------------------------------


class Clock:
    """The queue's and worker's time; starts just ahead of real time, which
    `enqueue_activity` stamps rows with, so fresh rows are due."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return generate_key_pair()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return create_session_factory(engine)


@pytest.fixture
async def sender(sessions: Sessions, key_pair: tuple[str, str]) -> Community:
    private_pem, public_pem = key_pair
    async with sessions() as session, session.begin():
        return await CommunityRepository(session).add(
            Community(
                ap_id="http://home.test/c/tools",
                is_local=True,
                slug="tools",
                host="home.test",
                name="Tools",
                base_url="http://home.test",
                key_id="http://home.test/c/tools#main-key",
                public_key_pem=public_pem,
                private_key_pem=private_pem,
            )
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_client_session(
        allow_private=True, user_agent="CommonsNode/test", limits=LIMITS
    ) as session:
        yield session


@pytest.fixture
async def new_inbox(
    aiohttp_server: AiohttpServer, sender: Community
) -> AsyncIterator[Callable[..., Awaitable[FakeInbox]]]:
    assert sender.key_id is not None and sender.public_key_pem is not None
    key = PublicKeyRecord(sender.key_id, sender.ap_id, sender.public_key_pem)
    inboxes: list[FakeInbox] = []

    async def make(port: int | None = None) -> FakeInbox:
        inbox = await FakeInbox(key).start(aiohttp_server, port)
        inboxes.append(inbox)
        return inbox

    yield make
    for inbox in inboxes:
        inbox.release.set()


def make_worker(
    sessions: Sessions, http: aiohttp.ClientSession, clock: Clock, **kw: Any
) -> DeliveryWorker:
    queue = kw.pop("queue", None) or SqlDeliveryQueue(sessions, clock=clock, rng=random.Random(1))
    return DeliveryWorker(
        queue, http, allow_private=True, limits=LIMITS, rng=random.Random(2), clock=clock, **kw
    )


@pytest.fixture
def worker(sessions: Sessions, http: aiohttp.ClientSession, clock: Clock) -> DeliveryWorker:
    return make_worker(sessions, http, clock)


# --- helpers ----------------------------------------------------------------------


def activity(n: int = 1) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"http://home.test/activities/{n}",
        "type": "Create",
        "actor": "http://home.test/c/tools",
        "object": {"type": "Note", "content": f"offer {n}"},
    }


async def enqueue(sessions: Sessions, sender: Community, inboxes: list[str], n: int = 1) -> None:
    async with sessions() as session, session.begin():
        await enqueue_activity(session, activity(n), sender, inboxes)


async def deliveries(sessions: Sessions) -> list[Delivery]:
    async with sessions() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def the_delivery(sessions: Sessions) -> Delivery:
    [delivery] = await deliveries(sessions)
    return delivery


async def peer(sessions: Sessions, host: str) -> PeerHost:
    async with sessions() as session:
        found = await session.get(PeerHost, host)
    assert found is not None
    return found


def host_of(inbox: FakeInbox) -> str:
    assert inbox.server is not None
    return f"127.0.0.1:{inbox.server.port}"


# --- tests ------------------------------------------------------------------------


async def test_activity_is_delivered_once_with_a_valid_signature(
    sessions: Sessions, sender: Community, worker: DeliveryWorker, new_inbox: Any
) -> None:
    inbox = await new_inbox()
    await enqueue(sessions, sender, [inbox.url()])

    assert await worker.run_once() == 1
    assert await worker.run_once() == 0

    [received] = inbox.received
    assert received.signature.valid, received.signature.reason
    assert received.signature.key_owner == sender.ap_id
    assert orjson.loads(received.body) == activity()
    delivery = await the_delivery(sessions)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 202)
    assert delivery.locked_until is None


async def test_server_error_is_retried_later_then_delivered(
    sessions: Sessions, sender: Community, worker: DeliveryWorker, clock: Clock, new_inbox: Any
) -> None:
    inbox = await new_inbox()
    inbox.answer = 500
    await enqueue(sessions, sender, [inbox.url()])

    assert await worker.run_once() == 1
    delivery = await the_delivery(sessions)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("queued", 1, 500)
    wait = delivery.next_attempt_at - clock.now
    assert timedelta(seconds=50) <= wait <= timedelta(seconds=70)
    assert await worker.run_once() == 0

    inbox.answer = 202
    clock.advance(timedelta(minutes=2))
    assert await worker.run_once() == 1
    delivery = await the_delivery(sessions)
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert len(inbox.received) == 2
    assert len(inbox.accepted) == 1
    health = await peer(sessions, host_of(inbox))
    assert (health.consecutive_failures, health.backoff_until) == (0, None)
    assert health.last_success_at == clock.now


async def test_retry_after_is_honoured_for_the_delivery_and_its_host(
    sessions: Sessions, sender: Community, worker: DeliveryWorker, clock: Clock, new_inbox: Any
) -> None:
    inbox = await new_inbox()
    inbox.answer, inbox.retry_after = 503, "3600"
    await enqueue(sessions, sender, [inbox.url()])

    assert await worker.run_once() == 1
    delivery = await the_delivery(sessions)
    assert delivery.next_attempt_at == clock.now + timedelta(hours=1)
    backoff_until = (await peer(sessions, host_of(inbox))).backoff_until
    assert backoff_until is not None
    assert backoff_until >= clock.now + timedelta(hours=1)

    inbox.answer = 202
    clock.advance(timedelta(minutes=30))
    assert await worker.run_once() == 0
    clock.advance(timedelta(minutes=31))
    assert await worker.run_once() == 1
    assert (await the_delivery(sessions)).state == "delivered"


async def test_not_found_gives_up_at_once(
    sessions: Sessions, sender: Community, worker: DeliveryWorker, clock: Clock, new_inbox: Any
) -> None:
    inbox = await new_inbox()
    inbox.answer = 404
    await enqueue(sessions, sender, [inbox.url()])

    assert await worker.run_once() == 1
    clock.advance(timedelta(days=7))
    assert await worker.run_once() == 0
    delivery = await the_delivery(sessions)
    assert (delivery.state, delivery.last_status, delivery.attempts) == ("failed", 404, 1)
    assert "fake inbox says so" in (delivery.last_error or "")
    assert len(inbox.received) == 1


async def test_unauthorized_is_retried(
    sessions: Sessions, sender: Community, worker: DeliveryWorker, new_inbox: Any
) -> None:
    inbox = await new_inbox()
    inbox.answer = 401
    await enqueue(sessions, sender, [inbox.url()])

    assert await worker.run_once() == 1
    delivery = await the_delivery(sessions)
    assert (delivery.state, delivery.last_status) == ("queued", 401)


async def test_host_that_was_down_gets_the_delivery_when_it_is_back(
    sessions: Sessions, sender: Community, worker: DeliveryWorker, clock: Clock, new_inbox: Any
) -> None:
    port = free_port()
    await enqueue(sessions, sender, [f"http://127.0.0.1:{port}/inbox"])

    assert await worker.run_once() == 1
    delivery = await the_delivery(sessions)
    assert (delivery.state, delivery.last_status) == ("queued", None)
    assert "POST" in (delivery.last_error or "")

    inbox = await new_inbox(port)
    clock.advance(timedelta(minutes=2))
    assert await worker.run_once() == 1
    assert (await the_delivery(sessions)).state == "delivered"
    assert len(inbox.accepted) == 1


async def test_failing_host_is_backed_off_as_a_whole(
    sessions: Sessions, sender: Community, worker: DeliveryWorker, clock: Clock, new_inbox: Any
) -> None:
    failing, healthy = await new_inbox(), await new_inbox()
    failing.answer = 500
    await enqueue(sessions, sender, [failing.url()], n=1)
    assert await worker.run_once() == 1

    await enqueue(sessions, sender, [failing.url("/other-inbox"), healthy.url()], n=2)
    assert await worker.run_once() == 1
    assert len(failing.received) == 1
    assert len(healthy.accepted) == 1

    clock.advance(timedelta(minutes=2))
    assert await worker.run_once() == 2
    assert len(failing.received) == 3
    health = await peer(sessions, host_of(failing))
    assert health.consecutive_failures == 2
    assert health.backoff_until is not None
    assert health.backoff_until - clock.now >= timedelta(minutes=4)
    clock.advance(timedelta(minutes=3))
    assert await worker.run_once() == 0


async def test_a_restarted_worker_delivers_what_the_last_one_left_queued(
    database_url: str,
    sessions: Sessions,
    sender: Community,
    http: aiohttp.ClientSession,
    clock: Clock,
    new_inbox: Any,
) -> None:
    inbox = await new_inbox()
    inbox.answer = 503
    await enqueue(sessions, sender, [inbox.url()], n=1)
    await enqueue(sessions, sender, [inbox.url("/later")], n=2)
    first = make_worker(sessions, http, clock, batch_size=1)
    assert await first.run_once() == 1
    crashed = SqlDeliveryQueue(sessions, clock=clock)
    clock.advance(timedelta(minutes=2))
    assert len(await crashed.claim(10, timedelta(minutes=5))) == 2  # and never answers

    inbox.answer = 202
    clock.advance(timedelta(minutes=5))
    engine = create_engine(database_url)
    try:
        restarted = make_worker(create_session_factory(engine), http, clock)
        assert await restarted.run_once() == 2
    finally:
        await engine.dispose()
    assert [d.state for d in await deliveries(sessions)] == ["delivered", "delivered"]
    assert sorted(orjson.loads(body)["id"] for body in inbox.accepted) == [
        activity(1)["id"],
        activity(2)["id"],
    ]


class SignallingQueue(SqlDeliveryQueue):
    """Lets a test wait for a round or an outcome instead of polling for it;
    can be told to fail its next claims, like a database that went away."""

    def __init__(self, *args: Any, failing_claims: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claimed = asyncio.Event()
        self.recorded = asyncio.Event()
        self.failing_claims = failing_claims

    async def claim(self, limit: int, lease: timedelta, **caps: Any) -> list[DeliveryJob]:
        if self.failing_claims:
            self.failing_claims -= 1
            raise ConnectionResetError("database went away")
        jobs = await super().claim(limit, lease, **caps)
        self.claimed.set()
        return jobs

    async def record(self, settlements: Sequence[Settlement]) -> None:
        await super().record(settlements)
        self.recorded.set()


async def test_stopping_mid_flight_releases_leases_and_loses_or_repeats_nothing(
    sessions: Sessions,
    sender: Community,
    http: aiohttp.ClientSession,
    clock: Clock,
    new_inbox: Any,
) -> None:
    fast, slow = await new_inbox(), await new_inbox()
    slow.answer = "hold"
    await enqueue(sessions, sender, [fast.url(), slow.url()])
    queue = SignallingQueue(sessions, clock=clock)
    worker = make_worker(sessions, http, clock, queue=queue)

    task = asyncio.create_task(worker.run_forever(poll_interval=60))
    await asyncio.wait_for(slow.arrived.wait(), EVENT_TIMEOUT)
    await asyncio.wait_for(queue.recorded.wait(), EVENT_TIMEOUT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    done, in_flight = await deliveries(sessions)
    assert (done.state, done.attempts) == ("delivered", 1)
    assert (in_flight.state, in_flight.attempts, in_flight.locked_until) == ("queued", 0, None)

    slow.answer = 202
    restarted = make_worker(sessions, http, clock)
    assert await restarted.run_once() == 1
    assert [d.state for d in await deliveries(sessions)] == ["delivered", "delivered"]
    assert len(fast.received) == len(fast.accepted) == 1
    assert len(slow.accepted) == 1


class SlowClaimQueue(SqlDeliveryQueue):
    """A claim that has leased its rows but not yet returned them when stopped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leased = asyncio.Event()
        self.finish = asyncio.Event()

    async def claim(self, limit: int, lease: timedelta, **caps: Any) -> list[DeliveryJob]:
        jobs = await super().claim(limit, lease, **caps)
        self.leased.set()
        await self.finish.wait()
        return jobs


async def test_stopping_during_a_claim_releases_what_it_leased(
    sessions: Sessions,
    sender: Community,
    http: aiohttp.ClientSession,
    clock: Clock,
    new_inbox: Any,
) -> None:
    inbox = await new_inbox()
    await enqueue(sessions, sender, [inbox.url()])
    queue = SlowClaimQueue(sessions, clock=clock)
    task = asyncio.create_task(make_worker(sessions, http, clock, queue=queue).run_once())
    await asyncio.wait_for(queue.leased.wait(), EVENT_TIMEOUT)
    assert (await the_delivery(sessions)).locked_until is not None
    task.cancel()
    queue.finish.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    delivery = await the_delivery(sessions)
    assert (delivery.state, delivery.locked_until, delivery.attempts) == ("queued", None, 0)
    assert inbox.received == []


async def test_wake_delivers_without_waiting_for_the_next_poll(
    sessions: Sessions,
    sender: Community,
    http: aiohttp.ClientSession,
    clock: Clock,
    new_inbox: Any,
) -> None:
    inbox = await new_inbox()
    queue = SignallingQueue(sessions, clock=clock)
    wake = asyncio.Event()
    task = asyncio.create_task(
        make_worker(sessions, http, clock, queue=queue).run_forever(poll_interval=600, wake=wake)
    )
    try:
        await asyncio.wait_for(queue.claimed.wait(), EVENT_TIMEOUT)
        await enqueue(sessions, sender, [inbox.url()])
        wake.set()
        await asyncio.wait_for(queue.recorded.wait(), EVENT_TIMEOUT)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(inbox.accepted) == 1


async def test_worker_survives_a_failing_round(
    sessions: Sessions,
    sender: Community,
    http: aiohttp.ClientSession,
    clock: Clock,
    new_inbox: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = await new_inbox()
    await enqueue(sessions, sender, [inbox.url()])
    queue = SignallingQueue(sessions, clock=clock, failing_claims=2)
    task = asyncio.create_task(
        make_worker(sessions, http, clock, queue=queue).run_forever(poll_interval=0.01)
    )
    try:
        await asyncio.wait_for(queue.recorded.wait(), EVENT_TIMEOUT)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(inbox.accepted) == 1
    assert "database went away" in caplog.text


async def test_a_host_that_never_answers_holds_its_own_slots_and_no_others(
    sessions: Sessions,
    sender: Community,
    http: aiohttp.ClientSession,
    clock: Clock,
    new_inbox: Any,
) -> None:
    stuck, fast = await new_inbox(), await new_inbox()
    stuck.answer = "hold"
    fast.wanted = 12
    await enqueue(sessions, sender, [stuck.url(f"/inbox/{n}") for n in range(20)], n=1)
    for n in range(2, 14):  # queued after all of the stuck host's, and more than one claim
        await enqueue(sessions, sender, [fast.url()], n=n)
    worker = make_worker(sessions, http, clock, concurrency=4, per_host=2)
    task = asyncio.create_task(worker.run_forever(poll_interval=60))
    try:
        await asyncio.wait_for(fast.enough.wait(), EVENT_TIMEOUT)
        assert len(stuck.received) == 2  # its limit, though 20 are due
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(fast.accepted) == 12
    states = [(d.host, d.state, d.attempts) for d in await deliveries(sessions)]
    assert states.count((host_of(stuck), "queued", 0)) == 20  # released, nothing lost
    assert states.count((host_of(fast), "delivered", 1)) == 12


async def test_one_round_takes_a_few_of_each_host_not_the_oldest_of_one(
    sessions: Sessions, sender: Community, http: aiohttp.ClientSession, clock: Clock, new_inbox: Any
) -> None:
    busy, quiet = await new_inbox(), await new_inbox()
    await enqueue(sessions, sender, [busy.url(f"/inbox/{n}") for n in range(30)], n=1)
    await enqueue(sessions, sender, [quiet.url()], n=2)
    worker = make_worker(sessions, http, clock, concurrency=4, per_host=2)

    assert await worker.run_once() == 9  # 8 of the busy host (2 sending, 6 waiting), 1 quiet
    assert len(quiet.accepted) == 1
    assert len(busy.accepted) == 8


async def test_a_failing_host_gives_back_what_waits_for_it(
    sessions: Sessions, sender: Community, http: aiohttp.ClientSession, clock: Clock, new_inbox: Any
) -> None:
    failing = await new_inbox()
    failing.answer = 500
    await enqueue(sessions, sender, [failing.url(f"/inbox/{n}") for n in range(10)])
    worker = make_worker(sessions, http, clock, concurrency=4, per_host=2)

    assert await worker.run_once() == 2
    attempts = sorted((d.attempts, d.locked_until) for d in await deliveries(sessions))
    assert attempts == [(0, None)] * 8 + [(1, None)] * 2
    assert len(failing.received) == 2
    assert (await peer(sessions, host_of(failing))).consecutive_failures == 1


async def test_app_worker_delivers_on_wake_and_stops_with_the_app(
    tmp_path: Path, database_url: str, aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer
) -> None:
    config = write_config(
        tmp_path,
        base_url="http://tools.test",
        slug="tools",
        name="Tool Library",
        database_url=database_url,
        allow_private_addresses=True,
    )
    community = await create_node_community(config)
    assert community.key_id is not None and community.public_key_pem is not None
    key = PublicKeyRecord(community.key_id, community.ap_id, community.public_key_pem)
    inbox = await FakeInbox(key).start(aiohttp_server)
    app = init_app(config)
    app.cleanup_ctx.append(delivery_worker_ctx)
    client = await aiohttp_client(app)

    # A session of its own, not the app's: nothing is handed over, so only the
    # wake-up can get the delivery sent before the next poll.
    async with create_session_factory(app[ENGINE])() as session, session.begin():
        await enqueue_activity(session, activity(), community, [inbox.url()])
    wake_delivery(app)
    await asyncio.wait_for(inbox.arrived.wait(), EVENT_TIMEOUT)
    assert not app[DELIVERY_WAKE].is_set()

    await client.close()
    [received] = inbox.received
    assert received.signature.valid, received.signature.reason
    assert received.signature.key_owner == community.ap_id


async def test_a_commit_hands_its_deliveries_to_the_worker_and_a_rollback_does_not(
    tmp_path: Path, database_url: str, aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer
) -> None:
    config = write_config(
        tmp_path,
        base_url="http://tools.test",
        slug="tools",
        name="Tool Library",
        database_url=database_url,
        allow_private_addresses=True,
    )
    community = await create_node_community(config)
    assert community.key_id is not None and community.public_key_pem is not None
    key = PublicKeyRecord(community.key_id, community.ap_id, community.public_key_pem)
    inbox = await FakeInbox(key).start(aiohttp_server)
    app = init_app(config)
    app[WORKER_POLL_SECONDS] = 3600.0  # no poll, no wake-up: only the hand-over sends
    client = await aiohttp_client(app)

    async with app[SESSIONS]() as session:
        with pytest.raises(RuntimeError):
            async with session.begin():
                await enqueue_activity(session, activity(1), community, [inbox.url("/dropped")])
                assert session.info.get(HANDED)  # leased to the worker as it was inserted
                raise RuntimeError("the request failed after queueing")
        assert not session.info.get(HANDED)
        async with session.begin():
            await enqueue_activity(session, activity(2), community, [inbox.url()])
        await asyncio.wait_for(inbox.arrived.wait(), EVENT_TIMEOUT)

    await client.close()  # the worker records what it sent as it stops
    [received] = inbox.received
    assert received.path == "/inbox" and received.signature.valid
    engine = create_engine(database_url)
    try:
        [delivery] = await deliveries(create_session_factory(engine))
    finally:
        await engine.dispose()
    assert (delivery.activity_id, delivery.state) == (activity(2)["id"], "delivered")


async def test_enqueue_refuses_what_could_never_be_sent(sessions: Sessions) -> None:
    remote = Community(ap_id="http://far.test/c/x", is_local=False, slug="x", host="far.test")
    async with sessions() as session:
        with pytest.raises(ValueError, match="cannot sign"):
            await enqueue_activity(session, activity(), remote, ["http://far.test/inbox"])
        with pytest.raises(ValueError, match="id"):
            await enqueue_activity(session, {"type": "Create"}, remote, [])


class LateQueue(SqlDeliveryQueue):
    """Hands out jobs whose lease is nearly over, as if they had waited in memory."""

    async def claim(self, limit: int, lease: timedelta, **caps: Any) -> list[DeliveryJob]:
        jobs = await super().claim(limit, lease, **caps)
        return [replace(job, leased_until=self._clock() + lease / 4) for job in jobs]


async def test_a_job_whose_lease_is_running_out_is_left_for_a_later_claim(
    sessions: Sessions, sender: Community, http: aiohttp.ClientSession, clock: Clock, new_inbox: Any
) -> None:
    inbox = await new_inbox()
    await enqueue(sessions, sender, [inbox.url()])
    late = make_worker(sessions, http, clock, queue=LateQueue(sessions, clock=clock))

    assert await late.run_once() == 0
    assert inbox.received == []
    clock.advance(timedelta(minutes=6))  # the lease lapses; an ordinary claim sends it once
    assert await make_worker(sessions, http, clock).run_once() == 1
    assert len(inbox.accepted) == 1
