"""What other apps may ask of the relay, synchronously, from the web tier or a task.

The relay's rooms live in the processes that hold the lessons' websockets; the web tier reaches
them through the channel layer group every socket of a lesson joins.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def lesson_group(lesson_key: str) -> str:
    """The channel layer group of a lesson's sockets."""
    return f"lesson.{lesson_key}"


def lesson_close(*, lesson_key: str) -> None:
    """Close a lesson's room: every socket gets 4412 (lesson ended) and the media stops.

    Call it once the lesson is recorded as ended (e.g. in `transaction.on_commit`): the pages do
    not reconnect after 4412, and a socket that tries anyway is refused by the access policy.
    """
    channel_layer = get_channel_layer()
    if channel_layer is None:
        return
    async_to_sync(channel_layer.group_send)(lesson_group(lesson_key), {"type": "lesson.close"})
