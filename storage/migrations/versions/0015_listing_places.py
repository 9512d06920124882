"""listing places: how precisely a listing's place is shown

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 07:00:00.000000

`listings.location_precision` is what the member chose for the listing's
point: `exact` (shown exactly to their own community; other communities get
it rounded to about 1 km), `neighbourhood` (about 1 km for everyone) or
`area` (about 10 km for everyone). Existing listings were posted as exact
points, so they stay `exact`.

A plain ADD COLUMN: a batch rebuild of `listings` on SQLite would drop the
full-text triggers of 0009. The state rule is a CHECK constraint on
PostgreSQL and two triggers on SQLite, named as 0008 names them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRECISIONS = ("exact", "neighbourhood", "area")
COLUMN = "location_precision"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column(
        "listings",
        sa.Column(COLUMN, sa.String(length=16), nullable=False, server_default="exact"),
    )
    allowed = ", ".join(f"'{value}'" for value in PRECISIONS)
    if not sqlite:
        rule = f"{COLUMN} IN ({allowed})"
        op.create_check_constraint(op.f(f"ck_listings_{COLUMN}"), "listings", rule)
        return
    for event, when in (("insert", "INSERT"), ("update", f"UPDATE OF {COLUMN}")):
        op.execute(
            f"CREATE TRIGGER ck_listings_{COLUMN}_{event} BEFORE {when} ON listings "
            f"WHEN NEW.{COLUMN} NOT IN ({allowed}) "
            f"BEGIN SELECT RAISE(ABORT, 'listings.{COLUMN} must be one of "
            f"{', '.join(PRECISIONS)}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS ck_listings_{COLUMN}_{event}")
    else:
        op.drop_constraint(op.f(f"ck_listings_{COLUMN}"), "listings", type_="check")
    # DROP COLUMN (SQLite 3.35+) rather than a batch rebuild, for the reason given above.
    op.drop_column("listings", COLUMN)
