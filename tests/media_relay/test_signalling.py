"""The signalling schema: what a client frame must be before any handler sees it."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from media_relay import signalling
from media_relay.sdp_gate import MAX_SDP_BYTES
from media_relay.signalling import MAX_FRAME_BYTES, Message, SignallingError, dump, parse


def frame(kind: str, **fields: Any) -> str:
    return json.dumps({"v": 1, "type": kind, **fields}, ensure_ascii=False)


def refusal(text: str) -> SignallingError:
    with pytest.raises(SignallingError) as raised:
        parse(text)
    assert raised.value.detail
    return raised.value


def test_a_ping_parses():
    assert parse('{"v": 1, "type": "ping"}') == Message(type="ping", body={})


def test_fields_the_schema_does_not_name_are_dropped():
    assert parse(frame("ping", at=12)) == Message(type="ping", body={})
    assert parse(frame("hand", up=True, admin=True)).body == {"up": True}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        pytest.param("not json", "bad-json", id="not JSON"),
        pytest.param("", "bad-json", id="empty"),
        pytest.param("[1, 2]", "bad-message", id="an array"),
        pytest.param('"ping"', "bad-message", id="a string"),
        pytest.param("null", "bad-message", id="null"),
        pytest.param('{"type": "ping"}', "bad-version", id="no version"),
        pytest.param('{"v": 2, "type": "ping"}', "bad-version", id="a future version"),
        pytest.param('{"v": "1", "type": "ping"}', "bad-version", id="the version as a string"),
        pytest.param('{"v": true, "type": "ping"}', "bad-version", id="the version as true"),
        pytest.param('{"v": 1.0, "type": "ping"}', "bad-version", id="the version as a float"),
        pytest.param('{"v": 1}', "unknown-type", id="no type"),
        pytest.param('{"v": 1, "type": "hello"}', "unknown-type", id="a server-only type"),
        pytest.param('{"v": 1, "type": "answer"}', "unknown-type", id="a server's answer"),
        pytest.param('{"v": 1, "type": ["ping"]}', "unknown-type", id="a list as type"),
        pytest.param('{"v": 1, "type": "__init__"}', "unknown-type", id="a dunder as type"),
        pytest.param('{"v": 1, "type": "PING"}', "unknown-type", id="a type in capitals"),
        pytest.param(
            '{"v": 1, "type": "ping", "x": 1' + "0" * 5000 + "}", "bad-json", id="a vast int"
        ),
    ],
)
def test_a_frame_that_is_not_a_valid_message_is_refused_with_a_code(text, code):
    assert refusal(text).code == code


def test_a_frame_of_exactly_64_kib_is_read():
    text = json.dumps({"v": 1, "type": "ping", "pad": ""})
    text = text[:-2] + "x" * (MAX_FRAME_BYTES - len(text)) + '"}'
    assert len(text.encode()) == MAX_FRAME_BYTES
    assert parse(text).type == "ping"


def test_a_frame_over_64_kib_is_refused_before_it_is_parsed():
    text = '{"v": 1, "type": "ping", "pad": "' + "x" * MAX_FRAME_BYTES + '"}'
    assert refusal(text).code == "too-large"


def test_the_cap_counts_bytes_not_characters():
    """64 Ki characters of a two-byte letter are 128 KiB on the wire."""
    text = '{"v": 1, "type": "ping", "pad": "' + "é" * (MAX_FRAME_BYTES // 2) + '"}'
    assert len(text) < MAX_FRAME_BYTES < len(text.encode())
    assert refusal(text).code == "too-large"


def test_a_frame_holding_a_lone_surrogate_is_refused_not_crashed_on():
    assert refusal('{"v": 1, "type": "ping", "x": "\ud800"}').code == "bad-json"


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_refused_not_crashed_on(opener):
    """A small frame of nested arrays or objects must not blow the parser's stack."""
    text = opener * 10_000
    assert len(text.encode()) < MAX_FRAME_BYTES
    assert refusal(text).code == "bad-json"


def test_deeply_nested_json_inside_a_valid_message_is_refused():
    text = frame("ping")[:-1] + ', "x": ' + "[" * 30_000 + "]" * 30_000 + "}"
    assert len(text.encode()) < MAX_FRAME_BYTES
    assert refusal(text).code == "bad-json"


