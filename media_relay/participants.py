"""The people in a lesson's room: what the room holds about each, and how a snapshot shows them.

A `Participant` is one user in one room, in the lesson or in its lobby, with the socket the room
talks to them through (`Connection`), what a teacher allows them (`Grants`) and their own switches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from media_relay.ports import Grants, ParticipantRole


class CloseCode:
    """The websocket close codes the room itself decides (docs/signalling.md)."""

    REPLACED = 4000
    REMOVED = 4410
    DENIED = 4411
    ENDED = 4412


class Connection(Protocol):
    """One participant's websocket, as the room sees it: both calls queue and return at once."""

    def send(self, text: str) -> None: ...

    def close(self, code: int) -> None: ...


class MessageRefusedError(Exception):
    """A message the room will not act on; the sender gets an `error` with this code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class Participant:
    id: str
    role: ParticipantRole
    name: str
    connection: Connection
    grants: Grants
    state: Literal["in", "lobby"] = "lobby"
    lobby_reason: str | None = None
    mic: bool = False
    camera: bool = False
    # The relay's view of the peer connection, never the client's word.
    connected: bool = False
    negotiating: bool = False
    # ICE candidates of the current offer, trickled ones included: they share one cap.
    candidates: int = 0

    @property
    def is_teacher(self) -> bool:
        return self.role is ParticipantRole.TEACHER


def describe(participant: Participant, *, screen: str | None, hands: list[str]) -> dict[str, Any]:
    """One participant as a `room` snapshot shows them."""
    return {
        "id": participant.id,
        "name": participant.name,
        "role": participant.role.value,
        "state": participant.state,
        "connected": participant.connected,
        "mic": {"granted": participant.grants.mic, "on": participant.mic},
        "camera": {"granted": participant.grants.camera, "on": participant.camera},
        "screen": {"granted": participant.grants.screen, "on": screen == participant.id},
        "hand": hands.index(participant.id) + 1 if participant.id in hands else None,
    }
