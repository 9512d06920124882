"""community partnerships and notifications

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 08:09:42.306229
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "community_partnerships",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("local_community_id", sa.Integer(), nullable=False),
        sa.Column("remote_community_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("initiated_by", sa.String(length=4), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("follow_activity_id", sa.String(length=2048), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["approved_by_id"],
            ["members.id"],
            name=op.f("fk_community_partnerships_approved_by_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["local_community_id"],
            ["communities.id"],
            name=op.f("fk_community_partnerships_local_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by_id"],
            ["members.id"],
            name=op.f("fk_community_partnerships_proposed_by_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["remote_community_id"],
            ["communities.id"],
            name=op.f("fk_community_partnerships_remote_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_partnerships")),
    )
    with op.batch_alter_table("community_partnerships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_partnerships_follow_activity_id"),
            ["follow_activity_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_community_partnerships_local_remote",
            ["local_community_id", "remote_community_id"],
            unique=False,
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("partnership_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_notifications_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partnership_id"],
            ["community_partnerships.id"],
            name=op.f("fk_notifications_partnership_id_community_partnerships"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_community_id"), ["community_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_community_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("community_partnerships", schema=None) as batch_op:
        batch_op.drop_index("ix_community_partnerships_local_remote")
        batch_op.drop_index(batch_op.f("ix_community_partnerships_follow_activity_id"))

    op.drop_table("community_partnerships")