def test_every_documented_client_message_is_known():
    assert frozenset(
        {
            "ping", "offer", "candidate", "media", "share", "hand", "chat", "stage",
            "mute", "grant", "admit", "deny", "remove", "readmit", "lock", "lower-hand",
            "chat-delete", "layout", "end",
        }
    ) == signalling.CLIENT_TYPES  # fmt: skip


def test_moderation_messages_are_for_teachers_only():
    assert frozenset(
        {
            "mute", "grant", "admit", "deny", "remove", "readmit", "lock", "lower-hand",
            "chat-delete", "layout", "end",
        }
    ) == signalling.TEACHER_TYPES  # fmt: skip
    assert signalling.TEACHER_TYPES < signalling.CLIENT_TYPES


VALID = [
    pytest.param(frame("end"), "end", {}, id="end"),
    pytest.param(
        frame("layout", layout="speaker"),
        "layout",
        {"layout": "speaker", "lastN": None},
        id="layout",
    ),
    pytest.param(
        frame("layout", layout="teacher", lastN=9),
        "layout",
        {"layout": "teacher", "lastN": 9},
        id="layout with last-N",
    ),
    pytest.param(
        frame("offer", sdp="v=0\r\n", sources={"0": "mic", "1": "camera", "2": "screen"}),
        "offer",
        {"sdp": "v=0\r\n", "sources": {"0": "mic", "1": "camera", "2": "screen"}},
        id="offer",
    ),
    pytest.param(frame("offer", sdp="v=0", sources={}), "offer", {"sdp": "v=0", "sources": {}}),
    pytest.param(
        frame("offer", sdp="v=0", sources={"1": "camera", "3": "camera-low"}),
        "offer",
        {"sdp": "v=0", "sources": {"1": "camera", "3": "camera-low"}},
        id="offer with a low camera layer",
    ),
    pytest.param(frame("stage", participant="12"), "stage", {"participant": "12"}, id="stage"),
    pytest.param(frame("stage", participant=None), "stage", {"participant": None}, id="no stage"),
    pytest.param(
        frame("candidate", candidate="candidate:1 1 udp 1 1.2.3.4 5 typ host", sdpMid="0"),
        "candidate",
        {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdpMid": "0"},
        id="candidate",
    ),
    pytest.param(
        frame("media", mic=True, camera=False), "media", {"mic": True, "camera": False}, id="media"
    ),
    pytest.param(frame("share", on=False), "share", {"on": False}, id="share"),
    pytest.param(frame("hand", up=True), "hand", {"up": True}, id="hand"),
    pytest.param(frame("chat", body="  Hello  "), "chat", {"body": "Hello"}, id="chat trimmed"),
    pytest.param(frame("chat", body="x" * 1000), "chat", {"body": "x" * 1000}, id="chat 1000"),
    pytest.param(
        frame("chat", body=" " * 50 + "x" * 1000 + "\n"),
        "chat",
        {"body": "x" * 1000},
        id="chat pad",
    ),
    pytest.param(frame("chat", body="a\nb\tc"), "chat", {"body": "a\nb\tc"}, id="chat lines"),
    pytest.param(frame("chat", body="été ✏️"), "chat", {"body": "été ✏️"}, id="chat unicode"),
    pytest.param(
        frame("mute", participant="42"),
        "mute",
        {"participant": "42", "all": False, "source": "mic"},
        id="mute defaults to the mic",
    ),
    pytest.param(
        frame("mute", participant="42", source="screen"),
        "mute",
        {"participant": "42", "all": False, "source": "screen"},
        id="mute a screen",
    ),
    pytest.param(
        frame("mute", all=True),
        "mute",
        {"participant": None, "all": True, "source": "mic"},
        id="mute all",
    ),
    pytest.param(
        frame("grant", participant="7", source="camera", on=True),
        "grant",
        {"participant": "7", "source": "camera", "on": True},
        id="grant",
    ),
    pytest.param(frame("admit", participant="1"), "admit", {"participant": "1"}, id="admit"),
    pytest.param(frame("deny", participant="1"), "deny", {"participant": "1"}, id="deny"),
    pytest.param(frame("remove", participant="1"), "remove", {"participant": "1"}, id="remove"),
    pytest.param(frame("readmit", participant="1"), "readmit", {"participant": "1"}, id="readmit"),
    pytest.param(
        frame("admit", participant="9" * 20), "admit", {"participant": "9" * 20}, id="id of 20"
    ),
    pytest.param(frame("lock", on=True), "lock", {"on": True}, id="lock"),
    pytest.param(
        frame("lower-hand", participant="3"),
        "lower-hand",
        {"participant": "3", "all": False},
        id="lower a hand",
    ),
    pytest.param(
        frame("lower-hand", all=True),
        "lower-hand",
        {"participant": None, "all": True},
        id="lower all hands",
    ),
    pytest.param(frame("chat-delete", id=1), "chat-delete", {"id": 1}, id="chat-delete"),
    pytest.param(
        frame("chat-delete", id=2**63 - 1), "chat-delete", {"id": 2**63 - 1}, id="largest id"
    ),
]


@pytest.mark.parametrize(("text", "kind", "body"), VALID)
def test_a_valid_message_parses_to_a_clean_typed_body(text, kind, body):
    assert parse(text) == Message(type=kind, body=body)


BAD = [
    # offer
    pytest.param(frame("offer", sources={}), "sdp", id="offer without sdp"),
    pytest.param(frame("offer", sdp=None, sources={}), "sdp", id="offer with null sdp"),
    pytest.param(frame("offer", sdp=["v=0"], sources={}), "sdp", id="offer with sdp list"),
    pytest.param(frame("offer", sdp="", sources={}), "sdp", id="offer with empty sdp"),
    pytest.param(
        frame("offer", sdp="x" * (MAX_SDP_BYTES + 1), sources={}),
        "sdp",
        id="offer sdp over the cap",
    ),
    pytest.param(
        frame("offer", sdp="é" * (MAX_SDP_BYTES // 2 + 1), sources={}),
        "sdp",
        id="sdp over the cap in bytes",
    ),
    pytest.param('{"v":1,"type":"offer","sdp":"\\ud800","sources":{}}', "sdp", id="sdp surrogate"),
    pytest.param(frame("offer", sdp="v=0"), "sources", id="offer without sources"),
    pytest.param(frame("offer", sdp="v=0", sources=[]), "sources", id="sources a list"),
    pytest.param(frame("offer", sdp="v=0", sources={"0": "mouth"}), "sources", id="bad source"),
    pytest.param(frame("offer", sdp="v=0", sources={"0": None}), "sources", id="null source"),
    pytest.param(frame("offer", sdp="v=0", sources={"": "mic"}), "sources", id="empty mid"),
    pytest.param(frame("offer", sdp="v=0", sources={"m" * 33: "mic"}), "sources", id="long mid"),
    pytest.param(frame("offer", sdp="v=0", sources={"a b": "mic"}), "sources", id="mid space"),
    pytest.param(
        frame("offer", sdp="v=0", sources={"0": "mic", "1": "mic"}), "sources", id="two mics"
    ),
    pytest.param(
        frame("offer", sdp="v=0", sources={str(n): "mic" for n in range(65)}),
        "sources",
        id="65 mids",
    ),
    # candidate
    pytest.param(frame("candidate", sdpMid="0"), "candidate", id="candidate missing"),
    pytest.param(frame("candidate", candidate=5, sdpMid="0"), "candidate", id="candidate int"),
    pytest.param(
        frame("candidate", candidate="c" * 1025, sdpMid="0"), "candidate", id="candidate too long"
    ),
    pytest.param(frame("candidate", candidate="c"), "sdpMid", id="sdpMid missing"),
    pytest.param(frame("candidate", candidate="c", sdpMid=0), "sdpMid", id="sdpMid int"),
    pytest.param(frame("candidate", candidate="c", sdpMid=None), "sdpMid", id="sdpMid null"),
    # media, share, hand, lock: real booleans only
    pytest.param(frame("media", camera=False), "mic", id="media without mic"),
    pytest.param(frame("media", mic=True), "camera", id="media without camera"),
    pytest.param(frame("media", mic=1, camera=False), "mic", id="mic as 1"),
    pytest.param(frame("media", mic="true", camera=False), "mic", id="mic as a string"),
    pytest.param(frame("media", mic=True, camera=None), "camera", id="camera null"),
    pytest.param(frame("share"), "on", id="share without on"),
    pytest.param(frame("share", on=0), "on", id="share on as 0"),
    pytest.param(frame("hand"), "up", id="hand without up"),
    pytest.param(frame("hand", up="yes"), "up", id="hand up a string"),
    pytest.param(frame("lock", on=[]), "on", id="lock on a list"),
    # stage
    pytest.param(frame("stage"), "participant", id="stage missing"),
    pytest.param(frame("stage", participant=12), "participant", id="stage a number"),
    pytest.param(frame("stage", participant="x"), "participant", id="stage not an id"),
    pytest.param(frame("stage", participant=["1"]), "participant", id="stage a list"),
    pytest.param(
        frame("offer", sdp="v=0", sources={"3": "camera-low", "4": "camera-low"}),
        "sources",
        id="two low layers",
    ),
    pytest.param(
        frame("offer", sdp="v=0", sources={"3": "screen-low"}), "sources", id="low screen"
    ),
    # layout
    pytest.param(frame("layout"), "layout", id="layout missing"),
    pytest.param(frame("layout", layout="gallery"), "layout", id="layout unknown"),
    pytest.param(frame("layout", layout="speaker", lastN=0), "lastN", id="lastN 0"),
    pytest.param(frame("layout", layout="speaker", lastN=31), "lastN", id="lastN 31"),
    pytest.param(frame("layout", layout="speaker", lastN=6.0), "lastN", id="lastN float"),
    pytest.param(frame("layout", layout="speaker", lastN=True), "lastN", id="lastN true"),
    pytest.param(frame("layout", layout="speaker", lastN="6"), "lastN", id="lastN string"),
    # chat
    pytest.param(frame("chat"), "body", id="chat without body"),
    pytest.param(frame("chat", body=1), "body", id="chat body int"),
    pytest.param(frame("chat", body=""), "body", id="chat empty"),
    pytest.param(frame("chat", body=" \n\t "), "body", id="chat of blanks"),
    pytest.param(frame("chat", body="x" * 1001), "body", id="chat of 1001"),
    pytest.param(frame("chat", body="a\x00b"), "body", id="chat with NUL"),
    pytest.param(frame("chat", body="a\x1bb"), "body", id="chat with escape"),
    pytest.param('{"v":1,"type":"chat","body":"a\\udc00"}', "body", id="chat with a surrogate"),
    # ids
    pytest.param(frame("admit"), "participant", id="admit without participant"),
    pytest.param(frame("admit", participant=42), "participant", id="participant an int"),
    pytest.param(frame("deny", participant=""), "participant", id="participant empty"),
    pytest.param(frame("remove", participant="4a"), "participant", id="participant not digits"),
    pytest.param(frame("remove", participant="-4"), "participant", id="participant negative"),
    pytest.param(frame("remove", participant=" 4"), "participant", id="participant spaced"),
    pytest.param(frame("readmit", participant="1" * 21), "participant", id="participant of 21"),
    pytest.param(frame("readmit", participant="١٢"), "participant", id="participant arabic"),
    pytest.param(frame("admit", participant="4\n"), "participant", id="participant newline"),
    # mute
    pytest.param(frame("mute"), "participant", id="mute nobody"),
    pytest.param(frame("mute", participant="4", all=True), "participant", id="mute both"),
    pytest.param(frame("mute", all=False), "all", id="mute all false"),
    pytest.param(frame("mute", all=1), "all", id="mute all 1"),
    pytest.param(frame("mute", participant="4", source="nose"), "source", id="mute bad source"),
    pytest.param(frame("mute", participant="4", source=None), "source", id="mute null source"),
    pytest.param(frame("mute", all=True, source="camera"), "source", id="mute all cameras"),
    # grant
    pytest.param(frame("grant", source="mic", on=True), "participant", id="grant nobody"),
    pytest.param(frame("grant", participant="4", on=True), "source", id="grant no source"),
    pytest.param(frame("grant", participant="4", source="mic"), "on", id="grant without on"),
    pytest.param(frame("grant", participant="4", source="mic", on="1"), "on", id="grant on str"),
    # lower-hand
    pytest.param(frame("lower-hand"), "participant", id="lower-hand nobody"),
    pytest.param(frame("lower-hand", participant="1", all=True), "participant", id="lower both"),
    pytest.param(frame("lower-hand", all="true"), "all", id="lower all string"),
    # chat-delete
    pytest.param(frame("chat-delete"), "id", id="chat-delete without id"),
    pytest.param(frame("chat-delete", id=0), "id", id="chat-delete id 0"),
    pytest.param(frame("chat-delete", id=-1), "id", id="chat-delete negative"),
    pytest.param(frame("chat-delete", id=True), "id", id="chat-delete true"),
    pytest.param(frame("chat-delete", id=1.0), "id", id="chat-delete float"),
    pytest.param(frame("chat-delete", id="1"), "id", id="chat-delete string"),
    pytest.param(frame("chat-delete", id=2**63), "id", id="chat-delete past bigint"),
]


@pytest.mark.parametrize(("text", "field"), BAD)
def test_a_field_missing_or_of_the_wrong_type_is_refused_naming_the_field(text, field):
    error = refusal(text)
    assert error.code == "bad-message"
    assert f"`{field}`" in error.detail


def test_server_messages_carry_the_version_and_type():
    assert json.loads(dump("pong")) == {"v": 1, "type": "pong"}
    assert json.loads(dump("error", code="bad-json", detail="x")) == {
        "v": 1,
        "type": "error",
        "code": "bad-json",
        "detail": "x",
    }


def test_server_messages_are_compact():
    assert dump("pong") == '{"v":1,"type":"pong"}'


def outcome(text: str) -> str:
    """ "parsed", or the code of the SignallingError; any other exception fails the test."""
    try:
        message = parse(text)
    except SignallingError as error:
        return error.code
    assert message.type in signalling.CLIENT_TYPES
    return "parsed"


def _junk_value(rng: random.Random, depth: int = 0) -> Any:
    choices: list[Any] = [
        None, True, False, 0, 1, -1, 2**64, 1.5, float("inf"), "", "42", "mic", "x" * 40,
        "\u0000", "\ud800", "9" * 21,
    ]  # fmt: skip
    if depth < 3:
        choices.append([_junk_value(rng, depth + 1) for _ in range(rng.randint(0, 3))])
        choices.append(
            {rng.choice(["0", "participant", "all", "on", "id"]): _junk_value(rng, depth + 1)}
        )
    return rng.choice(choices)


def test_random_messages_of_every_type_only_ever_parse_or_raise_signalling_errors():
    """Fuzz every type with every field name the schema uses, holding junk of every JSON type."""
    rng = random.Random(5)  # noqa: S311 -- a repeatable fuzz, not a secret
    names = [
        "sdp", "sources", "candidate", "sdpMid", "mic", "camera", "on", "up", "body",
        "participant", "all", "source", "id", "layout", "lastN", "v", "type",
    ]  # fmt: skip
    outcomes: Counter[str] = Counter()
    for _ in range(5000):
        data: dict[str, Any] = {"v": 1, "type": rng.choice(sorted(signalling.CLIENT_TYPES))}
        for name in rng.sample(names, rng.randint(0, 4)):
            data[name] = _junk_value(rng)
        outcomes[outcome(json.dumps(data, ensure_ascii=rng.random() < 0.5))] += 1
    assert set(outcomes) == {"parsed", "bad-message", "bad-version", "unknown-type", "bad-json"}


def test_random_bytes_only_ever_raise_signalling_errors():
    rng = random.Random(6)  # noqa: S311 -- a repeatable fuzz, not a secret
    alphabet = '{}[]":,1tfn\\u0 v"type"'
    outcomes = Counter(
        outcome("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))))
        for _ in range(3000)
    )
    assert "parsed" not in outcomes
    assert outcomes["bad-json"] > 2000
