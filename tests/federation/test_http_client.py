"""Signed fetch and post against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from federation.address_guard import GuardedResolver
from federation.errors import (
    DeliveryNetworkError,
    FetchError,
    ObjectGone,
    ObjectNotFound,
    Refused,
    ResponseTooLarge,
    TooManyRedirects,
)
from federation.http_client import (
    ACCEPT_ACTIVITY,
    HttpLimits,
    PostResult,
    create_client_session,
    parse_retry_after,
    signed_get_json,
    signed_get_json_array,
    signed_post,
)
from federation.keys import generate_key_pair
from federation.signatures import PublicKeyRecord, SignatureInfo, verify_request
from tests.support.fake_remote import own_host

KEY_ID = "https://local.example/c/garden#main-key"
OWNER = "https://local.example/c/garden"
LIMIT = 1024
LIMITS = HttpLimits(max_response_bytes=LIMIT, total_timeout=2.0)
ACTOR = {"id": "https://remote.example/c/orchard", "type": "Group"}
AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Seen:
    """What the fake remote received, per request."""

    paths: list[str] = field(default_factory=list)
    signatures: list[SignatureInfo] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


SEEN = web.AppKey("seen", Seen)


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return generate_key_pair()


def fake_remote(public_pem: str) -> web.Application:
    """A remote server that checks every request's signature with our verifier."""

    async def resolve_key(key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        return PublicKeyRecord(KEY_ID, OWNER, public_pem) if key_id == KEY_ID else None

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen = request.app[SEEN]
        seen.paths.append(request.path_qs)
        seen.headers.append(dict(request.headers))
        body = await request.read()
        url = request.rel_url
        info = await verify_request(
            request.method,
            url.raw_path,
            url.raw_query_string,
            request.headers,
            body,
            resolve_key,
            expected_host=own_host(request),
        )
        seen.signatures.append(info)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app[SEEN] = Seen()
    app.router.add_routes(ROUTES)
    return app


ROUTES = web.RouteTableDef()


@ROUTES.get("/actor")
async def actor(request: web.Request) -> web.Response:
    return web.json_response(ACTOR, content_type="application/activity+json")


@ROUTES.get("/redirect/{hops}")
async def redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["hops"])
    target = "/actor?via=redirect" if hops <= 1 else f"/redirect/{hops - 1}"
    raise web.HTTPFound(target)


@ROUTES.get("/elsewhere")
async def elsewhere(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


@ROUTES.get("/redirect-to-ftp")
async def redirect_to_ftp(request: web.Request) -> web.Response:
    raise web.HTTPFound("ftp://127.0.0.1/actor")


@ROUTES.get("/status/{status}")
async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["status"]), text="no")


@ROUTES.get("/big-declared")
async def big_declared(request: web.Request) -> web.Response:
    return web.Response(body=b"{" + b" " * LIMIT + b"}", content_type="application/json")


@ROUTES.get("/big-chunked")
async def big_chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(8):
        await response.write(b" " * 256)
    await response.write_eof()
    return response


@ROUTES.get("/exactly-limit")
async def exactly_limit(request: web.Request) -> web.Response:
    body = b'{"a": "' + b"x" * (LIMIT - 9) + b'"}'
    assert len(body) == LIMIT
    return web.Response(body=body, content_type="application/json")


@ROUTES.get("/list")
async def json_list(request: web.Request) -> web.Response:
    return web.json_response([ACTOR])


@ROUTES.get("/html")
async def html(request: web.Request) -> web.Response:
    return web.Response(text="<html></html>", content_type="text/html")


@ROUTES.get("/slow")
async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response(ACTOR)


@ROUTES.post("/inbox")
async def inbox(request: web.Request) -> web.Response:
    return web.Response(status=202)


@ROUTES.post("/busy")
async def busy(request: web.Request) -> web.Response:
    return web.Response(status=429, headers={"Retry-After": "120"}, text="é" * 2000)


@ROUTES.post("/maintenance")
async def maintenance(request: web.Request) -> web.Response:
    until = datetime.now(UTC) + timedelta(hours=1)
    return web.Response(status=503, headers={"Retry-After": format_datetime(until, usegmt=True)})


