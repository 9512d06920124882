"""Per-host token buckets: bursts, refill, looking without spending, bounded memory."""

from __future__ import annotations

import math

from federation.rate_limit import HostRateLimiter, Rate, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_host_gets_its_burst_then_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = HostRateLimiter({"follow": Rate(burst=3, per_minute=6)}, clock=clock)
    assert [limiter.take("follow", "evil.example") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert math.isclose(limiter.take("follow", "evil.example"), 10.0)
    assert limiter.take("follow", "good.example") == 0.0, "other hosts are not affected"
    clock.now += 10
    assert limiter.take("follow", "evil.example") == 0.0
    assert limiter.take("follow", "evil.example") > 0


def test_looking_does_not_spend() -> None:
    limiter = HostRateLimiter({"follow": Rate(burst=1, per_minute=1)}, clock=Clock())
    for _ in range(5):
        assert limiter.wait_for("follow", "a.example") == 0.0
    assert limiter.take("follow", "a.example") == 0.0
    assert limiter.wait_for("follow", "a.example") > 0


def test_refused_attempts_do_not_push_the_wait_further_out() -> None:
    clock = Clock()
    limiter = HostRateLimiter({"follow": Rate(burst=1, per_minute=60)}, clock=clock)
    limiter.take("follow", "a.example")
    for _ in range(10):
        assert limiter.take("follow", "a.example") > 0
    clock.now += 1
    assert limiter.take("follow", "a.example") == 0.0


def test_unknown_kinds_are_not_limited() -> None:
    limiter = HostRateLimiter({"follow": Rate(burst=0, per_minute=0)}, clock=Clock())
    assert limiter.take("activity", "a.example") == 0.0
    assert limiter.take("follow", "a.example") == math.inf


def test_memory_is_bounded_by_the_number_of_hosts() -> None:
    limiter = HostRateLimiter({"follow": Rate(1, 1)}, max_hosts=100, clock=Clock())
    for n in range(10_000):
        limiter.take("follow", f"h{n}.example")
    assert len(limiter) == 100


def test_retry_after_is_whole_seconds_within_a_day() -> None:
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(10.01) == "11"
    assert retry_after_header(math.inf) == "86400"
    assert retry_after_header(10**9) == "86400"
