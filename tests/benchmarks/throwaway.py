"""Throw-away PostgreSQL databases for benchmarks, made beside a server URL's and dropped after."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from storage.engine import create_engine


async def _admin(server_url: str, statement: str) -> None:
    engine = create_engine(server_url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def throwaway_database(server_url: str, label: str) -> AsyncIterator[str]:
    """A new, empty database on `server_url`'s server, as a URL; dropped on the way out."""
    name = f"bench_{label}_{os.getpid()}"
    await _admin(server_url, f"DROP DATABASE IF EXISTS {name}")
    await _admin(server_url, f"CREATE DATABASE {name}")
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        await _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
