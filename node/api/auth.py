"""POST /api/v1/auth/token: trade a username and password for a bearer token."""

from __future__ import annotations

from aiohttp import hdrs

from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import TokenRequest, TokenResponse
from node.appkeys import CONFIG, LOGIN_THROTTLE
from node.errors import TooManyRequests, Unauthorized
from node.services.accounts import authenticate, issue_token
from storage.repositories import CommunityRepository


@api.route(
    "POST",
    "/auth/token",
    summary="Get a bearer token",
    tag="auth",
    auth="none",
    body=TokenRequest,
    response=TokenResponse,
    errors=(401, 422, 429),
)
async def create_token(call: ApiCall[TokenRequest, None]) -> TokenResponse:
    request = call.request
    slug = call.body.community or request.app[CONFIG].slug
    throttle = request.app[LOGIN_THROTTLE]
    forwarded = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
    attempt = throttle.attempt(slug, call.body.username, request.remote, forwarded)
    wait = throttle.retry_after(attempt)
    if wait is not None:
        raise TooManyRequests(f"too many failed attempts; try again in {wait} s", retry_after=wait)
    community = await CommunityRepository(call.session).get_local_by_slug(slug)
    member = None
    if community is not None:
        member = await authenticate(call.session, community, call.body.username, call.body.password)
    if member is None:
        throttle.failed(attempt)
        raise Unauthorized("wrong username or password")
    throttle.succeeded(attempt)
    issued = await issue_token(call.session, member, "api")
    return TokenResponse(token=issued.secret, expires_at=issued.expires_at)
