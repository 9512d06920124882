"""A fake Mastodon or Pleroma on 127.0.0.1, built from that software's recorded documents.

The documents under `tests/fixtures/<software>/` name the server they were
recorded on and the community they were sent to; `RecordedServer.load` puts
this fake's own address and the test's community in their place. The actor is
served with a key the test holds (`post_signed` signs with it), and whatever
reaches the fake's inboxes is kept in `received`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from federation.signatures import sign_request
from tests.support.api import eventually

FIXTURES = Path(__file__).parent.parent / "fixtures"
RECORDED_COMMUNITY = "https://commons.example/c/riverside"


@dataclass
class RecordedServer:
    """The recorded `software`'s documents served from `base`, as `recorded_origin` served them."""

    base: str
    software: str
    recorded_origin: str
    public_key: str
    inbox_status: int = 202
    received: list[dict[str, Any]] = field(default_factory=list)

    def load(self, name: str, community: str) -> dict[str, Any]:
        text = (FIXTURES / self.software / name).read_text()
        text = text.replace(self.recorded_origin, self.base)
        text = text.replace(RECORDED_COMMUNITY, community)
        return dict(json.loads(text))

    async def actor(self, _request: web.Request) -> web.Response:
        document = self.load("actor.json", "")
        document["publicKey"]["publicKeyPem"] = self.public_key
        return web.json_response(document, content_type="application/activity+json")

    async def inbox(self, request: web.Request) -> web.Response:
        self.received.append(orjson.loads(await request.read()))
        return web.Response(status=self.inbox_status)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [activity for activity in self.received if activity.get("type") == kind]

    async def first_received(self, kind: str) -> dict[str, Any]:
        """The first activity of `kind` to reach the inboxes, waiting for it (`eventually`)."""

        async def arrived() -> dict[str, Any]:
            found = self.of_type(kind)
            assert found, self.received
            return found[0]

        return await eventually(arrived)


async def post_signed(
    http: aiohttp.ClientSession,
    url: str,
    activity: dict[str, Any],
    key_id: str,
    private_key_pem: str,
) -> tuple[int, str]:
    """POST `activity` signed as `key_id`, as the recorded server would: (status, body)."""
    body = orjson.dumps(activity)
    headers = sign_request(
        "POST", url, {"Content-Type": "application/activity+json"}, body, key_id, private_key_pem
    )
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.text()
