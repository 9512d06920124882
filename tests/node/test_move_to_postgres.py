"""Moving a node from SQLite to PostgreSQL: every row, counted, and a node that serves after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.app import init_app
from node.config import load_config, write_config
from node.datalock import NodeRunning, running
from node.move_database import MoveError, move_to_database
from node.protocol.jobs import enqueue_job
from node.services.provisioning import Person, provision_node
from storage.engine import create_engine, create_session_factory
from storage.models import Community, CommunityPartnership
from storage.repositories import CommunityRepository, DeliveryRepository
from storage.states import Initiator, PartnershipState

PASSWORD = "steward-password"


async def fill(database_url: str) -> None:
    """A partner, a partnership, a queued delivery and a job, besides what the API adds."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            ours = await CommunityRepository(session).get_local_by_slug("river")
            assert ours is not None
            partner = Community(
                ap_id="https://hill.example/c/hill",
                slug="hill",
                host="hill.example",
                name="Hill",
                base_url="https://hill.example",
                inbox_url="https://hill.example/c/hill/inbox",
            )
            session.add(partner)
            await session.flush()
            session.add(
                CommunityPartnership(
                    local_community_id=ours.id,
                    remote_community_id=partner.id,
                    state=PartnershipState.ACTIVE,
                    initiated_by=Initiator.US,
                    follow_activity_id=f"{ours.ap_id}/activities/follow-hill",
                )
            )
            await DeliveryRepository(session).enqueue(
                f"{ours.ap_id}/activities/1", ours.id, [partner.inbox_url or ""], '{"a": 1}'
            )
            await enqueue_job(session, "refresh_actor", {"actor": partner.ap_id}, dedupe_key="x")
            await session.commit()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
async def test_a_node_moves_to_postgresql_with_all_its_data_and_serves_from_it(
    tmp_path: Path, empty_database_url: str, aiohttp_client: Any
) -> None:
    data = tmp_path / "river"
    data.mkdir()
    config = write_config(
        data,
        base_url="http://river.test",
        slug="river",
        name="River",
        database_url=None,
        allow_private_addresses=True,
    )
    people = [Person("steward", PASSWORD, "steward", operator=True), Person("ana", PASSWORD)]
    await provision_node(config, people=people)
    client = await aiohttp_client(init_app(config, workers=False))
    resp = await client.post(
        "/api/v1/auth/token", json={"username": "steward", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    titles = set()
    for n, visibility in enumerate(["community", "partners", "public"] * 3):
        title = f"Ladder {n} ({visibility})"
        listing = {"kind": "offer", "title": title, "visibility": visibility}
        resp = await client.post("/api/v1/listings", json=listing, headers=headers)
        assert resp.status == 201, await resp.text()
        titles.add(title)
    await client.close()
    await fill(config.database_url)

    with running(data), pytest.raises(NodeRunning):
        await move_to_database(config, empty_database_url)

    counts = await move_to_database(config, empty_database_url)
    assert counts["listings"] == 9
    assert counts["members"] == 2
    assert counts["community_partnerships"] == 1
    assert counts["deliveries"] >= 1
    assert counts["jobs"] >= 1

    moved = load_config(data)
    assert moved.database_url == empty_database_url
    assert (data / "commons.db").exists()  # the way back is left alone

    client = await aiohttp_client(init_app(moved, workers=False))
    resp = await client.post("/api/v1/auth/token", json={"username": "ana", "password": PASSWORD})
    assert resp.status == 200
    resp = await client.post(
        "/api/v1/auth/token", json={"username": "steward", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    resp = await client.get("/api/v1/listings?limit=200", headers=headers)
    assert {item["title"] for item in (await resp.json())["items"]} == titles
    resp = await client.get("/api/v1/partnerships", headers=headers)
    partnerships = (await resp.json())["items"]
    assert [(p["state"], p["partner"]["handle"]) for p in partnerships] == [
        ("active", "hill@hill.example")
    ]
    # New rows get fresh ids: the sequences were moved past the copied ones.
    resp = await client.post(
        "/api/v1/listings", json={"kind": "need", "title": "After the move"}, headers=headers
    )
    assert resp.status == 201, await resp.text()

    with pytest.raises(MoveError, match="not on SQLite"):
        await move_to_database(moved, empty_database_url)
    back_on_sqlite = config  # the old config object still names the SQLite file
    with pytest.raises(MoveError, match="already holds data"):
        await move_to_database(back_on_sqlite, empty_database_url)
