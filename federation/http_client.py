"""Signed outbound HTTP: fetching ActivityPub documents and posting to inboxes.

Every URL here comes from a remote server, so every request is bounded: the
address guard on each hop, timeouts, a response size limit (checked against
`Content-Length` and again while streaming, since the header may lie or be
absent) and a redirect limit. Redirects are followed by hand so that each hop
is guarded, and a signature never crosses to another host: a hop on the same
host is signed afresh, a hop elsewhere goes unsigned (or, for documents that
must come from where they say they are, actors and keys, is refused). A
signature is our word that *we* asked; a redirect is a remote's word, and must
not make us ask a third server anything in our name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, TypeVar

import aiohttp
import orjson
from yarl import URL

from federation.address_guard import GuardedResolver, check_url
from federation.errors import (
    DeliveryNetworkError,
    FetchError,
    ObjectGone,
    ObjectNotFound,
    ResponseTooLarge,
    SignatureError,
    TooManyRedirects,
)
from federation.hosts import parsed_url
from federation.signatures import sign_request

ACCEPT_ACTIVITY = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
CONTENT_TYPE_ACTIVITY = "application/activity+json"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_READ_CHUNK_BYTES = 64 * 1024
_EXCERPT_CHARS = 500
_EXCERPT_BYTES = 4 * _EXCERPT_CHARS


@dataclass(frozen=True)
class HttpLimits:
    """Bounds on one outbound request; a slow or huge remote must not stall a worker."""

    connect_timeout: float = 5.0
    total_timeout: float = 20.0
    max_response_bytes: int = 2 * 1024 * 1024
    max_redirects: int = 3

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return _client_timeout(self)


@lru_cache(maxsize=16)
def _client_timeout(limits: HttpLimits) -> aiohttp.ClientTimeout:
    """One (immutable) `ClientTimeout` per set of limits, not one per request."""
    return aiohttp.ClientTimeout(total=limits.total_timeout, sock_connect=limits.connect_timeout)


@dataclass(frozen=True)
class PostResult:
    """What an inbox answered; the delivery worker classifies it (retry, give up)."""

    status: int
    retry_after: float | None
    body_excerpt: str


def network_reason(exc: BaseException) -> str:
    """A failure below HTTP in words a steward can act on (it is shown on their pages)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return f"could not connect ({reason.lower()})"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    return f"{type(exc).__name__}: {exc}"[:300]


