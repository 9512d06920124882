"""Password guessing is slowed down, per (account, address) and per address, never per
account alone; the address comes from X-Forwarded-For only through a trusted proxy."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from node.config import ConfigError, NodeConfig, load_config
from node.services.login_throttle import (
    ADDRESS_BACKOFF,
    FORGET_AFTER,
    PAIR_BACKOFF,
    LoginThrottle,
    address_key,
    client_address,
)
from tests.conftest import PASSWORD, NodeHandle

PROXIES = (ip_network("10.0.0.0/8"), ip_network("::1/128"))

# peer, X-Forwarded-For header(s), the address the throttle counts against
ADDRESS_CASES = [
    ("203.0.113.5", [], "203.0.113.5"),
    ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy: its claim is ignored
    ("10.0.0.2", [], "10.0.0.2"),
    ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
    ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client wrote 6.6.6.6
    ("10.0.0.2", ["junk, 198.51.100.1"], "198.51.100.1"),
    ("10.0.0.2", ["198.51.100.1, 10.0.0.9"], "198.51.100.1"),  # two proxies
    ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # two header lines
    ("10.0.0.2", ["10.0.0.7"], "10.0.0.7"),  # a client inside the proxy network
    ("10.0.0.2", ["not-an-address"], "10.0.0.2"),
    ("10.0.0.2", [""], "10.0.0.2"),
    ("::1", ["2001:db8::1"], "2001:db8::1"),
    ("2001:db8::7", ["198.51.100.1"], "2001:db8::7"),
    (None, ["198.51.100.1"], None),
]


@pytest.mark.parametrize(("peer", "forwarded", "expected"), ADDRESS_CASES)
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(
    peer: str | None, forwarded: list[str], expected: str | None
) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_without_trusted_proxies_forwarded_for_is_never_read() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


def test_ipv6_clients_are_counted_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:198.51.100.1") == "198.51.100.1"


def test_trusted_proxies_setting_is_checked(tmp_path: Path) -> None:
    def load(line: str, environ: dict[str, str] | None = None) -> NodeConfig:
        (tmp_path / "config.toml").write_text(f"{BASE_SETTINGS}{line}\n")
        return load_config(tmp_path, environ or {})

    expected = (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"))
    assert load('trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]').trusted_proxies == expected
    from_env = {"COMMONS_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"}
    assert load("", from_env).trusted_proxies == expected
    for bad in ('trusted_proxies = ["localhost"]', "trusted_proxies = [1]", "trusted_proxie = []"):
        with pytest.raises(ConfigError):
            load(bad)


BASE_SETTINGS = """base_url = "http://tools.test"
slug = "tools"
name = "Tools"
database_url = "sqlite+aiosqlite:///x.db"
secret_key = "0123456789abcdef0123"
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_waits_grow_with_each_failure_and_a_success_clears_the_pair() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    attempt = throttle.attempt("tools", "ada", "198.51.100.1", [])
    for _ in range(PAIR_BACKOFF.free):
        assert throttle.retry_after(attempt) is None
        throttle.failed(attempt)
    waits = []
    for _ in range(4):
        wait = throttle.retry_after(attempt)
        assert wait is not None
        waits.append(wait)
        clock.now += wait
        assert throttle.retry_after(attempt) is None
        throttle.failed(attempt)
    assert waits == [2, 4, 8, 16]
    throttle.succeeded(attempt)
    assert throttle.retry_after(attempt) is None


def test_waits_are_capped_and_forgotten_after_an_hour() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    attempt = throttle.attempt("tools", "ada", "198.51.100.1", [])
    for _ in range(40):
        throttle.failed(attempt)
    assert throttle.retry_after(attempt) == PAIR_BACKOFF.cap
    clock.now += FORGET_AFTER + 1
    assert throttle.retry_after(attempt) is None


def test_one_address_spraying_many_accounts_is_slowed() -> None:
    throttle = LoginThrottle(clock=FakeClock())
    for index in range(ADDRESS_BACKOFF.free):
        throttle.failed(throttle.attempt("tools", f"user{index}", "198.51.100.1", []))
    fresh_account = throttle.attempt("tools", "someone_new", "198.51.100.1", [])
    assert throttle.retry_after(fresh_account) is not None
    elsewhere = throttle.attempt("tools", "someone_new", "198.51.100.2", [])
    assert throttle.retry_after(elsewhere) is None


def test_failures_from_everywhere_never_stop_the_account_from_a_new_address() -> None:
    throttle = LoginThrottle(clock=FakeClock())
    for index in range(1000):
        throttle.failed(
            throttle.attempt("tools", "ada", f"198.18.{index // 250}.{index % 250}", [])
        )
    assert throttle.retry_after(throttle.attempt("tools", "ada", "192.0.2.1", [])) is None


def test_memory_stays_bounded_whatever_is_sent() -> None:
    throttle = LoginThrottle(clock=FakeClock(), max_tracked=100)
    for index in range(5000):
        name = "x" * 10_000 + str(index)
        throttle.failed(
            throttle.attempt("c" * 10_000, name, f"198.18.{index // 250}.{index % 250}", [])
        )
    assert throttle.tracked <= 200
    assert all(len(key) < 200 for key in throttle._pairs._items)


async def test_token_endpoint_answers_429_with_retry_after_for_the_guessing_pair(
    node: NodeHandle,
) -> None:
    await node.add_member("ada")
    for _ in range(PAIR_BACKOFF.free):
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