@ROUTES.post("/moved")
async def moved(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/inbox")


@pytest.fixture
async def remote(aiohttp_server: AiohttpServer, key_pair: tuple[str, str]) -> TestServer:
    return await aiohttp_server(fake_remote(key_pair[1]))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_client_session(
        allow_private=True, user_agent="CommonsNode/test", limits=LIMITS
    ) as client:
        yield client


async def get(
    session: aiohttp.ClientSession,
    url: str,
    key_pair: tuple[str, str] | None,
    *,
    allow_private: bool = True,
    limits: HttpLimits = LIMITS,
) -> dict[str, object]:
    return await signed_get_json(
        session,
        url,
        key_id=KEY_ID if key_pair else None,
        private_key_pem=key_pair[0] if key_pair else None,
        allow_private=allow_private,
        limits=limits,
    )


def seen(remote: TestServer) -> Seen:
    return remote.app[SEEN]


# --- GET ---------------------------------------------------------------------


async def test_signed_get_is_verified_by_the_remote(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    document = await get(session, str(remote.make_url("/actor?x=a%20b")), key_pair)
    assert document == ACTOR
    assert seen(remote).signatures == [SignatureInfo(True, KEY_ID, OWNER, False, None)]
    headers = seen(remote).headers[0]
    assert headers["Accept"] == ACCEPT_ACTIVITY
    assert headers["User-Agent"] == "CommonsNode/test"
    assert "Digest" not in headers


async def test_unsigned_get_sends_no_signature(
    remote: TestServer, session: aiohttp.ClientSession
) -> None:
    assert await get(session, str(remote.make_url("/actor")), None) == ACTOR
    assert "Signature" not in seen(remote).headers[0]
    assert seen(remote).signatures[0].reason == "no Signature header"


async def test_redirects_are_followed_and_each_hop_is_signed(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    assert await get(session, str(remote.make_url("/redirect/3")), key_pair) == ACTOR
    assert seen(remote).paths == [
        "/redirect/3",
        "/redirect/2",
        "/redirect/1",
        "/actor?via=redirect",
    ]
    assert all(info.valid for info in seen(remote).signatures)


async def test_signature_is_not_carried_to_another_host_on_redirect(
    remote: TestServer,
    aiohttp_server: AiohttpServer,
    session: aiohttp.ClientSession,
    key_pair: tuple[str, str],
) -> None:
    other = await aiohttp_server(fake_remote(key_pair[1]))
    url = remote.make_url("/elsewhere").with_query(to=str(other.make_url("/actor")))
    assert await get(session, str(url), key_pair) == ACTOR
    assert seen(remote).signatures[0].valid
    assert "Signature" not in seen(other).headers[0]
    back = other.make_url("/elsewhere").with_query(to=str(remote.make_url("/actor")))
    start = remote.make_url("/elsewhere").with_query(to=str(back))
    assert await get(session, str(start), key_pair) == ACTOR
    assert [info.valid for info in seen(remote).signatures] == [True, True, True]


async def test_same_host_only_refuses_a_redirect_to_another_host(
    remote: TestServer,
    aiohttp_server: AiohttpServer,
    session: aiohttp.ClientSession,
    key_pair: tuple[str, str],
) -> None:
    other = await aiohttp_server(fake_remote(key_pair[1]))
    url = remote.make_url("/elsewhere").with_query(to=str(other.make_url("/actor")))
    with pytest.raises(FetchError, match="another host"):
        await signed_get_json(
            session,
            str(url),
            key_id=KEY_ID,
            private_key_pem=key_pair[0],
            allow_private=True,
            limits=LIMITS,
            same_host_only=True,
        )
    assert seen(other).paths == []
    same = remote.make_url("/redirect/2")
    document = await signed_get_json(
        session,
        str(same),
        key_id=KEY_ID,
        private_key_pem=key_pair[0],
        allow_private=True,
        limits=LIMITS,
        same_host_only=True,
    )
    assert document == ACTOR


async def test_redirects_beyond_the_limit_are_refused(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    with pytest.raises(TooManyRedirects):
        await get(session, str(remote.make_url("/redirect/4")), key_pair)
    assert len(seen(remote).paths) == LIMITS.max_redirects + 1


async def test_each_redirect_hop_is_rechecked_by_the_guard(
    remote: TestServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(Refused, match="scheme"):
        await get(session, str(remote.make_url("/redirect-to-ftp")), None)


@pytest.mark.parametrize(
    ("path", "message"),
    [("/big-declared", "declares 1026 bytes"), ("/big-chunked", "sent more than")],
)
async def test_responses_over_the_size_limit_are_refused(
    path: str, message: str, remote: TestServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(ResponseTooLarge, match=message):
        await get(session, str(remote.make_url(path)), None)


async def test_response_of_exactly_the_limit_is_read(
    remote: TestServer, session: aiohttp.ClientSession
) -> None:
    document = await get(session, str(remote.make_url("/exactly-limit")), None)
    assert len(str(document["a"])) == LIMIT - 9


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, ObjectNotFound), (410, ObjectGone), (500, FetchError), (401, FetchError)],
)
async def test_error_statuses_map_to_the_error_family(
    status: int, error: type[FetchError], remote: TestServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(error) as caught:
        await get(session, str(remote.make_url(f"/status/{status}")), None)
    assert type(caught.value) is error
    assert caught.value.status == status


@pytest.mark.parametrize("path", ["/list", "/html"])
async def test_answers_that_are_not_json_objects_are_refused(
    path: str, remote: TestServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(FetchError, match="JSON"):
        await get(session, str(remote.make_url(path)), None)


async def test_an_array_is_read_only_where_one_is_asked_for(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    url = str(remote.make_url("/list"))
    hosts = await signed_get_json_array(
        session, url, key_id=KEY_ID, private_key_pem=key_pair[0], allow_private=True, limits=LIMITS
    )
    assert hosts == [ACTOR]
    assert seen(remote).signatures[0].valid


@pytest.mark.parametrize(
    ("path", "message"),
    [("/actor", "not an array"), ("/html", "JSON"), ("/big-declared", "declares")],
)
async def test_an_array_fetch_refuses_objects_other_text_and_big_bodies(
    path: str, message: str, remote: TestServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(FetchError, match=message):
        await signed_get_json_array(
            session,
            str(remote.make_url(path)),
            key_id=None,
            private_key_pem=None,
            allow_private=True,
            limits=LIMITS,
        )


async def test_an_array_fetch_does_not_follow_a_redirect_to_another_host(
    remote: TestServer, session: aiohttp.ClientSession
) -> None:
    elsewhere = str(remote.make_url("/list")).replace("127.0.0.1", "localhost")
    with pytest.raises(FetchError, match="another host"):
        await signed_get_json_array(
            session,
            str(remote.make_url("/elsewhere").with_query(to=elsewhere)),
            key_id=None,
            private_key_pem=None,
            allow_private=True,
            limits=LIMITS,
        )


async def test_slow_remote_times_out_as_a_network_error(
    remote: TestServer, session: aiohttp.ClientSession
) -> None:
    limits = HttpLimits(total_timeout=0.2)
    with pytest.raises(DeliveryNetworkError):
        await get(session, str(remote.make_url("/slow")), None, limits=limits)


async def test_closed_port_is_a_network_error(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeliveryNetworkError):
        await get(session, f"http://127.0.0.1:{port}/actor", None)


async def test_loopback_is_refused_unless_allowed(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    with pytest.raises(Refused):
        await get(session, str(remote.make_url("/actor")), key_pair, allow_private=False)
    with pytest.raises(Refused):
        await signed_post(
            session,
            str(remote.make_url("/inbox")),
            b"{}",
            key_id=KEY_ID,
            private_key_pem=key_pair[0],
            allow_private=False,
            limits=LIMITS,
        )
    assert seen(remote).paths == []


class PinnedResolver(AbstractResolver):
    """Answers 127.0.0.1 for every name, as a rebinding attacker's DNS would."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("allow_private", [False, True])
async def test_guarded_resolver_blocks_rebinding_at_connect_time(
    allow_private: bool, remote: TestServer
) -> None:
    resolver = GuardedResolver(allow_private=allow_private, inner=PinnedResolver())
    connector = aiohttp.TCPConnector(resolver=resolver)
    url = f"http://rebound.example:{remote.port}/actor"
    async with aiohttp.ClientSession(connector=connector) as client:
        if allow_private:
            async with client.get(url) as response:
                assert response.status == 200
        else:
            with pytest.raises(Refused):
                await client.get(url)
    assert len(seen(remote).paths) == int(allow_private)


# --- POST ----------------------------------------------------------------------


async def post(session: aiohttp.ClientSession, url: str, key_pair: tuple[str, str]) -> PostResult:
    return await signed_post(
        session,
        url,
        b'{"type": "Follow"}',
        key_id=KEY_ID,
        private_key_pem=key_pair[0],
        allow_private=True,
        limits=LIMITS,
    )


async def test_signed_post_is_verified_by_the_remote(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    result = await post(session, str(remote.make_url("/inbox")), key_pair)
    assert result == PostResult(202, None, "")
    assert seen(remote).signatures == [SignatureInfo(True, KEY_ID, OWNER, False, None)]
    assert seen(remote).headers[0]["Content-Type"] == "application/activity+json"


async def test_post_reports_retry_after_seconds_and_a_short_excerpt(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    result = await post(session, str(remote.make_url("/busy")), key_pair)
    assert (result.status, result.retry_after) == (429, 120.0)
    assert result.body_excerpt == "é" * 500


async def test_post_reports_retry_after_http_date(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    result = await post(session, str(remote.make_url("/maintenance")), key_pair)
    assert result.status == 503
    assert result.retry_after is not None and 3590 <= result.retry_after <= 3600


async def test_post_does_not_follow_redirects(
    remote: TestServer, session: aiohttp.ClientSession, key_pair: tuple[str, str]
) -> None:
    result = await post(session, str(remote.make_url("/moved")), key_pair)
    assert result.status == 308
    assert seen(remote).paths == ["/moved"]


NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        (" 3600 ", 3600.0),
        ("Sat, 01 Mar 2025 12:02:00 GMT", 120.0),
        ("Sat, 01 Mar 2025 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("²", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected
