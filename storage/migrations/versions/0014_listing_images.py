"""listing images: photos on our listings and cached copies of remote listings' photos

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 09:00:00.000000

One table for both: a row names either one of our listings or a mirrored
one. The files themselves live in the media folder under `storage_key`.
A plain CREATE TABLE: `listings` and `remote_listings` are not rebuilt
(their full-text triggers from 0009 stay).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "listing_images",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("listing_id", sa.String(length=32), nullable=True),
        sa.Column("remote_listing_id", sa.String(length=32), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("storage_key", sa.String(length=64), nullable=True),
        sa.Column("media_type", sa.String(length=32), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("source_url", sa.String(length=2048), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_listing_images_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["remote_listing_id"],
            ["remote_listings.id"],
            name=op.f("fk_listing_images_remote_listing_id_remote_listings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_images")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_listing_images_storage_key")),
    )
    op.create_index(
        op.f("ix_listing_images_listing_id"), "listing_images", ["listing_id"], unique=False
    )
    op.create_index(
        op.f("ix_listing_images_remote_listing_id"),
        "listing_images",
        ["remote_listing_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_listing_images_remote_listing_id"), table_name="listing_images")
    op.drop_index(op.f("ix_listing_images_listing_id"), table_name="listing_images")
    op.drop_table("listing_images")
