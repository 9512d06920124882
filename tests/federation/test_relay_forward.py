"""A relay forwarding others' activities unchanged (Mastodon-style): the inbox keeps only
what the relay's signature proves, an Announce of the object id, and only for a relay
the node subscribes to."""

from __future__ import annotations

from typing import Any

import orjson

from federation.signatures import PublicKeyRecord
from tests.federation import test_inbox_pipeline as pipeline
from tests.federation.test_inbox_pipeline import ALICE, BOB, BOB_KEY, Harness, assert_refused

# The pipeline's fixtures: an inbox on a real server, with storage and keys in memory.
alice_keys, bob_keys, harness = pipeline.alice_keys, pipeline.bob_keys, pipeline.harness

NOTE = "https://mastodon.example/c/oak/listings/1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def create(n: int = 1, kind: str = "Create", **obj: Any) -> bytes:
    return orjson.dumps(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"https://mastodon.example/activities/{n}",
            "type": kind,
            "actor": ALICE,
            "object": {
                "id": NOTE,
                "type": "Note",
                "attributedTo": ALICE,
                "to": [PUBLIC],
                "content": "A ladder",
                "kind": "offer",
                **obj,
            },
        }
    )


def relay_is(harness: Harness, relay: str | None) -> None:
    async def is_relay(actor: str) -> bool:
        return actor == relay

    harness.receiver.is_relay = is_relay


async def test_a_subscribed_relay_forwarding_a_create_is_kept_as_its_announce_of_the_id(
    harness: Harness,
) -> None:
    relay_is(harness, BOB)
    body = create()
    status, payload = await harness.post(body, harness.signed(body, key_id=BOB_KEY))
    assert status == 202, payload
    again = create()
    status, _ = await harness.post(again, harness.signed(again, key_id=BOB_KEY))
    assert status == 202
    [entry] = harness.inbox.entries
    stored = orjson.loads(entry.raw)
    assert (entry.type, entry.actor) == ("Announce", BOB)
    assert stored["object"]["id"] == NOTE and "content" not in stored["object"]
    assert stored["object"]["kind"] == "offer"
    assert stored["id"].startswith(f"{BOB}#forwarded-")


async def test_an_activity_signed_by_a_relay_we_do_not_subscribe_to_is_refused(
    harness: Harness,
) -> None:
    relay_is(harness, None)
    body = create()
    status, payload = await harness.post(body, harness.signed(body, key_id=BOB_KEY))
    assert_refused(status, payload, 401, "bad_signature")
    assert harness.inbox.entries == []


async def test_another_key_on_the_relays_host_cannot_speak_for_the_relay(
    harness: Harness,
) -> None:
    relay_is(harness, BOB)
    other_key = f"{BOB}#other-key"
    owner = "https://other.example/users/carol"
    harness.keys.records[other_key] = PublicKeyRecord(
        other_key, owner, harness.keys.records[BOB_KEY].public_key_pem
    )
    body = create()
    status, payload = await harness.post(body, harness.signed(body, key_id=other_key))
    assert_refused(status, payload, 401, "actor_mismatch")
    assert harness.inbox.entries == []


async def test_a_forwarded_delete_is_kept_as_a_hint_naming_only_the_deleted_id(
    harness: Harness,
) -> None:
    relay_is(harness, BOB)
    body = create(kind="Delete")
    status, _ = await harness.post(body, harness.signed(body, key_id=BOB_KEY))
    assert status == 202
    [entry] = harness.inbox.entries
    assert orjson.loads(entry.raw)["object"] == {"id": NOTE, "type": "Tombstone"}


async def test_what_a_relay_forwards_besides_creates_updates_and_deletes_is_dropped(
    harness: Harness,
) -> None:
    relay_is(harness, BOB)
    body = create(kind="Like")
    status, _ = await harness.post(body, harness.signed(body, key_id=BOB_KEY))
    assert status == 202
    assert harness.inbox.entries == []


async def test_a_forwarded_status_that_is_no_listing_is_dropped_without_a_fetch(
    harness: Harness,
) -> None:
    relay_is(harness, BOB)
    body = orjson.loads(create())
    del body["object"]["kind"]
    raw = orjson.dumps(body)
    status, _ = await harness.post(raw, harness.signed(raw, key_id=BOB_KEY))
    assert status == 202
    assert harness.inbox.entries == []
