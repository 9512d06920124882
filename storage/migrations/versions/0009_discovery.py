"""discovery: directory flag, peers of peers, categories, location and text search

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:00:00.000000

Full-text search differs by database (see `storage.search`, which reads what
this creates; the statements are frozen here so history does not move with
the code):

- SQLite: one FTS5 table `listing_search` over our listings and the mirror,
  so that bm25 scores of both are comparable. Its rowid is the id of a row in
  `listing_search_keys` (source, listing id): listing ids are strings, and an
  implicit rowid may be renumbered by VACUUM, so it cannot be the link.
  Triggers keep both in step with `listings` and `remote_listings`.
- PostgreSQL: a generated `search_vector` column on each listing table with a
  GIN index.

Neither is in the models; the migration test leaves them out of its comparison.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = {"listings": "local", "remote_listings": "remote"}
PG_VECTOR = (
    "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(description, '')"
    " || ' ' || coalesce(category, ''))"
)


def _sqlite_triggers(table: str, source: str) -> list[str]:
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


def _sqlite_search() -> None:
    op.execute(
        "CREATE TABLE listing_search_keys (id INTEGER PRIMARY KEY, source VARCHAR(8) NOT NULL,"
        " ref VARCHAR(32) NOT NULL, UNIQUE (source, ref))"
    )
    op.execute(
        "CREATE VIRTUAL TABLE listing_search USING fts5(title, description, category,"
        " tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')"
    )
    for table, source in SOURCES.items():
        op.execute(
            f"INSERT INTO listing_search_keys (source, ref) SELECT '{source}', id FROM {table}"
        )
        op.execute(
            "INSERT INTO listing_search (rowid, title, description, category)"
            f" SELECT k.id, t.title, t.description, t.category FROM {table} t"
            f" JOIN listing_search_keys k ON k.source = '{source}' AND k.ref = t.id"
        )
        for statement in _sqlite_triggers(table, source):
            op.execute(statement)


def _postgresql_search() -> None:
    for table in SOURCES:
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN search_vector tsvector"
            f" GENERATED ALWAYS AS ({PG_VECTOR}) STORED"
        )
        op.execute(f"CREATE INDEX ix_{table}_search_vector ON {table} USING gin (search_vector)")


def upgrade() -> None:
    # Plain ALTERs and CREATE INDEX, never a batch rebuild: on SQLite, rebuilding
    # `communities` would drop it, and with foreign keys on that deletes every
    # listing and member that references it.
    op.add_column(
        "communities",
        sa.Column("is_discoverable", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_index("ix_communities_latitude_longitude", "communities", ["latitude", "longitude"])
    op.add_column(
        "known_peers", sa.Column("depth", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("known_peers", sa.Column("learned_from", sa.String(length=2048), nullable=True))
    op.create_index("ix_listings_latitude_longitude", "listings", ["latitude", "longitude"])
    op.create_index("ix_listings_created_at", "listings", ["created_at"])
    op.create_index(
        "ix_remote_listings_latitude_longitude", "remote_listings", ["latitude", "longitude"]
    )
    op.create_index("ix_remote_listings_published_at", "remote_listings", ["published_at"])
    op.create_table(
        "community_categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_categories_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_categories")),
        sa.UniqueConstraint(
            "community_id", "slug", name=op.f("uq_community_categories_community_id_slug")
        ),
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_search()
    else:
        _postgresql_search()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in SOURCES:
            for action in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_search_{action}")
        op.execute("DROP TABLE IF EXISTS listing_search")
        op.execute("DROP TABLE IF EXISTS listing_search_keys")
    else:
        for table in SOURCES:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_vector")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")
    op.drop_table("community_categories")
    op.drop_index("ix_remote_listings_published_at", "remote_listings")
    op.drop_index("ix_remote_listings_latitude_longitude", "remote_listings")
    op.drop_index("ix_listings_created_at", "listings")
    op.drop_index("ix_listings_latitude_longitude", "listings")
    op.drop_index("ix_communities_latitude_longitude", "communities")
    with op.batch_alter_table("known_peers", schema=None) as batch_op:
        batch_op.drop_column("learned_from")
        batch_op.drop_column("depth")
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.drop_column("is_discoverable")
