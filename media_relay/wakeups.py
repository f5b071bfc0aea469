"""Fewer event-loop wakeups while the relay is busy: its reads are held for a moment and batched.

A busy relay's event loop woke for nearly every datagram. In the gallery benchmark (22 publishers,
two camera layers each) it woke ~1,650 times a second, mostly for one ready socket each. Each
wakeup is a context switch out of and back into `epoll_wait`, plus a turn of asyncio's loop; on the
2-core test machine that was a sixth of the relay's CPU. `ReadHold` wraps the loop's selector.
While the loop is busy, it does not poll again until `hold` after its last wakeup. The datagrams
that arrive meanwhile are read together in one turn (`read_datagrams` takes up to 32 per socket),
so the loop wakes at most once per hold. Business is measured over windows of `WINDOW_SECONDS`:
the loop becomes busy when it woke with work at least `BUSY_WAKEUPS_PER_HOLD` times per hold,
and stays busy while at least `IDLE_WAKEUPS_PER_HOLD` of its held polls found work (the gap
between the two keeps it from flapping, since holding itself lowers the wakeups).

- A datagram waits at most the hold (2 ms by default), 1 ms on average, and only while busy. A
  lecture's loop (one publisher, ~100 wakeups a second) never waits.
- Ready callbacks never wait: the loop only holds when it would otherwise sleep.
- Timers fire at most the hold late.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import selectors
import time
from collections.abc import Callable
from typing import Any

# In the gallery benchmark, run alternately with the hold off, 2 ms cut the relay's CPU from
# 21-27 % of a core to 17-24 % while the machine was contended (9 pairs out of 9; 1 ms saved about
# two thirds of that); on a quieter machine neither won (15 pairs, 19.7 against 19.8 % on average).
HOLD_SECONDS = 0.002
# Wakeups with work per hold from which holding pays: each held wakeup then serves what took two
# or more. Below it (a lecture: ~100 wakeups a second), a hold would add a timer wakeup and save
# none.
BUSY_WAKEUPS_PER_HOLD = 2
# Held, the loop wakes at most once per hold: below half of those finding work, it is not busy.
IDLE_WAKEUPS_PER_HOLD = 0.5
# The longest hold accepted: beyond it, the wait would start to show in a lesson.
MAX_HOLD_SECONDS = 0.02
# How often the loop's business is measured.
WINDOW_SECONDS = 0.25

_hold_seconds = HOLD_SECONDS


def configure(*, hold_seconds: float) -> None:
    """Set the hold for loops `hold_reads` takes over from now on (0: none is taken over)."""
    global _hold_seconds
    if not 0 <= hold_seconds <= MAX_HOLD_SECONDS:
        raise ValueError(f"the read hold is from 0 to {MAX_HOLD_SECONDS * 1000:g} ms")
    _hold_seconds = hold_seconds


class ReadHold:
    """A selector that, while busy, polls at most once per `hold` (see the module).

    Everything but `select` is the wrapped selector's: registrations stay where asyncio put them.
    """

    def __init__(
        self,
        selector: selectors.BaseSelector,
        hold: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < hold <= MAX_HOLD_SECONDS:
            raise ValueError(f"the read hold is above 0, at most {MAX_HOLD_SECONDS * 1000:g} ms")
        self.selector = selector
        self.hold = hold
        self._clock = clock
        self._sleep = sleep
        self._busy = False
        self._last_wakeup = clock()
        self._window_start = self._last_wakeup
        self._window_wakeups = 0

    @property
    def busy(self) -> bool:
        """Whether the loop's reads are being held (as of the last window)."""
        return self._busy

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self._busy and (timeout is None or timeout > 0):
            wait = self._last_wakeup + self.hold - self._clock()
            if timeout is not None:
                wait = min(wait, timeout)
            if wait > 0:
                self._sleep(wait)
                if timeout is not None:
                    timeout -= wait
        events = self.selector.select(timeout)
        now = self._last_wakeup = self._clock()
        if events:
            self._window_wakeups += 1
        elapsed = now - self._window_start
        if elapsed >= WINDOW_SECONDS:
            per_hold = self._window_wakeups * self.hold / elapsed
            threshold = IDLE_WAKEUPS_PER_HOLD if self._busy else BUSY_WAKEUPS_PER_HOLD
            self._busy = per_hold >= threshold
            self._window_start = now
            self._window_wakeups = 0
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.selector, name)


def hold_reads(loop: asyncio.AbstractEventLoop) -> bool:
    """Hold the loop's reads while it is busy, with the configured hold; once per loop.

    Returns whether the loop's selector is a `ReadHold` now. Only asyncio's selector loop can be
    taken over; with another loop, or a hold of 0, nothing changes.
    """
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return False
    selector = loop._selector  # type: ignore[attr-defined]
    if isinstance(selector, ReadHold):
        return True
    if _hold_seconds <= 0:
        return False
    loop._selector = ReadHold(selector, _hold_seconds)  # type: ignore[attr-defined]
    return True
