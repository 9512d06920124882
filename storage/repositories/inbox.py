"""The inbox log: dedupe key, audit trail and work queue for accepted activities.

Remote servers retry deliveries and several of our processes may receive the
same activity at once, so `add_if_new` relies on the unique activity id and an
`INSERT ... ON CONFLICT DO NOTHING` rather than on a read-then-write. Claiming
work uses a lease (`locked_until`) that works on both databases, so a worker
that dies mid-activity only delays it; PostgreSQL also skips rows another
worker holds instead of waiting for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import dialect
from storage.models import InboxEntry, utcnow
from storage.states import InboxState

STATE_RECEIVED = InboxState.RECEIVED
"""Stored and waiting to be handled (or waiting for a retry after `locked_until`)."""
FINAL_STATES = frozenset({InboxState.HANDLED, InboxState.IGNORED, InboxState.FAILED})
RETRY = "retry"
"""An outcome, not a state: back to `received`, claimable again from `retry_at`."""
_INBOX = cast(Table, InboxEntry.__table__)


@dataclass(frozen=True, slots=True)
class NewInboxEntry:
    """An activity to log, as `add_many_if_new` takes it."""

    activity_id: str
    activity_type: str
    actor: str
    raw: str
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """What became of a claimed entry: a final state, or `retry` not before `retry_at`."""

    entry_id: int
    state: str
    error: str | None = None
    retry_at: datetime | None = None


def _outcome_row(outcome: EntryOutcome, now: datetime) -> dict[str, object]:
    if outcome.state == RETRY:
        if outcome.retry_at is None:
            raise ValueError("a retry needs retry_at")
        state, handled_at, locked_until = STATE_RECEIVED, None, outcome.retry_at
    elif outcome.state in FINAL_STATES:
        state, handled_at, locked_until = InboxState(outcome.state), now, None
    else:
        raise ValueError(f"not an inbox outcome: {outcome.state!r}")
    return {
        "entry_id": outcome.entry_id,
        "new_state": state,
        "new_error": outcome.error,
        "new_handled_at": handled_at,
        "new_locked_until": locked_until,
    }


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Waiting entries whose lease (or retry delay) has run out."""
    return (InboxEntry.state == STATE_RECEIVED) & or_(
        InboxEntry.locked_until.is_(None), InboxEntry.locked_until <= now
    )


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_new(
        self,
        activity_id: str,
        type: str,
        actor: str,
        raw: str,
        recipient: str | None = None,
    ) -> bool:
        """Store an accepted activity; False when its id was already stored.

        Race-safe: of two identical concurrent deliveries exactly one inserts.
        """
        entry = NewInboxEntry(activity_id, type, actor, raw, recipient)
        return activity_id in await self.add_many_if_new([entry])

    async def add_many_if_new(self, entries: Sequence[NewInboxEntry]) -> set[str]:
        """Store several activities in one statement; returns the ids that were new.

        This is what lets concurrent deliveries share one commit. A Core
        INSERT (not the ORM's) because it runs for every accepted activity.
        """
        if not entries:
            return set()
        now = utcnow()
        rows = [
            {
                "activity_id": entry.activity_id,
                "activity_type": entry.activity_type,
                "actor": entry.actor,
                "raw": entry.raw,
                "recipient": entry.recipient,
                "state": STATE_RECEIVED,
                "attempts": 0,
                "received_at": now,
            }
            for entry in entries
        ]
        # One compiled statement for any number of rows: SQLAlchemy's
        # "insertmanyvalues" sends them as multi-row VALUES with RETURNING.
        stmt = (
            dialect.conflict_insert(self.session, _INBOX)
            .on_conflict_do_nothing(index_elements=["activity_id"])
            .returning(_INBOX.c.activity_id)
        )
        return set((await self.session.execute(stmt, rows)).scalars())

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> Sequence[InboxEntry]:
        """Lease up to `limit` waiting entries, oldest first, counting the attempt.

        The lease conditions are repeated in the UPDATE, so that a row another
        worker claimed in the meantime is re-checked and skipped rather than
        claimed twice (`storage.dialect.claimable` says why it is a CTE).
        """
        due = select(InboxEntry.id).where(_claimable(now)).order_by(InboxEntry.id).limit(limit)
        picked = dialect.claimable(self.session, due, of=InboxEntry, name="due")
        stmt = (
            update(InboxEntry)
            .where(InboxEntry.id == picked.c.id, _claimable(now))
            .values(locked_until=now + lease, attempts=InboxEntry.attempts + 1)
            .returning(InboxEntry)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        rows = (await self.session.scalars(stmt)).all()
        return sorted(rows, key=lambda entry: entry.id)

    async def mark(
        self, entry_id: int, state: str, error: str | None, *, now: datetime | None = None
    ) -> None:
        """Record the outcome of handling: `handled`, `ignored` or `failed`."""
        if state not in FINAL_STATES:
            raise ValueError(f"not a final inbox state: {state!r}")
        await self.record([EntryOutcome(entry_id, state, error)], now=now)

    async def release(self, entry_id: int, error: str, retry_at: datetime) -> None:
        """Put an entry back for another attempt, not before `retry_at`."""
        await self.record([EntryOutcome(entry_id, RETRY, error, retry_at)])

    async def record(
        self, outcomes: Sequence[EntryOutcome], *, now: datetime | None = None
    ) -> None:
        """Write many outcomes in one statement, so a busy inbox commits once a batch."""
        if not outcomes:
            return
        rows = [_outcome_row(outcome, now or utcnow()) for outcome in outcomes]
        stmt = (
            update(_INBOX)
            .where(_INBOX.c.id == bindparam("entry_id"))
            .values(
                state=bindparam("new_state"),
                error=bindparam("new_error"),
                handled_at=bindparam("new_handled_at"),
                locked_until=bindparam("new_locked_until"),
            )
        )
        await self.session.execute(stmt, rows)

    async def get_by_activity_id(self, activity_id: str) -> InboxEntry | None:
        result = await self.session.execute(
            select(InboxEntry)
            .where(InboxEntry.activity_id == activity_id)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def recent(self, limit: int = 50) -> Sequence[InboxEntry]:
        """The latest accepted activities, newest first: for stewards' audit views."""
        result = await self.session.execute(
            select(InboxEntry)
            .order_by(InboxEntry.id.desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return result.scalars().all()
