"""Exchange endpoints, their message threads, and the community's flow metrics."""

from __future__ import annotations

from node.api.paging import decode_cursor, encode_cursor
from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import (
    ExchangeCreate,
    ExchangeList,
    ExchangeListingRef,
    ExchangeOut,
    ExchangeParty,
    ExchangeQuery,
    FlowPartner,
    FlowQuery,
    FlowsOut,
    FlowTotals,
    MessageCreate,
    MessageList,
    MessageOut,
    PageQuery,
)
from node.domain.exchanges import ExchangeView, Party
from node.errors import ValidationFailed
from node.services import exchanges as service
from node.services.exchanges import MessageView
from node.services.flows import flow_metrics


def _party(party: Party) -> ExchangeParty:
    return ExchangeParty(
        member=party.member,
        name=party.name,
        community_id=party.community_id,
        community_name=party.community_name,
    )


def exchange_out(view: ExchangeView) -> ExchangeOut:
    return ExchangeOut(
        id=view.id,
        agreement_id=view.agreement_id,
        status=view.status,
        listing=ExchangeListingRef(
            ap_id=view.listing_ap_id,
            title=view.listing_title,
            kind=view.listing_kind,  # type: ignore[arg-type]
            id=view.listing_id,
        ),
        provider=_party(view.provider),
        receiver=_party(view.receiver),
        provider_community_id=view.provider_community_id,
        receiver_community_id=view.receiver_community_id,
        is_cross_community=view.is_cross_community,
        quantity=view.quantity,
        hours=view.hours,
        note=view.note,
        role=view.role,  # type: ignore[arg-type]
        other_party_name=view.other_party_name,
        actions=[action.value for action in view.actions],
        messages_count=view.messages_count,
        created_at=view.created_at,
        updated_at=view.updated_at,
        completed_at=view.completed_at,
    )


def message_out(view: MessageView) -> MessageOut:
    return MessageOut(
        id=view.id,
        author=view.author,
        author_name=view.author_name,
        is_mine=view.is_mine,
        text=view.text,
        created_at=view.created_at,
    )


@api.route(
    "POST",
    "/exchanges",
    summary="Ask for a listing: receive an offer, or provide for a need",
    tag="exchanges",
    status=201,
    body=ExchangeCreate,
    response=ExchangeOut,
    errors=(401, 404, 409, 415, 422),
)
async def create_exchange(call: ApiCall[ExchangeCreate, None]) -> ExchangeOut:
    body = call.body
    view = await service.request_exchange(
        call.session, call.me, body.listing, body.quantity, body.hours, body.note
    )
    return exchange_out(view)


@api.route(
    "GET",
    "/exchanges",
    summary="The caller's exchanges, newest first",
    tag="exchanges",
    query=ExchangeQuery,
    response=ExchangeList,
    errors=(400, 401, 422),
)
async def list_exchanges(call: ApiCall[None, ExchangeQuery]) -> ExchangeList:
    q = call.query
    items, after = await service.list_exchanges(
        call.session, call.me, q.cross_community, decode_cursor(q.cursor), q.limit
    )
    return ExchangeList(
        items=[exchange_out(item) for item in items],
        next=encode_cursor(after) if after is not None else None,
    )


@api.route(
    "GET",
    "/exchanges/{id}",
    summary="One exchange the caller is party to (or a steward of a party community)",
    tag="exchanges",
    response=ExchangeOut,
    errors=(401, 404),
)
async def get_exchange(call: ApiCall[None, None]) -> ExchangeOut:
    view = await service.get_exchange(call.session, call.me, call.request.match_info["id"])
    return exchange_out(view)


def _transition(action: str, summary: str) -> None:
    transition = getattr(service, action)

    async def handler(call: ApiCall[None, None]) -> ExchangeOut:
        view = await transition(call.session, call.me, call.request.match_info["id"])
        return exchange_out(view)

    handler.__name__ = f"{action}_exchange"
    api.route(
        "POST",
        f"/exchanges/{{id}}/{action}",
        summary=summary,
        tag="exchanges",
        response=ExchangeOut,
        errors=(401, 403, 404, 409),
    )(handler)


_transition("accept", "Accept a request (the listing's author or a steward)")
_transition("decline", "Decline a request (the listing's author or a steward)")
_transition("complete", "Mark an accepted exchange completed (either party)")
_transition("cancel", "Cancel an exchange that has not ended (either party)")


@api.route(
    "GET",
    "/exchanges/{id}/messages",
    summary="The exchange's message thread, oldest first",
    tag="exchanges",
    query=PageQuery,
    response=MessageList,
    errors=(400, 401, 404, 422),
)
async def list_messages(call: ApiCall[None, PageQuery]) -> MessageList:
    items, after = await service.list_messages(
        call.session,
        call.me,
        call.request.match_info["id"],
        decode_cursor(call.query.cursor),
        call.query.limit,
    )
    return MessageList(
        items=[message_out(item) for item in items],
        next=encode_cursor(after) if after is not None else None,
    )


@api.route(
    "POST",
    "/exchanges/{id}/messages",
    summary="Write to the other party of an exchange",
    tag="exchanges",
    status=201,
    body=MessageCreate,
    response=MessageOut,
    errors=(401, 403, 404, 409, 415, 422),
)
async def post_message(call: ApiCall[MessageCreate, None]) -> MessageOut:
    view = await service.post_message(
        call.session, call.me, call.request.match_info["id"], call.body.text
    )
    return message_out(view)


@api.route(
    "GET",
    "/metrics/flows",
    summary="Completed exchanges in, out of and within the community (stewards)",
    tag="exchanges",
    auth="steward",
    query=FlowQuery,
    response=FlowsOut,
    errors=(401, 403, 422),
)
async def get_flows(call: ApiCall[None, FlowQuery]) -> FlowsOut:
    q = call.query
    for bound in (q.since, q.until):
        if bound is not None and bound.tzinfo is None:
            raise ValidationFailed("since and until need a time zone, e.g. 2026-01-01T00:00:00Z")
    if q.since is not None and q.until is not None and q.until < q.since:
        raise ValidationFailed("until is before since")
    flows = await flow_metrics(call.session, call.me.community, q.since, q.until)
    return FlowsOut(
        internal=FlowTotals(count=flows.internal.count, hours=flows.internal.hours),
        outgoing=FlowTotals(count=flows.outgoing.count, hours=flows.outgoing.hours),
        incoming=FlowTotals(count=flows.incoming.count, hours=flows.incoming.hours),
        leakage_ratio=flows.leakage_ratio,
        by_community=[
            FlowPartner(
                community_id=p.community_id,
                name=p.name,
                outgoing_count=p.outgoing_count,
                incoming_count=p.incoming_count,
                outgoing_hours=p.outgoing_hours,
                incoming_hours=p.incoming_hours,
                net_hours=p.net_hours,
            )
            for p in flows.by_community
        ],
    )
