"""What a teacher may do in a lesson's room: the teacher-only messages of docs/signalling.md.

Each handler takes the `Room` and the teacher who sent the message (the room checked the role
before dispatching here) and applies the message with the room's own tools, so the rules of who is
forwarded stay in one place. A pupil named by a message must be a pupil of this room, or the
teacher hears `unknown-participant`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from media_relay.forwarding import Source
from media_relay.participants import CloseCode, MessageRefusedError, Participant

if TYPE_CHECKING:
    from media_relay.rooms import Room

Handler = Callable[["Room", Participant, dict[str, Any]], Awaitable[None]]


def _pupil(room: Room, user_id: object) -> Participant:
    participant = room.participants.get(user_id) if isinstance(user_id, str) else None
    if participant is None or participant.is_teacher:
        raise MessageRefusedError("unknown-participant", "No such pupil in this lesson.")
    return participant


def _switch_off(room: Room, pupil: Participant, source: Source, *, notice: bool = True) -> None:
    if source == "mic" and pupil.mic:
        pupil.mic = False
        code = "muted"
    elif source == "camera" and pupil.camera:
        pupil.camera = False
        code = "camera-off"
    elif source == "screen" and room.screen == pupil.id:
        room.screen = None
        code = "screen-stopped"
    else:
        return
    if notice:
        room.send(pupil, "notice", code=code, text="A teacher switched it off.")


async def mute(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    source: Source = body.get("source") or "mic"
    if body.get("all"):
        targets = [p for p in room.participants.values() if not p.is_teacher]
    else:
        targets = [_pupil(room, body.get("participant"))]
    for pupil in targets:
        _switch_off(room, pupil, source)
    # The forwarding stops here, within this message; only the snapshot may wait for the next.
    room.changed()


async def grant(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    pupil = _pupil(room, body.get("participant"))
    source: Source = body["source"]
    on = bool(body["on"])
    pupil.grants = replace(pupil.grants, **{source: on})
    if not on:
        _switch_off(room, pupil, source, notice=False)
    room.send(
        pupil,
        "notice",
        code=f"{'granted' if on else 'revoked'}-{source}",
        text=f"A teacher {'allowed' if on else 'stopped'} your {source}.",
    )
    room.changed()
    await room.offload(
        partial(
            room.recorder.grants_saved,
            lesson_id=room.lesson_id,
            user_id=int(pupil.id),
            grants=pupil.grants,
            by_user_id=int(teacher.id),
        )
    )


async def admit(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    pupil = _pupil(room, body.get("participant"))
    if pupil.state != "lobby":
        raise MessageRefusedError("unknown-participant", "That pupil is not in the lobby.")
    await room.admit(pupil)
    room.changed()


async def deny(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    pupil = _pupil(room, body.get("participant"))
    if pupil.state != "lobby":
        raise MessageRefusedError("unknown-participant", "That pupil is not in the lobby.")
    del room.participants[pupil.id]
    pupil.connection.close(CloseCode.DENIED)
    room.changed()


async def remove(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    pupil = _pupil(room, body.get("participant"))
    # Close first: the socket goes within the second whatever the database and aiortc do.
    pupil.connection.close(CloseCode.REMOVED)
    del room.participants[pupil.id]
    room.removed[pupil.id] = pupil.name
    room.forget(pupil)
    room.changed()
    await room.end_peer(pupil)
    await room.offload(
        partial(
            room.recorder.participant_removed,
            lesson_id=room.lesson_id,
            user_id=int(pupil.id),
            by_user_id=int(teacher.id),
        )
    )


async def readmit(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    user_id = body.get("participant")
    if not isinstance(user_id, str) or user_id not in room.removed:
        raise MessageRefusedError("unknown-participant", "That pupil was not removed.")
    del room.removed[user_id]
    room.changed()
    await room.offload(
        partial(
            room.recorder.participant_readmitted,
            lesson_id=room.lesson_id,
            user_id=int(user_id),
            by_user_id=int(teacher.id),
        )
    )


async def lock(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    room.locked = bool(body["on"])
    # Unlocking lets the lobby in at once when a teacher is here (this one is).
    await room.settle_lobby()
    room.changed()


async def lower_hand(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    lowered = list(room.hands) if body.get("all") else [_pupil(room, body.get("participant")).id]
    for user_id in lowered:
        if user_id in room.hands:
            room.hands.remove(user_id)
            room.send(
                room.participants[user_id], "notice", code="hands-cleared", text="Hand lowered."
            )
    room.changed()


async def chat_delete(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    deleted = await room.offload(
        partial(
            room.recorder.chat_deleted,
            lesson_id=room.lesson_id,
            message_id=int(body["id"]),
            by_user_id=int(teacher.id),
        )
    )
    if not deleted:
        raise MessageRefusedError("bad-message", "There is no such message in this lesson.")
    for member in room.members():
        room.send(member, "chat-deleted", id=body["id"])


async def layout(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    """Choose the page's large tile (the teacher or the current speaker) and, if given, last-N."""
    room.layout = body["layout"]
    if body.get("lastN") is not None:
        room.last_n = body["lastN"]
    # The forwarder reselects everyone's cameras here, within this message.
    room.changed()


async def end(room: Room, teacher: Participant, body: dict[str, Any]) -> None:
    await room.offload(
        partial(room.recorder.lesson_ended, lesson_id=room.lesson_id, by_user_id=int(teacher.id))
    )
    await room.end()


# The teacher-only message types (signalling.TEACHER_TYPES) and what handles each.
HANDLERS: dict[str, Handler] = {
    "mute": mute,
    "grant": grant,
    "admit": admit,
    "deny": deny,
    "remove": remove,
    "readmit": readmit,
    "lock": lock,
    "lower-hand": lower_hand,
    "chat-delete": chat_delete,
    "layout": layout,
    "end": end,
}
