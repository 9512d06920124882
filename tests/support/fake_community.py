"""A fake remote community on 127.0.0.1: a Group actor with its own key, an outbox we
shape per test, and inboxes that record what reaches them.

It stands in for another node where a test needs a remote that misbehaves:
slow, huge, or hostile. It signs what it sends exactly as a real node does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from federation.contexts import default_context
from federation.keys import generate_key_pair
from federation.signatures import sign_request
from tests.support.inprocess import serving
from tests.support.processes import free_port

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_JSON = "application/activity+json"
AS_CONTEXT = default_context()
"""The context our nodes send, so extension terms (`partnership`, `kind`) keep their meaning."""

OutboxPage = Callable[[int], list[dict[str, Any]] | None]
"""Items of page n (1-based), or None past the last page."""


@dataclass
class FakeCommunity:
    base: str
    slug: str = "fake"
    private_key: str = ""
    public_key: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    outbox_requests: int = 0
    outbox_gate: asyncio.Event | None = None
    gate_from_page: int = 0
    next_elsewhere: str | None = None
    """A `next` link on the last page pointing at another server, as a hostile outbox would."""
    """The gate holds requests for this page and later ones (0: the collection too)."""
    outbox_page: OutboxPage = lambda n: [] if n == 1 else None

    @property
    def actor_id(self) -> str:
        return f"{self.base}/c/{self.slug}"

    @property
    def key_id(self) -> str:
        return f"{self.actor_id}#main-key"

    def actor_document(self) -> dict[str, Any]:
        return {
            "@context": AS_CONTEXT,
            "id": self.actor_id,
            "type": "Group",
            "preferredUsername": self.slug,
            "name": f"{self.slug.title()} (fake)",
            "inbox": f"{self.actor_id}/inbox",
            "outbox": f"{self.actor_id}/outbox",
            "followers": f"{self.actor_id}/followers",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {
                "id": self.key_id,
                "owner": self.actor_id,
                "publicKeyPem": self.public_key,
            },
        }

    def note(self, n: int, *, title: str | None = None) -> dict[str, Any]:
        """A public offer, as a Create, the way our nodes put one in an outbox."""
        note_id = f"{self.actor_id}/listings/{n}"
        return {
            "id": f"{note_id}/create",
            "type": "Create",
            "actor": self.actor_id,
            "to": [PUBLIC],
            "object": {
                "id": note_id,
                "type": "Note",
                "attributedTo": self.actor_id,
                "name": title or f"Fake offer {n}",
                "content": f"<p>Offer number {n}</p>",
                "to": [PUBLIC],
                "cc": [f"{self.actor_id}/followers"],
                "published": "2026-01-01T00:00:00Z",
                "kind": "offer",
                "category": "tools",
                "status": "active",
                "visibility": "public",
            },
        }

    async def _actor(self, _request: web.Request) -> web.Response:
        return self._json(self.actor_document())

    async def _outbox(self, request: web.Request) -> web.Response:
        self.outbox_requests += 1
        page = request.query.get("page")
        if self.outbox_gate is not None and int(page or 0) >= self.gate_from_page:
            await self.outbox_gate.wait()
        outbox = f"{self.actor_id}/outbox"
        if page is None:
            return self._json(
                {
                    "@context": AS_CONTEXT,
                    "id": outbox,
                    "type": "OrderedCollection",
                    "first": f"{outbox}?page=1",
                }
            )
        n = int(page)
        items = self.outbox_page(n) or []
        document: dict[str, Any] = {
            "@context": AS_CONTEXT,
            "id": f"{outbox}?page={n}",
            "type": "OrderedCollectionPage",
            "partOf": outbox,
            "orderedItems": items,
        }
        if self.outbox_page(n + 1) is not None:
            document["next"] = f"{outbox}?page={n + 1}"
        elif self.next_elsewhere is not None:
            document["next"] = self.next_elsewhere
        return self._json(document)

    async def _empty_collection(self, request: web.Request) -> web.Response:
        url = f"{self.base}{request.path}"
        return self._json(
            {"@context": AS_CONTEXT, "id": url, "type": "OrderedCollection", "orderedItems": []}
        )

    async def _inbox(self, request: web.Request) -> web.Response:
        self.received.append(orjson.loads(await request.read()))
        return web.Response(status=202)

    def _json(self, document: dict[str, Any]) -> web.Response:
        return web.Response(body=orjson.dumps(document), content_type=ACTIVITY_JSON)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [activity for activity in self.received if activity.get("type") == kind]

    async def post(self, http: aiohttp.ClientSession, inbox: str, activity: dict[str, Any]) -> int:
        """POST `activity` to `inbox`, signed with this community's key."""
        body = orjson.dumps({"@context": AS_CONTEXT, **activity})
        headers = sign_request(
            "POST", inbox, {"Content-Type": ACTIVITY_JSON}, body, self.key_id, self.private_key
        )
        async with http.post(inbox, data=body, headers=headers) as resp:
            return resp.status

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(f"/c/{self.slug}", self._actor)
        app.router.add_get(f"/c/{self.slug}/outbox", self._outbox)
        app.router.add_get(f"/c/{self.slug}/followers", self._empty_collection)
        app.router.add_get(f"/c/{self.slug}/partner-listings", self._empty_collection)
        app.router.add_post(f"/c/{self.slug}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        return app


@asynccontextmanager
async def fake_community(slug: str = "fake") -> AsyncIterator[FakeCommunity]:
    port = free_port()
    private_key, public_key = generate_key_pair()
    fake = FakeCommunity(
        f"http://127.0.0.1:{port}", slug, private_key=private_key, public_key=public_key
    )
    async with serving(fake.app(), port):
        yield fake
