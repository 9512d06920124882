"""Signing in for the API, and a member's own tokens and password.

POST /auth/token trades a username and password for a bearer token. A member
can list their tokens and browser sessions, revoke any of them (the current one
with DELETE /auth/token), and change their password, which ends every other
token and session: whoever knew the old password may hold one.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import (
    PageQuery,
    PasswordChange,
    TokenList,
    TokenOut,
    TokenRequest,
    TokenResponse,
)
from node.appkeys import CONFIG
from node.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from node.services.accounts import (
    AccountError,
    authenticate,
    change_password,
    issue_token,
    revoke_token_of,
)
from node.services.login_throttle import LOGIN_THROTTLE, Attempt
from storage.models import utcnow
from storage.repositories import CommunityRepository, TokenRepository


def _attempt(request: web.Request, community: str, username: str) -> Attempt:
    forwarded = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
    return request.app[LOGIN_THROTTLE].attempt(community, username, request.remote, forwarded)


def _refuse_if_throttled(request: web.Request, attempt: Attempt) -> None:
    wait = request.app[LOGIN_THROTTLE].retry_after(attempt)
    if wait is not None:
        raise TooManyRequests(f"too many failed attempts; try again in {wait} s", retry_after=wait)


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
    slug = call.body.community or call.request.app[CONFIG].slug
    attempt = _attempt(call.request, slug, call.body.username)
    _refuse_if_throttled(call.request, attempt)
    throttle = call.request.app[LOGIN_THROTTLE]
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


@api.route(
    "DELETE",
    "/auth/token",
    summary="Revoke the token this request is made with",
    tag="auth",
    status=204,
)
async def revoke_current_token(call: ApiCall[None, None]) -> None:
    assert call.token is not None
    await TokenRepository(call.session).delete_by_id(call.token.id)


def _cursor(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdecimal() or len(text) > 18:
        raise BadRequest("cursor is not one this endpoint gave out")
    return int(text)


@api.route(
    "GET",
    "/auth/tokens",
    summary="Your tokens and signed-in browsers",
    tag="auth",
    query=PageQuery,
    response=TokenList,
    errors=(400,),
)
async def list_tokens(call: ApiCall[None, PageQuery]) -> TokenList:
    current = call.token.id if call.token is not None else None
    tokens = await TokenRepository(call.session).list_for_member(
        call.me.id, utcnow(), limit=call.query.limit + 1, before_id=_cursor(call.query.cursor)
    )
    page = tokens[: call.query.limit]
    items = [
        TokenOut(
            id=token.id,
            kind="session" if token.kind == "session" else "api",
            created_at=token.created_at,
            expires_at=token.expires_at,
            current=token.id == current,
        )
        for token in page
    ]
    more = len(tokens) > call.query.limit
    return TokenList(items=items, next=str(page[-1].id) if more else None)


@api.route(
    "DELETE",
    "/auth/tokens/{id}",
    summary="Revoke one of your tokens or signed-in browsers",
    tag="auth",
    status=204,
    errors=(404,),
)
async def revoke_token_by_id(call: ApiCall[None, None]) -> None:
    raw = call.request.match_info["id"]
    token_id = int(raw) if raw.isdecimal() and len(raw) <= 18 else None
    if token_id is None or not await revoke_token_of(call.session, call.me, token_id):
        raise NotFound("you have no token with that id")


@api.route(
    "POST",
    "/auth/password",
    summary="Change your password; every other token and session is revoked",
    tag="auth",
    status=204,
    body=PasswordChange,
    errors=(403, 422, 429),
)
async def set_password(call: ApiCall[PasswordChange, None]) -> None:
    member = call.me
    attempt = _attempt(call.request, member.community.slug, member.username)
    _refuse_if_throttled(call.request, attempt)
    try:
        changed = await change_password(
            call.session, member, call.body.current, call.body.new, keep=call.token
        )
    except AccountError as exc:
        raise ValidationFailed(str(exc)) from exc
    if not changed:
        call.request.app[LOGIN_THROTTLE].failed(attempt)
        raise Forbidden("the current password is wrong")
