"""Exchanges in the browser: ask for a listing, answer, talk it through, complete.

Every change goes through `node.services.exchanges`, the functions behind the
JSON API, so who may do what is decided in one place; the pages only offer
the actions the service says the member may take now. Every form works
without scripts and answers with a redirect back to the exchange.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from node.api.paging import decode_cursor, encode_cursor
from node.domain.exchanges import Action, ExchangeView
from node.errors import BadRequest, Conflict, ValidationFailed
from node.services import exchanges as service
from node.services import notifications
from node.services.exchanges import MessageView
from node.web.guards import Page, member_page, redirect
from node.web.listings_pages import render_listing_detail

routes = web.RouteTableDef()
ID = "{id:[0-9a-f]{32}}"
ACTIONS = "{action:accept|decline|complete|cancel}"
PAGE_SIZE = 20
THREAD_SIZE = 100

DONE = {
    Action.ACCEPT: "Accepted. You can now arrange the details in the messages.",
    Action.DECLINE: "Declined. The other side has been told.",
    Action.COMPLETE: "Marked as completed. Thank you for sharing!",
    Action.CANCEL: "Cancelled. The other side has been told.",
}
TRANSITION = {
    Action.ACCEPT: service.accept,
    Action.DECLINE: service.decline,
    Action.COMPLETE: service.complete,
    Action.CANCEL: service.cancel,
}


@dataclass(frozen=True)
class RequestForm:
    """What a member asks for: a note, and hours or a quantity, each optional."""

    note: str
    hours: float | None
    quantity: int | None

    @classmethod
    def from_typed(cls, typed: Mapping[str, str]) -> RequestForm:
        return cls(
            note=typed["note"],
            hours=_hours(typed["hours"]),
            quantity=_quantity(typed["quantity"]),
        )


def _hours(text: str) -> float | None:
    text = text.replace(",", ".")
    if not text:
        return None
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours):
        raise BadRequest("Hours must be a number, like 1.5.")
    return hours


def _quantity(text: str) -> int | None:
    if not text:
        return None
    if not text.isdecimal() or len(text) > 9:
        raise BadRequest("Quantity must be a whole number, like 2.")
    return int(text)


def _sentence(message: str) -> str:
    """The service words its refusals for the API; a page starts them with a capital."""
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


@dataclass(frozen=True)
class ExchangeThread:
    exchange: ExchangeView
    messages: list[MessageView]


@routes.post(f"/listings/{ID}/request", name="request_listing")
@member_page
async def request_listing(page: Page) -> web.StreamResponse:
    """A refused request (bad amounts, a closed listing) is shown on the listing's page,
    with what was typed; the service refuses before it writes anything."""
    form = await page.form()
    typed = {name: str(form.get(name, "")).strip() for name in ("note", "hours", "quantity")}
    try:
        asked = RequestForm.from_typed(typed)
        exchange = await service.request_exchange(
            page.db,
            page.member,
            page.request.match_info["id"],
            quantity=asked.quantity,
            hours=asked.hours,
            note=asked.note,
        )
    except (BadRequest, ValidationFailed, Conflict) as exc:
        return await render_listing_detail(page, typed, _sentence(exc.message), exc.status)
    await page.db.commit()
    verb = "request for" if exchange.listing_kind == "offer" else "offer to help with"
    message = f"Your {verb} “{exchange.listing_title}” is sent."
    return redirect(page.request, f"/exchanges#exchange-{exchange.id}", ("success", message))


@routes.get("/exchanges", name="exchanges")
@member_page
async def my_exchanges(page: Page) -> web.StreamResponse:
    exchanges, after = await service.list_exchanges(
        page.db,
        page.member,
        after=decode_cursor(page.request.query.get("cursor")),
        limit=PAGE_SIZE,
    )
    threads = []
    for exchange in exchanges:
        messages, _ = await service.list_messages(
            page.db, page.member, exchange.id, limit=THREAD_SIZE
        )
        threads.append(ExchangeThread(exchange, messages))
    await page.db.commit()  # reading a thread marks its notices read
    next_url = f"/exchanges?cursor={encode_cursor(after)}" if after is not None else None
    return page.render(
        "exchanges/index.html",
        threads=threads,
        next_url=next_url,
        paged="cursor" in page.request.query,
    )


@routes.post(f"/exchanges/{ID}/{ACTIONS}", name="exchange_action")
@member_page
async def exchange_action(page: Page) -> web.StreamResponse:
    action = Action(page.request.match_info["action"])
    exchange_id = page.request.match_info["id"]
    await TRANSITION[action](page.db, page.member, exchange_id)
    await page.db.commit()
    return redirect(page.request, f"/exchanges#exchange-{exchange_id}", ("success", DONE[action]))


@routes.post(f"/exchanges/{ID}/messages", name="exchange_message")
@member_page
async def post_message(page: Page) -> web.StreamResponse:
    exchange_id = page.request.match_info["id"]
    text = str((await page.form()).get("text", ""))
    await service.post_message(page.db, page.member, exchange_id, text)
    await page.db.commit()
    return redirect(page.request, f"/exchanges#exchange-{exchange_id}", ("success", "Sent."))


STEWARD_NOTIFICATIONS = 20
"""How many of the community's notifications a steward sees beside their own."""


@routes.get("/notifications", name="notifications")
@member_page
async def my_notifications(page: Page) -> web.StreamResponse:
    """The member's own notifications and, for a steward, the community's newest;
    opening an exchange marks its ones read."""
    rows, after = await notifications.page_for_member(
        page.db, page.member, decode_cursor(page.request.query.get("cursor")), PAGE_SIZE
    )
    next_url = f"/notifications?cursor={encode_cursor(after)}" if after is not None else None
    community_rows, community_unread = await notifications.for_stewards(
        page.db, page.member, STEWARD_NOTIFICATIONS
    )
    return page.render(
        "exchanges/notifications.html",
        notifications=rows,
        unread=await notifications.unread_for_member(page.db, page.member),
        community_notifications=community_rows,
        community_unread=community_unread,
        next_url=next_url,
        paged="cursor" in page.request.query,
    )


@routes.post("/notifications/read", name="read_my_notifications")
@member_page
async def read_my_notifications(page: Page) -> web.StreamResponse:
    await notifications.mark_all_read_with_community(page.db, page.member)
    await page.db.commit()
    return redirect(page.request, "/notifications", ("info", "Notifications marked read."))
