"""The database itself refuses a state the code does not know, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage.engine import create_engine
from storage.models import STATE_COLUMNS
from storage.states import values

MIGRATION_STATES = {
    "members": {"role"},
    "listings": {"kind", "status", "visibility", "location_precision"},
    "remote_listings": {"kind", "status", "audience"},
    "follows": {"direction", "state"},
    "inbox_log": {"state"},
    "deliveries": {"state"},
    "community_partnerships": {"state", "initiated_by"},
    "jobs": {"state"},
    "exchanges": {"status", "listing_kind"},
    "invitations": {"role"},
    "relays": {"state"},
}


def test_every_state_column_of_the_models_is_checked_by_the_migration() -> None:
    assert {table: set(columns) for table, columns in STATE_COLUMNS.items()} == MIGRATION_STATES


JOB = (
    "INSERT INTO jobs (id, kind, state, payload, attempts, max_attempts, next_run_at, "
    "progress, created_at, updated_at) VALUES (:id, 'backfill', :state, '{}', 0, 8, "
    "CURRENT_TIMESTAMP, '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


async def test_an_unknown_state_is_refused_on_insert_and_update(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(JOB), {"id": "j1", "state": "queued"})
        for statement, params in [
            (JOB, {"id": "j2", "state": "exploded"}),
            ("UPDATE jobs SET state = 'exploded' WHERE id = 'j1'", {}),
        ]:
            async with engine.begin() as conn:
                with pytest.raises(IntegrityError):
                    await conn.execute(text(statement), params)
        async with engine.connect() as conn:
            states = (await conn.execute(text("SELECT state FROM jobs"))).scalars().all()
        assert states == ["queued"]
    finally:
        await engine.dispose()


async def test_every_state_column_has_its_rule_in_the_database(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                tables = "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                created = dict((await conn.execute(text(tables))).tuples().all())
            else:
                query = "SELECT conname FROM pg_constraint WHERE contype = 'c'"
            names = set((await conn.execute(text(query))).scalars().all())
    finally:
        await engine.dispose()
    for table, columns in STATE_COLUMNS.items():
        for column, states in columns.items():
            assert values(states)
            if engine.dialect.name == "sqlite":
                # Added to an existing table: two triggers; made with its table: a CHECK.
                triggers = {f"ck_{table}_{column}_insert", f"ck_{table}_{column}_update"}
                check = f"CONSTRAINT ck_{table}_{column} CHECK"
                assert triggers <= names or check in (created.get(table) or "")
            else:
                assert f"ck_{table}_{column}" in names
