"""Rotating a community's key: new key signs, old key published for its grace period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from federation.vocab import VocabError, parse_actor
from node.services.keys import rotate_key
from storage.engine import create_engine, create_session_factory
from storage.models import Delivery, Follow, RetiredKey, utcnow
from storage.repositories import CommunityRepository
from storage.states import FollowDirection, FollowState
from tests.conftest import NodeHandle

ACTIVITY_JSON = {"Accept": "application/activity+json"}


async def test_rotation_publishes_the_new_key_and_keeps_the_old_for_its_grace(
    node: NodeHandle,
) -> None:
    engine = create_engine(node.config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            community = await CommunityRepository(session).get_local_by_slug("tools")
            assert community is not None
            old_key_id, old_pem = community.key_id, community.public_key_pem
            session.add(
                Follow(
                    direction=FollowDirection.IN,
                    local_community_id=community.id,
                    remote_actor="https://masto.example/users/ana",
                    remote_inbox="https://masto.example/users/ana/inbox",
                    remote_shared_inbox="https://masto.example/inbox",
                    follow_activity_id="https://masto.example/follows/1",
                    state=FollowState.ACTIVE,
                )
            )
            queued = await rotate_key(session, community, timedelta(days=7))
            await session.commit()
            assert queued == 1
            new_key_id = community.key_id
            assert new_key_id != old_key_id and community.public_key_pem != old_pem

            update = (await session.scalars(select(Delivery))).one()
            assert update.target_inbox == "https://masto.example/inbox"
            body = orjson.loads(update.body)
            assert body["type"] == "Update"
            assert body["object"]["publicKey"]["id"] == new_key_id

            retired = (await session.scalars(select(RetiredKey))).one()
            assert retired.key_id == old_key_id
    finally:
        await engine.dispose()

    resp = await node.client.get("/c/tools", headers=ACTIVITY_JSON)
    document = await resp.json()
    assert document["publicKey"]["id"] == new_key_id
    assert document["retiredKeys"] == [
        {"id": old_key_id, "owner": document["id"], "publicKeyPem": old_pem}
    ]
    actor = parse_actor(document)
    assert actor.key_pem(old_key_id) == old_pem
    assert actor.key_pem(new_key_id) == actor.public_key_pem
    assert actor.key_pem(f"{document['id']}#never") is None

    # Past its grace period the old key is no longer published.
    engine = create_engine(node.config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            key = (await session.scalars(select(RetiredKey))).one()
            key.expires_at = utcnow() - timedelta(seconds=1)
            await session.commit()
    finally:
        await engine.dispose()
    resp = await node.client.get("/c/tools", headers=ACTIVITY_JSON)
    assert "retiredKeys" not in await resp.json()


def test_a_retired_key_claimed_for_another_actor_is_refused() -> None:
    actor_id = "https://a.example/c/a"
    document: dict[str, Any] = {
        "id": actor_id,
        "type": "Group",
        "inbox": f"{actor_id}/inbox",
        "publicKey": {"id": f"{actor_id}#key", "owner": actor_id, "publicKeyPem": "PEM"},
        "retiredKeys": [
            {"id": "https://b.example/c/b#key", "owner": actor_id, "publicKeyPem": "OLD"}
        ],
    }
    with pytest.raises(VocabError, match="hosted elsewhere"):
        parse_actor(document)
    document["retiredKeys"] = [
        {"id": f"{actor_id}#old", "owner": "https://a.example/c/other", "publicKeyPem": "OLD"}
    ]
    with pytest.raises(VocabError, match="owned by"):
        parse_actor(document)
