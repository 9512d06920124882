"""listing visibility

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 07:29:28.420863
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("listings", schema=None) as batch_op:
        # Existing listings stay inside their community: the safe default.
        batch_op.add_column(
            sa.Column(
                "visibility", sa.String(length=16), nullable=False, server_default="community"
            )
        )
        batch_op.add_column(
            sa.Column("is_public", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_listings_is_public_status", ["is_public", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.drop_index("ix_listings_is_public_status")
        batch_op.drop_column("is_public")
        batch_op.drop_column("visibility")
