"""The relay's read hold (media_relay.wakeups): a busy loop wakes at most once per hold, a quiet one
is never held, ready work never waits, and nothing read is lost."""

from __future__ import annotations

import asyncio
import itertools
import selectors
import socket
import time
from collections.abc import Iterator
from unittest import mock

import pytest

from media_relay import wakeups
from media_relay.wakeups import (
    BUSY_WAKEUPS_PER_HOLD,
    WINDOW_SECONDS,
    ReadHold,
    hold_reads,
)

HOLD = 0.002


class FakeSelector:
    """Returns one ready socket per poll, after `gap` seconds of the fake clock (or at once when
    the hold already let that much pass); records each poll's timeout."""

    def __init__(self, clock: FakeClock, gap: float) -> None:
        self.clock = clock
        self.gap = gap
        self.timeouts: list[float | None] = []
        self.polled_at: list[float] = []
        self.registered = "the wrapped selector's"

    def select(self, timeout: float | None = None) -> list[tuple[object, int]]:
        self.timeouts.append(timeout)
        due = self.clock.last_event + self.gap
        if timeout is not None and self.clock.now + timeout < due:
            self.clock.now += timeout
            self.polled_at.append(self.clock.now)
            return []
        self.clock.now = max(self.clock.now, due)
        self.clock.last_event = self.clock.now
        self.polled_at.append(self.clock.now)
        return [(object(), selectors.EVENT_READ)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.last_event = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _held(gap: float) -> tuple[ReadHold, FakeSelector, FakeClock]:
    clock = FakeClock()
    inner = FakeSelector(clock, gap)
    hold = ReadHold(inner, HOLD, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    return hold, inner, clock


def _poll_for(hold: ReadHold, clock: FakeClock, seconds: float, timeout: float | None) -> int:
    """Polls as the loop does for `seconds` of the fake clock; returns how many polls woke."""
    end = clock.now + seconds
    woke = 0
    while clock.now < end:
        if hold.select(timeout):
            woke += 1
    return woke


def test_a_quiet_loop_is_never_held():
    """A lecture's rate (a datagram every 10 ms): polls go straight through, with their timeout."""
    hold, inner, clock = _held(gap=0.010)
    _poll_for(hold, clock, 2.0, timeout=None)
    assert not hold.busy
    assert clock.slept == []
    assert set(inner.timeouts) == {None}


def test_a_busy_loop_wakes_at_most_once_per_hold():
    """A datagram every 0.1 ms: after one window the loop is busy, then polls are a hold apart."""
    hold, inner, clock = _held(gap=0.0001)
    unheld = _poll_for(hold, clock, WINDOW_SECONDS, timeout=None)
    assert hold.busy
    start = len(inner.polled_at)
    held = _poll_for(hold, clock, 1.0, timeout=None)
    gaps = [b - a for a, b in itertools.pairwise(inner.polled_at[start:])]
    assert min(gaps) >= HOLD - 1e-9
    assert held <= 1.0 / HOLD + 1
    assert unheld >= WINDOW_SECONDS / 0.0001 - 1  # it woke for each datagram before
    assert hold.busy  # every held poll found work: it stays busy


def test_business_starts_from_two_wakeups_per_hold():
    """Just below the threshold the loop is not held; at it, it is."""
    below, _, clock = _held(gap=HOLD / BUSY_WAKEUPS_PER_HOLD * 1.1)
    _poll_for(below, clock, 1.0, timeout=None)
    assert not below.busy
    at, _, clock = _held(gap=HOLD / BUSY_WAKEUPS_PER_HOLD * 0.9)
    _poll_for(at, clock, 1.0, timeout=None)
    assert at.busy


def test_a_loop_that_quietens_is_no_longer_held():
    hold, inner, clock = _held(gap=0.0001)
    _poll_for(hold, clock, 0.5, timeout=None)
    assert hold.busy
    inner.gap = 0.010
    _poll_for(hold, clock, 2 * WINDOW_SECONDS + 0.05, timeout=None)
    assert not hold.busy
    slept = len(clock.slept)
    _poll_for(hold, clock, 0.5, timeout=None)
    assert len(clock.slept) == slept


def test_ready_work_never_waits_for_the_hold():
    """asyncio polls with timeout 0 when callbacks are ready: no sleep, the poll is not delayed."""
    hold, inner, clock = _held(gap=0.0001)
    _poll_for(hold, clock, 0.5, timeout=None)
    assert hold.busy
    slept = len(clock.slept)
    hold.select(0)
    assert len(clock.slept) == slept
    assert inner.timeouts[-1] == 0


def test_a_timer_due_within_the_hold_is_not_made_later():
    """With a timer due in 0.5 ms, the hold sleeps 0.5 ms at most and the poll then does not
    block."""
    hold, inner, clock = _held(gap=0.0001)
    _poll_for(hold, clock, 0.5, timeout=None)
    assert hold.busy
    inner.gap = 1.0  # nothing more arrives
    before = clock.now
    hold.select(0.0005)
    assert clock.slept[-1] == pytest.approx(0.0005)
    assert inner.timeouts[-1] == pytest.approx(0)
    assert clock.now - before == pytest.approx(0.0005)


def test_everything_but_polling_is_the_wrapped_selectors():
    hold, inner, _ = _held(gap=0.01)
    assert hold.registered == inner.registered


@pytest.mark.parametrize("hold", [0, -0.001, 0.021, float("nan")])
def test_a_hold_out_of_range_is_refused(hold):
    with pytest.raises(ValueError, match="read hold"):
        ReadHold(selectors.DefaultSelector(), hold)


@pytest.mark.parametrize("hold", [-0.001, 0.021, float("nan"), float("inf")])
def test_a_configured_hold_out_of_range_is_refused(hold):
    with pytest.raises(ValueError, match="read hold is from 0 to 20 ms"):
        wakeups.configure(hold_seconds=hold)


@pytest.fixture
def configured_hold() -> Iterator[None]:
    wakeups.configure(hold_seconds=HOLD)
    yield
    wakeups.configure(hold_seconds=wakeups.HOLD_SECONDS)


@pytest.mark.asyncio
@pytest.mark.usefixtures("configured_hold")
async def test_the_running_loop_is_taken_over_once():
    loop = asyncio.get_running_loop()
    assert hold_reads(loop) is True
    selector = loop._selector  # type: ignore[attr-defined]
    assert isinstance(selector, ReadHold)
    assert hold_reads(loop) is True
    assert loop._selector is selector  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_with_a_hold_of_zero_the_loop_is_left_alone():
    wakeups.configure(hold_seconds=0)
    try:
        loop = asyncio.get_running_loop()
        selector = loop._selector  # type: ignore[attr-defined]
        assert hold_reads(loop) is False
        assert loop._selector is selector  # type: ignore[attr-defined]
    finally:
        wakeups.configure(hold_seconds=wakeups.HOLD_SECONDS)


def test_another_kind_of_loop_is_left_alone():
    loop = mock.Mock(spec=asyncio.AbstractEventLoop)
    assert hold_reads(loop) is False


@pytest.mark.asyncio
@pytest.mark.usefixtures("configured_hold")
async def test_a_real_loop_under_a_datagram_flood_is_held_and_reads_every_datagram():
    """A thread sends ~4,000 datagrams a second for a second; the loop reads them all, and once
    busy it polls no more often than once per hold."""
    loop = asyncio.get_running_loop()
    assert hold_reads(loop)
    selector: ReadHold = loop._selector  # type: ignore[attr-defined]
    polls: list[tuple[float, bool]] = []
    select = selector.select

    def recorded(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = select(timeout)
        if events:
            polls.append((time.monotonic(), selector.busy))
        return events

    selector.select = recorded  # type: ignore[method-assign]
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiving,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sending,
    ):
        receiving.bind(("127.0.0.1", 0))
        receiving.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        receiving.setblocking(False)
        received = 0

        def read() -> None:
            nonlocal received
            while True:
                try:
                    receiving.recv(2048)
                except BlockingIOError:
                    return
                received += 1

        loop.add_reader(receiving.fileno(), read)
        sent = 0
        address = receiving.getsockname()

        def flood() -> None:
            nonlocal sent
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                sending.sendto(b"x" * 200, address)
                sent += 1
                time.sleep(0.00025)

        await asyncio.to_thread(flood)
        for _ in range(50):
            if received == sent:
                break
            await asyncio.sleep(0.01)
        loop.remove_reader(receiving.fileno())
    selector.select = select  # type: ignore[method-assign]
    assert received == sent
    held = [at for at, busy in polls if busy]
    assert held, "the flood never made the loop busy"
    span = held[-1] - held[0]
    # Unheld, it woke for nearly every datagram (~4 a hold; over 1,900 in this test's second).
    assert len(held) <= span / HOLD + 2
