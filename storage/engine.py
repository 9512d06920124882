"""Engine and session set-up for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry


def normalize_url(url: str) -> str:
    """Accept the URLs operators type and turn them into async driver URLs."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif driver in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """One engine per process; SQLite gets WAL and enforced foreign keys."""
    url = normalize_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if not is_sqlite(url):
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_session_factory(
    engine: AsyncEngine,
    *,
    after_commit: Callable[[Session], None] | None = None,
    after_rollback: Callable[[Session, Any], None] | None = None,
    info: dict[str, Any] | None = None,
) -> async_sessionmaker[AsyncSession]:
    """Sessions for one engine; `after_commit` runs after each successful commit,
    `after_rollback` after each rollback (`after_soft_rollback`: of a savepoint
    too), and every session's `info` starts with a copy of `info`.

    The hooks are registered on a session class of this factory's own, so two
    nodes in one process (tests, the demo) never see each other's commits.
    """
    if after_commit is None and after_rollback is None:
        return async_sessionmaker(engine, expire_on_commit=False, info=info)
    session_class = type("ObservedSession", (Session,), {})
    if after_commit is not None:
        event.listen(session_class, "after_commit", after_commit)
    if after_rollback is not None:
        event.listen(session_class, "after_soft_rollback", after_rollback)
    return async_sessionmaker(
        engine, expire_on_commit=False, sync_session_class=session_class, info=info
    )