def create_client_session(
    *,
    allow_private: bool,
    user_agent: str,
    limits: HttpLimits,
    max_connections: int = 100,
    max_connections_per_host: int = 0,
) -> aiohttp.ClientSession:
    """A session for talking to other servers; call it inside the running loop.

    It resolves names through `GuardedResolver` (so DNS rebinding cannot reach
    a private address), keeps no cookies (remote servers must not be able to
    tie our requests together or to each other), and ignores proxy variables.
    Work of different kinds gets a session each (deliveries, key fetches), so
    that slow remotes of one kind cannot hold the connections of the other.
    """
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private=allow_private),
        limit=max_connections,
        limit_per_host=max_connections_per_host,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=limits.client_timeout(),
        headers={"User-Agent": user_agent},
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` of delta-seconds or an HTTP-date.

    Returns None when absent or unparseable, so the caller's own backoff
    applies; a date in the past means "now" (0.0).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _raise_for_status(status: int, url: str) -> None:
    if 200 <= status < 300:
        return
    if status == 404:
        raise ObjectNotFound(f"{url} was not found", url=url, status=status)
    if status == 410:
        raise ObjectGone(f"{url} is gone", url=url, status=status)
    raise FetchError(f"{url} answered HTTP {status}", url=url, status=status)


async def _read_limited(response: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    """Read the body, refusing as soon as it is known to exceed `limit` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise ResponseTooLarge(f"{url} declares {declared} bytes, limit {limit}", url=url)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"{url} sent more than {limit} bytes", url=url)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_excerpt(response: aiohttp.ClientResponse) -> str:
    """The start of a body, for logs: enough to see an error message, no more."""
    data = bytearray()
    while len(data) < _EXCERPT_BYTES:
        chunk = await response.content.read(_EXCERPT_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", errors="replace")[:_EXCERPT_CHARS]


def _json_document(body: bytes, url: str, shape: type[dict[str, Any]] | type[list[Any]]) -> Any:
    """The body as JSON of the `shape` asked for: an object, or (where asked) an array."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FetchError(f"{url} did not answer JSON: {exc}", url=url) from exc
    if not isinstance(document, shape):
        what = "an object" if shape is dict else "an array"
        raise FetchError(f"{url} answered JSON that is not {what}", url=url)
    return document


def _redirect_target(response: aiohttp.ClientResponse, url: str) -> str:
    location = response.headers.get("Location")
    if not location:
        raise FetchError(f"{url} redirected without a Location", url=url, status=response.status)
    try:
        return str(URL(url).join(URL(location)).with_fragment(None))
    except ValueError as exc:
        raise FetchError(f"{url} redirected to bad URL {location!r}", url=url) from exc


def _get_headers(url: str, key_id: str | None, private_key_pem: str | None) -> dict[str, str]:
    headers = {"Accept": ACCEPT_ACTIVITY}
    if key_id is None and private_key_pem is None:
        return headers
    if key_id is None or private_key_pem is None:
        raise SignatureError("key_id and private_key_pem must be given together")
    return sign_request("GET", url, headers, None, key_id, private_key_pem)


@contextmanager
def _network_errors(method: str, url: str) -> Iterator[None]:
    """aiohttp's failures below HTTP as ours: a malformed URL is a `FetchError`,
    anything on the wire (refused, reset, timed out) a `DeliveryNetworkError`."""
    try:
        yield
    except aiohttp.InvalidURL as exc:
        raise FetchError(f"invalid URL {url!r}", url=url) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = network_reason(exc)
        raise DeliveryNetworkError(f"{method} {url} failed: {reason}", url=url) from exc


_Answer = TypeVar("_Answer")


async def _follow_redirects(
    url: str,
    hop: Callable[[str, bool], Awaitable[str | _Answer]],
    *,
    allow_private: bool,
    limits: HttpLimits,
    same_host_only: bool = False,
) -> _Answer:
    """Ask `hop(address, on_asked_origin)` until it answers something other than a
    redirect target (a `str`), at most `limits.max_redirects` redirects later.

    Every address is checked (`check_url`) before it is asked; with
    `same_host_only`, a redirect to another origin is refused (`FetchError`).
    """
    origin = _origin(url)
    current = url
    for _ in range(limits.max_redirects + 1):
        await check_url(current, allow_private=allow_private)
        here = _origin(current) == origin
        if not here and same_host_only:
            raise FetchError(f"{url} redirected to another host: {current}", url=url)
        answer = await hop(current, here)
        if not isinstance(answer, str):
            return answer
        current = answer
    raise TooManyRedirects(f"{url} redirected more than {limits.max_redirects} times", url=url)


@dataclass(frozen=True)
class _Document:
    value: Any


async def _get_once(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    limits: HttpLimits,
    read: Callable[[aiohttp.ClientResponse], Awaitable[_Answer]],
) -> str | _Answer:
    """One GET without following redirects: a redirect target, or what `read` makes
    of a successful answer (an HTTP error status raises first)."""
    with _network_errors("GET", url):
        async with session.get(
            url, headers=headers, allow_redirects=False, timeout=limits.client_timeout()
        ) as response:
            if response.status in _REDIRECT_STATUSES:
                return _redirect_target(response, url)
            _raise_for_status(response.status, url)
            return await read(response)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parsed = URL(url)
    return parsed.scheme, (parsed.host or "").lower().rstrip("."), parsed.port


async def signed_get_json(
    session: aiohttp.ClientSession,
    url: str,
    *,
    key_id: str | None,
    private_key_pem: str | None,
    allow_private: bool,
    limits: HttpLimits,
    same_host_only: bool = False,
) -> dict[str, Any]:
    """GET an ActivityPub document (a JSON object), signed when a key is given.

    Signed fetch is what lets a partner serve us partner-only objects; an
    unsigned GET is for servers that reject signatures from unknown actors.
    A redirect to another origin is followed without the signature, or
    refused (`FetchError`) with `same_host_only`: for documents whose
    origin vouches for them (an actor, a key), a document served by someone
    else is not the document asked for.
    """
    hop = _document_hop(session, limits, dict, key_id, private_key_pem)
    found = await _follow_redirects(
        url, hop, allow_private=allow_private, limits=limits, same_host_only=same_host_only
    )
    document: dict[str, Any] = found.value
    return document


async def signed_get_json_array(
    session: aiohttp.ClientSession,
    url: str,
    *,
    key_id: str | None,
    private_key_pem: str | None,
    allow_private: bool,
    limits: HttpLimits,
) -> list[Any]:
    """GET a JSON array (Mastodon's `/api/v1/instance/peers`), under the same guards.

    Only for the few URLs documented to answer an array; everything else must
    be an object (`signed_get_json`). Redirects stay on the asked host: a list
    of hosts is only worth what its own server says. Callers pass `limits`
    with a `max_response_bytes` sized for what they expect.
    """
    hop = _document_hop(session, limits, list, key_id, private_key_pem)
    found = await _follow_redirects(
        url, hop, allow_private=allow_private, limits=limits, same_host_only=True
    )
    document: list[Any] = found.value
    return document


def _document_hop(
    session: aiohttp.ClientSession,
    limits: HttpLimits,
    shape: type[dict[str, Any]] | type[list[Any]],
    key_id: str | None,
    private_key_pem: str | None,
) -> Callable[[str, bool], Awaitable[str | _Document]]:
    """A `_follow_redirects` hop for a JSON document of `shape`, signed (when a key is
    given) on the asked origin only: a redirect elsewhere is asked unsigned."""

    async def hop(current: str, here: bool) -> str | _Document:
        async def read(response: aiohttp.ClientResponse) -> _Document:
            body = await _read_limited(response, limits.max_response_bytes, current)
            return _Document(_json_document(body, current, shape))

        headers = (
            _get_headers(current, key_id, private_key_pem)
            if here
            else _get_headers(current, None, None)
        )
        return await _get_once(session, current, headers, limits, read)

    return hop


async def signed_post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    key_id: str,
    private_key_pem: str,
    allow_private: bool,
    limits: HttpLimits,
    sign_on: Executor | None = None,
) -> PostResult:
    """POST an activity to an inbox and report the answer, whatever its status.

    Redirects are not followed: an inbox that moves must be rediscovered from
    the actor document, not trusted from a 3xx. Only failures below HTTP raise
    (`DeliveryNetworkError`), and a guarded address raises `Refused`. With
    `sign_on`, the signature is made on that executor's threads, off the loop.
    """
    await check_url(url, allow_private=allow_private)
    base = {"Content-Type": CONTENT_TYPE_ACTIVITY, "Accept": ACCEPT_ACTIVITY}
    if sign_on is None:
        headers = sign_request("POST", url, base, body, key_id, private_key_pem)
    else:
        headers = await asyncio.get_running_loop().run_in_executor(
            sign_on, sign_request, "POST", url, base, body, key_id, private_key_pem
        )
    with _network_errors("POST", url):
        async with session.post(
            parsed_url(url),
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=limits.client_timeout(),
        ) as response:
            excerpt = await _read_excerpt(response)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return PostResult(response.status, retry_after, excerpt)


@dataclass(frozen=True)
class Media:
    """A file fetched from another server: its declared type and its bytes."""

    media_type: str
    data: bytes


async def get_media(
    session: aiohttp.ClientSession,
    url: str,
    *,
    key_id: str | None,
    private_key_pem: str | None,
    allow_private: bool,
    limits: HttpLimits,
    accept: frozenset[str],
) -> Media:
    """GET a file (an image) of one of `accept`'s types, within `limits.max_response_bytes`.

    Under the same guard as documents: the address check before every hop,
    the guarded resolver when connecting, a redirect limit. Signed (for a
    partner-only listing's photo) on the asked host only; a redirect
    elsewhere is followed unsigned.
    """

    async def hop(current: str, here: bool) -> str | Media:
        async def read(response: aiohttp.ClientResponse) -> Media:
            media_type = response.content_type.lower()
            if media_type not in accept:
                raise FetchError(
                    f"{current} is {media_type!r}, not an accepted type", url=current, status=415
                )
            body = await _read_limited(response, limits.max_response_bytes, current)
            return Media(media_type, body)

        headers = {"Accept": ", ".join(sorted(accept))}
        if here and key_id is not None and private_key_pem is not None:
            headers = sign_request("GET", current, headers, None, key_id, private_key_pem)
        return await _get_once(session, current, headers, limits, read)

    return await _follow_redirects(url, hop, allow_private=allow_private, limits=limits)
