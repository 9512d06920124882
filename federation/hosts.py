"""Which server a URL or a `Host` header names, compared one way everywhere.

Several checks hinge on "is this the same server": a signature's `host`
against our own, a keyId against the activity's actor, an actor's inbox
against the actor. They all reduce a name to `host` or `host:port`, lower
case, with the default port left out, so that `https://A.example:443/x` and
`https://a.example/y` are the same server and `a.example:8443` is another.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit

from yarl import URL

_SCHEME_PORTS: Final = {"http": 80, "https": 443}
_HEADER_DEFAULT_PORTS: Final = frozenset(_SCHEME_PORTS.values())


@lru_cache(maxsize=4096)
def parsed_url(url: str) -> URL:
    """`URL(url)`, parsed once: a delivery's inbox is read by the address guard,
    the signature and the request, for every activity sent to it. (`URL` is
    immutable, so sharing one is safe; a malformed URL raises each time.)"""
    return URL(url)


def _joined(name: str, port: int | None) -> str:
    name = f"[{name}]" if ":" in name else name
    return name if port is None else f"{name}:{port}"


def url_host(url: Any) -> str | None:
    """`host`, or `host:port` for a port other than the scheme's; None if there is none."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    default = port is None or port == _SCHEME_PORTS.get(parts.scheme)
    return _joined(parts.hostname, None if default else port)


def same_host(first: str, second: str) -> bool:
    """Whether two URLs are on the same server (name and port)."""
    host = url_host(first)
    return host is not None and host == url_host(second)


def normalize_host(value: str) -> str | None:
    """A `Host` header (or a configured host) as compared: `name` or `name:port`,
    lower case, no trailing dot, no default port.

    None when `value` is not a bare host (a path, user info or a bad port).
    Ports 80 and 443 are both dropped: a `Host` header does not say its scheme.
    """
    text = value.strip()
    if not text or any(char in text for char in "/?#@\\ \t"):
        return None
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError:
        return None
    name = (parts.hostname or "").rstrip(".")
    if not name:
        return None
    return _joined(name, None if port is None or port in _HEADER_DEFAULT_PORTS else port)


__all__ = ["normalize_host", "same_host", "url_host"]
