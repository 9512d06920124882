"""The delivery queue over the database: what `federation.delivery` needs from storage.

Every method is its own short transaction, so the worker never holds a
transaction (or, on SQLite, the single write lock) open across an HTTP request.
Enqueuing is the exception: it joins the caller's transaction, so an activity
is queued if and only if the change that caused it commits.

Claiming is where the visibility rule is asked a second time: a delivery that
carries a listing goes out only if its audience still allows it then.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.delivery import DeliveryJob, Settlement, Verdict, host_backoff
from node.protocol.handoff import HANDED, HANDOFF
from node.protocol.recipients import SendTimeCheck
from storage.models import Community, utcnow
from storage.repositories import DeliveryRepository
from storage.repositories.deliveries import (
    NOTHING,
    Carried,
    ClaimedDelivery,
    HostCaps,
    LeasedRow,
    Outcomes,
    PreLease,
)

logger = logging.getLogger(__name__)


async def enqueue_activity(
    session: AsyncSession,
    activity: Mapping[str, Any],
    sender: Community,
    inboxes: Iterable[str],
    *,
    carried: Carried = NOTHING,
) -> int:
    """Queue `activity` from local community `sender` to each of `inboxes`.

    Runs in the caller's session and does not commit; once the caller has
    committed, `node.protocol.workers.wake_delivery(app)` sends it at once
    instead of at the worker's next poll. Where this process runs a delivery
    worker with room, the rows go in leased to it and are handed over on
    commit (`node.protocol.handoff`). `carried` says which listing it
    shares and with whom, for the check at send time. Returns how many
    deliveries were new.
    """
    activity_id = activity.get("id")
    if not isinstance(activity_id, str) or not activity_id:
        raise ValueError("an activity needs a string id to be delivered")
    if not sender.is_local or not sender.key_id or not sender.private_key_pem:
        raise ValueError(f"{sender.ap_id} cannot sign: it is not a local community with keys")
    body = orjson.dumps(activity).decode("utf-8")
    repo = DeliveryRepository(session)
    handoff = session.info.get(HANDOFF)
    vacancy = handoff.vacancy(session.sync_session) if handoff is not None else None
    if vacancy is None:
        return await repo.enqueue(activity_id, sender.id, inboxes, body, carried=carried)
    leased: list[LeasedRow] = []
    lease = PreLease(vacancy.lease_until, vacancy.limit, vacancy.per_host, vacancy.room)
    added = await repo.enqueue(
        activity_id, sender.id, inboxes, body, carried=carried, lease=lease, leased_out=leased
    )
    if leased:
        data = body.encode("utf-8")
        session.info.setdefault(HANDED, []).extend(
            DeliveryJob(
                id=row.id,
                activity_id=activity_id,
                target_inbox=row.target_inbox,
                host=row.host,
                body=data,
                key_id=sender.key_id,
                private_key_pem=sender.private_key_pem,
                attempts=0,
                leased_until=lease.until,
            )
            for row in leased
        )
    return added


def _ignore(_outcome: str) -> None:
    """The default `observe`: nobody is counting."""


def _job(
    delivery: ClaimedDelivery, sender: Community, leased_until: datetime
) -> DeliveryJob | None:
    if not sender.key_id or not sender.private_key_pem:
        return None
    return DeliveryJob(
        id=delivery.id,
        activity_id=delivery.activity_id,
        target_inbox=delivery.target_inbox,
        host=delivery.host,
        body=delivery.body.encode("utf-8"),
        key_id=sender.key_id,
        private_key_pem=sender.private_key_pem,
        attempts=delivery.attempts,
        leased_until=leased_until,
    )


class SqlDeliveryQueue:
    """`federation.delivery.DeliveryQueue` backed by `DeliveryRepository`.

    `clock` and `rng` are injectable so tests can move time and pin jitter
    instead of sleeping. `observe` hears each outcome once it is recorded
    (`delivered`, `retry`, `gave_up`, `cancelled`), for metrics.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._sessions = session_factory
        self._clock = clock
        self._rng = rng or random.Random()
        self._observe = observe or _ignore

    async def claim(
        self,
        limit: int,
        lease: timedelta,
        *,
        per_host: int | None = None,
        room: Mapping[str, int] | None = None,
    ) -> list[DeliveryJob]:
        """Lease due deliveries; one whose sender lost its keys can never be signed,
        so it is given up on here rather than claimed again forever. One whose
        audience no longer allows it is cancelled here, and never sent.
        """
        caps = None if per_host is None else HostCaps(per_host, room or {})
        async with self._sessions() as session, session.begin():
            repo = DeliveryRepository(session)
            check = SendTimeCheck(session)
            jobs: list[DeliveryJob] = []
            now = self._clock()
            for delivery, sender in await repo.claim_due_rows(now, limit, lease, caps):
                refusal = await check.refusal(delivery, sender)
                if refusal is not None:
                    logger.info("delivery %s cancelled: %s", delivery.id, refusal)
                    if await repo.cancel(delivery.id, refusal):
                        self._observe("cancelled")
                    continue
                job = _job(delivery, sender, now + lease)
                if job is None:
                    logger.warning("delivery %s: sender %s has no key", delivery.id, sender.ap_id)
                    await repo.mark_failed(delivery.id, None, "sender has no signing key")
                else:
                    jobs.append(job)
            return jobs

    async def record(self, settlements: Sequence[Settlement]) -> None:
        """Record many outcomes in one transaction: the deliveries answered alike in
        one statement, each host's health once, as if recorded one by one in order.
        """
        now = self._clock()
        delivered: list[tuple[int, int]] = []
        retries: list[tuple[int, datetime, int | None, str]] = []
        failed: list[tuple[int, int | None, str]] = []
        for settled in settlements:
            job_id, status, error = settled.job.id, settled.status, settled.error
            if settled.verdict is Verdict.DELIVERED:
                assert status is not None
                delivered.append((job_id, status))
            elif settled.verdict is Verdict.RETRY:
                assert settled.retry_at is not None
                retries.append((job_id, settled.retry_at, status, error))
            else:
                failed.append((job_id, status, error))
        async with self._sessions() as session, session.begin():
            repo = DeliveryRepository(session)
            await repo.record_outcomes(Outcomes(delivered, retries, failed), now)
            await self._record_hosts(repo, settlements, now)
        for settled in settlements:
            self._observe(_OUTCOMES[settled.verdict])

    async def _record_hosts(
        self, repo: DeliveryRepository, settlements: Sequence[Settlement], now: datetime
    ) -> None:
        """Each host's health after these outcomes in order: a success resets it; a
        failure after its last success backs it off (later ones fall in that backoff)."""
        succeeded: set[str] = set()
        failed: dict[str, Settlement] = {}
        for settled in settlements:
            host = settled.job.host
            if settled.verdict is Verdict.DELIVERED:
                succeeded.add(host)
                failed.pop(host, None)
            elif settled.host_failed:
                failed.setdefault(host, settled)
        await repo.record_hosts_success(succeeded, now)
        for host in sorted(failed):
            settled = failed[host]
            await repo.record_host_failure(
                host, now, settled.error, self._host_schedule(settled.host_wait)
            )

    async def delivered(self, job: DeliveryJob, status: int) -> None:
        await self.record([Settlement(job, Verdict.DELIVERED, status, "")])

    async def retry(
        self,
        job: DeliveryJob,
        at: datetime,
        status: int | None,
        error: str,
        *,
        host_failed: bool = True,
        host_wait: timedelta | None = None,
    ) -> None:
        await self.record(
            [
                Settlement(
                    job,
                    Verdict.RETRY,
                    status,
                    error,
                    retry_at=at,
                    host_failed=host_failed,
                    host_wait=host_wait,
                )
            ]
        )

    def _host_schedule(self, host_wait: timedelta | None) -> Callable[[int], timedelta]:
        """The host's own backoff, stretched to what the remote asked for, if more."""
        floor = host_wait or timedelta(0)
        return lambda failures: max(host_backoff(failures, self._rng), floor)

    async def give_up(self, job: DeliveryJob, status: int | None, error: str) -> None:
        await self.record([Settlement(job, Verdict.GIVE_UP, status, error)])

    async def release(self, jobs: Sequence[DeliveryJob]) -> None:
        async with self._sessions() as session, session.begin():
            await DeliveryRepository(session).release([job.id for job in jobs])


_OUTCOMES = {Verdict.DELIVERED: "delivered", Verdict.RETRY: "retry", Verdict.GIVE_UP: "gave_up"}
