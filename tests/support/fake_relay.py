"""A small ActivityPub relay on 127.0.0.1, for multi-node tests.

It accepts a `Follow` of the Public collection (answering `Accept` from its
own actor), forgets a subscriber on `Undo`, and relays what a subscriber
sends it to every other subscriber, signed with the relay's own key: with
`mode="announce"` each `Create`/`Update` becomes an `Announce` of the
object's id, as LitePub relays do; with `mode="forward"` the original body
goes out unchanged, as Mastodon-style relays do. It records every activity
it receives, so that a test can check what a node sent to the network.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from federation.signatures import sign_request
from tests.support.fake_remote import fake_keys
from tests.support.inprocess import serving
from tests.support.processes import free_port

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_JSON = "application/activity+json"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"


@dataclass
class FakeRelay:
    base: str
    http: aiohttp.ClientSession
    mode: str = "announce"
    subscribers: dict[str, str] = field(default_factory=dict)
    """Subscriber actor id -> its inbox."""
    received: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    announced: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def actor_id(self) -> str:
        return f"{self.base}/actor"

    @property
    def inbox(self) -> str:
        return f"{self.base}/inbox"

    def actor_document(self) -> dict[str, Any]:
        return {
            "@context": [AS_CONTEXT, "https://w3id.org/security/v1"],
            "id": self.actor_id,
            "type": "Application",
            "preferredUsername": "relay",
            "name": "Test relay",
            "inbox": self.inbox,
            "outbox": f"{self.base}/outbox",
            "followers": f"{self.base}/followers",
            "publicKey": {
                "id": f"{self.actor_id}#main-key",
                "owner": self.actor_id,
                "publicKeyPem": fake_keys()[1],
            },
        }

    def relayed_types(self) -> tuple[str, ...]:
        """What it passes on: Mastodon-style relays forward Deletes too."""
        return ("Create", "Update", "Delete") if self.mode == "forward" else ("Create", "Update")

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [activity for activity in self.received if activity.get("type") == kind]

    async def _actor(self, _request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.actor_document()), content_type=ACTIVITY_JSON)

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        activity = orjson.loads(body)
        self.bodies.append(body)
        self.received.append(activity)
        kind, actor = activity.get("type"), activity.get("actor")
        if kind == "Follow" and activity.get("object") == PUBLIC:
            self._later(self._accept(activity))
        elif kind == "Undo":
            self.subscribers.pop(actor, None)
        elif kind in self.relayed_types() and actor in self.subscribers:
            obj = activity.get("object")
            object_id = obj.get("id") if isinstance(obj, dict) else obj
            self._later(self._relay(actor, str(object_id), body))
        return web.Response(status=202)

    def _later(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _accept(self, follow: dict[str, Any]) -> None:
        actor = follow["actor"]
        try:
            document = await self._get(actor)
        except aiohttp.ClientError:
            return  # a subscriber we cannot read stays unanswered, as with real relays
        inbox = (document.get("endpoints") or {}).get("sharedInbox") or document["inbox"]
        self.subscribers[actor] = inbox
        accept = {"type": "Accept", "object": follow, "to": [actor]}
        await self.send(inbox, accept)

    async def _relay(self, sender: str, object_id: str, original: bytes) -> None:
        for actor, inbox in list(self.subscribers.items()):
            if actor == sender:
                continue
            self.announced.append(object_id)
            if self.mode == "forward":
                await self.post(inbox, original)
                continue
            announce = {"type": "Announce", "object": object_id, "to": [f"{self.base}/followers"]}
            await self.send(inbox, announce)

    async def send(self, inbox: str, activity: dict[str, Any]) -> int:
        """POST an activity from the relay's actor, signed with its key."""
        document = {
            "@context": AS_CONTEXT,
            "id": f"{self.base}/activities/{uuid.uuid4()}",
            "actor": self.actor_id,
            **activity,
        }
        return await self.post(inbox, orjson.dumps(document))

    async def post(self, inbox: str, body: bytes) -> int:
        """POST `body` as it is, signed by the relay (whoever the body says sent it)."""
        headers = sign_request(
            "POST",
            inbox,
            {"Content-Type": ACTIVITY_JSON},
            body,
            f"{self.actor_id}#main-key",
            fake_keys()[0],
        )
        async with self.http.post(inbox, data=body, headers=headers) as resp:
            return resp.status

    async def _get(self, url: str) -> dict[str, Any]:
        headers = sign_request(
            "GET", url, {"Accept": ACTIVITY_JSON}, None, f"{self.actor_id}#main-key", fake_keys()[0]
        )
        async with self.http.get(url, headers=headers) as resp:
            resp.raise_for_status()
            document: dict[str, Any] = await resp.json(content_type=None)
            return document

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/actor", self._actor)
        app.router.add_post("/inbox", self._inbox)
        return app


@asynccontextmanager
async def fake_relay(mode: str = "announce") -> AsyncIterator[FakeRelay]:
    port = free_port()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        relay = FakeRelay(f"http://127.0.0.1:{port}", http, mode)
        async with serving(relay.app(), port):
            yield relay
            for task in list(relay.tasks):
                task.cancel()
