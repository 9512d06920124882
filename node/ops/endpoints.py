"""`/healthz`, `/readyz` and `/metrics`: what load balancers, orchestrators and Prometheus ask.

`/healthz` answers 200 as long as the process serves HTTP: a restart is the
only cure for it failing. `/readyz` answers 200 only when the database
answers and its schema is the one this code expects, so a load balancer
sends no traffic to a process that would fail every request (the database
is away, or an upgrade is half done); its JSON body says which check failed.

`/metrics` is for the operator's Prometheus, not for the world: queue
depths and refusal counts tell an attacker how the node is doing. It is
answered to a client on loopback that did not come through a proxy (a
reverse proxy on the same machine connects from loopback too, so a request
carrying `X-Forwarded-For` is never taken as local), or to one presenting the
`metrics_token` of the config as a bearer token; anyone else gets a 403.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from node.appkeys import CONFIG, ENGINE, SESSIONS
from node.ops.metrics import METRICS, UNMATCHED_ROUTE, NodeMetrics
from node.responses import json_response
from storage.migrate import head_revision

log = logging.getLogger(__name__)

HEAD_REVISION = web.AppKey("head_revision", str)
READY_TIMEOUT_SECONDS = 3.0
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_label(request: web.Request) -> str:
    """The route's pattern (`/api/v1/listings/{id}`), or `unmatched` for 404s and 405s."""
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical


@web.middleware
async def request_metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request, labelled by route pattern and status class."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics = request.app.get(METRICS)
        if metrics is not None:
            elapsed = time.perf_counter() - started
            metrics.observe_request(request.method, route_label(request), status, elapsed)


async def healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _schema_revision(request: web.Request) -> str | None:
    async with request.app[ENGINE].connect() as connection:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        return result.scalar_one_or_none()


async def readyz(request: web.Request) -> web.Response:
    """200 when the database answers and is at the schema this code expects, else 503."""
    expected = request.app[HEAD_REVISION]
    try:
        current = await asyncio.wait_for(_schema_revision(request), READY_TIMEOUT_SECONDS)
    except (SQLAlchemyError, OSError, TimeoutError):
        log.warning("readiness check: the database does not answer", exc_info=True)
        body = {"ready": False, "database": "unreachable", "reason": "the database does not answer"}
        return json_response(body, 503)
    if current != expected:
        body = {
            "ready": False,
            "database": "ok",
            "schema": current,
            "expected_schema": expected,
            "reason": "the database schema is not the one this code expects: "
            "run `commons-node migrate`",
        }
        return json_response(body, 503)
    return json_response({"ready": True, "database": "ok", "schema": current})


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def may_read_metrics(request: web.Request) -> bool:
    """Loopback and not forwarded by a proxy, or the operator's bearer token."""
    token = request.app[CONFIG].metrics_token
    if token:
        presented = request.headers.get("Authorization", "")
        scheme, _, value = presented.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            return True
    forwarded = any(header in request.headers for header in FORWARDING_HEADERS)
    return not forwarded and _is_loopback(request.remote)


async def metrics_endpoint(request: web.Request) -> web.Response:
    if not may_read_metrics(request):
        return json_response(
            {
                "error": {
                    "code": "forbidden",
                    "message": "metrics are answered on loopback or with the operator's token",
                }
            },
            403,
        )
    metrics = request.app[METRICS]
    async with request.app[SESSIONS]() as session:
        await metrics.refresh(session)
    response = web.Response(body=metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def setup_operations(app: web.Application) -> NodeMetrics:
    """Register the three routes and this app's metrics; returns the metrics."""
    metrics = NodeMetrics()
    app[METRICS] = metrics
    app[HEAD_REVISION] = head_revision() or ""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    return metrics
