"""/healthz, /readyz and /metrics, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from node.app import init_app
from node.ops import endpoints
from node.ops.metrics import METRICS
from node.protocol.jobs import enqueue_job
from storage.engine import create_engine, create_session_factory
from storage.models import Community
from storage.repositories import CommunityRepository, DeliveryRepository
from tests.conftest import NodeHandle
from tests.support.fake_remote import fake_remote

TOKEN = "a-long-operator-token-for-prometheus"


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(exposition: str, name: str, **labels: str) -> float:
    return samples(exposition).get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: TestClient[Any, Any], **headers: str) -> str:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    return await resp.text()


async def in_session(node: NodeHandle, work: Any) -> Any:
    engine = create_engine(node.config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


async def our_community(session: Any) -> Community:
    community = await CommunityRepository(session).get_local_by_slug("tools")
    assert community is not None
    return community


async def test_healthz_answers_while_the_process_runs(node: NodeHandle) -> None:
    resp = await node.client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json()) == {"status": "ok"}


async def test_readyz_is_ready_at_head_and_says_why_not_otherwise(node: NodeHandle) -> None:
    resp = await node.client.get("/readyz")
    assert resp.status == 200
    ready = await resp.json()
    assert ready["ready"] is True

    async def roll_back(session: Any) -> None:
        await session.execute(text("UPDATE alembic_version SET version_num = '0007'"))

    await in_session(node, roll_back)
    resp = await node.client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["ready"] is False
    assert body["schema"] == "0007"
    assert body["expected_schema"] == ready["schema"]
    assert "migrate" in body["reason"]


async def test_readyz_is_503_when_the_database_does_not_answer(
    node: NodeHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(_request: Any) -> str:
        raise OSError("connection refused")

    monkeypatch.setattr(endpoints, "_schema_revision", unreachable)
    resp = await node.client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json()) == {
        "ready": False,
        "database": "unreachable",
        "reason": "the database does not answer",
    }


async def test_request_latency_is_labelled_by_route_pattern_not_url(node: NodeHandle) -> None:
    headers = await node.login("ana")
    for listing_id in ("abc", "def", "ghi"):
        resp = await node.client.get(f"/api/v1/listings/{listing_id}", headers=headers)
        assert resp.status == 404
    await node.client.get("/no/such/page/at/all")
    exposition = await scrape(node.client)
    count = "commons_http_request_duration_seconds_count"
    assert value(exposition, count, method="GET", route="/api/v1/listings/{id}", status="4xx") == 3
    assert value(exposition, count, method="GET", route="unmatched", status="4xx") == 1
    assert "abc" not in exposition and "/no/such/page" not in exposition


async def test_queue_depths_are_read_from_the_database_at_scrape(node: NodeHandle) -> None:
    async def queue_work(session: Any) -> None:
        community = await our_community(session)
        inboxes = ["http://192.0.2.1:9/inbox", "http://192.0.2.2:9/inbox"]
        body = '{"type": "Create"}'
        await DeliveryRepository(session).enqueue(
            f"{community.ap_id}/activities/1", community.id, inboxes, body
        )
        await enqueue_job(session, "refresh_actor", {"actor": "x"}, dedupe_key="metrics-test")

    # Documentation addresses (TEST-NET-1) on the discard port: never delivered.
    assert node.client.app[METRICS] is not None
    await in_session(node, queue_work)
    exposition = await scrape(node.client)
    queued = value(exposition, "commons_deliveries_queued", peer_state="ok")
    assert queued + value(exposition, "commons_deliveries_queued", peer_state="backing_off") == 2
    assert value(exposition, "commons_deliveries_queued", peer_state="blocked") == 0
    jobs = {
        labels: v for (name, labels), v in samples(exposition).items() if name == "commons_jobs"
    }
    assert sum(v for labels, v in jobs.items() if ("kind", "refresh_actor") in labels) == 1


async def test_inbox_refusals_are_counted_by_reason(node: NodeHandle) -> None:
    resp = await node.client.post(
        "/inbox", data=b"{not json", headers={"Content-Type": "application/activity+json"}
    )
    assert resp.status == 400
    resp = await node.client.post("/inbox", data=b"{}", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    exposition = await scrape(node.client)
    refused = samples(exposition)
    reasons = {
        dict(labels)["reason"]: v
        for (name, labels), v in refused.items()
        if name == "commons_inbox_activities_total" and dict(labels)["result"] == "refused"
    }
    assert sum(reasons.values()) == 2
    assert len(reasons) == 2


async def test_deliveries_are_counted_by_outcome(node: NodeHandle) -> None:
    async with fake_remote() as remote:
        inbox = f"{remote.base}/inbox"

        async def queue(session: Any) -> None:
            community = await our_community(session)
            await DeliveryRepository(session).enqueue(
                f"{community.ap_id}/activities/metrics", community.id, [inbox], '{"a": 1}'
            )

        await in_session(node, queue)
        for _ in range(100):
            exposition = await scrape(node.client)
            if value(exposition, "commons_deliveries_total", outcome="delivered") == 1:
                break
            await asyncio.sleep(0.1)
        assert value(exposition, "commons_deliveries_total", outcome="delivered") == 1
        assert len(remote.requests("POST")) == 1


async def test_metrics_are_refused_to_proxied_and_remote_clients(node: NodeHandle) -> None:
    resp = await node.client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    resp = await node.client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"})
    assert resp.status == 403


async def test_metrics_answer_the_operator_token_from_anywhere(
    node: NodeHandle, aiohttp_client: Any
) -> None:
    config = node.config.model_copy(update={"metrics_token": TOKEN})
    client = await aiohttp_client(init_app(config))
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    resp = await client.get("/metrics", headers={**forwarded, "Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    assert "commons_deliveries_total" in await resp.text()
    resp = await client.get("/metrics", headers={**forwarded, "Authorization": "Bearer wrong"})
    assert resp.status == 403


async def test_two_apps_in_one_process_count_apart(node: NodeHandle, aiohttp_client: Any) -> None:
    other = await aiohttp_client(init_app(node.config))
    await other.get("/healthz")
    await other.get("/healthz")
    mine = await scrape(node.client)
    theirs = await scrape(other)
    count = "commons_http_request_duration_seconds_count"
    assert value(mine, count, method="GET", route="/healthz", status="2xx") == 0
    assert value(theirs, count, method="GET", route="/healthz", status="2xx") == 2
