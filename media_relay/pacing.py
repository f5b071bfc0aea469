"""Pacing of the relay's video datagrams, so one lesson's keyframes do not stall another's audio.

One relay process serves many lessons on one event loop. A keyframe is ~20 packets, sent to ~30
subscribers, by every publisher of a keyframe storm: without pacing, thousands of datagrams leave in
one burst, ahead of every other lesson's audio in this loop and in the kernel's and the network
card's queues. The compiled fan-out loop (`media_relay/_fanout.c`) therefore sends video within a
process-wide token bucket (`RATE_BITS_PER_SECOND`, `BURST_SECONDS` of it at once); past it, video
waits in a bounded FIFO (`CAPACITY` datagrams; when full, the oldest is dropped and the
subscriber's NACK gets it back from the history). Audio never waits. This module drains the FIFO:
`CHUNK` datagrams per event-loop turn (`loop.call_soon`), or, with the budget spent, when it
refills (`loop.call_later`), so the datagrams of other sockets (other lessons' audio) are read and
sent between chunks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from media_relay import _fanout

logger = logging.getLogger(__name__)

# A school server's uplink is shared with everything else the school does; a third of a gigabit
# carries a keyframe storm of a few lessons (~20 datagrams x 30 pupils x every publisher) in tens
# of milliseconds, well under the latency a lesson notices.
RATE_BITS_PER_SECOND = 300_000_000
# How much may leave at once after a quiet spell: one publisher's keyframe to a class.
BURST_SECONDS = 0.004
# Datagrams that may wait: a storm of ~30 publishers' keyframes to 30 pupils each.
CAPACITY = 16_384
# Datagrams sent per event-loop turn: ~0.3 ms of the loop, then other sockets get their turn.
CHUNK = 64


@dataclass(frozen=True)
class PacerCounters:
    """The pacer's counters since the process started."""

    waiting: int
    queued: int
    overflow_dropped: int
    """Datagrams lost because the queue was full (the oldest goes)."""
    stopped_dropped: int
    """Datagrams never sent because their slot stopped carrying their source, or closed."""


class _Drainer:
    """Schedules the queue's draining on the running loop, at most one turn ahead."""

    def __init__(self) -> None:
        self._handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def waiting(self) -> None:
        """Datagrams are waiting: make sure a drain is due."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # No loop, no turns to interleave: there is nothing to wait for.
            flush()
            return
        if self._handle is not None and self._loop is loop and not self._handle.cancelled():
            return
        self._schedule(loop, 0.0)

    def _schedule(self, loop: asyncio.AbstractEventLoop, wait: float) -> None:
        self._loop = loop
        self._handle = loop.call_later(wait, self._drain) if wait else loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._handle = None
        loop = self._loop
        try:
            _, waiting, wait = _fanout.drain(CHUNK, True)
        except Exception:
            # One subscriber's send failed (the rest of the chunk went): keep draining.
            logger.exception("a paced datagram could not be sent")
            waiting, wait = _fanout.pacer_counters()[0], 0.0
        if waiting and loop is not None:
            self._schedule(loop, wait)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop = None


_drainer = _Drainer()


def datagrams_waiting() -> None:
    """The fan-out loop queued video: drain it on the running loop (called by `fan_out`)."""
    _drainer.waiting()


def flush() -> int:
    """Send every waiting datagram now, whatever the budget; return how many."""
    _drainer.cancel()
    sent = 0
    while True:
        chunk, waiting, _ = _fanout.drain(CAPACITY, False)
        sent += chunk
        if not waiting:
            return sent


def configure(
    *,
    rate_bits_per_second: float = RATE_BITS_PER_SECOND,
    burst_seconds: float = BURST_SECONDS,
    capacity: int = CAPACITY,
) -> None:
    """Set the pacer's budget (rate 0: no pacing, video is sent at once as audio is).

    Datagrams already waiting are sent first, so nothing is lost by a change.
    """
    flush()
    rate = rate_bits_per_second / 8
    _fanout.pace(rate, rate * burst_seconds, capacity)


def counters() -> PacerCounters:
    waiting, queued, overflow, stopped = _fanout.pacer_counters()
    return PacerCounters(waiting, queued, overflow, stopped)


configure()
