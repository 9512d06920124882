"""Logs an operator can search: request ids, and one JSON object per line when asked.

Every request gets an id: the `X-Request-Id` a trusted proxy sent, when it
looks like an id, else a new one. It is answered in `X-Request-Id` and
attached to every log record written while the request is handled, so one
line in a member's bug report ("request 3f2a…") finds everything the node
logged about it. With `log_format = "json"` each record is one JSON object
(`ts`, `level`, `logger`, `message`, `request_id`, and for the access log
`method`, `route`, `path`, `status`, `duration_ms`, `remote`); otherwise the
familiar text lines are kept.

What must never reach a log is kept out at the source: request bodies,
listing text, passwords and tokens are not logged by any handler, the
access log writes the route pattern and the path without its query string
(and only the pattern when the path carries a token), and as a last guard
the formatters mask a database URL's password and bearer tokens in any
message.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID_HEADER = "X-Request-Id"
_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_SECRET_VARIABLES = ("token", "invite", "secret", "password", "key")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]+:)[^@\s/]+@", re.IGNORECASE)
_BEARER = re.compile(r"(?P<head>Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)

QUIET_LIBRARIES = ("aiosqlite", "asyncpg", "sqlalchemy.engine")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def mask_secrets(text: str) -> str:
    """A database URL's password and a bearer token, replaced by `***`."""
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    return _BEARER.sub(r"\g<head>***", text)


def new_request_id(incoming: str | None) -> str:
    if incoming and _INCOMING_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id, for the logs and the `X-Request-Id` answer header."""
    request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(request_id)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being handled, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


_ACCESS_FIELDS = ("method", "route", "path", "status", "duration_ms", "remote", "user_agent")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; exceptions as one string field, never several lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for name in _ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode("utf-8")


class TextFormatter(logging.Formatter):
    """The familiar text lines, with the request id when there is one, secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = mask_secrets(super().format(record))
        request_id = getattr(record, "request_id", None)
        return f"{line} [request {request_id}]" if request_id else line


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs, so a second call replaces only it."""


def configure_logging(level: str, log_format: str = "text") -> None:
    """Root logging to stderr in the chosen format.

    Like `logging.basicConfig`, it leaves alone a root logger that someone
    else has configured (a test runner, a program embedding the CLI); called
    again (`serve` once it has read `log_format`), it replaces its own handler.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _OurHandler)]
    if root.handlers and not ours:
        return
    for old in ours:
        root.removeHandler(old)
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    quiet_libraries()


def quiet_libraries() -> None:
    """The database libraries log statements with their parameters (password
    hashes, listing text, keys) at INFO and DEBUG: only their warnings, always."""
    for chatty in QUIET_LIBRARIES:
        logging.getLogger(chatty).setLevel(logging.WARNING)


def loggable_path(request: web.Request) -> tuple[str, str]:
    """(route pattern, path to log): no query string, and no path that carries a secret."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    if any(name in variable for variable in request.match_info for name in _SECRET_VARIABLES):
        return route, route
    return route, request.path


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log as structured fields (both formats), with the request id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if isinstance(request, web.Request):
            route, path = loggable_path(request)
        else:
            route, path = "unmatched", request.path
        request_id = response.headers.get(REQUEST_ID_HEADER)
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            path,
            response.status,
            time * 1000,
            extra={
                "method": request.method,
                "route": route,
                "path": path,
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
                "remote": request.remote,
                "user_agent": request.headers.get("User-Agent"),
                "request_id": request_id,
            },
        )
