"""The delivery queue and per-host health, as rows.

Locking is lease-based so it works the same on SQLite and PostgreSQL: a
claimed row carries `locked_until`, and a worker that dies simply lets the
lease lapse. On PostgreSQL the claim also skips rows another worker is
claiming at that moment (`storage.dialect.claimable`).

Attempts are counted when an outcome is recorded, not when a row is claimed,
so a lease released on shutdown costs the delivery nothing.

A delivery whose audience no longer allows it (the partnership ended, the
listing became less visible or was deleted, the host was blocked) is
`cancelled`: it stays, with the reason in `last_error`, and is never sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Row,
    Select,
    Table,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from storage import dialect
from storage.models import Community, Delivery, PeerHost, utcnow
from storage.repositories.actors import BlockRepository, host_is_blocked
from storage.states import DeliveryState

QUEUED, DELIVERED = DeliveryState.QUEUED, DeliveryState.DELIVERED
FAILED, CANCELLED = DeliveryState.FAILED, DeliveryState.CANCELLED


@dataclass(frozen=True)
class Carried:
    """What a delivery carries and to whom, so the queue can re-check it at send time.

    `listing_id` and `audience` (`public` or `partners`) for a listing's Create
    or Update; `recipient_actor` for one addressed to a single partner. Deletes
    and protocol messages carry nothing to re-check: they always go out.
    """

    listing_id: str | None = None
    audience: str | None = None
    recipient_actor: str | None = None


NOTHING = Carried()


@dataclass(frozen=True)
class ClaimedDelivery:
    """A leased delivery's values, as the worker needs them (see `claim_due_rows`)."""

    id: int
    activity_id: str
    sender_community_id: int
    target_inbox: str
    host: str
    body: str
    attempts: int
    next_attempt_at: datetime
    listing_id: str | None
    audience: str | None
    recipient_actor: str | None


_CLAIMED_COLUMNS = tuple(getattr(Delivery, name) for name in ClaimedDelivery.__dataclass_fields__)


@dataclass(frozen=True)
class HostSummary:
    """One remote host's delivery health, for the federation health API.

    `next_attempt_at` is when something will next be sent to it: the earliest
    queued delivery, but no sooner than the end of the host's backoff.
    """

    host: str
    queued: int
    failed: int
    cancelled: int
    consecutive_failures: int
    backoff_until: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    next_attempt_at: datetime | None
    clock_skew_seconds: float | None = None
    clock_skew_at: datetime | None = None


@lru_cache(maxsize=4096)
def inbox_host(inbox: str) -> str:
    """The host a delivery counts against: `host`, or `host:port` off the default port.

    The same spelling as `Community.host`, handles and the signed `Host` header.
    """
    try:
        authority = URL(inbox).host_port_subcomponent
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an inbox URL: {inbox!r}") from exc
    if not authority:
        raise ValueError(f"inbox URL has no host: {inbox!r}")
    return authority


def _host_backing_off(now: datetime) -> ColumnElement[bool]:
    return exists().where(PeerHost.host == Delivery.host, PeerHost.backoff_until > now)


def _unleased(now: datetime) -> ColumnElement[bool]:
    return or_(Delivery.locked_until.is_(None), Delivery.locked_until <= now)


def _due(now: datetime, limit: int, blocked_hosts: set[str]) -> Select[int]:
    """Ids of deliveries a worker may take now, the longest-waiting first."""
    query = select(Delivery.id).where(
        Delivery.state == QUEUED,
        Delivery.next_attempt_at <= now,
        _unleased(now),
        ~_host_backing_off(now),
    )
    if blocked_hosts:
        query = query.where(Delivery.host.not_in(blocked_hosts))
    return query.order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)


@dataclass(frozen=True)
class HostCaps:
    """How many deliveries one claim may take per host: `per_host` for a host
    this worker holds nothing for, `room[host]` for one it already holds some
    of (0 skips the host). Keeps one busy host from filling a whole claim."""

    per_host: int
    room: Mapping[str, int]


