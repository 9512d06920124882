"""Upgrading a node from before operators leaves its first steward as the operator."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage.engine import create_engine
from storage.migrate import upgrade_to_head_async
from tests.storage.test_migrations import _upgrade_to


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
async def test_the_first_steward_becomes_the_operator(empty_database_url: str) -> None:
    await _upgrade_to(empty_database_url, "0004")
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
            for username, role in (("mo", "member"), ("first", "steward"), ("second", "steward")):
                await conn.execute(
                    text(
                        "INSERT INTO members (community_id, username, role, password_hash,"
                        " created_at) VALUES (1, :username, :role, 'x', CURRENT_TIMESTAMP)"
                    ),
                    {"username": username, "role": role},
                )
        await upgrade_to_head_async(empty_database_url)
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT username, is_operator FROM members ORDER BY id"))
            assert [(name, bool(flag)) for name, flag in rows] == [
                ("mo", False),
                ("first", True),
                ("second", False),
            ]
    finally:
        await engine.dispose()
