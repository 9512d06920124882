"""Errors become JSON (API) or a page (web); every response gets safe default headers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from node.api.routing import json_response
from node.errors import ApiError, TooManyRequests

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


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def error_json(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        if wants_json(request):
            response = json_response(exc.to_body(), exc.status)
            if isinstance(exc, TooManyRequests):
                response.headers["Retry-After"] = str(exc.retry_after)
            return response
        return web.Response(status=exc.status, text=exc.message)
    except web.HTTPException as exc:
        if not wants_json(request) or exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, "error")
        response = error_json(exc.status, code, exc.reason)
        if "Allow" in exc.headers:  # a 405 must say which methods are allowed (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json(request):
            return error_json(500, "internal_error", "internal error; the node's log has details")
        raise


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.content_type == "text/html" and not request.path.startswith("/api/docs"):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
    return response
