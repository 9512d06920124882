"""Taking turns to write to SQLite within one process.

SQLite has one writer at a time. Two transactions of one process that want to
write at once meet on its lock, and the one that loses sleeps in SQLite's busy
handler, in steps that grow to 100 ms, however soon the lock is free again: a
steady writer (the inbox processor mirroring a burst) can keep another (the
inbox storing what arrives) waiting for seconds. The hot writers of the inbox
take turns here instead, in arrival order, so each waits only for the
transaction ahead of it. On PostgreSQL, which locks rows, turns are free.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

_turns: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine | None:
    bind = getattr(sessions, "kw", {}).get("bind")  # a stand-in factory has none
    return bind if isinstance(bind, AsyncEngine) else None


@contextlib.asynccontextmanager
async def write_turn(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Hold this process's turn to write to the database behind `sessions` (SQLite),
    or nothing at all (any other database). Never open a second turn inside one."""
    engine = _engine_of(sessions)
    if engine is None or engine.dialect.name != "sqlite":
        yield
        return
    turn = _turns.get(engine)
    if turn is None:
        turn = _turns[engine] = asyncio.Lock()
    async with turn:
        yield
