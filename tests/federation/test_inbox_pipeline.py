"""The inbox pipeline on a real aiohttp server, with storage and keys faked in memory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from federation.errors import DeliveryNetworkError
from federation.inbox import MAX_BODY_BYTES, InboxReceiver, url_host
from federation.inbox_processor import (
    IgnoreActivity,
    InboundActivity,
    InboxProcessor,
    Outcome,
    QueuedActivity,
    Retry,
)
from federation.keys import generate_key_pair
from federation.rate_limit import HostRateLimiter, Rate
from federation.signatures import KeyLookupBusy, PublicKeyRecord, sign_request
from federation.vocab import Activity

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mastodon"
ALICE = "https://mastodon.example/users/alice"
ALICE_KEY = f"{ALICE}#main-key"
BOB = "https://other.example/users/bob"
BOB_KEY = f"{BOB}#main-key"
MALLORY = "https://mastodon.example/users/mallory"
MALLORY_KEY = f"{MALLORY}#main-key"
LOCAL_HOST = "local.test"
UNVERIFIED = "signature could not be verified"
ACTIVITY_JSON = "application/activity+json"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture(scope="module")
def alice_keys() -> tuple[str, str]:
    return generate_key_pair()


@pytest.fixture(scope="module")
def bob_keys() -> tuple[str, str]:
    return generate_key_pair()


# --- fakes -----------------------------------------------------------------------------


@dataclass
class Entry:
    id: int
    activity_id: str
    type: str
    actor: str
    raw: str
    recipient: str | None
    state: str = "received"
    error: str | None = None
    attempts: int = 0
    locked_until: datetime | None = None


@dataclass
class MemoryInbox:
    """Both sides of the inbox log: what the receiver stores and the processor claims."""

    entries: list[Entry] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    wakes: int = 0
    fail_store: bool = False
    recorded: list[int] = field(default_factory=list)

    async def is_blocked(self, host: str) -> bool:
        return host in self.blocked or host.partition(":")[0] in self.blocked

    async def store(self, activity: Activity, raw: bytes, recipient: str | None) -> bool:
        if self.fail_store:
            raise ConnectionError("database is down")
        if any(entry.activity_id == activity.id for entry in self.entries):
            return False
        self.entries.append(
            Entry(
                len(self.entries) + 1,
                activity.id,
                activity.type,
                activity.actor,
                raw.decode(),
                recipient,
            )
        )
        return True

    def wake(self) -> None:
        self.wakes += 1

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> Sequence[QueuedActivity]:
        due = [
            e
            for e in self.entries
            if e.state == "received" and (e.locked_until is None or e.locked_until <= now)
        ][:limit]
        for entry in due:
            entry.locked_until = now + lease
            entry.attempts += 1
        return [QueuedActivity(e.id, e.raw, e.recipient, e.attempts) for e in due]

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        self.recorded.append(len(outcomes))
        for outcome in outcomes:
            entry = self.entries[outcome.entry_id - 1]
            retry = outcome.state == "retry"
            entry.state = "received" if retry else outcome.state
            entry.error, entry.locked_until = outcome.error, outcome.retry_at


@dataclass
class FakeKeys:
    """A key resolver that knows a fixed set of keys and counts lookups."""

    records: dict[str, PublicKeyRecord] = field(default_factory=dict)
    calls: list[tuple[str, bool]] = field(default_factory=list)
    broken: bool = False

    async def __call__(self, key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        self.calls.append((key_id, refresh))
        if self.broken:
            raise ConnectionError("key cache unreachable")
        return self.records.get(key_id)


@dataclass
class Harness:
    client: TestClient[Any, Any]
    inbox: MemoryInbox
    keys: FakeKeys
    alice_private: str
    bob_private: str
    receiver: InboxReceiver

    def url(self, path: str = "/inbox") -> str:
        return str(self.client.make_url(path))

    def signed(
        self,
        body: bytes,
        *,
        path: str = "/inbox",
        key_id: str = ALICE_KEY,
        private: str | None = None,
        content_type: str = ACTIVITY_JSON,
        date: str | None = None,
    ) -> dict[str, str]:
        headers = {"Content-Type": content_type, "Host": LOCAL_HOST}
        if date is not None:
            headers["Date"] = date
        private = private or (self.alice_private if key_id == ALICE_KEY else self.bob_private)
        return sign_request("POST", self.url(path), headers, body, key_id, private)

    async def post(
        self, body: bytes, headers: dict[str, str] | None = None, path: str = "/inbox"
    ) -> tuple[int, dict[str, Any]]:
        headers = self.signed(body, path=path) if headers is None else headers
        response = await self.client.post(path, data=body, headers=headers)
        text = await response.read()
        return response.status, orjson.loads(text) if text else {}


@pytest.fixture
async def harness(
    aiohttp_client: ClientFactory, alice_keys: tuple[str, str], bob_keys: tuple[str, str]
) -> Harness:
    inbox = MemoryInbox()
    keys = FakeKeys(
        {
            ALICE_KEY: PublicKeyRecord(ALICE_KEY, ALICE, alice_keys[1]),
            BOB_KEY: PublicKeyRecord(BOB_KEY, BOB, bob_keys[1]),
            MALLORY_KEY: PublicKeyRecord(MALLORY_KEY, MALLORY, bob_keys[1]),
        }
    )
    receiver = InboxReceiver(
        inbox, keys, inbox.wake, expected_host=LOCAL_HOST, max_skew=timedelta(minutes=5)
    )

    async def community_inbox(request: web.Request) -> web.Response:
        return await receiver.receive(request, recipient="http://local.test/c/tools")

    app = web.Application()
    app.router.add_post("/inbox", receiver.__call__)
    app.router.add_post("/c/tools/inbox", community_inbox)
    client = await aiohttp_client(app)
    return Harness(client, inbox, keys, alice_keys[0], bob_keys[0], receiver)


def follow(n: int = 1, actor: str = ALICE, **extra: Any) -> dict[str, Any]:
    host = actor.split("/")[2]
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"https://{host}/follows/{n}",
        "type": "Follow",
        "actor": actor,
        "object": "http://local.test/c/tools",
        **extra,
    }


def body_of(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


def assert_refused(status: int, payload: dict[str, Any], expected: int, code: str) -> str:
    assert status == expected, payload
    assert payload["error"]["code"] == code
    message = payload["error"]["message"]
    assert isinstance(message, str) and message
    return message


class Recorder:
    """Handlers that remember what they saw, and can be told to fail."""

    def __init__(self) -> None:
        self.seen: list[InboundActivity] = []
        self.event = asyncio.Event()

    async def __call__(self, inbound: InboundActivity) -> None:
        self.seen.append(inbound)
        self.event.set()


# --- accepting ---------------------------------------------------------------------------


async def test_mastodon_follow_is_accepted_stored_once_and_wakes_the_processor(
    harness: Harness,
) -> None:
    raw = (FIXTURES / "follow.json").read_bytes()
    status, payload = await harness.post(raw)
    assert status == 202, payload
    [entry] = harness.inbox.entries
    assert entry.raw == raw.decode(), "the raw bytes are stored as they came"
    assert (entry.type, entry.actor, entry.recipient) == ("Follow", ALICE, None)
    assert harness.inbox.wakes == 1


async def test_duplicate_delivery_is_accepted_but_stored_and_handled_once(
    harness: Harness,
) -> None:
    body = body_of(follow())
    assert (await harness.post(body))[0] == 202
    assert (await harness.post(body))[0] == 202
    assert len(harness.inbox.entries) == 1
    assert harness.inbox.wakes == 1
    recorder = Recorder()
    processor = InboxProcessor(harness.inbox, {"Follow": recorder})
    assert await processor.run_once(10) == 1
    assert await processor.run_once(10) == 0
    assert [inbound.activity.id for inbound in recorder.seen] == [follow()["id"]]
    assert harness.inbox.entries[0].state == "handled"


async def test_per_community_inbox_records_its_recipient(harness: Harness) -> None:
    status, _ = await harness.post(
        body_of(follow()),
        harness.signed(body_of(follow()), path="/c/tools/inbox"),
        "/c/tools/inbox",
    )
    assert status == 202
    assert harness.inbox.entries[0].recipient == "http://local.test/c/tools"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/activity+json",
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "application/ld+json",
        "application/json; charset=utf-8",
        "Application/Activity+JSON; charset=UTF-8",
    ],
)
async def test_activity_media_types_are_accepted(harness: Harness, content_type: str) -> None:
    body = body_of(follow())
    status, _ = await harness.post(body, harness.signed(body, content_type=content_type))
    assert status == 202


async def test_request_target_includes_the_raw_query(harness: Harness) -> None:
    body = body_of(follow())
    path = "/inbox?from=a%2Fb&x=1"
    status, payload = await harness.post(body, harness.signed(body, path=path), path)
    assert status == 202, payload


async def test_unverifiable_self_delete_is_accepted_and_dropped(harness: Harness) -> None:
    gone = "https://gone.example/users/carol"
    document = {"id": f"{gone}#delete", "type": "Delete", "actor": gone, "object": gone}
    body = body_of(document)
    headers = harness.signed(body, key_id=f"{gone}#main-key", private=harness.alice_private)
    assert (await harness.post(body, headers))[0] == 202
    assert harness.inbox.entries == []


# --- refusing -----------------------------------------------------------------------------


async def test_unsigned_post_is_refused(harness: Harness) -> None:
    status, payload = await harness.post(body_of(follow()), {"Content-Type": ACTIVITY_JSON})
    assert assert_refused(status, payload, 401, "bad_signature") == UNVERIFIED
    assert harness.inbox.entries == []


async def test_tampered_body_is_refused(harness: Harness) -> None:
    headers = harness.signed(body_of(follow()))
    status, payload = await harness.post(body_of(follow(object="http://local.test/c/x")), headers)
    assert assert_refused(status, payload, 401, "bad_signature") == UNVERIFIED


async def test_forged_digest_is_refused(harness: Harness) -> None:
    tampered = body_of(follow(object="http://local.test/c/x"))
    headers = harness.signed(body_of(follow()))
    headers["Digest"] = "SHA-256=" + "A" * 43 + "="
    status, payload = await harness.post(tampered, headers)
    assert_refused(status, payload, 401, "bad_signature")
    assert harness.inbox.entries == []


@pytest.mark.parametrize("offset", [-360, 360], ids=["6-minutes-old", "6-minutes-ahead"])
async def test_date_outside_the_skew_is_refused(harness: Harness, offset: int) -> None:
    body = body_of(follow())
    headers = harness.signed(body, date=formatdate(time.time() + offset, usegmt=True))
    status, payload = await harness.post(body, headers)
    message = assert_refused(status, payload, 401, "bad_signature")
    assert message == "signature date is too far from now"


async def test_unknown_key_is_refused(harness: Harness) -> None:
    body = body_of(follow())
    headers = harness.signed(
        body, key_id="https://mastodon.example/users/alice#other-key", private=harness.alice_private
    )
    status, payload = await harness.post(body, headers)
    assert assert_refused(status, payload, 401, "bad_signature") == UNVERIFIED


async def test_key_owner_other_than_the_actor_is_refused(harness: Harness) -> None:
    body = body_of(follow())  # actor: alice
    headers = harness.signed(body, key_id=MALLORY_KEY, private=harness.bob_private)
    status, payload = await harness.post(body, headers)
    message = assert_refused(status, payload, 401, "actor_mismatch")
    assert MALLORY in message and ALICE in message
    assert harness.inbox.entries == []


async def test_key_on_another_host_than_the_actor_is_refused_without_a_lookup(
    harness: Harness,
) -> None:
    """Otherwise anyone could have us fetch, signed, any URL they name as a keyId."""
    body = body_of(follow())  # actor: alice on mastodon.example
    for key_id in (BOB_KEY, "https://victim.example/c/x/partner-listings"):
        status, payload = await harness.post(body, harness.signed(body, key_id=key_id))
        assert assert_refused(status, payload, 401, "bad_signature") == UNVERIFIED
    assert harness.keys.calls == []
    assert harness.inbox.entries == []


async def test_signature_made_for_another_host_is_refused_without_a_lookup(
    harness: Harness,
) -> None:
    body = body_of(follow())
    headers = sign_request(
        "POST",
        "https://elsewhere.example/inbox",
        {"Content-Type": ACTIVITY_JSON},
        body,
        ALICE_KEY,
        harness.alice_private,
    )
    status, payload = await harness.post(body, headers)
    assert assert_refused(status, payload, 401, "bad_signature") == UNVERIFIED
    assert harness.keys.calls == []


async def test_refusal_hides_why_the_key_could_not_be_had(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    detail = "connect to 10.1.2.3:8443 refused; upstream answered 502"

    async def unreachable(key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        raise DeliveryNetworkError(detail, url=key_id)

    harness.receiver.resolve_key = unreachable
    with caplog.at_level(logging.INFO):
        status, payload = await harness.post(body_of(follow()))
    assert assert_refused(status, payload, 401, "bad_signature") == UNVERIFIED
    assert "10.1.2.3" not in orjson.dumps(payload).decode()
    assert any(detail in record.getMessage() for record in caplog.records)


async def test_busy_key_lookup_asks_the_sender_to_retry_later(harness: Harness) -> None:
    async def busy(key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        raise KeyLookupBusy("fetching too many keys", url=key_id, retry_after=12.5)

    harness.receiver.resolve_key = busy
    response = await harness.client.post(
        "/inbox", data=body_of(follow()), headers=harness.signed(body_of(follow()))
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "13"


async def test_body_one_byte_over_the_limit_is_refused_by_content_length(
    harness: Harness,
) -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    status, payload = await harness.post(body, {"Content-Type": ACTIVITY_JSON})
    assert_refused(status, payload, 413, "payload_too_large")


async def test_chunked_body_over_the_limit_is_refused_while_reading(harness: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b" " * (64 * 1024)
        yield b" "

    response = await harness.client.post(
        "/inbox", data=chunks(), headers={"Content-Type": ACTIVITY_JSON}
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_body_of_exactly_the_limit_is_read(harness: Harness) -> None:
    document = follow()
    document["padding"] = ""
    size = len(body_of(document))
    document["padding"] = "x" * (MAX_BODY_BYTES - size)
    body = body_of(document)
    assert len(body) == MAX_BODY_BYTES
    assert (await harness.post(body))[0] == 202


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_other_media_types_are_refused(harness: Harness, content_type: str) -> None:
    body = body_of(follow())
    status, payload = await harness.post(body, harness.signed(body, content_type=content_type))
    assert_refused(status, payload, 415, "unsupported_media_type")


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"a string"'])
async def test_invalid_json_is_refused(harness: Harness, body: bytes) -> None:
    status, payload = await harness.post(body, {"Content-Type": ACTIVITY_JSON})
    assert_refused(status, payload, 400, "invalid_json")


def nested_follow(levels: int) -> bytes:
    """A Follow whose JSON nests `levels` deep in all (the activity is level 1)."""
    deep: Any = "bottom"
    for _ in range(levels - 1):
        deep = [deep]
    return body_of(follow(extra=deep))


async def test_json_nested_too_deep_is_refused(harness: Harness) -> None:
    status, payload = await harness.post(nested_follow(33))
    assert "deeper than 32" in assert_refused(status, payload, 400, "invalid_json")


async def test_json_exactly_at_the_depth_limit_is_read(harness: Harness) -> None:
    assert (await harness.post(nested_follow(32)))[0] == 202


async def test_pathologically_deep_json_is_refused_before_any_key_lookup(
    harness: Harness,
) -> None:
    body = b'{"x":' * 5000 + b"{}" + b"}" * 5000
    status, payload = await harness.post(body, {"Content-Type": ACTIVITY_JSON})
    assert_refused(status, payload, 400, "invalid_json")
    assert harness.keys.calls == []


@pytest.mark.parametrize(
    "document",
    [
        {"type": "Follow", "actor": ALICE, "object": "http://local.test/c/tools"},
        {**follow(), "id": "not a url"},
        {**follow(), "type": 7},
        {**follow(), "object": None},
        {**follow(), "id": "https://elsewhere.example/follows/1"},
        {**follow(), "type": "X" * 65},
    ],
    ids=["no-id", "bad-id", "bad-type", "no-object", "id-on-another-host", "long-type"],
)
async def test_documents_that_are_not_activities_are_refused(
    harness: Harness, document: dict[str, Any]
) -> None:
    status, payload = await harness.post(body_of(document))
    assert_refused(status, payload, 400, "invalid_activity")
    assert harness.inbox.entries == []


@pytest.mark.parametrize("blocked", ["mastodon.example", "mastodon.example:443"])
async def test_blocked_actor_domain_is_refused(harness: Harness, blocked: str) -> None:
    harness.inbox.blocked.add(blocked.partition(":")[0])
    status, payload = await harness.post(body_of(follow()))
    assert "mastodon.example" in assert_refused(status, payload, 403, "domain_blocked")
    assert harness.keys.calls == [], "a blocked domain costs no key lookup"
    assert harness.inbox.entries == []


async def test_blocked_key_domain_is_refused_whatever_the_actor(harness: Harness) -> None:
    harness.inbox.blocked.add("other.example")
    body = body_of(follow())
    status, payload = await harness.post(body, harness.signed(body, key_id=BOB_KEY))
    assert_refused(status, payload, 403, "domain_blocked")


async def test_key_store_failure_asks_the_sender_to_retry(harness: Harness) -> None:
    harness.keys.broken = True
    status, payload = await harness.post(body_of(follow()))
    assert_refused(status, payload, 503, "unavailable")


async def test_storage_failure_asks_the_sender_to_retry(harness: Harness) -> None:
    harness.inbox.fail_store = True
    status, payload = await harness.post(body_of(follow()))
    assert_refused(status, payload, 503, "unavailable")
    assert harness.inbox.wakes == 0


# --- handling -------------------------------------------------------------------------------


async def accepted(harness: Harness, *documents: dict[str, Any]) -> MemoryInbox:
    for document in documents:
        status, payload = await harness.post(body_of(document))
        assert status == 202, payload
    return harness.inbox


async def test_unknown_type_is_stored_and_recorded_as_ignored(harness: Harness) -> None:
    inbox = await accepted(harness, follow(type="Listen"))
    assert await InboxProcessor(inbox, {"Follow": Recorder()}).run_once(10) == 1
    assert inbox.entries[0].state == "ignored"
    assert "Listen" in (inbox.entries[0].error or "")


async def test_handler_exception_is_recorded_and_the_loop_goes_on(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = await accepted(harness, follow(1), follow(2))
    recorder = Recorder()

    async def explode(inbound: InboundActivity) -> None:
        if inbound.activity.id.endswith("/1"):
            raise KeyError("no such follow")
        await recorder(inbound)

    assert await InboxProcessor(inbox, {"Follow": explode}).run_once(10) == 2
    assert [e.state for e in inbox.entries] == ["failed", "handled"]
    assert inbox.entries[0].error == "KeyError: 'no such follow'"
    assert any(record.exc_info for record in caplog.records), "logged with a traceback"


async def test_outcomes_of_a_batch_are_written_together(harness: Harness) -> None:
    inbox = await accepted(harness, follow(1), follow(2), follow(3, type="Listen"))
    assert await InboxProcessor(inbox, {"Follow": Recorder()}).run_once(10) == 3
    assert inbox.recorded == [3]
    assert [e.state for e in inbox.entries] == ["handled", "handled", "ignored"]


async def test_handler_may_ignore_an_activity(harness: Harness) -> None:
    inbox = await accepted(harness, follow())

    async def ignore(inbound: InboundActivity) -> None:
        raise IgnoreActivity("not one of our communities")

    await InboxProcessor(inbox, {"Follow": ignore}).run_once()
    assert (inbox.entries[0].state, inbox.entries[0].error) == (
        "ignored",
        "not one of our communities",
    )


async def test_retry_releases_the_entry_until_attempts_run_out(harness: Harness) -> None:
    inbox = await accepted(harness, follow())
    now = datetime(2026, 1, 1, tzinfo=UTC)
    attempts: list[int] = []

    async def flaky(inbound: InboundActivity) -> None:
        attempts.append(inbound.attempt)
        raise Retry("actor fetch failed") from DeliveryNetworkError("timeout")

    delays = (timedelta(seconds=30), timedelta(minutes=5))
    processor = InboxProcessor(inbox, {"Follow": flaky}, retry_delays=delays, clock=lambda: now)
    assert await processor.run_once() == 1
    assert inbox.entries[0].state == "received"
    assert inbox.entries[0].locked_until == now + timedelta(seconds=30)
    assert await processor.run_once() == 0, "not due yet"
    for step in (timedelta(seconds=30), timedelta(minutes=5, seconds=30)):
        now = datetime(2026, 1, 1, tzinfo=UTC) + step
        assert await processor.run_once() == 1
    assert attempts == [1, 2, 3]
    assert inbox.entries[0].state == "failed"
    assert "gave up after 3 attempts" in (inbox.entries[0].error or "")


async def test_entry_claimed_too_often_is_given_up(harness: Harness) -> None:
    """A handler that kills its worker each time must not be retried for ever."""
    inbox = await accepted(harness, follow())
    inbox.entries[0].attempts = 10
    recorder = Recorder()
    await InboxProcessor(inbox, {"Follow": recorder}).run_once()
    assert recorder.seen == []
    assert inbox.entries[0].state == "failed"


async def test_cancellation_of_a_handler_is_not_swallowed(harness: Harness) -> None:
    inbox = await accepted(harness, follow())

    async def cancelled(inbound: InboundActivity) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await InboxProcessor(inbox, {"Follow": cancelled}).run_once()
    assert inbox.entries[0].state == "received", "left for the lease to run out"


async def test_run_forever_handles_what_arrives_and_stops_when_cancelled(
    harness: Harness,
) -> None:
    recorder = Recorder()
    wake = asyncio.Event()
    processor = InboxProcessor(harness.inbox, {"Follow": recorder})
    task = asyncio.create_task(processor.run_forever(3600, wake))
    await accepted(harness, follow())
    wake.set()
    await asyncio.wait_for(recorder.event.wait(), 5)
    assert harness.inbox.entries[0].state == "handled"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_run_forever_survives_a_failing_queue(harness: Harness) -> None:
    calls = 0

    class BrokenQueue(MemoryInbox):
        async def claim(
            self, now: datetime, limit: int, lease: timedelta
        ) -> Sequence[QueuedActivity]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("database restarting")
            return await super().claim(now, limit, lease)

    queue = BrokenQueue(entries=(await accepted(harness, follow())).entries)
    recorder = Recorder()
    task = asyncio.create_task(
        InboxProcessor(queue, {"Follow": recorder}).run_forever(0.01, asyncio.Event())
    )
    await asyncio.wait_for(recorder.event.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls >= 2


async def test_stop_lets_run_forever_return_cleanly(harness: Harness) -> None:
    processor = InboxProcessor(harness.inbox, {})
    task = asyncio.create_task(processor.run_forever(3600, asyncio.Event()))
    await asyncio.sleep(0)
    processor.stop()
    await asyncio.wait_for(task, 5)
    stopped_early = InboxProcessor(harness.inbox, {})
    stopped_early.stop()
    await asyncio.wait_for(stopped_early.run_forever(3600, asyncio.Event()), 5)


def test_hosts_compare_without_default_ports() -> None:
    assert url_host("https://A.example:443/users/a") == "a.example"
    assert url_host("http://a.example:80/x") == "a.example"
    assert url_host("https://a.example:8443/x") == "a.example:8443"
    assert url_host("http://[::1]:8080/x") == "[::1]:8080"
    assert url_host("not a url") is None
    assert url_host(7) is None


# --- rates -----------------------------------------------------------------------------------


async def test_follows_over_a_hosts_rate_are_refused_with_retry_after(harness: Harness) -> None:
    harness.receiver.limiter = HostRateLimiter({"follow": Rate(burst=2, per_minute=1)})
    statuses = [(await harness.post(body_of(follow(n))))[0] for n in range(3)]
    assert statuses == [202, 202, 429]
    response = await harness.client.post(
        "/inbox", data=body_of(follow(9)), headers=harness.signed(body_of(follow(9)))
    )
    assert response.status == 429
    assert (await response.json())["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 30
    bob = body_of(follow(1, actor=BOB))
    assert (await harness.post(bob, harness.signed(bob, key_id=BOB_KEY)))[0] == 202
    undo = {**follow(4), "type": "Undo", "object": follow(1)["id"]}
    assert (await harness.post(body_of(undo)))[0] == 202, "other activities have their own rate"
    assert len(harness.inbox.entries) == 4


async def test_forged_follows_do_not_spend_the_claimed_hosts_rate(harness: Harness) -> None:
    harness.receiver.limiter = HostRateLimiter({"follow": Rate(burst=1, per_minute=1)})
    for n in range(5):
        forged = body_of(follow(n))
        headers = harness.signed(forged, private=harness.bob_private)  # not alice's key
        assert (await harness.post(forged, headers))[0] == 401
    assert (await harness.post(body_of(follow(9))))[0] == 202


async def test_a_host_over_its_rate_costs_no_key_lookup(harness: Harness) -> None:
    harness.receiver.limiter = HostRateLimiter({"follow": Rate(burst=1, per_minute=1)})
    assert (await harness.post(body_of(follow(1))))[0] == 202
    calls = len(harness.keys.calls)
    assert (await harness.post(body_of(follow(2))))[0] == 429
    assert len(harness.keys.calls) == calls


# --- handling several actors side by side ---------------------------------------------------


@dataclass
class ListQueue:
    """A queue that hands out fixed entries once and keeps what was recorded."""

    entries: list[QueuedActivity]
    outcomes: list[Outcome] = field(default_factory=list)

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> Sequence[QueuedActivity]:
        claimed, self.entries = self.entries[:limit], self.entries[limit:]
        return claimed

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        self.outcomes.extend(outcomes)


def queued(n: int, actor: str) -> QueuedActivity:
    raw = orjson.dumps(follow(n, actor=actor)).decode()
    return QueuedActivity(n, raw, None, 1, actor)


async def test_different_servers_are_handled_side_by_side_each_in_order() -> None:
    bob, carol = "https://b.example/users/bob", "https://c.example/users/carol"
    queue = ListQueue([queued(1, ALICE), queued(2, ALICE), queued(3, bob), queued(4, carol)])
    events: list[str] = []
    all_first_started = asyncio.Event()

    async def handle(inbound: InboundActivity) -> None:
        n = inbound.entry_id
        events.append(f"start {n}")
        if sum(e.startswith("start") for e in events) == 3:
            all_first_started.set()
        if n != 2:
            # Finishes only once three handlers are running at the same time.
            await asyncio.wait_for(all_first_started.wait(), 5)
        events.append(f"end {n}")

    processor = InboxProcessor(queue, {"Follow": handle}, concurrency=3)
    assert await processor.run_once() == 4
    assert sorted(o.state for o in queue.outcomes) == ["handled"] * 4
    assert set(events[:3]) == {"start 1", "start 3", "start 4"}
    assert events.index("end 1") < events.index("start 2"), "one server's entries stay in order"


async def test_two_actors_of_one_server_are_handled_in_turn() -> None:
    # A server's quota of pending proposals is shared by its actors: never raced.
    alice2 = ALICE.replace("/alice", "/alice2")
    queue = ListQueue([queued(1, ALICE), queued(2, alice2)])
    events: list[str] = []

    async def handle(inbound: InboundActivity) -> None:
        events.append(f"start {inbound.entry_id}")
        await asyncio.sleep(0)
        events.append(f"end {inbound.entry_id}")

    await InboxProcessor(queue, {"Follow": handle}, concurrency=4).run_once()
    assert events == ["start 1", "end 1", "start 2", "end 2"]


async def test_no_more_servers_are_handled_at_once_than_allowed() -> None:
    actors = [f"https://{name}.example/users/x" for name in "abcdefgh"]
    queue = ListQueue([queued(n, actor) for n, actor in enumerate(actors, 1)])
    running, most = 0, 0

    async def handle(inbound: InboundActivity) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1

    assert await InboxProcessor(queue, {"Follow": handle}, concurrency=2).run_once() == 8
    assert len(queue.outcomes) == 8
    assert most == 2


async def test_one_at_a_time_keeps_arrival_order_across_servers() -> None:
    bob = "https://b.example/users/bob"
    queue = ListQueue([queued(1, ALICE), queued(2, bob), queued(3, ALICE), queued(4, bob)])
    seen: list[int] = []

    async def handle(inbound: InboundActivity) -> None:
        seen.append(inbound.entry_id)

    await InboxProcessor(queue, {"Follow": handle}).run_once()
    assert seen == [1, 2, 3, 4]


# --- JSON-LD after the 202 ---------------------------------------------------------------------

LEMMY_CONTEXT = ["https://join-lemmy.org/context.json", "https://www.w3.org/ns/activitystreams"]


async def test_a_document_that_needs_json_ld_is_accepted_without_it_and_read_later(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import federation.jsonld as jsonld

    calls: list[str] = []
    real = jsonld.normalize_with_pyld

    def counting(doc: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(str(doc.get("id")))
        return real(doc, **kwargs)

    monkeypatch.setattr(jsonld, "normalize_with_pyld", counting)
    document = {**follow(7), "@context": LEMMY_CONTEXT}
    inbox = await accepted(harness, document)
    assert calls == [], "no JSON-LD processing while the sender waits"
    recorder = Recorder()
    assert await InboxProcessor(inbox, {"Follow": recorder}).run_once() == 1
    assert calls == [document["id"]]
    [inbound] = recorder.seen
    assert (inbound.activity.id, inbound.activity.actor) == (document["id"], ALICE)


async def test_an_activity_json_ld_reads_as_another_is_not_handled() -> None:
    raw = orjson.dumps(follow(8)).decode()
    accepted_as = "https://a.example/follows/other"
    queue = ListQueue([QueuedActivity(1, raw, None, 1, ALICE, accepted_as)])
    recorder = Recorder()
    await InboxProcessor(queue, {"Follow": recorder}).run_once()
    [outcome] = queue.outcomes
    assert outcome.state == "failed" and "JSON-LD reads it as" in (outcome.error or "")
    assert recorder.seen == []


# --- batches --------------------------------------------------------------------------------


def announce(n: int, actor: str = ALICE) -> QueuedActivity:
    """An activity of another type than `follow`'s, for a batch handler to take."""
    host = actor.split("/")[2]
    document = {
        "id": f"https://{host}/announces/{n}",
        "type": "Announce",
        "actor": actor,
        "object": f"https://{host}/notes/{n}",
    }
    return QueuedActivity(n, orjson.dumps(document).decode(), None, 1, actor)


