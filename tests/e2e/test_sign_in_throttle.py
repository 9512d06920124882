"""Sign-in throttling against a real node process, as an attacker would try to abuse it.

Linux answers on all of 127.0.0.0/8, so a client can connect from 127.0.0.2 or
127.0.0.3 and be a different address to the node. The node trusts 127.0.0.1 as
its reverse proxy: a request from there plays the proxy, which appends the
address it saw to X-Forwarded-For as nginx's `$proxy_add_x_forwarded_for` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.support.processes import RunningNode, cli, free_port, init_node, serve_node

PASSWORD = "member-password"
PROXY, ATTACKER, MEMBER = "127.0.0.1", "127.0.0.2", "127.0.0.3"
MEMBERS = ("ada", "bea", "cy", "dan")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    data = tmp_path_factory.mktemp("throttle") / "node"
    base_url = init_node(data, slug="tools", name="Tool Library", port=free_port())
    for username in MEMBERS:
        added = cli("member", "add", "--data", str(data), "--username", username,
                    "--password", PASSWORD)  # fmt: skip
        assert added.returncode == 0, added.stderr
    with (data / "config.toml").open("a") as config:
        config.write(f'trusted_proxies = ["{PROXY}"]\n')
    running = serve_node(data, base_url)
    yield running
    running.stop()


@pytest.fixture
async def connect() -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    """One HTTP client per source address."""
    sessions = {
        address: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0), force_close=True),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        for address in (PROXY, ATTACKER, MEMBER)
    }
    yield sessions
    for session in sessions.values():
        await session.close()


async def token(
    http: aiohttp.ClientSession,
    node: RunningNode,
    username: str,
    password: str,
    forwarded_for: str | None = None,
) -> aiohttp.ClientResponse:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with http.post(
        f"{node.base_url}/api/v1/auth/token",
        json={"username": username, "password": password},
        headers=headers,
    ) as response:
        await response.read()
        return response


async def web_sign_in(
    http: aiohttp.ClientSession, node: RunningNode, username: str, forwarded_for: str | None = None
) -> int:
    headers = {"Origin": node.base_url}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    async with http.post(
        f"{node.base_url}/signin",
        data={"username": username, "password": PASSWORD},
        headers=headers,
        allow_redirects=False,
    ) as response:
        return response.status


async def test_ten_wrong_passwords_from_one_address_do_not_stop_the_member_at_another(
    node: RunningNode, connect: dict[str, aiohttp.ClientSession]
) -> None:
    statuses = [
        (await token(connect[ATTACKER], node, "ada", f"guess-{i}")).status for i in range(10)
    ]
    assert set(statuses) <= {401, 429}, statuses
    refused = await token(connect[ATTACKER], node, "ada", PASSWORD)
    assert refused.status == 429, "the guessing address is slowed down"
    assert int(refused.headers["Retry-After"]) >= 1

    assert (await token(connect[MEMBER], node, "ada", PASSWORD)).status == 200
    assert await web_sign_in(connect[MEMBER], node, "ada") == 303


async def test_an_untrusted_peer_cannot_pick_its_address_with_forwarded_for(
    node: RunningNode, connect: dict[str, aiohttp.ClientSession]
) -> None:
    """Claiming a new address on every attempt, or the member's, changes nothing."""
    statuses = [
        (await token(connect[ATTACKER], node, "bea", "guess", f"198.51.100.{i}")).status
        for i in range(7)
    ]
    assert statuses[-1] == 429, f"a new claimed address each time evaded the throttle: {statuses}"
    claims_member = await token(connect[ATTACKER], node, "bea", "guess", MEMBER)
    assert claims_member.status == 429
    assert (await token(connect[MEMBER], node, "bea", PASSWORD)).status == 200


async def test_behind_the_proxy_junk_attempts_lock_out_no_other_client(
    node: RunningNode, connect: dict[str, aiohttp.ClientSession]
) -> None:
    proxy = connect[PROXY]
    # One attacker behind the proxy writes junk into the header it sends; the proxy
    # appends the attacker's real address, which is what gets slowed down.
    statuses = []
    for i in range(12):
        claimed = f"10.{i}.0.1, junk-{i}, 192.0.2.{i}"
        statuses.append((await token(proxy, node, "cy", "guess", f"{claimed}, 203.0.113.9")).status)
    assert statuses[-1] == 429, statuses
    # Attackers at many addresses behind the proxy, all guessing the same password.
    for i in range(8):
        assert (await token(proxy, node, "cy", "guess", f"198.18.0.{i}")).status == 401

    for username in ("cy", "dan"):
        response = await token(proxy, node, username, PASSWORD, "192.0.2.200")
        assert response.status == 200, username
    assert await web_sign_in(proxy, node, "dan", "6.6.6.6, 192.0.2.201") == 303
