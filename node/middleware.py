"""Errors become JSON (API) or a styled page (browsers); every response gets the security headers.

The two middlewares run in this order: `security_headers_middleware` outermost,
so that what `error_middleware` makes of a failure (a 404 from the router, a
405, a 413 from the body limit, an unhandled exception) carries the headers
like any other response.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from node.appkeys import CONFIG
from node.config import tile_origin
from node.errors import ApiError, TooManyRequests
from node.responses import json_response
from node.web.templating import render

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}

# What a person sees for each status: a title and a sentence saying what to do.
PAGE_TEXT = {
    400: ("Not understood", "The request could not be understood. Go back and try again."),
    401: ("Please sign in", "This page needs you to sign in first."),
    403: ("Not allowed", "You are not allowed to do this."),
    404: ("Not found", "There is nothing at this address. Check the link, or start again."),
    405: ("Not possible here", "This address does not accept that kind of request."),
    409: ("Conflict", "This clashes with a change made in the meantime. Reload and try again."),
    413: ("Too large", "What you sent is larger than this node accepts."),
    415: ("Not understood", "What you sent is in a form this node does not read."),
    422: ("Not valid", "Some of what you sent is not valid. Go back and check it."),
    429: ("Too many requests", "Please wait a little and try again."),
    500: ("Something went wrong", "The node could not answer. Its log says why; try again later."),
}

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:{tiles}; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Swagger UI runs its bundled script and stylesheet from our origin and fetches only
# the OpenAPI document (its icons are data: URIs). Nothing may come from elsewhere.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
# JSON, static files, redirects: nothing in them may run or be framed.
NOTHING_CSP = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
DOCS_PAGE = "/api/docs"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def wants_json(request: web.Request) -> bool:
    """The API always speaks JSON; elsewhere a client that asks for JSON and not HTML
    (another node, a script) gets JSON, and a browser gets a page."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    if "text/html" in accept:
        return False
    return "json" in accept or "json" in request.headers.get("Content-Type", "")


def error_json(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status)


def error_page(request: web.Request, status: int, message: str | None = None) -> web.Response:
    """The styled page for an error no handler turned into a page of its own."""
    title, default = PAGE_TEXT.get(status, PAGE_TEXT[500 if status >= 500 else 400])
    return render(request, "error.html", None, status, title=title, message=message or default)


def _custom_text(exc: web.HTTPException) -> str | None:
    """The text a handler gave the exception, if it gave one (aiohttp's default is
    `404: Not Found`, which says nothing to a person)."""
    text = exc.text or ""
    if not text or text == f"{exc.status}: {exc.reason}":
        return None
    return text


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    message = _custom_text(exc)
    if wants_json(request):
        code = HTTP_CODES.get(exc.status, "error")
        response = error_json(exc.status, code, message or exc.reason)
    else:
        response = error_page(request, exc.status, message)
    for header in ("Allow", "Retry-After"):  # a 405 must say which methods are allowed
        if header in exc.headers:
            response.headers[header] = exc.headers[header]
    return response


def _from_api_error(request: web.Request, exc: ApiError) -> web.Response:
    if wants_json(request):
        response = json_response(exc.to_body(), exc.status)
    else:
        response = error_page(request, exc.status, exc.message)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _from_api_error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and 204s raised as exceptions are answers, not errors
            raise
        return _from_http_exception(request, exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json(request):
            return error_json(500, "internal_error", "internal error; the node's log has details")
        return error_page(request, 500)


def content_security_policy(request: web.Request, response: web.StreamResponse) -> str:
    if request.path == DOCS_PAGE:
        return DOCS_CSP
    if response.content_type == "text/html":
        # Map tiles are the one thing a page may load from elsewhere, from the configured origin.
        tiles = tile_origin(request.app[CONFIG].map_tile_url)
        return PAGE_CSP.format(tiles=f" {tiles}" if tiles else "")
    return NOTHING_CSP


def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault(
        "Content-Security-Policy", content_security_policy(request, response)
    )


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _add_security_headers(request, exc)
        raise
    _add_security_headers(request, response)
    return response
