"""The address guard: no requests to our own network unless configured.

Nothing here touches the network: IP literals need no lookup, and names are
resolved by a fake `getaddrinfo` (or are numeric, which the C library parses
without asking DNS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from federation.address_guard import GuardedResolver, check_url, is_public_address
from federation.errors import DeliveryNetworkError, Refused

NON_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",
]
PUBLIC = ["93.184.216.34", "1.1.1.1", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"]


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses_are_recognised(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_recognised(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def _literal_url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:8080/c/garden"


@pytest.fixture
async def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything asks the resolver."""

    async def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"unexpected DNS lookup {args}")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", forbidden)


@pytest.mark.parametrize("address", NON_PUBLIC)
async def test_non_public_literal_is_refused(address: str, no_dns: None) -> None:
    with pytest.raises(Refused, match="non-public"):
        await check_url(_literal_url(address), allow_private=False)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.1", "::ffff:127.0.0.1"])
async def test_non_public_literal_is_allowed_when_configured(address: str, no_dns: None) -> None:
    await check_url(_literal_url(address), allow_private=True)


@pytest.mark.parametrize("address", PUBLIC)
async def test_public_literal_is_allowed_without_a_lookup(address: str, no_dns: None) -> None:
    await check_url(_literal_url(address), allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["ftp://93.184.216.34/x", "file:///etc/passwd", "gopher://1.1.1.1/", "javascript:alert(1)"],
)
@pytest.mark.parametrize("allow_private", [False, True])
async def test_non_http_schemes_are_always_refused(url: str, allow_private: bool) -> None:
    with pytest.raises(Refused, match="scheme"):
        await check_url(url, allow_private=allow_private)


@pytest.mark.parametrize("url", ["http:///path", "https://"])
async def test_urls_without_host_are_refused(url: str) -> None:
    with pytest.raises(Refused):
        await check_url(url, allow_private=True)


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f000001"])
async def test_legacy_numeric_forms_of_loopback_are_refused(host: str) -> None:
    with pytest.raises(Refused):
        await check_url(f"http://{host}/", allow_private=False)


def _fake_getaddrinfo(table: dict[str, list[str]]) -> Callable[..., Any]:
    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in table[host]
        ]

    return getaddrinfo


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {
        "public.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        "internal.example": ["10.1.2.3"],
        "mixed.example": ["93.184.216.34", "127.0.0.1"],
        "v6local.example": ["fe80::1"],
    }
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", _fake_getaddrinfo(table))


async def test_name_resolving_to_public_addresses_is_allowed(fake_dns: None) -> None:
    await check_url("https://public.example/c/garden", allow_private=False)


@pytest.mark.parametrize("host", ["internal.example", "mixed.example", "v6local.example"])
async def test_name_resolving_to_any_non_public_address_is_refused(
    host: str, fake_dns: None
) -> None:
    with pytest.raises(Refused, match=host):
        await check_url(f"https://{host}/inbox", allow_private=False)


async def test_unresolvable_name_is_a_network_error_not_a_refusal(fake_dns: None) -> None:
    with pytest.raises(DeliveryNetworkError) as caught:
        await check_url("https://nowhere.example/", allow_private=False)
    assert not isinstance(caught.value, Refused)


class FakeResolver(AbstractResolver):
    def __init__(self, addresses: list[str]):
        self.addresses = addresses
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_guarded_resolver_drops_non_public_addresses() -> None:
    resolver = GuardedResolver(
        allow_private=False, inner=FakeResolver(["127.0.0.1", "93.184.216.34", "fe80::1"])
    )
    results = await resolver.resolve("rebind.example", 443)
    assert [r["host"] for r in results] == ["93.184.216.34"]


async def test_guarded_resolver_refuses_when_nothing_public_remains() -> None:
    resolver = GuardedResolver(allow_private=False, inner=FakeResolver(["127.0.0.1", "10.0.0.1"]))
    with pytest.raises(Refused, match=r"rebind\.example"):
        await resolver.resolve("rebind.example", 443)


async def test_guarded_resolver_passes_everything_when_private_is_allowed() -> None:
    inner = FakeResolver(["127.0.0.1", "10.0.0.1"])
    resolver = GuardedResolver(allow_private=True, inner=inner)
    assert [r["host"] for r in await resolver.resolve("dev.local", 80)] == ["127.0.0.1", "10.0.0.1"]
    await resolver.close()
    assert inner.closed
