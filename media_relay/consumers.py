"""The lesson websocket: admits rostered users and hands their parsed messages to the lesson's room.

Thin by design: it asks the access port once at connect (in a thread, since that reads the
database), joins the lesson's `Room`, and for each frame checks the rate limit, parses it and passes
it on. A refused user is accepted and closed at once with the refusal's code, because a close
before `accept()` reaches the browser only as an HTTP 403. What the room sends goes through a
bounded queue drained by one writer task per socket, so the room never awaits a socket and messages
keep their order. What one user may cost the process is capped: a user who opens sockets too often
is closed with 4429 before the database is asked, and a socket whose client does not read what it
is sent is closed with 4408. A socket that has sent nothing for `LessonConsumer.silent_after`
seconds (the page pings every 5) is closed with 4001 and its participant leaves the room at once:
a browser whose network vanished can leave its socket half-open for minutes, and aioice notices
the dead peer connection only after ~30 s, so attendance would record the leave far too late.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from media_relay import signalling
from media_relay.api import lesson_group
from media_relay.forwarding import LessonForwarder
from media_relay.ports import Admission, Refusal, lesson_access_policy, lesson_recorder
from media_relay.ratelimit import TokenBucket
from media_relay.rooms import ForwarderFactory, Room, RoomRegistry, RoomSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

TOO_MANY_MESSAGES = 4429
# A socket whose client does not read what it is sent (docs/signalling.md: not final).
TOO_SLOW = 4408
OUTBOX_LIMIT = 256
# A socket whose client has sent nothing for a while (docs/signalling.md: not final).
SILENT = 4001
# Three missed pings of the page (one every 5 s) before the server gives up on a socket.
SILENT_AFTER_SECONDS = 15.0
# Connects per user and process: a burst of five, then one every two seconds.
CONNECT_BURST = 5
CONNECT_RATE = 0.5
CONNECT_TABLE_PRUNE_AT = 10_000

# The rooms of the lessons whose sockets this process holds.
registry = RoomRegistry()
# What builds a room's forwarder; tests of the protocol alone swap in a fake.
forwarder_factory: ForwarderFactory = LessonForwarder


async def _in_database_thread(call: Callable[[], T]) -> T:
    result: T = await database_sync_to_async(call)()
    return result


class Outbox:
    """The room's side of a socket: messages and the close, queued in order, and bounded.

    A client that does not read what it is sent (or reads it too slowly) would make the queue grow
    without end; past `limit` messages the socket is closed with 4408 instead (not a final code:
    the page reconnects and starts from a fresh snapshot). After a close, nothing more is queued.
    """

    def __init__(self, *, lesson_key: str, user_id: int, limit: int) -> None:
        self.queue: asyncio.Queue[str | int] = asyncio.Queue()
        self.lesson_key = lesson_key
        self.user_id = user_id
        self.limit = limit
        self.closing = False

    def send(self, text: str) -> None:
        if self.closing:
            return
        if self.queue.qsize() >= self.limit:
            logger.warning(
                "lesson %s: user %s reads too slowly (%s messages waiting); closing with %s",
                self.lesson_key,
                self.user_id,
                self.queue.qsize(),
                TOO_SLOW,
            )
            # What is waiting is stale by now: the page starts again from a new `hello`.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.close(TOO_SLOW)
            return
        self.queue.put_nowait(text)

    def close(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        self.queue.put_nowait(code)


class ConnectLimiter:
    """How often each user may open a lesson socket in this process: a burst, then a trickle.

    Each connect costs the database an admission; a page stuck in a reconnect loop (or a script)
    is refused with 4429 before that, without a query. Users whose allowance is full again are
    forgotten, so the table holds only those who connected recently.
    """

    def __init__(self, *, burst: int = CONNECT_BURST, rate: float = CONNECT_RATE) -> None:
        self.burst = burst
        self.rate = rate
        self._buckets: dict[int, TokenBucket] = {}
        self._last_seen: dict[int, float] = {}

    def allow(self, user_id: int, now: float) -> bool:
        if len(self._buckets) > CONNECT_TABLE_PRUNE_AT:
            self._prune(now)
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = TokenBucket(rate=self.rate, burst=self.burst)
        self._last_seen[user_id] = now
        return bucket.allow(now)

    def _prune(self, now: float) -> None:
        refilled = self.burst / self.rate
        for user_id, seen in list(self._last_seen.items()):
            if now - seen >= refilled:
                del self._buckets[user_id], self._last_seen[user_id]


# The connects of this process's users; tests swap in a fresh one.
connect_limiter = ConnectLimiter()


class LessonConsumer(AsyncWebsocketConsumer):
    admission: Admission | None = None
    room: Room | None = None
    outbox: Outbox | None = None
    writer: asyncio.Task[None] | None = None
    watchdog: asyncio.Task[None] | None = None
    closing = False
    # The watchdog gave up on this socket and is taking its participant out of the room.
    silenced = False
    # Seconds of silence after which the socket is given up on; tests shorten it.
    silent_after = SILENT_AFTER_SECONDS

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=int(Refusal.NOT_ON_ROSTER))
            return
        if not connect_limiter.allow(user.pk, time.monotonic()):
            logger.warning(
                "user %s connects too often; closing with %s", user.pk, TOO_MANY_MESSAGES
            )
            await self.close(code=TOO_MANY_MESSAGES)
            return
        lesson_key = self.scope["url_route"]["kwargs"]["lesson_key"]
        result = await database_sync_to_async(lesson_access_policy().admit)(
            user_id=user.pk, lesson_key=lesson_key
        )
        if isinstance(result, Refusal):
            await self.close(code=int(result))
            return
        self.admission = result
        self.bucket = TokenBucket(rate=20.0, burst=40)
        # Set by every frame the client sends; the watchdog waits on it.
        self.heard = asyncio.Event()
        self.last_heard_at = datetime.now(UTC)
        self.outbox = Outbox(
            lesson_key=result.lesson_key, user_id=result.user_id, limit=OUTBOX_LIMIT
        )
        self.writer = asyncio.create_task(self._write(self.outbox))
        await self.channel_layer.group_add(lesson_group(result.lesson_key), self.channel_name)
        self.room = registry.room_for(result, partial(self._build_room, result))
        await self.room.join(result, self.outbox)
        self.watchdog = asyncio.create_task(self._watch_silence(result, self.room, self.outbox))

    @staticmethod
    def _build_room(admission: Admission) -> Room:
        return Room(
            lesson_key=admission.lesson_key,
            lesson_id=admission.lesson_id,
            admission=admission,
            recorder=lesson_recorder(),
            offload=_in_database_thread,
            make_forwarder=forwarder_factory,
            settings=RoomSettings(
                ice_servers=settings.HOMEROOM_ICE_SERVERS,
                allow_loopback=settings.HOMEROOM_RELAY_ALLOW_LOOPBACK,
            ),
        )

    async def _write(self, outbox: Outbox) -> None:
        while True:
            item = await outbox.queue.get()
            if isinstance(item, int):
                await self.close(code=int(item))
                return
            await self.send(text_data=item)

    async def _watch_silence(self, admission: Admission, room: Room, outbox: Outbox) -> None:
        """Give up on the socket once its client has been silent for `silent_after` seconds.

        The participant leaves the room here rather than when the socket's close completes: a
        half-open socket may take long to report its disconnect (which then changes nothing).
        """
        while True:
            self.heard.clear()
            try:
                await asyncio.wait_for(self.heard.wait(), self.silent_after)
            except TimeoutError:
                break
        logger.info(
            "lesson %s: user %s silent for %s s; closing with %s",
            admission.lesson_key,
            admission.user_id,
            self.silent_after,
            SILENT,
        )
        self.closing = self.silenced = True
        outbox.close(SILENT)
        # Attendance ends when the client was last heard, not when the silence was noticed.
        await room.leave(str(admission.user_id), outbox, left_at=self.last_heard_at)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.admission is None or self.room is None or self.outbox is None or self.closing:
            return
        # Any frame shows the client is there, even one refused below.
        self.heard.set()
        self.last_heard_at = datetime.now(UTC)
        if not self.bucket.allow(time.monotonic()):
            logger.warning(
                "lesson %s: user %s sent messages too fast; closing with %s",
                self.admission.lesson_key,
                self.admission.user_id,
                TOO_MANY_MESSAGES,
            )
            self.closing = True
            self.outbox.close(TOO_MANY_MESSAGES)
            return
        if text_data is None:
            self.outbox.send(signalling.dump("error", code="bad-message", detail="Text only."))
            return
        try:
            message = signalling.parse(text_data)
        except signalling.SignallingError as error:
            logger.info("lesson %s: rejected message: %s", self.admission.lesson_key, error.code)
            self.outbox.send(signalling.dump("error", code=error.code, detail=error.detail))
            return
        await self.room.receive(str(self.admission.user_id), message)

    async def lesson_close(self, event: dict[str, Any]) -> None:
        """The web tier ended the lesson (media_relay.api.lesson_close)."""
        if self.room is not None:
            await self.room.end()

    async def disconnect(self, code: int) -> None:
        if self.admission is None:
            return
        if self.room is not None and self.outbox is not None:
            await self.room.leave(str(self.admission.user_id), self.outbox)
        if self.writer is not None:
            self.writer.cancel()
        if self.watchdog is not None:
            if self.silenced:
                # Its leave is under way: cut short, the peer connection would stay half closed.
                await self.watchdog
            else:
                self.watchdog.cancel()
        await self.channel_layer.group_discard(
            lesson_group(self.admission.lesson_key), self.channel_name
        )
