"""What a node tells Prometheus: counters bumped where things happen, gauges read at scrape.

Each application gets a registry of its own rather than the process-wide
default one, so that several nodes in one process (tests, the demo) never
add up each other's numbers, and an app can be built twice without
"duplicated timeseries" errors.

Counters (deliveries by outcome, inbox activities by result and reason,
request latency) are bumped where the event happens and cost nothing to
scrape. Queue depths are gauges computed from the database when scraped,
by two small `GROUP BY` queries, so they are right whichever process (a
`serve` or a separate `worker`) did the work. Every label takes values from
a short, fixed list: the route label is the route's pattern
(`/c/{slug}/inbox`), never the URL asked for, so a crawler cannot grow it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, Job, PeerHost, utcnow
from storage.repositories.actors import BlockRepository, host_is_blocked
from storage.states import DeliveryState, JobState

UNREACHABLE_AFTER = 6
"""Consecutive failed rounds after which a peer counts as unreachable (about 10 hours)."""
PEER_STATES = ("ok", "backing_off", "unreachable", "blocked")
DELIVERY_OUTCOMES = ("delivered", "retry", "gave_up", "cancelled")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


def peer_state(consecutive_failures: int, blocked: bool) -> str:
    """How a remote host is doing, in the words of the federation health API."""
    if blocked:
        return "blocked"
    if consecutive_failures == 0:
        return "ok"
    if consecutive_failures >= UNREACHABLE_AFTER:
        return "unreachable"
    return "backing_off"


class NodeMetrics:
    """The collectors of one node, registered in `registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "commons_deliveries",
            "Delivery attempts by outcome: delivered; retry (failed, tried again later); "
            "gave_up (failed for good); cancelled (its audience no longer allows it).",
            ["outcome"],
            registry=self.registry,
        )
        self.inbox = Counter(
            "commons_inbox_activities",
            "Activities POSTed to our inboxes: accepted, duplicate (already stored), "
            "dropped (accepted and ignored) or refused, with the refusal's error code.",
            ["result", "reason"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "commons_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route pattern and status class.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.deliveries_queued = Gauge(
            "commons_deliveries_queued",
            "Deliveries waiting to be sent, by the state of the host they are for.",
            ["peer_state"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "commons_jobs",
            "Background jobs by kind and state; `running` is a queued job a worker holds.",
            ["kind", "state"],
            registry=self.registry,
        )
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)
        self.inbox.labels("accepted", "")

    def delivery_outcome(self, outcome: str) -> None:
        self.deliveries.labels(outcome).inc()

    def inbox_result(self, result: str, reason: str = "") -> None:
        self.inbox.labels(result, reason).inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.request_seconds.labels(method, route, f"{status // 100}xx").observe(seconds)

    async def refresh(self, session: AsyncSession, now: datetime | None = None) -> None:
        """Read the queue depths from the database into the gauges."""
        now = now or utcnow()
        self._set_queued(await _queued_by_host(session), await BlockRepository(session).domains())
        self._set_jobs(await _jobs_by_kind(session, now))

    def _set_queued(
        self, rows: Iterable[tuple[str, int, int]], blocked: frozenset[str] | set[str]
    ) -> None:
        totals = dict.fromkeys(PEER_STATES, 0)
        for host, failures, count in rows:
            totals[peer_state(failures, host_is_blocked(blocked, host))] += count
        for state, count in totals.items():
            self.deliveries_queued.labels(state).set(count)

    def _set_jobs(self, rows: Iterable[tuple[str, str, int]]) -> None:
        self.jobs.clear()
        for kind, state, count in rows:
            self.jobs.labels(kind, state).set(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", NodeMetrics)


async def _queued_by_host(session: AsyncSession) -> list[tuple[str, int, int]]:
    """(host, consecutive failures, queued deliveries) for every host with something queued."""
    rows = await session.execute(
        select(
            Delivery.host,
            func.coalesce(func.max(PeerHost.consecutive_failures), 0),
            func.count(Delivery.id),
        )
        .outerjoin(PeerHost, PeerHost.host == Delivery.host)
        .where(Delivery.state == DeliveryState.QUEUED)
        .group_by(Delivery.host)
    )
    return [(host, int(failures), int(count)) for host, failures, count in rows]


async def _jobs_by_kind(session: AsyncSession, now: datetime) -> list[tuple[str, str, int]]:
    leased = (Job.state == JobState.QUEUED) & (Job.locked_until > now)
    state = case((leased, "running"), else_=Job.state)
    rows = await session.execute(select(Job.kind, state, func.count()).group_by(Job.kind, state))
    return [(kind, str(job_state), int(count)) for kind, job_state, count in rows]
