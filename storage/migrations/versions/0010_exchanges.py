"""exchanges between members, their message threads, member notifications

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01 10:00:00.000000

An exchange row per node that holds a party, keyed across nodes by the
agreement id; its messages; and notifications addressed to one member (a
notification without a member stays for the community's stewards). State
columns get the same rule as migration 0008 gave the others: a CHECK
constraint on PostgreSQL, abort triggers on SQLite. The states are frozen
here, so that history does not move when the code does.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATE_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "exchanges": {
        "status": ("requested", "accepted", "declined", "cancelled", "completed"),
        "listing_kind": ("offer", "need"),
    },
}


def _allowed(states: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in states)


def _state_rules(sqlite: bool) -> None:
    for table, columns in STATE_COLUMNS.items():
        for column, states in columns.items():
            rule = f"{column} IN ({_allowed(states)})"
            if not sqlite:
                op.create_check_constraint(op.f(f"ck_{table}_{column}"), table, rule)
                continue
            message = f"{table}.{column} must be one of {', '.join(states)}"
            for event, when in (("INSERT", "INSERT"), ("UPDATE", f"UPDATE OF {column}")):
                op.execute(
                    f"CREATE TRIGGER ck_{table}_{column}_{event.lower()} BEFORE {when} ON {table} "
                    f"WHEN NEW.{column} NOT IN ({_allowed(states)}) "
                    f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )


def _community_fk(column: str, table: str = "exchanges") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        ["communities.id"],
        name=op.f(f"fk_{table}_{column}_communities"),
        ondelete="CASCADE",
    )


def _member_fk(column: str, table: str = "exchanges") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["members.id"], name=op.f(f"fk_{table}_{column}_members"), ondelete="SET NULL"
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "exchanges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("agreement_id", sa.String(length=2048), nullable=False),
        sa.Column("offer_activity_id", sa.String(length=2048), nullable=False),
        sa.Column("answer_activity_id", sa.String(length=2048), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("listing_id", sa.String(length=32), nullable=True),
        sa.Column("listing_ap_id", sa.String(length=2048), nullable=False),
        sa.Column("listing_title", sa.String(length=200), nullable=False),
        sa.Column("listing_kind", sa.String(length=8), nullable=False),
        sa.Column("provider_community_id", sa.Integer(), nullable=False),
        sa.Column("receiver_community_id", sa.Integer(), nullable=False),
        sa.Column("is_cross_community", sa.Boolean(), nullable=False),
        sa.Column("provider_member_id", sa.Integer(), nullable=True),
        sa.Column("receiver_member_id", sa.Integer(), nullable=True),
        sa.Column("provider_handle", sa.String(length=320), nullable=True),
        sa.Column("receiver_handle", sa.String(length=320), nullable=True),
        sa.Column("provider_name", sa.String(length=200), nullable=False),
        sa.Column("receiver_name", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_exchanges_listing_id_listings"),
            ondelete="SET NULL",
        ),
        _community_fk("provider_community_id"),
        _community_fk("receiver_community_id"),
        _member_fk("provider_member_id"),
        _member_fk("receiver_member_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchanges")),
        sa.UniqueConstraint("agreement_id", name=op.f("uq_exchanges_agreement_id")),
    )
    for column in ("offer_activity_id", "listing_id", "provider_member_id", "receiver_member_id"):
        op.create_index(op.f(f"ix_exchanges_{column}"), "exchanges", [column], unique=False)
    for side in ("provider", "receiver"):
        op.create_index(
            f"ix_exchanges_{side}_community_id_status",
            "exchanges",
            [f"{side}_community_id", "status"],
            unique=False,
        )

    op.create_table(
        "exchange_messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ap_id", sa.String(length=2048), nullable=False),
        sa.Column("exchange_id", sa.String(length=32), nullable=False),
        sa.Column("author_community_id", sa.Integer(), nullable=False),
        sa.Column("author_member_id", sa.Integer(), nullable=True),
        sa.Column("author_handle", sa.String(length=320), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["exchange_id"],
            ["exchanges.id"],
            name=op.f("fk_exchange_messages_exchange_id_exchanges"),
            ondelete="CASCADE",
        ),
        _community_fk("author_community_id", "exchange_messages"),
        _member_fk("author_member_id", "exchange_messages"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_messages")),
        sa.UniqueConstraint("ap_id", name=op.f("uq_exchange_messages_ap_id")),
    )
    op.create_index(
        "ix_exchange_messages_exchange_id_created_at",
        "exchange_messages",
        ["exchange_id", "created_at"],
        unique=False,
    )

    # Nothing references notifications, so SQLite's copy-and-rename is safe here.
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("member_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("exchange_id", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            op.f("fk_notifications_member_id_members"),
            "members",
            ["member_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            op.f("fk_notifications_exchange_id_exchanges"),
            "exchanges",
            ["exchange_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_notifications_member_id"), ["member_id"], unique=False)

    _state_rules(sqlite)


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index(op.f("ix_notifications_member_id"))
        batch.drop_constraint(op.f("fk_notifications_exchange_id_exchanges"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_notifications_member_id_members"), type_="foreignkey")
        batch.drop_column("exchange_id")
        batch.drop_column("member_id")
    op.drop_table("exchange_messages")
    op.drop_table("exchanges")
