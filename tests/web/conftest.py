"""A node with one community and three people, and a browser-like client for it."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from node.app import init_app
from node.appkeys import SESSIONS
from node.config import NodeConfig, default_database_url, write_config
from node.services.provisioning import Person, provision_node
from storage.models import AuthToken, Listing

BASE_URL = "http://commons.test"
SLUG, NAME = "riverside", "Riverside Tool Library"
PASSWORD = "correct horse battery"
PEOPLE = {"stella": "steward", "max": "member", "olga": "member"}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@dataclass
class Browser:
    """A test client that behaves like one person's browser: cookies, Origin, CSRF."""

    client: TestClient[web.Request, web.Application]

    async def get(self, path: str) -> ClientResponse:
        return await self.client.get(path, allow_redirects=False)

    async def post(self, path: str, data: dict[str, str]) -> ClientResponse:
        headers = {"Origin": BASE_URL}
        return await self.client.post(path, data=data, headers=headers, allow_redirects=False)

    async def csrf(self, path: str = "/listings") -> str:
        html = await (await self.get(path)).text()
        match = CSRF_INPUT.search(html)
        assert match, f"no CSRF field on {path}"
        return match.group(1)

    async def submit(
        self, path: str, data: dict[str, str], form_page: str = "/listings"
    ) -> ClientResponse:
        """Post a form the way a browser would after loading `form_page`."""
        return await self.post(path, {"csrf_token": await self.csrf(form_page), **data})

    async def sign_in(self, username: str, password: str = PASSWORD) -> ClientResponse:
        return await self.post("/signin", {"username": username, "password": password})

    async def become(self, username: str) -> None:
        """Forget every cookie and sign in as someone else, as on a shared computer."""
        self.client.session.cookie_jar.clear()
        response = await self.sign_in(username)
        assert response.status == 303, await response.text()

    def cookie(self, name: str) -> str | None:
        for morsel in self.client.session.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return None


async def build_node(tmp_path: Path, base_url: str = BASE_URL) -> NodeConfig:
    config = write_config(
        tmp_path,
        base_url=base_url,
        slug=SLUG,
        name=NAME,
        database_url=default_database_url(tmp_path),
        allow_private_addresses=True,
    )
    people = [Person(username, PASSWORD, role) for username, role in PEOPLE.items()]
    await provision_node(config, people=people)
    return config


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrating and hashing three passwords takes a second; do it once, copy per test."""
    folder = tmp_path_factory.mktemp("web-template")
    with ThreadPoolExecutor(max_workers=1) as pool:  # no event loop may run in this thread
        pool.submit(asyncio.run, build_node(folder)).result()
    return folder / "commons.db"


@pytest.fixture
def node_config(tmp_path: Path, template_database: Path) -> NodeConfig:
    database = tmp_path / "commons.db"
    shutil.copyfile(template_database, database)
    return write_config(
        tmp_path,
        base_url=BASE_URL,
        slug=SLUG,
        name=NAME,
        database_url=default_database_url(tmp_path),
        allow_private_addresses=True,
    )


@pytest.fixture
async def browser(aiohttp_client: ClientFactory, node_config: NodeConfig) -> Browser:
    return Browser(await aiohttp_client(init_app(node_config)))


async def listings_in_db(browser: Browser) -> list[Listing]:
    async with browser.client.app[SESSIONS]() as session:
        result = await session.execute(select(Listing).order_by(Listing.created_at))
        return list(result.scalars().all())


async def session_count(browser: Browser) -> int:
    async with browser.client.app[SESSIONS]() as session:
        result = await session.execute(
            select(func.count()).select_from(AuthToken).where(AuthToken.kind == "session")
        )
        return int(result.scalar_one())
