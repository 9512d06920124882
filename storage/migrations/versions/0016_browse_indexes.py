"""browse indexes: a stored newest-first key on the mirror, and search rows in that order

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 07:00:00.000000

Browsing newest first must read an index in order and stop after a page,
never sort the whole mirror. So:

- `remote_listings.shown_at` (`published_at`, else `received_at`), non-null,
  set on every write, with indexes on (audience, status, shown_at) and
  (audience, status, category, shown_at).
- SQLite: the rowid of a `listing_search` row (and the id of its
  `listing_search_keys` row) becomes a sort key: the listing's time in
  milliseconds times 2**20, plus a counter for listings of the same
  millisecond. A text match can then be walked newest first
  (`ORDER BY rowid DESC LIMIT n`) and stop, however common the word. The
  FTS table is rebuilt with prefix indexes up to six characters, since every
  word is searched as a prefix. (Should 2**20 listings share a millisecond,
  a key past the end is used; `storage.search` notices the out-of-order key
  and answers that query the slow, exact way.)

Plain ALTER TABLE and CREATE INDEX only: a batch rebuild of either listing
table on SQLite would drop its search triggers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = {"listings": ("local", "created_at"), "remote_listings": ("remote", "shown_at")}
SLOTS = 1 << 20
MAX_MS = (1 << 43) - 1  # keys stay below 2**63


def _base(column: str) -> str:
    """The first key of the millisecond of a stored (SQLite text) time, as SQL."""
    ms = (
        f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000"
        f" + CAST(substr({column} || '.000000', 21, 3) AS INTEGER)"
    )
    return f"(max(0, min({ms}, {MAX_MS})) * {SLOTS})"


def _new_key(base: str) -> str:
    """The next free key of that millisecond, else one past every key (out of order)."""
    return (
        f"(SELECT CASE WHEN m IS NULL THEN {base} WHEN m + 1 < {base} + {SLOTS} THEN m + 1"
        " ELSE (SELECT max(id) + 1 FROM listing_search_keys) END"
        f" FROM (SELECT max(id) AS m FROM listing_search_keys"
        f" WHERE id >= {base} AND id < {base} + {SLOTS}))"
    )


def _sqlite_triggers(table: str, source: str, time_column: str) -> list[str]:
    key = f"(SELECT id FROM listing_search_keys WHERE source = '{source}' AND ref = {{row}}.id)"
    add = f"""INSERT INTO listing_search_keys (id, source, ref)
            VALUES ({_new_key(_base(f"new.{time_column}"))}, '{source}', new.id);
            INSERT INTO listing_search (rowid, title, description, category)
            VALUES ({key.format(row="new")}, new.title, new.description, new.category);"""
    remove = f"""DELETE FROM listing_search WHERE rowid = {key.format(row="old")};
            DELETE FROM listing_search_keys WHERE source = '{source}' AND ref = old.id;"""
    watched = "title, description, category" + (", shown_at" if source == "remote" else "")
    return [
        f"CREATE TRIGGER {table}_search_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {table}_search_update AFTER UPDATE OF {watched} ON {table}"
        f" BEGIN {remove} {add} END",
        f"CREATE TRIGGER {table}_search_delete AFTER DELETE ON {table} BEGIN {remove} END",
    ]


def _drop_triggers() -> None:
    for table in SOURCES:
        for action in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_search_{action}")


def _sqlite_upgrade() -> None:
    op.execute(
        "ALTER TABLE remote_listings ADD COLUMN shown_at DATETIME NOT NULL"
        " DEFAULT '1970-01-01 00:00:00.000000'"
    )
    op.execute("UPDATE remote_listings SET shown_at = coalesce(published_at, received_at)")
    _drop_triggers()
    op.execute("DROP TABLE listing_search")
    op.execute("DELETE FROM listing_search_keys")
    op.execute(
        "CREATE VIRTUAL TABLE listing_search USING fts5(title, description, category,"
        " tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4 5 6')"
    )
    stamped = " UNION ALL ".join(
        f"SELECT '{source}' AS source, id AS ref, {_base(column)} AS base FROM {table}"
        for table, (source, column) in SOURCES.items()
    )
    op.execute(
        "INSERT INTO listing_search_keys (id, source, ref)"
        " SELECT base + row_number() OVER (PARTITION BY base ORDER BY source, ref) - 1,"
        f" source, ref FROM ({stamped})"
    )
    for table, (source, column) in SOURCES.items():
        op.execute(
            "INSERT INTO listing_search (rowid, title, description, category)"
            f" SELECT k.id, t.title, t.description, t.category FROM {table} t"
            f" JOIN listing_search_keys k ON k.source = '{source}' AND k.ref = t.id"
        )
        for statement in _sqlite_triggers(table, source, column):
            op.execute(statement)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        op.add_column(
            "remote_listings", sa.Column("shown_at", sa.DateTime(timezone=True), nullable=True)
        )
        op.execute("UPDATE remote_listings SET shown_at = coalesce(published_at, received_at)")
        op.alter_column("remote_listings", "shown_at", nullable=False)
    op.create_index(
        "ix_remote_listings_browse", "remote_listings", ["audience", "status", "shown_at"]
    )
    op.create_index(
        "ix_remote_listings_browse_category",
        "remote_listings",
        ["audience", "status", "category", "shown_at"],
    )
    op.execute("ANALYZE")


# 0009's triggers, frozen: keys numbered in insertion order.
def _sqlite_0009_triggers(table: str, source: str) -> list[str]:
    key = f"(SELECT id FROM listing_search_keys WHERE source = '{source}' AND ref = {{row}}.id)"
    return [
        f"""CREATE TRIGGER {table}_search_insert AFTER INSERT ON {table} BEGIN
            INSERT INTO listing_search_keys (source, ref) VALUES ('{source}', new.id);
            INSERT INTO listing_search (rowid, title, description, category)
            VALUES ({key.format(row="new")}, new.title, new.description, new.category);
        END""",
        f"""CREATE TRIGGER {table}_search_update
        AFTER UPDATE OF title, description, category ON {table} BEGIN
            UPDATE listing_search SET title = new.title, description = new.description,
                category = new.category
            WHERE rowid = {key.format(row="new")};
        END""",
        f"""CREATE TRIGGER {table}_search_delete AFTER DELETE ON {table} BEGIN
            DELETE FROM listing_search WHERE rowid = {key.format(row="old")};
            DELETE FROM listing_search_keys WHERE source = '{source}' AND ref = old.id;
        END""",
    ]


def downgrade() -> None:
    op.drop_index("ix_remote_listings_browse_category", "remote_listings")
    op.drop_index("ix_remote_listings_browse", "remote_listings")
    if op.get_bind().dialect.name == "sqlite":
        _drop_triggers()
        op.execute("ALTER TABLE remote_listings DROP COLUMN shown_at")
        for table, (source, _) in SOURCES.items():
            for statement in _sqlite_0009_triggers(table, source):
                op.execute(statement)
    else:
        op.drop_column("remote_listings", "shown_at")
