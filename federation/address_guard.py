"""Refuse outbound requests to addresses inside our own network.

Remote servers choose the URLs we fetch (actor ids, key ids, inboxes,
redirects), so without a guard any of them could make this node request its
own admin endpoints, a cloud metadata service or the database host.

The check happens twice: `check_url` before a request (clear error, cheap for
IP literals), and `GuardedResolver` when aiohttp connects, so that a name
that resolved to a public address during the check and to a private one a
moment later (DNS rebinding) still cannot be reached. aiohttp does not call
the resolver for IP literals, which is why `check_url` must also run.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import TypeAlias

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from federation.errors import DeliveryNetworkError, Refused
from federation.hosts import parsed_url

ALLOWED_SCHEMES = frozenset({"http", "https"})
IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
# Well-known NAT64 prefix: on a NAT64 network 64:ff9b::a00:1 reaches 10.0.0.1.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped or NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """True when `address` is globally routable unicast.

    `is_global` alone is not enough: multicast addresses count as global.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryNetworkError(f"cannot resolve {host}: {exc}") from exc
    addresses = [_parse_ip(str(info[4][0])) for info in infos]
    return [address for address in addresses if address is not None]


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise `Refused` unless `url` is http(s) and every address of its host is public.

    With `allow_private` (development, demos, tests on loopback) only the
    scheme is checked. A name that does not resolve raises
    `DeliveryNetworkError`, which is worth retrying later.
    """
    try:
        parsed = parsed_url(url)
    except (ValueError, TypeError) as exc:
        raise Refused(f"refusing malformed URL: {exc}", url=url) from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise Refused(f"refusing non-http(s) URL scheme {parsed.scheme!r}", url=url)
    host = parsed.raw_host
    if not host:
        raise Refused("refusing URL without a host", url=url)
    if allow_private:
        return
    literal = _parse_ip(host)
    addresses = [literal] if literal is not None else await _resolve(host, parsed.port or 0)
    if not addresses:
        raise DeliveryNetworkError(f"{host} has no usable address", url=url)
    for address in addresses:
        if not is_public_address(address):
            raise Refused(f"refusing {host}: it resolves to non-public {address}", url=url)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops non-public addresses at connection time.

    Wraps `ThreadedResolver` (the system resolver, so /etc/hosts and the
    operator's DNS apply). If nothing public remains it raises `Refused`,
    which aiohttp passes through unchanged to the caller.
    """

    def __init__(self, *, allow_private: bool, inner: AbstractResolver | None = None):
        self._allow_private = allow_private
        self._inner = inner if inner is not None else ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        public = [r for r in results if _is_public_result(r)]
        if not public:
            raise Refused(f"refusing {host}: it resolves only to non-public addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()


def _is_public_result(result: ResolveResult) -> bool:
    address = _parse_ip(result["host"])
    return address is not None and is_public_address(address)
