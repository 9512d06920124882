"""People across real nodes: a member who joined by invitation posts for partners; the
partner's mirror shows the name they chose, and deactivating them closes the listing there."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partnerships import handle, propose_and_approve
from tests.support.api import ApiClient, eventually

pytestmark = pytest.mark.e2e


async def partner_view(client: ApiClient, title: str) -> dict[str, Any]:
    body = await client.ok("GET", "/api/v1/listings?include_partners=true")
    found = [item for item in body["items"] if item["title"] == title]
    assert found, f"{title!r} not mirrored yet"
    return dict(found[0])


async def test_partner_sees_the_posters_name_and_the_close_when_they_leave(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await propose_and_approve(alice, bob, handle(b, "birch"))

    issued = await alice.ok("POST", "/api/v1/invites", expect=201, json={})
    anon = ApiClient(a.base_url, http)
    await anon.ok(
        "POST",
        "/api/v1/auth/register",
        expect=201,
        json={
            "invite": issued["token"],
            "username": "nia",
            "password": "nia-password",
            "display_name": "Nia from Alder",
        },
    )
    nia = await anon.login("nia", "nia-password")
    await nia.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "Sewing machine", "visibility": "partners"},
    )

    async def named() -> dict[str, Any]:
        seen = await partner_view(bob, "Sewing machine")
        assert seen["author"] == {"name": "Nia from Alder"}, seen
        return seen

    seen = await eventually(named)
    assert seen["origin"] == "partner" and seen["status"] == "active"

    await alice.ok("PATCH", "/api/v1/members/nia", json={"active": False})

    async def closed() -> None:
        assert (await partner_view(bob, "Sewing machine"))["status"] == "closed"

    await eventually(closed)
    status, _ = await nia.call("GET", "/api/v1/me")
    assert status == 401
