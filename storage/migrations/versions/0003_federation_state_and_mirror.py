"""federation state and mirror

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 07:35:35.260017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Remote actors that are not communities (a Mastodon user following us) are
    # cached in the same table, told apart by their AS2 type.
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("actor_type", sa.String(length=32), nullable=False, server_default="Group")
        )
    op.create_table(
        "blocked_domains",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_blocked_domains")),
    )
    op.create_table(
        "inbox_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.String(length=2048), nullable=False),
        sa.Column("activity_type", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=2048), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipient", sa.String(length=2048), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_log")),
        sa.UniqueConstraint("activity_id", name=op.f("uq_inbox_log_activity_id")),
    )
    with op.batch_alter_table("inbox_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_log_state"), ["state"], unique=False)

    op.create_table(
        "peer_hosts",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("backoff_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_peer_hosts")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.String(length=2048), nullable=False),
        sa.Column("sender_community_id", sa.Integer(), nullable=False),
        sa.Column("target_inbox", sa.String(length=2048), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sender_community_id"],
            ["communities.id"],
            name=op.f("fk_deliveries_sender_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "activity_id", "target_inbox", name=op.f("uq_deliveries_activity_id_target_inbox")
        ),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_host"), ["host"], unique=False)
        batch_op.create_index(
            "ix_deliveries_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "follows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("local_community_id", sa.Integer(), nullable=False),
        sa.Column("remote_actor", sa.String(length=2048), nullable=False),
        sa.Column("remote_inbox", sa.String(length=2048), nullable=True),
        sa.Column("remote_shared_inbox", sa.String(length=2048), nullable=True),
        sa.Column("follow_activity_id", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["local_community_id"],
            ["communities.id"],
            name=op.f("fk_follows_local_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follows")),
        sa.UniqueConstraint(
            "direction",
            "local_community_id",
            "remote_actor",
            name=op.f("uq_follows_direction_local_community_id_remote_actor"),
        ),
    )
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.create_index("ix_follows_follow_activity_id", ["follow_activity_id"], unique=False)

    op.create_table(
        "known_peers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("added_by_community_id", sa.Integer(), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by_community_id"],
            ["communities.id"],
            name=op.f("fk_known_peers_added_by_community_id_communities"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_peers")),
        sa.UniqueConstraint("base_url", name=op.f("uq_known_peers_base_url")),
    )
    op.create_table(
        "remote_listings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ap_id", sa.String(length=2048), nullable=False),
        sa.Column("origin_community_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remote_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_tombstoned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["origin_community_id"],
            ["communities.id"],
            name=op.f("fk_remote_listings_origin_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_listings")),
        sa.UniqueConstraint("ap_id", name=op.f("uq_remote_listings_ap_id")),
    )
    with op.batch_alter_table("remote_listings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_remote_listings_audience_status", ["audience", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_remote_listings_origin_community_id"),
            ["origin_community_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.drop_column("actor_type")
    with op.batch_alter_table("remote_listings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_remote_listings_origin_community_id"))
        batch_op.drop_index("ix_remote_listings_audience_status")

    op.drop_table("remote_listings")
    op.drop_table("known_peers")
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.drop_index("ix_follows_follow_activity_id")

    op.drop_table("follows")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_state_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_deliveries_host"))

    op.drop_table("deliveries")
    op.drop_table("peer_hosts")
    with op.batch_alter_table("inbox_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_log_state"))

    op.drop_table("inbox_log")
    op.drop_table("blocked_domains")
