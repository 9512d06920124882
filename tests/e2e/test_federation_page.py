"""The steward's federation page against real nodes, on SQLite and on PostgreSQL.

Alder and Birch become partners. Alder's page shows Birch healthy, with the
clock its signed requests showed. Birch stops; a listing Alder shares with
partners cannot be delivered, and Alder's page shows Birch backing off, the
failure and when the next attempt is. Birch comes back; "Retry now" on the
page sends the listing at once. Then Alder blocks Birch from the page and
unblocks it again.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from sqlalchemy import make_url

from tests.conftest import PG_ENV, _skip_postgres
from tests.e2e.conftest import STEWARD_PASSWORD, steward
from tests.e2e.test_partnerships import handle, propose_and_approve, state_of
from tests.support.api import eventually
from tests.support.processes import RunningNode, free_port, init_node, serve_node

pytestmark = pytest.mark.e2e

SHARED = "Partners-only wheelbarrow 7c1e"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


class Nodes:
    """Real nodes on one database kind; each node on PostgreSQL gets a database of its own."""

    def __init__(self, root: Path, admin_url: str | None) -> None:
        self.root = root
        self.admin_url = admin_url
        self.running: dict[str, RunningNode] = {}
        self.databases: list[str] = []

    async def _database(self) -> list[str]:
        if self.admin_url is None:
            return []
        name = f"commons_fedpage_{uuid.uuid4().hex[:12]}"
        await _admin(self.admin_url, f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        url = make_url(self.admin_url).set(drivername="postgresql+asyncpg", database=name)
        return ["--database-url", url.render_as_string(hide_password=False)]

    async def start(self, slug: str) -> RunningNode:
        data = self.root / slug
        if slug in self.running:
            base_url = self.running[slug].base_url
        else:
            base_url = init_node(
                data, slug=slug, name=f"{slug.title()} Commons", port=free_port(),
                password=STEWARD_PASSWORD, extra=await self._database(),
            )  # fmt: skip
        self.running[slug] = serve_node(data, base_url)
        return self.running[slug]

    def stop(self, slug: str) -> None:
        self.running[slug].stop()

    def stop_all(self) -> None:
        for node in self.running.values():
            node.stop()


async def _admin(admin_url: str, sql: str) -> None:
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Nodes]:
    admin = None
    if request.param == "postgresql":
        admin = os.environ.get(PG_ENV)
        if not admin:
            _skip_postgres()
    running = Nodes(tmp_path, admin)
    try:
        yield running
    finally:
        running.stop_all()
        for name in running.databases:
            await _admin(admin or "", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class StewardPage:
    """Alder's steward in a browser without JavaScript: cookies, Origin, CSRF."""

    def __init__(self, node: RunningNode, http: aiohttp.ClientSession) -> None:
        self.base_url = node.base_url
        self.http = http

    async def sign_in(self) -> None:
        async with self.http.post(
            self.base_url + "/signin",
            data={"username": "steward", "password": STEWARD_PASSWORD},
            headers={"Origin": self.base_url},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303, await resp.text()

    async def text(self) -> str:
        async with self.http.get(self.base_url + "/steward/federation") as resp:
            assert resp.status == 200, await resp.text()
            return await resp.text()

    async def press(self, path: str, **fields: str) -> str:
        """Submit one of the page's forms and return the page it leads back to."""
        token = CSRF_INPUT.search(await self.text())
        assert token, "no CSRF field on the federation page"
        async with self.http.post(
            self.base_url + path,
            data={"csrf_token": token.group(1), **fields},
            headers={"Origin": self.base_url},
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.text()


def peer_card(html: str, host: str) -> str:
    """The part of the page about one peer host."""
    match = re.search(
        rf'<li class="card peer peer--\w+">\s*<div class="peer__head">\s*'
        rf'<h3 class="peer__host handle">{re.escape(host)}</h3>.*?</li>',
        html,
        re.S,
    )
    assert match, f"{host} is not on the federation page"
    return match.group(0)


@pytest.fixture
async def browser_http() -> AsyncIterator[aiohttp.ClientSession]:
    # Cookies for 127.0.0.1 need an "unsafe" jar; no keep-alive, since nodes restart.
    jar = aiohttp.CookieJar(unsafe=True)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(
        cookie_jar=jar, connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        yield session


def _host(node: RunningNode) -> str:
    return node.base_url.split("//")[1]


async def test_a_steward_sees_a_peer_fail_and_retries_it_from_the_federation_page(
    nodes: Nodes, http: aiohttp.ClientSession, browser_http: aiohttp.ClientSession
) -> None:
    alder, birch = await nodes.start("alder"), await nodes.start("birch")
    alice, bob = await steward(alder, http), await steward(birch, http)
    await propose_and_approve(alice, bob, handle(birch, "birch"))
    await eventually(lambda: state_of(bob, "active"))
    page = StewardPage(alder, browser_http)
    await page.sign_in()
    host = _host(birch)

    healthy = peer_card(await page.text(), host)
    assert "Healthy" in healthy and f"birch@{host}" in healthy
    assert "In step with ours" in healthy  # Birch's signed Accept showed its clock

    nodes.stop("birch")
    await alice.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": SHARED, "visibility": "partners"},
    )

    async def failing() -> str:
        card = peer_card(await page.text(), host)
        assert "Backing off" in card, card
        return card

    card = await eventually(failing)
    assert "could not connect" in card
    assert re.search(r"<dt>Queued</dt><dd>1</dd>", card)
    assert re.search(r"<dt>Next attempt</dt><dd><time datetime=", card)
    assert "Retry now" in card

    await nodes.start("birch")
    after = await page.press("/steward/federation/retry", host=host)
    assert f"Retrying {host} now: 1 delivery due." in after

    async def birch_has_it() -> None:
        body = await bob.ok("GET", "/api/v1/listings?include_partners=true")
        assert SHARED in {item["title"] for item in body["items"]}

    await eventually(birch_has_it)
    await eventually(lambda: _healthy(page, host))

    blocked = await page.press("/steward/federation/blocks", domain=host, reason="Testing blocks")
    assert f"{host} is blocked" in blocked and "Testing blocks" in blocked
    assert "Blocked</span>" in peer_card(blocked, host)
    [peer] = (await alice.ok("GET", "/api/v1/federation/peers"))["items"]
    assert peer["state"] == "blocked" and peer["clock_skew_seconds"] is not None

    unblocked = await page.press("/steward/federation/blocks/remove", domain=host)
    assert f"{host} is no longer blocked" in unblocked
    assert "No domain is blocked." in unblocked
    assert "Healthy" in peer_card(unblocked, host)


async def _healthy(page: StewardPage, host: str) -> None:
    card = peer_card(await page.text(), host)
    assert "Healthy" in card and "<dt>Queued</dt><dd>0</dd>" in card, card
