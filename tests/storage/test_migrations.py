"""Alembic's head and the models agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from storage.engine import create_engine
from storage.migrate import alembic_config, current_revision, head_revision, upgrade_to_head_async
from storage.models import Base
from storage.search import is_search_object


def _not_search_schema(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Full-text tables and columns differ by database and are not in the models."""
    return not is_search_object(name, type_)


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": _not_search_schema}
    )
    return list(compare_metadata(context, Base.metadata))


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
async def test_empty_database_upgrades_to_head_matching_the_models(
    empty_database_url: str,
) -> None:
    assert await current_revision(empty_database_url) is None
    await upgrade_to_head_async(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
            indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("listings"))
    finally:
        await engine.dispose()
    assert {"name": "ix_listings_is_public_status", "cols": ["is_public", "status"]} in [
        {"name": ix["name"], "cols": ix["column_names"]} for ix in indexes
    ]


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
async def test_visibility_migration_keeps_existing_listings_community_only(
    empty_database_url: str,
) -> None:
    """A node upgraded from the base schema must not expose anything it had before."""
    await _upgrade_to(empty_database_url, "0001")
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO communities (ap_id, is_local, slug, host, name, description,"
                    " base_url, public_offer_count, public_need_count, created_at, updated_at)"
                    " VALUES ('http://a.test/c/a', true, 'a', 'a.test', 'A', '', 'http://a.test',"
                    " 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO listings (id, ap_id, community_id, kind, title, description,"
                    " category, status, created_at, updated_at) VALUES ('l1', 'http://a.test/l1',"
                    " 1, 'offer', 'Old drill', '', '', 'active', CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP)"
                )
            )
        await upgrade_to_head_async(empty_database_url)
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT visibility, is_public FROM listings"))).one()
    finally:
        await engine.dispose()
    assert row[0] == "community"
    assert not row[1]


async def _upgrade_to(url: str, revision: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


def _queued(n: int, activity_type: str, obj: object, state: str = "queued") -> dict[str, Any]:
    body = json.dumps({"id": f"http://a.test/act/{n}", "type": activity_type, "object": obj})
    return {"n": n, "activity": f"http://a.test/act/{n}", "body": body, "state": state}


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
async def test_delivery_audience_migration_labels_or_cancels_what_is_queued(
    empty_database_url: str,
) -> None:
    """Listings queued before the send-time check get it too; partner-only ones, whose
    bodies name every partner, are cancelled rather than sent."""
    await _upgrade_to(empty_database_url, "0004")
    note = "http://a.test/c/a/listings/"
    rows = [
        _queued(1, "Create", {"id": f"{note}pub", "type": "Note", "visibility": "public"}),
        _queued(2, "Create", {"id": f"{note}par", "type": "Note", "visibility": "partners"}),
        _queued(3, "Update", {"id": f"{note}gone", "type": "Note", "visibility": "public"}),
        _queued(4, "Delete", {"id": f"{note}par", "type": "Tombstone"}),
        _queued(5, "Create", {"id": f"{note}par", "type": "Note"}, state="delivered"),
    ]
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO communities (ap_id, is_local, slug, host, name, description,"
                    " base_url, public_offer_count, public_need_count, created_at, updated_at)"
                    " VALUES ('http://a.test/c/a', true, 'a', 'a.test', 'A', '', 'http://a.test',"
                    " 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            for listing_id, visibility in (("pub", "public"), ("par", "partners")):
                await conn.execute(
                    text(
                        "INSERT INTO listings (id, ap_id, community_id, kind, title,"
                        " description, category, status, visibility, is_public, created_at,"
                        " updated_at) VALUES (:id, :ap_id, 1, 'offer', 'x', '', '', 'active',"
                        " :visibility, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": listing_id, "ap_id": f"{note}{listing_id}", "visibility": visibility},
                )
            await conn.execute(
                text(
                    "INSERT INTO deliveries (id, activity_id, sender_community_id, target_inbox,"
                    " host, body, state, attempts, next_attempt_at, created_at) VALUES (:n,"
                    " :activity, 1, 'http://b.test/inbox', 'b.test', :body, :state, 1,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                rows,
            )
        await upgrade_to_head_async(empty_database_url)
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT id, state, listing_id, audience FROM deliveries ORDER BY id")
            )
            after = [tuple(row) for row in result]
    finally:
        await engine.dispose()
    assert after == [
        (1, "queued", "pub", "public"),
        (2, "cancelled", "par", "partners"),
        (3, "cancelled", None, "public"),
        (4, "queued", None, None),
        (5, "delivered", None, None),
    ]
