"""the database refuses unknown states

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 01:15:00.000000

Every state column may hold only the values of its `StrEnum` in
`storage.states` (as they are at this revision: frozen below, so that
history does not move when the code does). PostgreSQL gets CHECK
constraints named as the models name them. SQLite cannot add a CHECK
constraint to an existing table without rebuilding it, and rebuilding a
table that others reference would, with foreign keys enforced, cascade
deletes into them; so on SQLite the same rule is two triggers per column
(before insert, before update of it) that abort the statement.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


STATE_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "members": {"role": ("member", "steward")},
    "listings": {
        "kind": ("offer", "need"),
        "status": ("active", "closed"),
        "visibility": ("community", "partners", "public"),
    },
    "remote_listings": {
        "kind": ("offer", "need"),
        "status": ("active", "closed"),
        "audience": ("public", "partners"),
    },
    "follows": {"direction": ("in", "out"), "state": ("pending", "active", "rejected")},
    "inbox_log": {"state": ("received", "handled", "ignored", "failed")},
    "deliveries": {"state": ("queued", "delivered", "failed", "cancelled")},
    "community_partnerships": {
        "state": ("proposed", "pending", "active", "rejected", "dissolved"),
        "initiated_by": ("us", "them"),
    },
    "jobs": {"state": ("queued", "done", "failed", "cancelled")},
}


def _allowed(states: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in states)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
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


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, columns in STATE_COLUMNS.items():
        for column in columns:
            if not sqlite:
                op.drop_constraint(f"ck_{table}_{column}", table, type_="check")
                continue
            for event in ("insert", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS ck_{table}_{column}_{event}")
