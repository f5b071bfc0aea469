"""The message rate limit: a burst of 40, then 20 a second, with time passed in by the caller."""

from __future__ import annotations

import pytest

from media_relay.ratelimit import TokenBucket


def allowed(bucket: TokenBucket, times: list[float]) -> int:
    return sum(bucket.allow(now) for now in times)


def test_a_burst_of_40_is_allowed_at_once_and_the_41st_is_not():
    bucket = TokenBucket()
    assert allowed(bucket, [100.0] * 40) == 40
    assert not bucket.allow(100.0)


def test_an_empty_bucket_refills_at_20_a_second():
    bucket = TokenBucket()
    allowed(bucket, [0.0] * 40)
    assert not bucket.allow(0.04)
    assert bucket.allow(0.05)
    assert not bucket.allow(0.05)
    assert allowed(bucket, [1.05] * 30) == 20


def test_a_steady_20_a_second_is_always_allowed():
    bucket = TokenBucket()
    assert allowed(bucket, [n / 20 for n in range(2000)]) == 2000


def test_a_steady_flood_gets_20_a_second_after_the_burst():
    bucket = TokenBucket()
    # 100 messages a second for ten seconds.
    assert allowed(bucket, [n / 100 for n in range(1000)]) == pytest.approx(40 + 20 * 10, abs=1)


def test_an_idle_client_saves_no_more_than_one_burst():
    bucket = TokenBucket()
    allowed(bucket, [0.0] * 40)
    assert allowed(bucket, [3600.0] * 100) == 40


def test_a_clock_stepping_back_mints_no_tokens():
    bucket = TokenBucket()
    allowed(bucket, [10.0] * 40)
    assert not bucket.allow(5.0)
    # Nor does the way back up count twice.
    assert not bucket.allow(10.0)
    assert bucket.allow(10.05)


def test_the_rate_and_burst_are_settable():
    bucket = TokenBucket(rate=1.0, burst=2)
    assert allowed(bucket, [0.0, 0.0, 0.0, 0.5, 1.0]) == 3


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(0.0, 40), (-1.0, 40), (float("nan"), 40), (float("inf"), 40), (20.0, 0)],
)
def test_a_bucket_that_could_not_limit_is_refused(rate, burst):
    with pytest.raises(ValueError, match=r"rate|burst"):
        TokenBucket(rate=rate, burst=burst)
