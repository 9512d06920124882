"""The retry schedule, judged by the outages it must outlast, and the one classifier."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from federation.delivery import (
    JITTER,
    MAX_RETRY_AFTER,
    SCHEDULE,
    Outcome,
    Verdict,
    classify,
    host_backoff,
    local_failure,
    next_delay,
    retry_delay,
)
from federation.errors import DeliveryNetworkError, FetchError, ObjectGone, Refused
from federation.http_client import PostResult

RESTART = timedelta(minutes=3)
NIGHT = timedelta(hours=8)
WEEKEND = timedelta(hours=60)


class _Extreme(random.Random):
    """Always draws the same end of the jitter range."""

    def __init__(self, low: bool) -> None:
        super().__init__(0)
        self.low = low

    def uniform(self, a: float, b: float) -> float:
        return a if self.low else b


def attempt_times(rng: random.Random) -> list[timedelta]:
    """When each attempt happens, counted from the first, until the schedule gives up."""
    times = [timedelta(0)]
    while (delay := next_delay(len(times), rng)) is not None:
        times.append(times[-1] + delay)
    return times


def first_attempt_after(outage: timedelta, rng: random.Random) -> timedelta | None:
    return next((t for t in attempt_times(rng) if t > outage), None)


@pytest.mark.parametrize("low", [True, False], ids=["shortest-jitter", "longest-jitter"])
@pytest.mark.parametrize(
    ("outage", "caught_up_within"),
    [(RESTART, timedelta(minutes=10)), (NIGHT, timedelta(hours=4)), (WEEKEND, timedelta(hours=24))],
    ids=["restart", "night", "weekend"],
)
def test_delivery_survives_outage_and_catches_up_soon_after(
    outage: timedelta, caught_up_within: timedelta, low: bool
) -> None:
    arrival = first_attempt_after(outage, _Extreme(low))
    assert arrival is not None, "gave up during the outage"
    assert arrival - outage <= caught_up_within


def test_restart_is_bridged_within_minutes() -> None:
    times = attempt_times(_Extreme(low=False))
    assert times[1] <= timedelta(minutes=2)
    assert times[2] <= timedelta(minutes=10)


@pytest.mark.parametrize("low", [True, False])
def test_gives_up_after_about_six_days(low: bool) -> None:
    total = attempt_times(_Extreme(low))[-1]
    assert timedelta(days=5) < total < timedelta(days=7)


def test_gives_up_once_the_schedule_is_spent() -> None:
    rng = random.Random(1)
    assert next_delay(len(SCHEDULE), rng) is not None
    assert next_delay(len(SCHEDULE) + 1, rng) is None
    with pytest.raises(ValueError):
        next_delay(0, rng)


def test_jitter_stays_within_bounds_and_varies() -> None:
    rng = random.Random(42)
    for attempts, base in enumerate(SCHEDULE, start=1):
        delays = {next_delay(attempts, rng) for _ in range(50)}
        assert len(delays) > 1
        for delay in delays:
            assert delay is not None
            assert base * (1 - JITTER) <= delay <= base * (1 + JITTER)


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    assert next_delay(3, random.Random(7)) == next_delay(3, random.Random(7))


def test_host_backoff_follows_the_schedule_and_never_gives_up() -> None:
    rng = _Extreme(low=True)
    assert host_backoff(1, rng) == SCHEDULE[0] * (1 - JITTER)
    assert host_backoff(100, rng) == SCHEDULE[-1] * (1 - JITTER)


def test_retry_after_can_delay_but_never_hasten_the_schedule() -> None:
    rng = _Extreme(low=False)
    asked = Outcome(Verdict.RETRY, 503, "HTTP 503", retry_after=timedelta(hours=1))
    assert retry_delay(asked, 1, rng) == timedelta(hours=1)
    eager = Outcome(Verdict.RETRY, 503, "HTTP 503", retry_after=timedelta(0))
    assert retry_delay(eager, 1, rng) == SCHEDULE[0] * (1 + JITTER)
    assert retry_delay(asked, len(SCHEDULE) + 1, rng) is None


def _post(status: int, retry_after: float | None = None) -> PostResult:
    return PostResult(status, retry_after, "body")


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (400, Verdict.GIVE_UP),
        (401, Verdict.RETRY),
        (403, Verdict.GIVE_UP),
        (404, Verdict.GIVE_UP),
        (408, Verdict.RETRY),
        (410, Verdict.GIVE_UP),
        (422, Verdict.GIVE_UP),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
        (302, Verdict.RETRY),
    ],
)
def test_classify_status(status: int, verdict: Verdict) -> None:
    outcome = classify(_post(status))
    assert outcome.verdict is verdict
    assert outcome.status == status
    assert outcome.retry_after is None
    assert outcome.blames_host
    assert (outcome.error == "") is (verdict is Verdict.DELIVERED)


@pytest.mark.parametrize("status", [429, 503])
def test_classify_honours_retry_after(status: int) -> None:
    outcome = classify(_post(status, retry_after=120.0))
    assert outcome.verdict is Verdict.RETRY
    assert outcome.retry_after == timedelta(seconds=120)


def test_classify_clamps_an_absurd_retry_after() -> None:
    outcome = classify(_post(503, retry_after=30 * 86400.0))
    assert outcome.retry_after == MAX_RETRY_AFTER


def test_classify_ignores_retry_after_on_other_statuses() -> None:
    assert classify(_post(500, retry_after=60.0)).retry_after is None


def test_classify_keeps_an_excerpt_of_the_answer_for_the_log() -> None:
    outcome = classify(PostResult(400, None, "  signature header missing\n"))
    assert outcome.error == "HTTP 400: signature header missing"
    assert len(classify(PostResult(500, None, "x" * 5000)).error) <= 300


def test_classify_network_error_retries() -> None:
    outcome = classify(DeliveryNetworkError("connect refused", url="http://a.test/inbox"))
    assert outcome == Outcome(Verdict.RETRY, None, "connect refused")


def test_classify_refused_address_gives_up() -> None:
    outcome = classify(Refused("refusing 10.0.0.1", url="http://10.0.0.1/inbox"))
    assert outcome.verdict is Verdict.GIVE_UP
    assert outcome.status is None


def test_classify_fetch_errors_by_status_or_give_up() -> None:
    assert classify(ObjectGone("gone", status=410)).verdict is Verdict.GIVE_UP
    assert classify(FetchError("busy", status=503)).verdict is Verdict.RETRY
    assert classify(FetchError("invalid URL 'http://'")).verdict is Verdict.GIVE_UP


def test_local_failure_retries_without_blaming_the_host() -> None:
    outcome = local_failure(RuntimeError("bug"))
    assert outcome.verdict is Verdict.RETRY
    assert not outcome.blames_host
