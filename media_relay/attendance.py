"""Attendance as the relay sees it: presence intervals recorded through the `LessonRecorder` port.

A presence opens when a participant's peer connection reaches `connected` and closes when it
ends; a heartbeat marks the connected as still there, so that a crash loses at most one beat. The
recorder's methods are synchronous (database work): `Attendance` runs them through the room's
`offload`, never holding up the room, and in the order they were asked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

from media_relay.ports import LessonRecorder

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Offload(Protocol):
    """Runs a blocking call (the recorder's database work) off the event loop."""

    def __call__(self, call: Callable[[], T], /) -> Awaitable[T]: ...


@dataclass
class Attendance:
    """One lesson's presence records, written in the background."""

    lesson_key: str
    lesson_id: int
    recorder: LessonRecorder
    offload: Offload
    _recording: set[asyncio.Task[None]] = field(default_factory=set)

    def record(self, user_id: str, *, opened: bool, at: datetime | None = None) -> None:
        """Record that a presence starts or ends now (or at `at`: when a silent client was last
        heard), without waiting for the database.

        The calls reach the database thread in the order made, so an interval opened and closed
        at once is still recorded in that order; `flush` waits for them.
        """
        method = self.recorder.presence_opened if opened else self.recorder.presence_closed
        call = partial(method, lesson_id=self.lesson_id, user_id=int(user_id), at=at or _now())
        task = asyncio.create_task(_run(self.offload, call))
        self._recording.add(task)
        task.add_done_callback(self._recorded)

    async def flush(self) -> None:
        """Wait until what is being recorded reached the database: attendance outlives a room."""
        await asyncio.gather(*self._recording, return_exceptions=True)

    async def beat(self, connected: Callable[[], list[int]], *, every: float) -> None:
        """Mark the connected as still there every `every` seconds, until cancelled."""
        while True:
            await asyncio.sleep(every)
            user_ids = connected()
            if not user_ids:
                continue
            try:
                await self.offload(
                    partial(
                        self.recorder.presence_seen,
                        lesson_id=self.lesson_id,
                        user_ids=user_ids,
                        at=_now(),
                    )
                )
            except Exception:
                logger.exception("lesson %s: attendance heartbeat failed", self.lesson_key)

    def _recorded(self, task: asyncio.Task[None]) -> None:
        self._recording.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "lesson %s: attendance not recorded", self.lesson_key, exc_info=task.exception()
            )


async def _run(offload: Offload, call: Callable[[], None]) -> None:
    await offload(call)


def _now() -> datetime:
    return datetime.now(UTC)
