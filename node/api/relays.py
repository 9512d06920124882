"""Relay subscriptions (stewards only): which relays the community follows, and their state."""

from __future__ import annotations

from datetime import datetime

from node.api.paging import PageQuery, decode_cursor, page_of
from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import RelayList, RelayOut, RelayRequest
from node.errors import BadRequest
from node.protocol.context import FederationContext
from node.services import relays as service
from storage.models import Relay
from storage.paging import Position
from storage.states import RelayState


def relay_out(relay: Relay) -> RelayOut:
    return RelayOut(
        id=relay.id,
        actor_id=relay.actor_id,
        inbox=relay.inbox_url,
        name=relay.name,
        state=RelayState(relay.state),
        created_at=relay.created_at,
        updated_at=relay.updated_at,
    )


@api.route(
    "GET",
    "/relays",
    summary="The relays the community subscribes to, oldest first",
    tag="federation",
    auth="steward",
    query=PageQuery,
    response=RelayList,
    errors=(400, 401, 403, 422),
)
async def list_relays(call: ApiCall[None, PageQuery]) -> RelayList:
    position = decode_cursor(call.query.cursor)
    if position is not None and not (
        isinstance(position.sort, datetime) and isinstance(position.id, str)
    ):
        raise BadRequest("cursor is not one this server gave out")
    rows = [
        relay
        for relay in await service.list_relays(call.session, call.me)
        if position is None or (relay.created_at, relay.id) > (position.sort, position.id)
    ]
    items, after = page_of(
        rows[: call.query.limit + 1], call.query.limit, lambda r: Position(r.created_at, r.id)
    )
    return RelayList(items=[relay_out(r) for r in items], next=after)


@api.route(
    "POST",
    "/relays",
    summary="Subscribe the community to a relay (sends a Follow of the Public collection)",
    tag="federation",
    auth="steward",
    status=201,
    body=RelayRequest,
    response=RelayOut,
    errors=(400, 401, 403, 409, 422),
)
async def add_relay(call: ApiCall[RelayRequest, None]) -> RelayOut:
    ctx = FederationContext.from_app(call.request.app)
    relay = await service.add_relay(ctx, call.session, call.me, call.body.url)
    return relay_out(relay)


@api.route(
    "DELETE",
    "/relays/{id}",
    summary="Unsubscribe from a relay (sends Undo of the Follow)",
    tag="federation",
    auth="steward",
    status=204,
    errors=(401, 403, 404),
)
async def remove_relay(call: ApiCall[None, None]) -> None:
    await service.remove_relay(call.session, call.me, call.request.match_info["id"])
