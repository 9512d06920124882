"""How far each peer's clock is from ours, as its signed `Date` headers show.

A peer whose clock drifts past the allowed skew has every delivery refused,
which from its side looks like our node being down; stewards see the drift
on the federation page before it gets that far. One write per host per
`INTERVAL` at most (and at once when the value moves by `CHANGE_SECONDS` or
more), and never two for one host at once, so a busy peer does not turn its
inbox POSTs into writes of their own: a sender's queue makes the `Date` it
signed a few seconds old often enough.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import utcnow
from storage.repositories import DeliveryRepository

INTERVAL = timedelta(minutes=1)
CHANGE_SECONDS = 5.0


class ClockSkewRecorder:
    """`note_skew` for `federation.inbox.InboxReceiver`, writing to `peer_hosts`.

    `sessions` is asked for the session factory at each write, since the
    database is opened after the routes are set up."""

    def __init__(
        self,
        sessions: Callable[[], async_sessionmaker[AsyncSession]],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._written: dict[str, tuple[datetime, float]] = {}
        self._writing: set[str] = set()

    def _due(self, host: str, skew: float, now: datetime) -> bool:
        last = self._written.get(host)
        if last is None:
            return True
        at, value = last
        return now - at >= INTERVAL or abs(skew - value) >= CHANGE_SECONDS

    async def __call__(self, host: str, skew: float) -> None:
        now = self._clock()
        if host in self._writing or not self._due(host, skew, now):
            return
        self._writing.add(host)
        try:
            async with self._sessions()() as session, session.begin():
                await DeliveryRepository(session).record_clock_skew(host, skew, now)
            self._written[host] = (now, skew)
        finally:
            self._writing.discard(host)
