"""Password guessing is slowed down: after repeated failures, sign-in answers 429."""

from __future__ import annotations

from node.services.login_throttle import ACCOUNT_LIMIT, LoginThrottle
from tests.conftest import PASSWORD, NodeHandle


async def test_token_endpoint_refuses_after_repeated_failures(node: NodeHandle) -> None:
    await node.add_member("ada")
    for _ in range(ACCOUNT_LIMIT):
        resp = await node.client.post(
            "/api/v1/auth/token", json={"username": "ada", "password": "guess"}
        )
        assert resp.status == 401
    resp = await node.client.post(
        "/api/v1/auth/token", json={"username": "ADA", "password": PASSWORD}
    )
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert (await resp.json())["error"]["code"] == "too_many_requests"
    await node.add_member("bob")
    other = await node.client.post(
        "/api/v1/auth/token", json={"username": "bob", "password": PASSWORD}
    )
    assert other.status == 200


def test_failures_age_out_of_the_window_and_success_clears_the_account() -> None:
    now = [1000.0]
    throttle = LoginThrottle(window=300, clock=lambda: now[0])
    keys = throttle.keys("tools", "ada", "127.0.0.1")
    for _ in range(ACCOUNT_LIMIT):
        assert throttle.retry_after(keys) is None
        throttle.failed(keys)
    assert throttle.retry_after(keys) == 300
    now[0] += 120
    assert throttle.retry_after(keys) == 180
    now[0] += 181
    assert throttle.retry_after(keys) is None
    throttle.failed(keys)
    throttle.succeeded(keys)
    assert throttle.retry_after(keys) is None
