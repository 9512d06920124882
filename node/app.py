"""The aiohttp application: `init_app()` builds it, `setup_routes()` wires the URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

import node.api.auth
import node.api.community
import node.api.discovery
import node.api.exchanges
import node.api.federation
import node.api.images
import node.api.jobs
import node.api.listings
import node.api.members
import node.api.partnerships
import node.api.relays  # noqa: F401  (registers routes)
from federation.http_client import HttpLimits, create_client_session
from node import __version__
from node.api.docs import setup_docs
from node.api.openapi import build_openapi
from node.api.router import api
from node.appkeys import CONFIG, ENGINE, HTTP, SESSIONS, WORKER_POLL_SECONDS
from node.config import NodeConfig
from node.middleware import error_middleware, security_headers_middleware
from node.ops.endpoints import request_metrics_middleware, setup_operations
from node.ops.logs import request_context_middleware
from node.protocol.handoff import (
    DELIVERY_HANDOFF,
    HANDOFF,
    DeliveryHandoff,
    forget_after_rollback,
)
from node.protocol.setup import setup_federation, wake_after_commit
from node.responses import json_response
from node.services.login_throttle import LOGIN_THROTTLE, LoginThrottle
from node.web.pages import setup_pages
from storage.engine import create_engine, create_session_factory

MAX_BODY_BYTES = 1024 * 1024


async def openapi_document(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    doc = build_openapi(
        api, title="Commons Node API", version=__version__, server_url=config.base_url
    )
    return json_response(doc)


def setup_routes(app: web.Application) -> None:
    api.setup(app)
    app.router.add_get("/api/v1/openapi.json", openapi_document)
    setup_docs(app)
    setup_pages(app)


def database_ctx(config: NodeConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(config.database_url)
        app[ENGINE] = engine
        handoff = app[DELIVERY_HANDOFF] = DeliveryHandoff()
        app[SESSIONS] = create_session_factory(
            engine,
            after_commit=lambda session: wake_after_commit(app, session),
            after_rollback=forget_after_rollback,
            info={HANDOFF: handoff},
        )
        yield
        await engine.dispose()

    return ctx


def http_client_ctx(config: NodeConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        session = create_client_session(
            allow_private=config.allow_private_addresses,
            user_agent=f"CommonsNode/{__version__} (+{config.base_url})",
            limits=HttpLimits(),
        )
        app[HTTP] = session
        yield
        await session.close()

    return ctx


def init_app(config: NodeConfig, *, workers: bool | None = None) -> web.Application:
    """The node's app. `workers` (default: the `run_workers` setting) says whether the
    background workers run in this process; `commons-node serve --no-workers` turns
    them off so that separate `commons-node worker` processes do that work."""
    app = web.Application(
        middlewares=[
            request_context_middleware,
            request_metrics_middleware,
            security_headers_middleware,
            error_middleware,
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[CONFIG] = config
    app[LOGIN_THROTTLE] = LoginThrottle(trusted_proxies=config.trusted_proxies)
    app.cleanup_ctx.append(database_ctx(config))
    app.cleanup_ctx.append(http_client_ctx(config))
    setup_operations(app)
    setup_federation(app, workers=config.run_workers if workers is None else workers)
    setup_routes(app)
    return app


def init_worker_app(config: NodeConfig) -> web.Application:
    """The app of a `commons-node worker`: the node's workers and no web server.

    It is the node's app, so that job and inbox handlers find everything they
    expect, run by an `AppRunner` with no site; its loops poll every
    `worker_poll_seconds`.
    """
    app = init_app(config, workers=True)
    app[WORKER_POLL_SECONDS] = config.worker_poll_seconds
    return app
