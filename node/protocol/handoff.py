"""Deliveries queued by a transaction go straight to this process's delivery worker.

A transaction that queues deliveries inserts those the worker has room for
already leased to it and, once it commits, hands them over, so a fan-out
starts sending at once instead of waiting for the worker to claim it back
from the database (a claim is a query over the queue and the audience check
again: about a tenth of a fan-out to 200 hosts). The rows are as durable as
any: if the process dies before sending them, their leases lapse and any
worker sends them. A transaction that rolls back hands over nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from federation.delivery import DeliveryJob, DeliveryWorker, Vacancy

HANDOFF = "delivery_handoff"
"""`session.info` key: this process's `DeliveryHandoff`, given to every session."""
HANDED = "delivery_handed"
"""`session.info` key: the jobs leased by the open transaction, handed over on commit."""


class DeliveryHandoff:
    """Between the sessions of one app and its delivery worker, while it runs."""

    def __init__(self) -> None:
        self._worker: DeliveryWorker | None = None

    def attach(self, worker: DeliveryWorker | None) -> None:
        self._worker = worker

    def vacancy(self, session: Session) -> Vacancy | None:
        """What the worker would take now, less what this transaction already leased."""
        vacancy = self._worker.vacancy() if self._worker is not None else None
        handed: list[DeliveryJob] = session.info.get(HANDED, [])
        if vacancy is None or not handed:
            return vacancy
        room = {host: vacancy.room.get(host, vacancy.per_host) for host in vacancy.room}
        for job in handed:
            room[job.host] = room.get(job.host, vacancy.per_host) - 1
        limit = vacancy.limit - len(handed)
        return Vacancy(vacancy.lease_until, limit, vacancy.per_host, room) if limit > 0 else None

    def give(self, jobs: Sequence[DeliveryJob]) -> None:
        if self._worker is not None:
            self._worker.take(jobs)


DELIVERY_HANDOFF = web.AppKey("delivery_handoff", DeliveryHandoff)


def hand_over_after_commit(app: web.Application, session: Session) -> None:
    """Session hook: the worker sends what the committed transaction leased to it."""
    jobs = session.info.pop(HANDED, None)
    if jobs:
        app[DELIVERY_HANDOFF].give(jobs)


def forget_after_rollback(session: Session, _previous: Any) -> None:
    """Session hook: rolled-back rows never existed; their jobs are dropped."""
    session.info.pop(HANDED, None)
