"""Who is calling: bearer tokens for the API."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from node.config import NodeConfig
from node.errors import Unauthorized
from node.services.accounts import resolve_token
from storage.models import AuthToken


async def authenticate_bearer(
    session: AsyncSession, request: web.Request, config: NodeConfig
) -> AuthToken:
    """The token the request carries; `token.member` is who is calling."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("send Authorization: Bearer <token> (from POST /api/v1/auth/token)")
    token = await resolve_token(session, secret.strip(), "api")
    if token is None:
        raise Unauthorized("token is unknown or expired")
    return token
