"""Alembic's head and the models agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
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


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
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
