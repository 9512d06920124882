"""What protocol handlers and jobs need from the running node, in one typed bundle."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.http_client import HttpLimits
from node.appkeys import CONFIG, HTTP, SESSIONS
from node.config import NodeConfig


@dataclass(frozen=True)
class FederationContext:
    sessions: async_sessionmaker[AsyncSession]
    http: aiohttp.ClientSession
    config: NodeConfig
    limits: HttpLimits = field(default_factory=HttpLimits)

    @classmethod
    def from_app(cls, app: web.Application) -> FederationContext:
        return cls(sessions=app[SESSIONS], http=app[HTTP], config=app[CONFIG])
