"""relays: the relays our communities subscribe to

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 10:00:00.000000

A new table only; nothing else changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("pending", "active", "rejected")


def upgrade() -> None:
    allowed = ", ".join(f"'{state}'" for state in STATES)
    op.create_table(
        "relays",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("local_community_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.String(length=2048), nullable=False),
        sa.Column("inbox_url", sa.String(length=2048), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("follow_activity_id", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fetch_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetch_window_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({allowed})", name=op.f("ck_relays_state")),
        sa.ForeignKeyConstraint(
            ["local_community_id"],
            ["communities.id"],
            name=op.f("fk_relays_local_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relays")),
        sa.UniqueConstraint(
            "local_community_id", "actor_id", name=op.f("uq_relays_local_community_id_actor_id")
        ),
    )
    op.create_index("ix_relays_actor_id", "relays", ["actor_id"], unique=False)
    op.create_index(
        op.f("ix_relays_follow_activity_id"), "relays", ["follow_activity_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_relays_follow_activity_id"), table_name="relays")
    op.drop_index("ix_relays_actor_id", table_name="relays")
    op.drop_table("relays")
