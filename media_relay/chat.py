"""A lesson's chat in the room: posting, the history a participant gets on entering, and the limit.

Every chat message is a database write through the `LessonRecorder` port, so a user may post far
fewer chat messages than other messages: a burst of five, then one a second (over it, the message
is refused with `rate-limited` and the socket stays open). The allowance is per user and lives as
long as the room, so reconnecting does not refill it. A teacher's `chat-delete` is in
media_relay.moderation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC
from functools import partial
from typing import TYPE_CHECKING, Any

from media_relay.participants import MessageRefusedError, Participant
from media_relay.ports import ChatLine
from media_relay.ratelimit import TokenBucket

if TYPE_CHECKING:
    from media_relay.rooms import Room

CHAT_HISTORY = 200
CHAT_BURST = 5
CHAT_RATE = 1.0


@dataclass
class ChatAllowance:
    """How many chat messages each user of a room may still post."""

    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def allow(self, user_id: str, now: float) -> bool:
        """Spend one of `user_id`'s messages at `now` (monotonic seconds); False if none is left."""
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = TokenBucket(rate=CHAT_RATE, burst=CHAT_BURST)
        return bucket.allow(now)


async def post(room: Room, author: Participant, body: dict[str, Any]) -> None:
    """Keep a message with the lesson and send it to everyone in the lesson."""
    if not room.chat_allowance.allow(author.id, asyncio.get_running_loop().time()):
        raise MessageRefusedError("rate-limited", "Too many chat messages; wait a moment.")
    line = await room.offload(
        partial(
            room.recorder.chat_posted,
            lesson_id=room.lesson_id,
            user_id=int(author.id),
            body=str(body["body"]).strip(),
        )
    )
    for member in room.members():
        room.send(member, "chat", message=message(line))


async def send_history(room: Room, participant: Participant) -> None:
    """The lesson's latest messages, to someone who just entered the lesson."""
    lines = await room.offload(
        partial(room.recorder.chat_history, lesson_id=room.lesson_id, limit=CHAT_HISTORY)
    )
    room.send(participant, "chat-history", messages=[message(line) for line in lines])


def message(line: ChatLine) -> dict[str, Any]:
    """A chat line as the `chat` and `chat-history` messages carry it."""
    return {
        "id": line.id,
        "from": {"id": str(line.author_id), "name": line.author_name},
        "body": line.body,
        "at": line.sent_at.astimezone(UTC).isoformat(),
    }
