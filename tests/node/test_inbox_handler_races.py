"""A handler that loses a race to another writer is retried, not failed."""

from __future__ import annotations

import sqlite3

import pytest
from aiohttp import web
from sqlalchemy.exc import IntegrityError

from federation.inbox_processor import InboundActivity, Retry
from federation.vocab import Activity, parse_activity
from node.appkeys import CONFIG, HTTP, SESSIONS
from node.protocol import handlers
from node.protocol.context import FederationContext


def create() -> InboundActivity:
    activity = parse_activity(
        {
            "id": "https://a.example/c/x/activities/1",
            "type": "Create",
            "actor": "https://a.example/c/x",
            "object": "https://a.example/c/x/listings/1",
        }
    )
    return InboundActivity(activity, None, 1, 1)


async def test_a_unique_key_lost_to_another_writer_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def loses_the_race(ctx: FederationContext, activity: Activity) -> None:
        orig = sqlite3.IntegrityError("UNIQUE constraint failed: remote_listings.ap_id")
        raise IntegrityError("INSERT INTO remote_listings", {}, orig)

    monkeypatch.setitem(handlers.HANDLERS, "Create", loses_the_race)
    app = web.Application()
    app[SESSIONS] = app[HTTP] = app[CONFIG] = None  # type: ignore[assignment]
    with pytest.raises(Retry, match="stored meanwhile by another writer"):
        await handlers.inbox_handlers(app)["Create"](create())
