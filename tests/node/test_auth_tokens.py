"""A member's tokens: list them, revoke one or the current one, and a password change
that ends every other token and browser session."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD, NodeHandle

NEW_PASSWORD = "a much better passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def works(node: NodeHandle, token: str) -> bool:
    resp = await node.client.get("/api/v1/auth/tokens", headers=bearer(token))
    assert resp.status in (200, 401)
    return resp.status == 200


async def web_session(node: NodeHandle, username: str, password: str = PASSWORD) -> Any:
    """Sign in through the web page; the cookie jar of the test client keeps it."""
    resp = await node.client.post(
        "/signin",
        data={"username": username, "password": password},
        headers={"Origin": "http://tools.test"},
        allow_redirects=False,
    )
    return resp


async def test_tokens_are_listed_without_their_secrets(node: NodeHandle) -> None:
    await node.add_member("ada")
    first, second = await node.token("ada"), await node.token("ada")
    assert (await web_session(node, "ada")).status == 303
    resp = await node.client.get("/api/v1/auth/tokens", headers=bearer(second))
    text = await resp.text()
    assert resp.status == 200
    assert first not in text and second not in text
    items = (await resp.json())["items"]
    assert sorted(item["kind"] for item in items) == ["api", "api", "session"]
    assert [item["current"] for item in items].count(True) == 1
    assert {"id", "kind", "created_at", "expires_at", "current"} == set(items[0])

    await node.add_member("bob")
    others = await node.client.get("/api/v1/auth/tokens", headers=bearer(await node.token("bob")))
    assert len((await others.json())["items"]) == 1


async def test_paging_walks_every_token_once(node: NodeHandle) -> None:
    await node.add_member("ada")
    tokens = [await node.token("ada") for _ in range(5)]
    seen: list[int] = []
    cursor = ""
    while True:
        resp = await node.client.get(
            f"/api/v1/auth/tokens?limit=2{cursor}", headers=bearer(tokens[0])
        )
        body = await resp.json()
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        if body["next"] is None:
            break
        cursor = f"&cursor={body['next']}"
    assert len(seen) == len(set(seen)) == 5
    bad = await node.client.get("/api/v1/auth/tokens?cursor=nope", headers=bearer(tokens[0]))
    assert bad.status == 400


async def test_delete_token_revokes_only_the_token_it_is_sent_with(node: NodeHandle) -> None:
    await node.add_member("ada")
    kept, dropped = await node.token("ada"), await node.token("ada")
    resp = await node.client.delete("/api/v1/auth/token", headers=bearer(dropped))
    assert resp.status == 204
    assert not await works(node, dropped)
    assert await works(node, kept)
    again = await node.client.delete("/api/v1/auth/token", headers=bearer(dropped))
    assert again.status == 401


async def test_a_token_is_revoked_by_id_by_its_owner_only(node: NodeHandle) -> None:
    await node.add_member("ada")
    await node.add_member("eve")
    ada_main, ada_old = await node.token("ada"), await node.token("ada")
    eve = await node.token("eve")
    listed = await node.client.get("/api/v1/auth/tokens", headers=bearer(ada_main))
    old_id = next(item["id"] for item in (await listed.json())["items"] if not item["current"])

    for path in (f"/api/v1/auth/tokens/{old_id}", "/api/v1/auth/tokens/abc"):
        stolen = await node.client.delete(path, headers=bearer(eve))
        assert stolen.status == 404
        assert (await stolen.json())["error"]["code"] == "not_found"
    assert await works(node, ada_old)

    resp = await node.client.delete(f"/api/v1/auth/tokens/{old_id}", headers=bearer(ada_main))
    assert resp.status == 204
    assert not await works(node, ada_old)
    assert await works(node, ada_main)


async def test_changing_the_password_revokes_every_other_token_and_session(
    node: NodeHandle,
) -> None:
    await node.add_member("ada")
    current, leaked = await node.token("ada"), await node.token("ada")
    assert (await web_session(node, "ada")).status == 303
    assert (await node.client.get("/listings", allow_redirects=False)).status == 200

    wrong = await node.client.post(
        "/api/v1/auth/password",
        json={"current": "not it", "new": NEW_PASSWORD},
        headers=bearer(current),
    )
    assert wrong.status == 403
    weak = await node.client.post(
        "/api/v1/auth/password", json={"current": PASSWORD, "new": "short"}, headers=bearer(current)
    )
    assert weak.status == 422
    assert "8 characters" in (await weak.json())["error"]["message"]
    assert await works(node, leaked)

    changed = await node.client.post(
        "/api/v1/auth/password",
        json={"current": PASSWORD, "new": NEW_PASSWORD},
        headers=bearer(current),
    )
    assert changed.status == 204
    assert await works(node, current)
    assert not await works(node, leaked)
    signed_out = await node.client.get("/listings", allow_redirects=False)
    assert signed_out.status == 303 and signed_out.headers["Location"].startswith("/signin")

    old = await node.client.post(
        "/api/v1/auth/token", json={"username": "ada", "password": PASSWORD}
    )
    assert old.status == 401
    new = await node.client.post(
        "/api/v1/auth/token", json={"username": "ada", "password": NEW_PASSWORD}
    )
    assert new.status == 200


async def test_guessing_the_current_password_is_throttled(node: NodeHandle) -> None:
    headers = await node.login("ada")
    statuses = [
        (
            await node.client.post(
                "/api/v1/auth/password",
                json={"current": f"guess {i}", "new": NEW_PASSWORD},
                headers=headers,
            )
        ).status
        for i in range(7)
    ]
    assert statuses[:5] == [403] * 5
    assert statuses[-1] == 429


async def test_openapi_documents_the_token_endpoints(node: NodeHandle) -> None:
    doc = await (await node.client.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    assert "204" in paths["/api/v1/auth/token"]["delete"]["responses"]
    assert paths["/api/v1/auth/tokens"]["get"]["responses"]["200"]
    assert "404" in paths["/api/v1/auth/tokens/{id}"]["delete"]["responses"]
    password = paths["/api/v1/auth/password"]["post"]
    assert password["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PasswordChange"
    )
    assert {"204", "401", "403", "422", "429"} <= set(password["responses"])
    token = doc["components"]["schemas"]["TokenOut"]
    assert "token" not in token["properties"] and "secret" not in token["properties"]
