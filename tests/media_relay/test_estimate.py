"""The compiled bandwidth estimator (`media_relay._estimate`) gives aiortc's answers.

aiortc 1.16.0's `RemoteBitrateEstimator` and the compiled copy are fed the same calls, as the relay
feeds them (one per ~60 ms per connection, abs-send-time and arrival clocks, bytes since the last
call), through quiet spells, congestion (a queue building and draining) and reordered send times;
every answer must be the same, and the calls must drive aiortc's detector through all its states.
"""

from __future__ import annotations

import collections
import random

import pytest
from aiortc.rate import BandwidthUsage, RemoteBitrateEstimator

from media_relay._estimate import Estimator

ABS_SEND_TIME_PER_MS = (1 << 18) / 1000  # abs-send-time is 6.18 fixed point seconds


def _calls(seed: int, count: int) -> list[tuple[int, int, int]]:
    """(arrival ms, abs-send-time, bytes): a connection's frames through phases of congestion."""
    rng = random.Random(seed)  # noqa: S311 -- repeatable arrivals, not a secret
    now = 1_000_000 + rng.randrange(10**6)
    send = rng.randrange(1 << 24)
    delay, arrival = 0.0, 0
    calls = []
    for number in range(count):
        gap = rng.choice([60, 60, 61, 66, 33, 120, 5, 2])
        phase = (number // 200) % 4
        if phase == 1:  # a queue builds
            delay += rng.uniform(0, 4)
        elif phase == 2:  # and drains
            delay = max(0.0, delay - rng.uniform(0, 6))
        else:
            delay = max(0.0, delay + rng.uniform(-1, 1))
        now += gap
        send = (send + int((gap + rng.choice([0, 0, 1, -1])) * ABS_SEND_TIME_PER_MS)) & 0xFFFFFF
        if rng.random() < 0.02:  # a packet sent earlier arrives late
            send = (send - rng.randrange(1 << 16)) & 0xFFFFFF
        arrival = max(arrival, now + int(delay))  # a wall clock does not go back
        calls.append((arrival, send, rng.randrange(100, 40_000)))
    return calls


SEEDS = range(8)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_answer_is_aiortcs(seed):
    theirs, ours = RemoteBitrateEstimator(), Estimator()
    estimates = 0
    for arrival, send, size in _calls(seed, 2500):
        expected = theirs.add(
            arrival_time_ms=arrival, abs_send_time=send, payload_size=size, ssrc=seed
        )
        got = ours.add(arrival_time_ms=arrival, abs_send_time=send, payload_size=size, ssrc=seed)
        assert got == (None if expected is None else expected[0])
        estimates += got is not None
    assert estimates > 500


def test_the_calls_drive_aiortcs_detector_through_every_state():
    """So that the test above compares the overuse and underuse paths too."""
    states: collections.Counter[BandwidthUsage] = collections.Counter()
    for seed in SEEDS:
        theirs = RemoteBitrateEstimator()
        for arrival, send, size in _calls(seed, 2500):
            theirs.add(arrival_time_ms=arrival, abs_send_time=send, payload_size=size, ssrc=1)
            states[theirs.detector.state()] += 1
    assert all(states[state] > 100 for state in BandwidthUsage), states


def test_arguments_are_checked():
    with pytest.raises(TypeError):
        Estimator(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Estimator().add(arrival_time_ms="now", abs_send_time=0, payload_size=0, ssrc=0)  # type: ignore[arg-type]
