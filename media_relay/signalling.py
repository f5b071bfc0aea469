"""The lesson websocket's message schema: parse and build JSON messages, with no I/O.

Every message is a JSON object `{"v": 1, "type": "...", ...}`. Incoming frames are hostile until
proved otherwise: size-capped, parsed, and checked against the types a client may send before any
handler sees them. The schema is documented in docs/signalling.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
MAX_FRAME_BYTES = 64 * 1024

# What a client may send now; later work (media, moderation, chat) adds to this set.
CLIENT_TYPES = frozenset({"ping"})


class SignallingError(ValueError):
    """A frame that is not a valid message; `code` is what the error reply names."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Message:
    type: str
    body: dict[str, Any] = field(default_factory=dict)


def parse(frame: str) -> Message:
    """Parse one text frame from a client, or raise SignallingError saying what is wrong."""
    if len(frame.encode()) > MAX_FRAME_BYTES:
        raise SignallingError("too-large", f"Messages are limited to {MAX_FRAME_BYTES} bytes.")
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested arrays fit well under the size cap.
        raise SignallingError("bad-json", "The message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise SignallingError("bad-message", "A message is a JSON object.")
    version = data.get("v")
    # `type() is int`, because True == 1 and 1.0 == 1 in Python.
    if type(version) is not int or version != VERSION:
        raise SignallingError("bad-version", f"This server speaks version {VERSION}.")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise SignallingError("unknown-type", "Unknown message type.")
    body = {key: value for key, value in data.items() if key not in ("v", "type")}
    return Message(type=kind, body=body)


def dump(kind: str, **body: Any) -> str:
    """Serialise a server message."""
    return json.dumps({"v": VERSION, "type": kind, **body}, separators=(",", ":"))
