"""retired community keys, published for a grace period after a rotation

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retired_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=2048), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_retired_keys_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retired_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_retired_keys_key_id")),
    )
    op.create_index(
        op.f("ix_retired_keys_community_id"), "retired_keys", ["community_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_retired_keys_community_id"), table_name="retired_keys")
    op.drop_table("retired_keys")