def _due_fairly(now: datetime, limit: int, blocked_hosts: set[str], caps: HostCaps) -> Select[int]:
    """Ids of due deliveries, at most each host's cap of them, taken round-robin:
    every host's longest-waiting first, then every host's second, and so on.

    The ranking is a subquery under `IN`, so on PostgreSQL the outer select may
    still lock its rows with `SKIP LOCKED` (not allowed beside a window function).
    """
    full = {host for host, room in caps.room.items() if room <= 0}
    rank = (
        func.row_number()
        .over(partition_by=Delivery.host, order_by=(Delivery.next_attempt_at, Delivery.id))
        .label("rank")
    )
    ranked_query = select(Delivery.id, Delivery.host, Delivery.next_attempt_at, rank).where(
        Delivery.state == QUEUED,
        Delivery.next_attempt_at <= now,
        _unleased(now),
        ~_host_backing_off(now),
    )
    if blocked_hosts | full:
        ranked_query = ranked_query.where(Delivery.host.not_in(blocked_hosts | full))
    ranked = ranked_query.subquery("ranked")
    partial = {host: room for host, room in caps.room.items() if 0 < room < caps.per_host}
    cap: ColumnElement[int] = (
        case(partial, value=ranked.c.host, else_=caps.per_host)
        if partial
        else literal(caps.per_host)
    )
    picked = (
        select(ranked.c.id)
        .where(ranked.c.rank <= cap)
        .order_by(ranked.c.rank, ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )
    return select(Delivery.id).where(Delivery.id.in_(picked))


_TABLE = cast(Table, Delivery.__table__)
_QUEUED_ROW = (_TABLE.c.id == bindparam("row_id")) & (_TABLE.c.state == QUEUED)
_ENDED = {"attempts": _TABLE.c.attempts + 1, "locked_until": None}
# Built once: the worker records every outcome through these, as executemany.
_MARK_DELIVERED = (
    update(_TABLE)
    .where(_QUEUED_ROW)
    .values(
        **_ENDED,
        state=DELIVERED,
        delivered_at=bindparam("at"),
        last_status=bindparam("status"),
        last_error=None,
    )
)
_MARK_RETRY = (
    update(_TABLE)
    .where(_QUEUED_ROW)
    .values(
        **_ENDED,
        next_attempt_at=bindparam("at"),
        last_status=bindparam("status"),
        last_error=bindparam("error"),
    )
)
_MARK_FAILED = (
    update(_TABLE)
    .where(_QUEUED_ROW)
    .values(**_ENDED, state=FAILED, last_status=bindparam("status"), last_error=bindparam("error"))
)


_HOSTS_SUCCESS: dict[str, Any] = {}  # the upsert, by dialect name


@dataclass(frozen=True)
class Outcomes:
    """Many deliveries' outcomes, for `DeliveryRepository.record_outcomes`:
    `delivered` as (id, status), `retries` as (id, next attempt, status, error),
    `failed` as (id, status, error)."""

    delivered: Sequence[tuple[int, int]] = ()
    retries: Sequence[tuple[int, datetime, int | None, str]] = ()
    failed: Sequence[tuple[int, int | None, str]] = ()


@dataclass(frozen=True)
class PreLease:
    """Lease some of the rows being queued to this process's worker as they are
    inserted: at most `limit`, at most `room[host]` (else `per_host`) of one
    host, none of a host in backoff, each until `until`."""

    until: datetime
    limit: int
    per_host: int
    room: Mapping[str, int]


@dataclass(frozen=True)
class LeasedRow:
    """A row queued already leased (`PreLease`), as its worker needs it."""

    id: int
    target_inbox: str
    host: str


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


class DeliveryRepository:
    """Queries for the delivery queue; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self,
        activity_id: str,
        sender_community_id: int,
        inboxes: Iterable[str],
        body: str,
        *,
        now: datetime | None = None,
        carried: Carried = NOTHING,
        lease: PreLease | None = None,
        leased_out: list[LeasedRow] | None = None,
    ) -> int:
        """Queue `body` for each distinct inbox; returns how many rows were added.

        Enqueuing the same activity to the same inbox again is a no-op, so a
        retried request or handler never sends twice. Blocked hosts get nothing.
        With `lease`, the new rows it allows are inserted leased and listed in
        `leased_out`, for this process's worker to send without claiming them.
        """
        if lease is not None and leased_out is None:
            raise ValueError("a lease needs a list to report the leased rows in")
        hosts = {inbox: inbox_host(inbox) for inbox in dict.fromkeys(inboxes)}
        blocked = await self._blocked_among(set(hosts.values()))
        when = now or utcnow()
        rows = [
            {
                "activity_id": activity_id,
                "sender_community_id": sender_community_id,
                "target_inbox": inbox,
                "host": host,
                "body": body,
                "state": QUEUED,
                "attempts": 0,
                "next_attempt_at": when,
                "created_at": when,
                "listing_id": carried.listing_id,
                "audience": carried.audience,
                "recipient_actor": carried.recipient_actor,
            }
            for inbox, host in hosts.items()
            if host not in blocked
        ]
        if lease is None or not rows:
            return await dialect.insert_ignoring_conflicts(
                self.session, Delivery, rows, conflict_columns=("activity_id", "target_inbox")
            )
        assert leased_out is not None
        await self._pre_lease(rows, lease, when)
        inserted = await self._insert_returning(rows)
        leased_out.extend(
            LeasedRow(row_id, inbox, hosts[inbox]) for row_id, inbox, leased in inserted if leased
        )
        return len(inserted)

    async def _pre_lease(self, rows: list[dict[str, Any]], lease: PreLease, now: datetime) -> None:
        """Mark the rows `lease` allows as leased, in queue order."""
        hosts = {row["host"] for row in rows}
        resting = set(
            await self.session.scalars(
                select(PeerHost.host).where(PeerHost.host.in_(hosts), PeerHost.backoff_until > now)
            )
        )
        taken: dict[str, int] = {}
        left = lease.limit
        for row in rows:
            host = row["host"]
            fits = left > 0 and host not in resting
            fits = fits and taken.get(host, 0) < lease.room.get(host, lease.per_host)
            row["locked_until"] = lease.until if fits else None
            if fits:
                taken[host] = taken.get(host, 0) + 1
                left -= 1

    async def _insert_returning(self, rows: list[dict[str, Any]]) -> list[tuple[int, str, bool]]:
        """Insert, skipping rows already queued; (id, inbox, leased) of each new row."""
        insert = dialect.conflict_insert(self.session, _TABLE)
        statement = insert.on_conflict_do_nothing(
            index_elements=["activity_id", "target_inbox"]
        ).returning(_TABLE.c.id, _TABLE.c.target_inbox, _TABLE.c.locked_until)
        result = await self.session.execute(statement, rows)
        return [(row_id, inbox, until is not None) for row_id, inbox, until in result.all()]

    async def _blocked_among(self, hosts: Iterable[str]) -> set[str]:
        """Which of `hosts` are blocked, by the one rule `host_is_blocked` keeps."""
        blocked = await BlockRepository(self.session).domains()
        if not blocked:
            return set()
        return {host for host in hosts if host_is_blocked(blocked, host)}

    async def _blocked_due_hosts(self, now: datetime) -> set[str]:
        """Hosts with due deliveries that are blocked; the block list is usually empty."""
        blocked = await BlockRepository(self.session).domains()
        if not blocked:
            return set()
        hosts = await self.session.scalars(
            select(Delivery.host)
            .where(Delivery.state == QUEUED, Delivery.next_attempt_at <= now)
            .distinct()
        )
        return {host for host in hosts if host_is_blocked(blocked, host)}

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, caps: HostCaps | None = None
    ) -> list[tuple[Delivery, Community]]:
        """Lease up to `limit` due deliveries, oldest due first, with their senders;
        with `caps`, at most that many per host, spread over hosts round-robin.

        One `WITH due AS (SELECT ...) UPDATE ... FROM due` both picks and
        leases the rows, re-checking the lease as it writes, so two workers
        never hold the same row. Due deliveries to a blocked host are
        cancelled on the way.
        """
        claimed = await self._lease_due(now, limit, lease, caps, (Delivery.id,))
        if not claimed:
            return []
        rows = await self.session.execute(
            select(Delivery, Community)
            .join(Community, Community.id == Delivery.sender_community_id)
            .where(Delivery.id.in_([row.id for row in claimed]))
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .execution_options(populate_existing=True)
        )
        return [(delivery, community) for delivery, community in rows]

    async def claim_due_rows(
        self, now: datetime, limit: int, lease: timedelta, caps: HostCaps | None = None
    ) -> list[tuple[ClaimedDelivery, Community]]:
        """`claim_due` for the worker: the leased rows come back from the claiming
        `UPDATE ... RETURNING` as plain values, not loaded again as ORM objects,
        which for a fan-out to hundreds of hosts was most of a claim's cost."""
        claimed = await self._lease_due(now, limit, lease, caps, _CLAIMED_COLUMNS)
        if not claimed:
            return []
        sender_ids = {row.sender_community_id for row in claimed}
        senders = {
            community.id: community
            for community in await self.session.scalars(
                select(Community).where(Community.id.in_(sender_ids))
            )
        }
        deliveries = sorted(
            (ClaimedDelivery(**row._mapping) for row in claimed),
            key=lambda d: (d.next_attempt_at, d.id),
        )
        return [(d, senders[d.sender_community_id]) for d in deliveries]

    async def _lease_due(
        self,
        now: datetime,
        limit: int,
        lease: timedelta,
        caps: HostCaps | None,
        columns: Sequence[Any],
    ) -> Sequence[Row[Any]]:
        blocked = await self._blocked_due_hosts(now)
        if blocked:
            await self._cancel_where(Delivery.host.in_(blocked), "host is blocked")
        due = _due(now, limit, blocked) if caps is None else _due_fairly(now, limit, blocked, caps)
        picked = dialect.claimable(self.session, due, of=Delivery, name="due")
        claim = (
            update(Delivery)
            .where(Delivery.id == picked.c.id, Delivery.state == QUEUED, _unleased(now))
            .values(locked_until=now + lease)
            .returning(*columns)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(claim)).all()

    async def _finish(self, delivery_id: int, **values: Any) -> bool:
        """End a lease with an outcome. A row no longer queued (another worker
        finished it after our lease lapsed) is left as it is.
        """
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state == QUEUED)
            .values(attempts=Delivery.attempts + 1, locked_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def mark_delivered(self, delivery_id: int, now: datetime, status: int) -> bool:
        return await self._finish(
            delivery_id, state=DELIVERED, delivered_at=now, last_status=status, last_error=None
        )

    async def mark_delivered_many(
        self, delivery_ids: Sequence[int], now: datetime, status: int
    ) -> int:
        """`mark_delivered` for many rows answered with the same status, in one statement."""
        if not delivery_ids:
            return 0
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)), Delivery.state == QUEUED)
            .values(
                attempts=Delivery.attempts + 1,
                locked_until=None,
                state=DELIVERED,
                delivered_at=now,
                last_status=status,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def record_outcomes(self, outcomes: Outcomes, now: datetime) -> None:
        """End many leases at once, one executemany of a prebuilt statement per kind
        of outcome; like `mark_delivered`, `mark_retry` and `mark_failed`, a row no
        longer queued is left as it is."""
        connection = await self.session.connection()
        if outcomes.delivered:
            await connection.execute(
                _MARK_DELIVERED,
                [{"row_id": i, "at": now, "status": status} for i, status in outcomes.delivered],
            )
        if outcomes.retries:
            await connection.execute(
                _MARK_RETRY,
                [
                    {"row_id": i, "at": at, "status": status, "error": error}
                    for i, at, status, error in outcomes.retries
                ],
            )
        if outcomes.failed:
            await connection.execute(
                _MARK_FAILED,
                [
                    {"row_id": i, "status": status, "error": error}
                    for i, status, error in outcomes.failed
                ],
            )

    async def mark_retry(
        self, delivery_id: int, at: datetime, status: int | None, error: str
    ) -> bool:
        return await self._finish(
            delivery_id, next_attempt_at=at, last_status=status, last_error=error
        )

    async def mark_failed(self, delivery_id: int, status: int | None, error: str) -> bool:
        """Give up: the row stays, in state `failed`, for the health view and audits."""
        return await self._finish(delivery_id, state=FAILED, last_status=status, last_error=error)

    async def cancel(self, delivery_id: int, reason: str) -> bool:
        """Never send this one: its audience no longer allows it. Costs no attempt."""
        return await self._cancel_where(Delivery.id == delivery_id, reason) == 1

    async def cancel_for_listing(
        self, listing_id: str, reason: str, *, keep_audience: str | None = None
    ) -> int:
        """Cancel queued copies of a listing, except those shared under `keep_audience`."""
        condition = Delivery.listing_id == listing_id
        if keep_audience is not None:
            condition = condition & (Delivery.audience != keep_audience)
        return await self._cancel_where(condition, reason)

    async def cancel_for_recipient(
        self, sender_community_id: int, recipient_actor: str, reason: str
    ) -> int:
        """Cancel the listings queued for one partner, when that partnership ends."""
        return await self._cancel_where(
            (Delivery.sender_community_id == sender_community_id)
            & (Delivery.recipient_actor == recipient_actor)
            & Delivery.listing_id.is_not(None),
            reason,
        )

    async def cancel_blocked(self) -> int:
        """Cancel everything queued for a blocked host, so lifting the block later
        does not release what was queued before it."""
        blocked = await BlockRepository(self.session).domains()
        if not blocked:
            return 0
        hosts = await self.session.scalars(
            select(Delivery.host).where(Delivery.state == QUEUED).distinct()
        )
        doomed = {host for host in hosts if host_is_blocked(blocked, host)}
        if not doomed:
            return 0
        return await self._cancel_where(Delivery.host.in_(doomed), "host is blocked")

    async def _cancel_where(self, condition: ColumnElement[bool], reason: str) -> int:
        result = await self.session.execute(
            update(Delivery)
            .where(condition, Delivery.state == QUEUED)
            .values(state=CANCELLED, locked_until=None, last_error=reason)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def release(self, delivery_ids: Sequence[int]) -> int:
        """Drop leases without recording an attempt, so the rows are claimable now."""
        if not delivery_ids:
            return 0
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)), Delivery.state == QUEUED)
            .values(locked_until=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def _peer_for_update(self, host: str) -> PeerHost:
        """The host's health row, created if new and locked until commit (PostgreSQL)."""
        await dialect.insert_ignoring_conflicts(
            self.session,
            PeerHost,
            [{"host": host, "consecutive_failures": 0}],
            conflict_columns=("host",),
        )
        query = dialect.lock_rows(self.session, select(PeerHost).where(PeerHost.host == host))
        result = await self.session.execute(query.execution_options(populate_existing=True))
        return result.scalar_one()

    async def record_host_failure(
        self, host: str, now: datetime, error: str, schedule: Callable[[int], timedelta]
    ) -> PeerHost:
        """Count a failed round against `host` and back it off by `schedule(failures)`.

        Failures while the host is already backed off belong to the same
        round (jobs claimed together, failing together) and do not escalate
        the backoff: ten queued activities must not turn a restart into a day.
        """
        peer = await self._peer_for_update(host)
        peer.last_failure_at = now
        peer.last_error = error
        if peer.backoff_until is None or peer.backoff_until <= now:
            peer.consecutive_failures += 1
            peer.backoff_until = now + schedule(peer.consecutive_failures)
        await self.session.flush()
        return peer

    async def record_host_success(self, host: str, now: datetime) -> None:
        peer = await self._peer_for_update(host)
        peer.consecutive_failures = 0
        peer.backoff_until = None
        peer.last_success_at = now
        await self.session.flush()

    async def record_hosts_success(self, hosts: Iterable[str], now: datetime) -> None:
        """`record_host_success` for many hosts in one upsert, in a fixed order so
        that two workers recording overlapping hosts at once cannot deadlock."""
        rows = [
            {"host": host, "consecutive_failures": 0, "backoff_until": None, "last_success_at": now}
            for host in sorted(set(hosts))
        ]
        if not rows:
            return
        name = dialect.dialect_name(self.session)
        upsert = _HOSTS_SUCCESS.get(name)
        if upsert is None:
            insert = dialect.conflict_insert(self.session, PeerHost.__table__)  # type: ignore[arg-type]
            upsert = _HOSTS_SUCCESS[name] = insert.on_conflict_do_update(
                index_elements=["host"],
                set_={
                    "consecutive_failures": 0,
                    "backoff_until": None,
                    "last_success_at": insert.excluded.last_success_at,
                },
            )
        connection = await self.session.connection()
        await connection.execute(upsert, rows)  # executemany of a statement built once

    async def record_clock_skew(self, host: str, skew_seconds: float, now: datetime) -> None:
        """What the `Date` of a verified signed request from `host` said, against our clock."""
        await dialect.insert_ignoring_conflicts(
            self.session,
            PeerHost,
            [{"host": host, "consecutive_failures": 0}],
            conflict_columns=("host",),
        )
        await self.session.execute(
            update(PeerHost)
            .where(PeerHost.host == host)
            .values(clock_skew_seconds=skew_seconds, clock_skew_at=now)
            .execution_options(synchronize_session=False)
        )

    async def retry_host(self, host: str, now: datetime) -> int:
        """Forget the host's backoff and make its queued deliveries due now.

        For a steward who knows the peer is back. Returns how many deliveries
        were rescheduled; leased ones are in flight and left alone.
        """
        await self.session.execute(
            update(PeerHost)
            .where(PeerHost.host == host)
            .values(consecutive_failures=0, backoff_until=None)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.host == host, Delivery.state == QUEUED, _unleased(now))
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def host_summaries(self) -> list[HostSummary]:
        """Every host we have queued, failed or health data for, sorted by host."""
        queued = await self.session.execute(
            select(Delivery.host, func.count(), func.min(Delivery.next_attempt_at))
            .where(Delivery.state == QUEUED)
            .group_by(Delivery.host)
        )
        due = {host: (count, first) for host, count, first in queued}
        ended = await self.session.execute(
            select(Delivery.host, Delivery.state, func.count())
            .where(Delivery.state.in_((FAILED, CANCELLED)))
            .group_by(Delivery.host, Delivery.state)
        )
        counts = {(host, state): count for host, state, count in ended}
        peers = {peer.host: peer for peer in (await self.session.scalars(select(PeerHost)))}
        hosts = sorted(set(due) | {host for host, _ in counts} | set(peers))
        return [
            _summary(
                host,
                due.get(host),
                (counts.get((host, FAILED), 0), counts.get((host, CANCELLED), 0)),
                peers.get(host),
            )
            for host in hosts
        ]


def _summary(
    host: str,
    due: tuple[int, datetime] | None,
    ended: tuple[int, int],
    peer: PeerHost | None,
) -> HostSummary:
    """`ended` is (failed, cancelled)."""
    queued, first_due = due if due is not None else (0, None)
    backoff = peer.backoff_until if peer is not None else None
    next_at = first_due
    if first_due is not None and backoff is not None:
        next_at = max(first_due, backoff)
    return HostSummary(
        host=host,
        queued=queued,
        failed=ended[0],
        cancelled=ended[1],
        consecutive_failures=peer.consecutive_failures if peer is not None else 0,
        backoff_until=backoff,
        last_success_at=peer.last_success_at if peer is not None else None,
        last_failure_at=peer.last_failure_at if peer is not None else None,
        last_error=peer.last_error if peer is not None else None,
        next_attempt_at=next_at,
        clock_skew_seconds=peer.clock_skew_seconds if peer is not None else None,
        clock_skew_at=peer.clock_skew_at if peer is not None else None,
    )
