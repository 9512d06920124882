"""A small route table for the JSON API.

Each operation names its request and response models once; the same declaration
validates requests, serialises responses and produces the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from node.appkeys import CONFIG, SESSIONS
from node.errors import Forbidden, NotFound, UnsupportedMediaType, ValidationFailed
from node.services.auth_context import authenticate_bearer
from storage.models import AuthToken, Member

API_PREFIX = "/api/v1"
# "operator": node-wide settings, not one community's (see Member.is_operator).
Auth = Literal["none", "member", "steward", "operator"]
BodyT = TypeVar("BodyT", bound=BaseModel | None)
QueryT = TypeVar("QueryT", bound=BaseModel | None)


@dataclass
class ApiCall(Generic[BodyT, QueryT]):
    """Everything a handler needs, already authenticated and validated."""

    request: web.Request
    session: AsyncSession
    member: Member | None
    body: BodyT
    query: QueryT
    token: AuthToken | None = None  # the bearer token that authenticated the call

    @property
    def me(self) -> Member:
        assert self.member is not None, "operation declared auth='none'"
        return self.member


def base_url(call: ApiCall[Any, Any]) -> str:
    """This node's base URL, which makes the paths it mints (photos) absolute."""
    return call.request.app[CONFIG].base_url


Handler = Callable[[ApiCall[Any, Any]], Awaitable[BaseModel | None]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: Auth
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    errors: tuple[int, ...]


def _validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def parse_model(
    model: type[BaseModel], data: Any, where: str, *, strict: bool = False
) -> BaseModel:
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise ValidationFailed(f"invalid {where}", details=_validation_details(exc)) from exc


async def read_json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"body is not valid JSON: {exc}") from exc


class ApiRouter:
    def __init__(self, prefix: str = API_PREFIX) -> None:
        self.prefix = prefix
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        auth: Auth = "member",
        status: int = 200,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        errors: tuple[int, ...] = (),
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method,
                    self.prefix + path,
                    handler,
                    summary,
                    tag,
                    auth,
                    status,
                    body,
                    query,
                    response,
                    errors,
                )
            )
            return handler

        return register

    def setup(self, app: web.Application) -> None:
        for operation in self.operations:
            app.router.add_route(operation.method, operation.path, _endpoint(operation))


def _endpoint(op: Operation) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def endpoint(request: web.Request) -> web.Response:
        sessions = request.app[SESSIONS]
        async with sessions() as session:
            member, token = None, None
            if op.auth != "none":
                token = await authenticate_bearer(session, request, request.app[CONFIG])
                member = token.member
                if op.auth == "steward" and not member.is_steward:
                    raise Forbidden("stewards only")
                if op.auth == "operator" and not member.is_operator:
                    raise Forbidden("only the node's operator may change node-wide settings")
            if any("\x00" in value for value in request.match_info.values()):
                # No id, host or domain contains NUL, and PostgreSQL refuses it in text.
                raise NotFound("no such resource")
            query = parse_model(op.query, dict(request.query), "query") if op.query else None
            body = None
            if op.body is not None:
                # JSON has real types: `false` is not a number, nor "1" a boolean, as documented.
                body = parse_model(op.body, await read_json_body(request), "body", strict=True)
            call = ApiCall(request, session, member, body, query, token)
            result = await op.handler(call)
            await session.commit()
        if result is None:
            return web.Response(status=op.status)
        # Pydantic writes the JSON itself: the same text as dumping to Python values and
        # encoding those, without building a page's worth of intermediate objects.
        payload = result.model_dump_json().encode()
        return web.Response(body=payload, status=op.status, content_type="application/json")

    endpoint.__name__ = op.handler.__name__
    return endpoint
