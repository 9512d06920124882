"""Node-wide federation settings belong to the node's operator, not to any community's
steward: two communities on one node must not change each other's blocks or retries."""

from __future__ import annotations

from node.services.accounts import create_member
from node.services.communities import create_local_community
from storage.engine import create_engine, create_session_factory
from tests.conftest import PASSWORD, NodeHandle


async def add_second_community(node: NodeHandle, slug: str, steward: str) -> dict[str, str]:
    """Another local community on the same node, with its own steward; their auth header."""
    engine = create_engine(node.config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            community = await create_local_community(
                session, node.config, slug=slug, name=slug.title()
            )
            await create_member(session, community, steward, PASSWORD, "steward")
            await session.commit()
    finally:
        await engine.dispose()
    resp = await node.client.post(
        "/api/v1/auth/token",
        json={"username": steward, "password": PASSWORD, "community": slug},
    )
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_a_steward_of_another_community_cannot_change_node_wide_settings(
    node: NodeHandle,
) -> None:
    await node.add_member("olive_op", "steward", operator=True)
    operator = {"Authorization": f"Bearer {await node.token('olive_op')}"}
    created = await node.client.post(
        "/api/v1/federation/blocks", json={"domain": "spam.example"}, headers=operator
    )
    assert created.status == 201

    for headers in (
        await add_second_community(node, "garden", "gus"),
        await node.login("sue", "steward"),  # a steward of the operator's own community
    ):
        block = await node.client.post(
            "/api/v1/federation/blocks", json={"domain": "friend.example"}, headers=headers
        )
        assert block.status == 403
        assert (await block.json())["error"]["code"] == "forbidden"
        unblock = await node.client.delete(
            "/api/v1/federation/blocks/spam.example", headers=headers
        )
        assert unblock.status == 403
        retry = await node.client.post(
            "/api/v1/federation/peers/friend.example/retry", headers=headers
        )
        assert retry.status == 403
        assert (await node.client.get("/api/v1/federation/peers", headers=headers)).status == 200

    blocks = await (await node.client.get("/api/v1/federation/blocks", headers=operator)).json()
    assert [item["domain"] for item in blocks["items"]] == ["spam.example"]
    removed = await node.client.delete("/api/v1/federation/blocks/spam.example", headers=operator)
    assert removed.status == 204


async def test_openapi_says_node_wide_changes_may_be_refused(node: NodeHandle) -> None:
    doc = await (await node.client.get("/api/v1/openapi.json")).json()
    assert "403" in doc["paths"]["/api/v1/federation/blocks"]["post"]["responses"]
    assert "403" in doc["paths"]["/api/v1/federation/peers/{host}/retry"]["post"]["responses"]
