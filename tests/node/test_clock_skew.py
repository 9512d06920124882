"""The clock skew a peer's signed requests show is kept per host, without a write per request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from node.protocol.clock_skew import ClockSkewRecorder
from storage.engine import create_engine, create_session_factory
from storage.models import PeerHost
from storage.repositories import DeliveryRepository


async def test_skew_is_recorded_at_once_then_at_most_once_a_minute_unless_it_moves(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    recorder = ClockSkewRecorder(lambda: sessions, clock=lambda: now)

    async def stored() -> tuple[float | None, datetime | None]:
        async with sessions() as session:
            peer = await session.get(PeerHost, "peer.example:8443")
            assert peer is not None
            return peer.clock_skew_seconds, peer.clock_skew_at

    try:
        await recorder("peer.example:8443", -0.4)
        assert await stored() == (-0.4, now)
        first = now
        now += timedelta(seconds=10)
        await recorder("peer.example:8443", -3.0)  # a few seconds off: not written
        assert await stored() == (-0.4, first)
        await recorder("peer.example:8443", 75.0)  # a jump is written at once
        assert await stored() == (75.0, now)
        now += timedelta(minutes=1)
        await recorder("peer.example:8443", 75.2)
        assert await stored() == (75.2, now)
    finally:
        await engine.dispose()


async def test_a_burst_of_requests_from_one_host_writes_its_skew_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    recorder = ClockSkewRecorder(lambda: sessions)
    writes: list[float] = []
    real = DeliveryRepository.record_clock_skew

    async def counting(self: DeliveryRepository, host: str, skew: float, at: datetime) -> None:
        writes.append(skew)
        await real(self, host, skew, at)

    monkeypatch.setattr(DeliveryRepository, "record_clock_skew", counting)
    try:
        await asyncio.gather(*(recorder("busy.example", 30.0 + n * 10) for n in range(32)))
        assert writes == [30.0], "32 requests arriving together cost one write"
    finally:
        await engine.dispose()