class AnnounceBatch:
    """Takes Announces in runs; fails the ones whose number is in `refuse`."""

    def __init__(self, refuse: frozenset[int] = frozenset(), explode: bool = False) -> None:
        self.runs: list[list[int]] = []
        self.refuse = refuse
        self.explode = explode

    def takes(self, activity: Activity) -> bool:
        return activity.type == "Announce"

    async def handle(self, batch: Sequence[InboundActivity]) -> list[BaseException | None]:
        self.runs.append([inbound.entry_id for inbound in batch])
        if self.explode:
            raise RuntimeError("the database went away")
        return [
            IgnoreActivity("not ours") if inbound.entry_id in self.refuse else None
            for inbound in batch
        ]


async def test_runs_of_what_the_batch_handler_takes_go_to_it_in_order() -> None:
    entries = [announce(1), announce(2), queued(3, ALICE), announce(4), announce(5), announce(6)]
    queue = ListQueue(entries)
    seen: list[int] = []

    async def handle(inbound: InboundActivity) -> None:
        seen.append(inbound.entry_id)

    batch = AnnounceBatch(refuse=frozenset({5}))
    processor = InboxProcessor(queue, {"Follow": handle}, batch_handler=batch, batch_size=10)
    assert await processor.run_once() == 6
    assert batch.runs == [[1, 2], [4, 5, 6]], "the Follow in between splits the run"
    assert seen == [3]
    states = {outcome.entry_id: outcome.state for outcome in queue.outcomes}
    assert states == {
        1: "handled",
        2: "handled",
        3: "handled",
        4: "handled",
        5: "ignored",
        6: "handled",
    }


async def test_a_run_is_cut_at_the_batch_size() -> None:
    queue = ListQueue([announce(n) for n in range(1, 8)])
    batch = AnnounceBatch()
    processor = InboxProcessor(queue, {}, batch_handler=batch, batch_size=3)
    assert await processor.run_once(7) == 7
    assert batch.runs == [[1, 2, 3], [4, 5, 6], [7]]


async def test_a_failing_batch_is_handled_again_one_entry_at_a_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = ListQueue([announce(1), announce(2), announce(3)])
    seen: list[int] = []

    async def handle(inbound: InboundActivity) -> None:
        seen.append(inbound.entry_id)
        if inbound.entry_id == 2:
            raise IgnoreActivity("not ours")

    batch = AnnounceBatch(explode=True)
    processor = InboxProcessor(queue, {"Announce": handle}, batch_handler=batch)
    with caplog.at_level(logging.ERROR):
        assert await processor.run_once() == 3
    assert batch.runs == [[1, 2, 3]] and seen == [1, 2, 3]
    states = [outcome.state for outcome in sorted(queue.outcomes, key=lambda o: o.entry_id)]
    assert states == ["handled", "ignored", "handled"], "one bad entry never costs the others"
    assert "handling them one by one" in caplog.text
