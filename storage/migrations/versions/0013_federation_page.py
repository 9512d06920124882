"""federation page: the clock skew each peer's signatures show, and why a domain was blocked

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 07:00:00.000000

`peer_hosts` records the difference between the `Date` of the last verified
signed request from a host and this node's clock (`clock_skew_seconds`,
positive when the peer's clock is ahead) and when it was seen. A blocked
domain keeps the reason the operator gave (empty for older blocks).
Plain ADD COLUMN on both databases; no table is rebuilt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("peer_hosts", sa.Column("clock_skew_seconds", sa.Float(), nullable=True))
    op.add_column(
        "peer_hosts", sa.Column("clock_skew_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "blocked_domains",
        sa.Column("reason", sa.String(length=500), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_column("blocked_domains", "reason")
    op.drop_column("peer_hosts", "clock_skew_at")
    op.drop_column("peer_hosts", "clock_skew_seconds")
