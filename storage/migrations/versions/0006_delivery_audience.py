"""what a queued delivery carries and to whom, so its audience is re-checked at send time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00.000000

Rows queued before this revision know nothing of their audience. Those that
carry a listing are labelled from their body, so the send-time check covers
them too; a partner-only one is cancelled instead, because its body names
every partner (partners re-page the collection on their next reconciliation).
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_deliveries = sa.table(
    "deliveries",
    sa.column("id", sa.Integer),
    sa.column("body", sa.Text),
    sa.column("state", sa.String),
    sa.column("last_error", sa.Text),
    sa.column("listing_id", sa.String),
    sa.column("audience", sa.String),
)
_listings = sa.table("listings", sa.column("id", sa.String), sa.column("ap_id", sa.String))


def _carried_note(body: str) -> tuple[str, str] | None:
    """(note id, visibility) of a queued Create/Update of a listing, else None."""
    try:
        activity: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(activity, dict) or activity.get("type") not in ("Create", "Update"):
        return None
    note = activity.get("object")
    if not isinstance(note, dict) or not isinstance(note.get("id"), str):
        return None
    visibility = note.get("visibility")
    return note["id"], visibility if isinstance(visibility, str) else "public"


def _label_queued_rows() -> None:
    bind = op.get_bind()
    body = _deliveries.c.body
    queued = bind.execute(
        sa.select(_deliveries.c.id, body).where(
            _deliveries.c.state == "queued",
            sa.or_(body.like('%"Create"%'), body.like('%"Update"%')),
        )
    ).all()
    for delivery_id, text in queued:
        carried = _carried_note(text)
        if carried is None:
            continue
        note_id, visibility = carried
        listing_id = bind.execute(
            sa.select(_listings.c.id).where(_listings.c.ap_id == note_id)
        ).scalar_one_or_none()
        values: dict[str, Any] = {"listing_id": listing_id, "audience": visibility}
        if listing_id is None or visibility != "public":
            values |= {"state": "cancelled", "last_error": "queued before audience checks"}
        bind.execute(sa.update(_deliveries).where(_deliveries.c.id == delivery_id).values(**values))


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listing_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("audience", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("recipient_actor", sa.String(length=2048), nullable=True))
        batch_op.create_index(batch_op.f("ix_deliveries_listing_id"), ["listing_id"], unique=False)
    _label_queued_rows()


def downgrade() -> None:
    # The older code knows no `cancelled`: such rows become `failed`, which it prunes.
    op.execute(
        sa.update(_deliveries).where(_deliveries.c.state == "cancelled").values(state="failed")
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_listing_id"))
        batch_op.drop_column("recipient_actor")
        batch_op.drop_column("audience")
        batch_op.drop_column("listing_id")
