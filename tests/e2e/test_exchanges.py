"""An exchange between two real nodes: Birch's steward asks for a listing Alder
shares with partners; Alder's answers, they talk, Alder completes while Birch
is down, and once Birch is back both ledgers hold the same exchange."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partner_addressing import partner_with
from tests.e2e.test_partnerships import handle
from tests.e2e.test_queued_deliveries import bring_back, host_of, query
from tests.support.api import ApiClient, eventually

pytestmark = pytest.mark.e2e

LEDGER_FIELDS = (
    "agreement_id",
    "status",
    "provider",
    "receiver",
    "provider_community_id",
    "receiver_community_id",
    "is_cross_community",
    "quantity",
    "hours",
)


async def only_exchange(client: ApiClient, status: str | None = None) -> dict[str, Any]:
    items = (await client.ok("GET", "/api/v1/exchanges?cross_community=true"))["items"]
    assert len(items) == 1, items
    if status is not None:
        assert items[0]["status"] == status
    return dict(items[0])


async def test_request_accept_message_complete_across_two_nodes_with_one_down(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await partner_with(alice, bob, handle(b, "birch"))
    ladder = await alice.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "Long ladder", "visibility": "partners"},
    )

    async def mirrored() -> None:
        body = await bob.ok("GET", "/api/v1/listings?include_partners=true")
        assert ladder["ap_id"] in {item["ap_id"] for item in body["items"]}

    await eventually(mirrored)
    asked = await bob.ok(
        "POST",
        "/api/v1/exchanges",
        expect=201,
        json={"listing": ladder["ap_id"], "hours": 2.5, "quantity": 1, "note": "For the roof"},
    )
    assert asked["is_cross_community"] is True
    assert asked["provider"]["member"] is None  # Alder names its member when it answers

    on_alder = await eventually(lambda: only_exchange(alice, "requested"))
    assert on_alder["agreement_id"] == asked["agreement_id"]
    assert on_alder["receiver"]["member"] == f"steward@{host_of(b)}"
    assert on_alder["note"] == "For the roof"
    assert "accept" in on_alder["actions"]

    await alice.ok("POST", f"/api/v1/exchanges/{on_alder['id']}/accept")
    accepted = await eventually(lambda: only_exchange(bob, "accepted"))
    assert accepted["provider"]["member"] == f"steward@{host_of(a)}"

    await bob.ok(
        "POST",
        f"/api/v1/exchanges/{asked['id']}/messages",
        expect=201,
        json={"text": "Ten o'clock?"},
    )

    async def thread_on_alder() -> None:
        body = await alice.ok("GET", f"/api/v1/exchanges/{on_alder['id']}/messages")
        assert [m["text"] for m in body["items"]] == ["Ten o'clock?"]

    await eventually(thread_on_alder)

    cluster.stop("birch")
    await alice.ok("POST", f"/api/v1/exchanges/{on_alder['id']}/complete")

    async def attempted() -> None:
        rows = query(a.data, "SELECT attempts, state FROM deliveries WHERE body LIKE '%completed%'")
        assert rows and rows[0][0] >= 1 and rows[0][1] == "queued", rows

    await eventually(attempted)
    b = await bring_back(cluster, alice)
    bob = await steward(b, http)
    done_on_birch = await eventually(lambda: only_exchange(bob, "completed"), within=30)
    done_on_alder = await only_exchange(alice, "completed")
    assert {k: done_on_alder[k] for k in LEDGER_FIELDS} == {
        k: done_on_birch[k] for k in LEDGER_FIELDS
    }

    alder_flows = await alice.ok("GET", "/api/v1/metrics/flows")
    assert alder_flows["outgoing"] == {"count": 1, "hours": 2.5}
    assert alder_flows["leakage_ratio"] == 1.0
    [partner] = alder_flows["by_community"]
    assert partner["community_id"] == f"{b.base_url}/c/birch"
    assert partner["net_hours"] == -2.5
    birch_flows = await bob.ok("GET", "/api/v1/metrics/flows")
    assert birch_flows["incoming"] == {"count": 1, "hours": 2.5}
    assert birch_flows["leakage_ratio"] == 0.0

    # Nothing about the exchange went anywhere but the other party's own inbox.
    sent = query(a.data, "SELECT target_inbox, body FROM deliveries")
    about_it = {inbox for inbox, body in sent if asked["agreement_id"] in body}
    assert about_it == {f"{b.base_url}/c/birch/inbox"}
    assert all(
        '"to":["' + f"{b.base_url}/c/birch" + '"]' in body
        for _, body in sent
        if asked["agreement_id"] in body
    )
