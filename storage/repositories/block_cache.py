"""The block list as every read of the mirror needs it, kept in memory for a few seconds.

Every browse or listings page leaves out the communities on blocked hosts,
so reading the list (and matching every known community's host against it)
on each request would cost a query or two per page for a list that changes
a few times a year. The copy here is per database (two nodes in one process
never share one) and is dropped:

- at once when this process commits a block or an unblock (`block_list_version`):
  a steward who blocks a host sees its listings go with the next page;
- after `BLOCK_CACHE_SECONDS` otherwise, which bounds how long a change made by
  another process (the operator's command line, a second server process)
  takes to apply here. The inbox keeps its copy as long, and already refuses
  what a blocked host sends; a few seconds of its old listings still showing is
  the price of not asking the database on every page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community
from storage.repositories.actors import BlockRepository, block_list_version, host_is_blocked

BLOCK_CACHE_SECONDS = 5.0
clock: Callable[[], float] = time.monotonic
"""What the expiry is measured with (tests move it on)."""


@dataclass(frozen=True)
class _Blocks:
    version: int
    expires_at: float
    community_ids: tuple[int, ...]


_cache: WeakKeyDictionary[Engine, _Blocks] = WeakKeyDictionary()


async def blocked_community_ids(session: AsyncSession) -> list[int]:
    """Known communities on a blocked host (usually none), from the cache when it is fresh."""
    engine = session.get_bind()
    key = engine if isinstance(engine, Engine) else engine.engine
    version = block_list_version()  # read first: a block committed meanwhile drops what we read
    cached = _cache.get(key)
    if cached is not None and cached.version == version and cached.expires_at > clock():
        return list(cached.community_ids)
    ids = await _read(session)
    _cache[key] = _Blocks(version, clock() + BLOCK_CACHE_SECONDS, tuple(ids))
    return ids


async def _read(session: AsyncSession) -> list[int]:
    blocked = await BlockRepository(session).domains()
    if not blocked:
        return []
    rows = await session.execute(
        select(Community.id, Community.host).where(Community.is_local.is_(False))
    )
    return [community_id for community_id, host in rows if host_is_blocked(blocked, host)]


def forget() -> None:
    """Drop every cached copy (tests that change the list behind this process's back)."""
    _cache.clear()
