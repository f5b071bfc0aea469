"""The signalling schema: what a client frame must be before any handler sees it."""

from __future__ import annotations

import json

import pytest

from media_relay import signalling
from media_relay.signalling import MAX_FRAME_BYTES, Message, SignallingError, dump, parse


def test_a_ping_parses():
    assert parse('{"v": 1, "type": "ping"}') == Message(type="ping", body={})


def test_fields_beside_v_and_type_form_the_body():
    assert parse('{"v": 1, "type": "ping", "at": 12}') == Message(type="ping", body={"at": 12})


@pytest.mark.parametrize(
    ("frame", "code"),
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
        pytest.param('{"v": 1}', "unknown-type", id="no type"),
        pytest.param('{"v": 1, "type": "offer"}', "unknown-type", id="a type not yet spoken"),
        pytest.param('{"v": 1, "type": "hello"}', "unknown-type", id="a server-only type"),
        pytest.param('{"v": 1, "type": ["ping"]}', "unknown-type", id="a list as type"),
        pytest.param('{"v": 1, "type": "__init__"}', "unknown-type", id="a dunder as type"),
    ],
)
def test_a_frame_that_is_not_a_valid_message_is_refused_with_a_code(frame, code):
    with pytest.raises(SignallingError) as raised:
        parse(frame)
    assert raised.value.code == code
    assert raised.value.detail


def test_a_frame_of_exactly_64_kib_is_read():
    frame = json.dumps({"v": 1, "type": "ping", "pad": ""})
    frame = frame[:-2] + "x" * (MAX_FRAME_BYTES - len(frame)) + '"}'
    assert len(frame.encode()) == MAX_FRAME_BYTES
    assert parse(frame).type == "ping"


def test_a_frame_over_64_kib_is_refused_before_it_is_parsed():
    frame = '{"v": 1, "type": "ping", "pad": "' + "x" * MAX_FRAME_BYTES + '"}'
    with pytest.raises(SignallingError) as raised:
        parse(frame)
    assert raised.value.code == "too-large"


def test_the_cap_counts_bytes_not_characters():
    """64 Ki characters of a two-byte letter are 128 KiB on the wire."""
    frame = '{"v": 1, "type": "ping", "pad": "' + "é" * (MAX_FRAME_BYTES // 2) + '"}'
    assert len(frame) < MAX_FRAME_BYTES < len(frame.encode())
    with pytest.raises(SignallingError) as raised:
        parse(frame)
    assert raised.value.code == "too-large"


def test_deeply_nested_json_is_refused_as_a_bad_message():
    """A small frame of nested arrays must not blow the parser's stack (RecursionError)."""
    frame = "[" * 50_000
    assert len(frame) < MAX_FRAME_BYTES
    with pytest.raises(SignallingError):
        parse(frame)


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


def test_clients_may_send_only_ping_for_now():
    assert frozenset({"ping"}) == signalling.CLIENT_TYPES
