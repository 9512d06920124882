"""Typed application state (aiohttp `AppKey`s), so handlers never guess at `app[...]`."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from node.config import NodeConfig

CONFIG = web.AppKey("config", NodeConfig)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
TEMPLATES = web.AppKey("templates", Environment)
HTTP = web.AppKey("http", aiohttp.ClientSession)
WORKER_POLL_SECONDS = web.AppKey("worker_poll_seconds", float)
"""Set only in a dedicated `commons-node worker`: how often its loops look for work that
`serve` processes queued, since their wake-ups cannot reach another process."""
