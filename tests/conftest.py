"""Shared fixtures: a throw-away database per test on SQLite and on PostgreSQL, and nodes.

PostgreSQL runs when COMMONS_TEST_POSTGRES_URL names a server we may create
databases on (CI sets it); elsewhere those tests skip and say why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from hypothesis import settings
from sqlalchemy.engine import make_url

from node.app import init_app
from node.config import NodeConfig, write_config
from node.services import accounts
from node.services.accounts import create_member
from node.services.provisioning import provision_node
from storage.engine import create_engine, create_session_factory
from storage.migrate import upgrade_to_head
from storage.models import Community
from storage.repositories import CommunityRepository

PG_ENV = "COMMONS_TEST_POSTGRES_URL"
PASSWORD = "correct horse battery"

# Property tests run Hypothesis' usual 100 examples by default, and five times as many
# with COMMONS_HYPOTHESIS_PROFILE=thorough (before a release, or nightly). The slow
# ones (each example a pyld expansion, or HTTP requests to a node) ask for
# `examples(n)`: n in a thorough run, a quarter of it (at least 20) by default.
HYPOTHESIS_PROFILE_ENV = "COMMONS_HYPOTHESIS_PROFILE"
settings.register_profile("default", max_examples=100)
settings.register_profile("thorough", max_examples=500)
settings.load_profile(os.environ.get(HYPOTHESIS_PROFILE_ENV, "default"))


def examples(thorough: int) -> int:
    """How many examples a property test runs under the loaded profile."""
    if settings().max_examples >= settings.get_profile("thorough").max_examples:
        return thorough
    return max(20, thorough // 4)


def _skip_postgres() -> None:
    reason = f"PostgreSQL tests need {PG_ENV}=postgresql://user@host:port/db"
    if os.environ.get("COMMONS_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, name: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


async def _pg_execute(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2id at the lowest cost it allows, for nodes running inside the test process.

    At the production cost (64 MiB, three passes) one hash takes a good part of a
    second on a busy CI core, and nearly every test signs someone in. Hashes carry
    their own parameters, so verifying and rejecting work exactly as in production.
    Nodes the tests start as processes (e2e, browser, fuzz) keep the production cost.
    """
    production = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    try:
        yield
    finally:
        accounts._hasher = production


def _in_thread(fn: Any, *args: Any) -> Any:
    """Session fixtures may be first requested from inside a running loop; step aside."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _in_thread(upgrade_to_head, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[tuple[str, str]]:
    admin = _pg_admin_url()
    if not admin:
        _skip_postgres()
    name = f"commons_tpl_{uuid.uuid4().hex[:12]}"
    _in_thread(asyncio.run, _pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        _in_thread(upgrade_to_head, _with_database(admin, name))
        yield admin, name
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        _in_thread(asyncio.run, _pg_execute(admin, drop))


@dataclass
class ReusedDatabase:
    """One PostgreSQL database per test process, emptied before each test that uses it.

    Creating and dropping a database per test costs a checkpoint each time; emptying
    the tables costs a few milliseconds. It is only reused while the migrated
    template holds no rows (nothing to restore); should a migration ever seed
    rows, each test gets a fresh copy of the template instead.
    """

    admin: str
    template: str
    name: str | None

    async def claim(self) -> str:
        assert self.name is not None
        conn = await asyncpg.connect(_asyncpg_dsn(_with_database(self.admin, self.name)))
        try:
            # Connections a finished test left behind may hold locks TRUNCATE waits for.
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            tables = await conn.fetch(
                "SELECT quote_ident(tablename) AS name FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
            if tables:
                names = ", ".join(row["name"] for row in tables)
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()
        return _with_database(self.admin, self.name)


async def _holds_rows(url: str) -> bool:
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        for row in tables:
            if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {row['name']})"):
                return True
        return False
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_reused(pg_template: tuple[str, str]) -> Iterator[ReusedDatabase]:
    admin, template = pg_template
    if _in_thread(asyncio.run, _holds_rows(_with_database(admin, template))):
        yield ReusedDatabase(admin, template, None)
        return
    name = f"commons_test_{uuid.uuid4().hex[:12]}"
    _in_thread(asyncio.run, _pg_execute(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield ReusedDatabase(admin, template, name)
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        _in_thread(asyncio.run, _pg_execute(admin, drop))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database holding nothing, for one test."""
    if request.param == "sqlite":
        path = tmp_path / "commons.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    reused: ReusedDatabase = request.getfixturevalue("pg_reused")
    if reused.name is not None:
        yield await reused.claim()
        return
    name = f"commons_test_{uuid.uuid4().hex[:12]}"
    await _pg_execute(reused.admin, f'CREATE DATABASE "{name}" TEMPLATE "{reused.template}"')
    try:
        yield _with_database(reused.admin, name)
    finally:
        await _pg_execute(reused.admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Like `database_url` but with no schema: for migration tests. Parametrise indirectly."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    admin = _pg_admin_url()
    if not admin:
        _skip_postgres()
    name = f"commons_empty_{uuid.uuid4().hex[:12]}"
    await _pg_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin, name)
    finally:
        await _pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class NodeHandle:
    """A node under test: its config, an API client, and ways to add people to it."""

    config: NodeConfig
    client: TestClient[Any, Any]

    async def add_member(
        self,
        username: str,
        role: str = "member",
        *,
        community: str | None = None,
        operator: bool = False,
    ) -> None:
        engine = create_engine(self.config.database_url)
        try:
            async with create_session_factory(engine)() as session:
                slug = community or self.config.slug
                community_row = await CommunityRepository(session).get_local_by_slug(slug)
                assert community_row is not None
                await create_member(
                    session, community_row, username, PASSWORD, role, is_operator=operator
                )
                await session.commit()
        finally:
            await engine.dispose()

    async def token(self, username: str) -> str:
        resp = await self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
        )
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["token"])

    async def login(self, username: str, role: str = "member") -> dict[str, str]:
        await self.add_member(username, role)
        return {"Authorization": f"Bearer {await self.token(username)}"}


async def create_node_community(config: NodeConfig) -> Community:
    """The node's community, on a database copied from the migrated template."""
    return await provision_node(
        config,
        description="Tools for everyone",
        location=(51.5072, -0.1276),
        migrate=False,
    )


@pytest.fixture
async def node(tmp_path: Path, database_url: str, aiohttp_client: Any) -> AsyncIterator[NodeHandle]:
    data = tmp_path / "node"
    data.mkdir()
    config = write_config(
        data,
        base_url="http://tools.test",
        slug="tools",
        name="Tool Library",
        database_url=database_url,
        allow_private_addresses=True,
    )
    await create_node_community(config)
    client = await aiohttp_client(init_app(config))
    yield NodeHandle(config=config, client=client)
