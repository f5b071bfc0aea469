"""The lesson websocket's message schema: parse and build JSON messages, with no I/O.

Every message is a JSON object `{"v": 1, "type": "...", ...}`. Incoming frames are hostile until
proved otherwise: size-capped, parsed, checked against the types a client may send, and every field
of the type checked and copied into a clean body, so a handler only ever sees the fields the schema
names, with the types it names. The schema is documented in docs/signalling.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from media_relay.sdp_gate import MAX_SDP_BYTES
from media_relay.selection import MAX_LAST_N

VERSION = 1
# An offer (up to MAX_SDP_BYTES, JSON-escaped) must fit in a frame.
MAX_FRAME_BYTES = 192 * 1024
MAX_CHAT_CHARS = 1000
MAX_SOURCES = 64
# A candidate line is ~150 characters with every extension browsers add.
MAX_CANDIDATE_CHARS = 1024
# Chat ids are database primary keys: a bigint at most.
MAX_CHAT_ID = 2**63 - 1

SOURCES = frozenset({"mic", "camera", "screen"})
# What an offer's sending transceivers may carry: a source, or the camera's low simulcast layer.
OFFER_SOURCES = SOURCES | {"camera-low"}
LAYOUTS = frozenset({"teacher", "speaker"})

_PARTICIPANT_ID = re.compile(r"[0-9]{1,20}")
# A mid is an RFC 5888 token; browsers use short numbers.
_MID = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]{1,32}")
# Control characters other than tab and newline have no place in a chat line, and PostgreSQL
# refuses NUL in text outright.
_CHAT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


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


def _bad(detail: str) -> SignallingError:
    return SignallingError("bad-message", detail)


def _bool(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    # Only JSON true/false: 0, 1 and "true" are not switches.
    if not isinstance(value, bool):
        raise _bad(f"`{name}` must be true or false.")
    return value


def _participant(data: dict[str, Any], name: str = "participant") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not _PARTICIPANT_ID.fullmatch(value):
        raise _bad(f"`{name}` must be a participant id: a string of up to 20 digits.")
    return value


def _source(data: dict[str, Any], *, default: str | None = None) -> str:
    value = data.get("source", default)
    if not isinstance(value, str) or value not in SOURCES:
        raise _bad("`source` must be `mic`, `camera` or `screen`.")
    return value


def _participant_or_all(data: dict[str, Any]) -> dict[str, Any]:
    """Exactly one of `participant` or `all: true`, as `mute` and `lower-hand` take."""
    has_participant = "participant" in data
    has_all = "all" in data
    if has_participant == has_all:
        raise _bad("Give exactly one of `participant` or `all: true`.")
    if has_all:
        if data["all"] is not True:
            raise _bad("`all` must be true when given.")
        return {"participant": None, "all": True}
    return {"participant": _participant(data), "all": False}


def _no_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {}


def _offer(data: dict[str, Any]) -> dict[str, Any]:
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        raise _bad("`sdp` must be a non-empty string.")
    if not 0 < _utf8_length(sdp) <= MAX_SDP_BYTES:
        raise _bad(f"`sdp` must be valid text of at most {MAX_SDP_BYTES} bytes.")
    sources = data.get("sources")
    if not isinstance(sources, dict):
        raise _bad("`sources` must be an object mapping mids to sources.")
    if len(sources) > MAX_SOURCES:
        raise _bad(f"`sources` may name at most {MAX_SOURCES} mids.")
    for mid, source in sources.items():
        if not _MID.fullmatch(mid):
            raise _bad("`sources` keys must be mids: up to 32 token characters.")
        if not isinstance(source, str) or source not in OFFER_SOURCES:
            raise _bad("`sources` values must be `mic`, `camera`, `camera-low` or `screen`.")
    # One transceiver per source: a second `mic` mid would be a second, unmoderated microphone.
    if len(set(sources.values())) != len(sources):
        raise _bad("`sources` may name each source once.")
    return {"sdp": sdp, "sources": dict(sources)}


def _candidate(data: dict[str, Any]) -> dict[str, Any]:
    candidate = data.get("candidate")
    if not isinstance(candidate, str) or len(candidate) > MAX_CANDIDATE_CHARS:
        raise _bad(f"`candidate` must be a string of at most {MAX_CANDIDATE_CHARS} characters.")
    mid = data.get("sdpMid")
    if not isinstance(mid, str) or not _MID.fullmatch(mid):
        raise _bad("`sdpMid` must be a mid: up to 32 token characters.")
    return {"candidate": candidate, "sdpMid": mid}


def _media(data: dict[str, Any]) -> dict[str, Any]:
    return {"mic": _bool(data, "mic"), "camera": _bool(data, "camera")}


def _chat(data: dict[str, Any]) -> dict[str, Any]:
    body = data.get("body")
    if not isinstance(body, str):
        raise _bad("`body` must be a string.")
    body = body.strip()
    if not 1 <= len(body) <= MAX_CHAT_CHARS:
        raise _bad(f"`body` must be 1 to {MAX_CHAT_CHARS} characters after trimming.")
    if _CHAT_CONTROL.search(body) or _utf8_length(body) == _NOT_UTF8:
        raise _bad("`body` contains characters a chat line may not hold.")
    return {"body": body}


def _mute(data: dict[str, Any]) -> dict[str, Any]:
    target = _participant_or_all(data)
    source = _source(data, default="mic")
    if target["all"] and source != "mic":
        raise _bad("`all: true` mutes microphones only; `source` must be `mic`.")
    return {**target, "source": source}


def _grant(data: dict[str, Any]) -> dict[str, Any]:
    return {"participant": _participant(data), "source": _source(data), "on": _bool(data, "on")}


def _one_participant(data: dict[str, Any]) -> dict[str, Any]:
    return {"participant": _participant(data)}


def _chat_delete(data: dict[str, Any]) -> dict[str, Any]:
    value = data.get("id")
    # `type() is int`: True is an int in Python, and JSON 1.0 parses as a float.
    if type(value) is not int or not 1 <= value <= MAX_CHAT_ID:
        raise _bad("`id` must be a chat message id: a whole number from 1.")
    return {"id": value}


def _stage(data: dict[str, Any]) -> dict[str, Any]:
    if "participant" not in data:
        raise _bad("`participant` must be given: a participant id, or null.")
    if data["participant"] is None:
        return {"participant": None}
    return {"participant": _participant(data)}


def _layout(data: dict[str, Any]) -> dict[str, Any]:
    layout = data.get("layout")
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise _bad("`layout` must be `teacher` or `speaker`.")
    last_n = data.get("lastN")
    # `type() is int`: True is an int in Python, and JSON 6.0 parses as a float.
    if last_n is not None and (type(last_n) is not int or not 1 <= last_n <= MAX_LAST_N):
        raise _bad(f"`lastN` must be a whole number from 1 to {MAX_LAST_N} when given.")
    return {"layout": layout, "lastN": last_n}


_EVERYONE: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ping": _no_fields,
    "offer": _offer,
    "candidate": _candidate,
    "media": _media,
    "share": lambda data: {"on": _bool(data, "on")},
    "hand": lambda data: {"up": _bool(data, "up")},
    "chat": _chat,
    "stage": _stage,
}
_TEACHERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "mute": _mute,
    "grant": _grant,
    "admit": _one_participant,
    "deny": _one_participant,
    "remove": _one_participant,
    "readmit": _one_participant,
    "lock": lambda data: {"on": _bool(data, "on")},
    "lower-hand": _participant_or_all,
    "chat-delete": _chat_delete,
    "layout": _layout,
    "end": _no_fields,
}
_FIELDS = {**_EVERYONE, **_TEACHERS}

# Every type a client may send, and those only a teacher may (a pupil's gets `forbidden`).
CLIENT_TYPES = frozenset(_FIELDS)
TEACHER_TYPES = frozenset(_TEACHERS)


_NOT_UTF8 = -1


def _utf8_length(text: str) -> int:
    """Bytes on the wire, or _NOT_UTF8 for a lone surrogate (legal in JSON, not in UTF-8)."""
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        return _NOT_UTF8


def parse(frame: str) -> Message:
    """Parse one text frame from a client, or raise SignallingError saying what is wrong."""
    size = _utf8_length(frame)
    if size > MAX_FRAME_BYTES:
        raise SignallingError("too-large", f"Messages are limited to {MAX_FRAME_BYTES} bytes.")
    if size == _NOT_UTF8:
        raise SignallingError("bad-json", "The message is not valid UTF-8.")
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested arrays fit well under the size cap. ValueError also
        # covers integers too long to convert.
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
    return Message(type=kind, body=_FIELDS[kind](data))


def dump(kind: str, **body: Any) -> str:
    """Serialise a server message."""
    return json.dumps({"v": VERSION, "type": kind, **body}, separators=(",", ":"))
