"""A fake ActivityPub server on 127.0.0.1, for attackers and honest peers in tests.

It serves actor documents for the communities (or people) a test adds, signs
the activities it sends with a key it holds, and records every request that
reaches it, headers included, so that a test can see exactly what a node sent
it (and replay it elsewhere, as an attacker would).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from federation.contexts import default_context
from federation.keys import generate_key_pair
from federation.signatures import sign_request
from tests.support.inprocess import serving
from tests.support.processes import free_port

ACTIVITY_JSON = "application/activity+json"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"


@cache
def fake_keys() -> tuple[str, str]:
    """(private, public) PEM shared by every fake actor: generating keys is slow."""
    return generate_key_pair()


def own_host(request: web.Request) -> str:
    """`host:port` this test server listens on: what a signature to it must name,
    taken from the socket, never from the request."""
    assert request.transport is not None
    host, port = request.transport.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


@dataclass(frozen=True)
class Seen:
    """One request that reached the fake server."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class FakeActor:
    slug: str
    actor_type: str = "Group"
    inbox: str | None = None
    shared_inbox: str | None = None


@dataclass
class FakeRemote:
    """The server's state: its actors, what it has seen, and whether actor fetches hang."""

    base: str
    actors: dict[str, FakeActor] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    hang_actor_documents: bool = False
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Further documents to serve by path (a bare key document, say)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def host(self) -> str:
        return self.base.split("//", 1)[1]

    def actor_id(self, slug: str) -> str:
        return f"{self.base}/c/{slug}"

    def add_actor(
        self,
        slug: str,
        *,
        actor_type: str = "Group",
        inbox: str | None = None,
        shared_inbox: str | None = None,
    ) -> str:
        self.actors[slug] = FakeActor(slug, actor_type, inbox, shared_inbox)
        return self.actor_id(slug)

    def actor_document(self, actor: FakeActor) -> dict[str, Any]:
        actor_id = self.actor_id(actor.slug)
        return {
            "@context": [AS_CONTEXT, "https://w3id.org/security/v1"],
            "id": actor_id,
            "type": actor.actor_type,
            "preferredUsername": actor.slug,
            "name": f"{actor.slug.title()} Commons",
            "inbox": actor.inbox or f"{actor_id}/inbox",
            "outbox": f"{actor_id}/outbox",
            "endpoints": {"sharedInbox": actor.shared_inbox or f"{self.base}/inbox"},
            "publicKey": {
                "id": f"{actor_id}#main-key",
                "owner": actor_id,
                "publicKeyPem": fake_keys()[1],
            },
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record, then answer. Connections are never kept alive, so that each
        request a node makes needs a connection of its own, as with many servers."""
        response = await self._answer(request)
        response.force_close()
        return response

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = Seen(request.method, request.path_qs, dict(request.headers), body, time.monotonic())
        self.seen.append(seen)
        if request.method == "POST":
            return web.Response(status=202)
        if request.path in self.documents:
            body = orjson.dumps(self.documents[request.path])
            return web.Response(body=body, content_type=ACTIVITY_JSON)
        slug = request.path.removeprefix("/c/")
        actor = self.actors.get(slug) if request.path.startswith("/c/") else None
        if actor is None:
            return web.Response(status=404, text="not here")
        if self.hang_actor_documents:
            await self.release.wait()
        document = self.actor_document(actor)
        return web.Response(body=orjson.dumps(document), content_type=ACTIVITY_JSON)

    def requests(self, method: str, path_prefix: str = "/") -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(path_prefix)]

    def posted(self, activity_type: str, containing: str = "") -> list[Seen]:
        """POSTs of activities of this type whose body contains `containing`."""
        found = []
        for seen in self.requests("POST"):
            try:
                document = seen.json()
            except orjson.JSONDecodeError:
                continue
            if document.get("type") == activity_type and containing in seen.body.decode():
                found.append(seen)
        return found

    def activity(self, kind: str, slug: str, obj: Any, **extra: Any) -> dict[str, Any]:
        actor = self.actor_id(slug)
        return {
            "@context": default_context(),  # ours, so that `partnership` means what we mean
            "id": f"{actor}/activities/{uuid.uuid4().hex}",
            "type": kind,
            "actor": actor,
            "object": obj,
            **extra,
        }

    def sign(
        self,
        url: str,
        activity: dict[str, Any],
        *,
        key_id: str | None = None,
        host: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of a POST of `activity` signed with the fake key.

        Signing with a new keyId parses the private key again, which takes a
        while: a test that floods signs everything first, then sends. `host`
        is the `Host` to sign and send when the node's configured host is not
        the address the test reaches it at.
        """
        body = orjson.dumps(activity)
        headers = {"Content-Type": ACTIVITY_JSON} | ({"Host": host} if host else {})
        headers = sign_request(
            "POST",
            url,
            headers,
            body,
            key_id or f"{activity['actor']}#main-key",
            fake_keys()[0],
        )
        return body, headers

    @staticmethod
    async def send(
        http: aiohttp.ClientSession, url: str, signed: tuple[bytes, dict[str, str]]
    ) -> tuple[int, dict[str, str], str]:
        body, headers = signed
        async with http.post(url, data=body, headers=headers) as response:
            return response.status, dict(response.headers), await response.text()

    async def post(
        self,
        http: aiohttp.ClientSession,
        url: str,
        activity: dict[str, Any],
        *,
        key_id: str | None = None,
        host: str | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """POST `activity` signed with the fake key; `key_id` defaults to the actor's key."""
        return await self.send(http, url, self.sign(url, activity, key_id=key_id, host=host))


@asynccontextmanager
async def fake_remote() -> AsyncIterator[FakeRemote]:
    """A fake server on a free loopback port for the duration of the block."""
    port = free_port()
    remote = FakeRemote(f"http://127.0.0.1:{port}")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", remote.handle)
    async with serving(app, port):
        try:
            yield remote
        finally:
            remote.release.set()  # let hanging handlers end before the server stops
