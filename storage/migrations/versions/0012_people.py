"""people: display names, bios, deactivation, invitations, password resets, listing authors

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 09:00:00.000000

Members get a display name, a short bio and an `is_active` flag (everyone
existing stays active). Invitations and password-reset links are new tables
that keep only a hash of each link's secret. The mirror keeps the display
name a remote listing's author chose (`remote_listings.author_name`).

`invitations.role` may hold only a known role: a CHECK constraint on
PostgreSQL, triggers on SQLite, named as migration 0008 names them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("member", "steward")


def _role_rule() -> str:
    return "role IN (" + ", ".join(f"'{role}'" for role in ROLES) + ")"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Plain ADD COLUMN with constant defaults: a batch operation would rebuild
    # `members` on SQLite, dropping its state triggers and, with foreign keys
    # enforced, cascading the drop into every table that references it.
    op.add_column(
        "members",
        sa.Column("display_name", sa.String(length=100), nullable=False, server_default=""),
    )
    op.add_column("members", sa.Column("bio", sa.Text(), nullable=False, server_default=""))
    op.add_column(
        "members", sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("remote_listings", sa.Column("author_name", sa.String(length=100), nullable=True))

    checks = [] if sqlite else [sa.CheckConstraint(_role_rule(), name=op.f("ck_invitations_role"))]
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_invitations_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["members.id"],
            name=op.f("fk_invitations_created_by_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["used_by_id"],
            ["members.id"],
            name=op.f("fk_invitations_used_by_id_members"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
        *checks,
    )
    op.create_index(
        "ix_invitations_community_id_created_at",
        "invitations",
        ["community_id", "created_at"],
        unique=False,
    )
    if sqlite:
        for event, when in (("insert", "INSERT"), ("update", "UPDATE OF role")):
            op.execute(
                f"CREATE TRIGGER ck_invitations_role_{event} BEFORE {when} ON invitations "
                f"WHEN NEW.role NOT IN ({', '.join(repr(role) for role in ROLES)}) "
                "BEGIN SELECT RAISE(ABORT, 'invitations.role must be one of member, steward'); END"
            )

    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_password_resets_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["members.id"],
            name=op.f("fk_password_resets_created_by_id_members"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index(
        op.f("ix_password_resets_member_id"), "password_resets", ["member_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_password_resets_member_id"), table_name="password_resets")
    op.drop_table("password_resets")
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS ck_invitations_role_{event}")
    op.drop_index("ix_invitations_community_id_created_at", table_name="invitations")
    op.drop_table("invitations")
    # DROP COLUMN (SQLite 3.35+) rather than a batch rebuild, for the reason given above.
    op.drop_column("remote_listings", "author_name")
    for column in ("is_active", "bio", "display_name"):
        op.drop_column("members", column)
