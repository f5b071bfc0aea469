"""A relay socket's datagrams read in batches (`read_datagrams`, `read_in_batches`).

The compiled reader replaces asyncio's datagram transport's one-datagram-per-turn reader: RTP and
RTCP go straight to aioice's connection (`data_received`), STUN and DTLS to aioice's protocol
(`datagram_received`) with the sender's address. These tests check the routing byte for byte, the
batch bound, datagrams of every size, errors, and a relay connection whose sockets were taken over
still doing ICE, DTLS and media.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from media_relay._fanout import read_datagrams
from tests.media_relay.test_forwarding import Lesson, _flowing

COMPONENT = 1
BATCH = 32


class Recorder:
    """Stands in for both aioice objects: what each was handed, in order."""

    def __init__(self) -> None:
        self.media: list[tuple[bytes, int]] = []
        self.other: list[tuple[bytes, tuple[Any, ...]]] = []
        self.errors: list[OSError] = []

    def data_received(self, data: bytes, component: int) -> None:
        self.media.append((data, component))

    def datagram_received(self, data: bytes, address: tuple[Any, ...]) -> None:
        self.other.append((data, address))

    def error_received(self, error: OSError) -> None:
        self.errors.append(error)


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiving = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiving.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    receiving.bind(("127.0.0.1", 0))
    receiving.setblocking(False)
    sending = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sending.bind(("127.0.0.1", 0))
    sending.connect(receiving.getsockname())
    yield receiving, sending
    receiving.close()
    sending.close()


def _read(receiving: socket.socket, recorder: Recorder) -> None:
    read_datagrams(receiving.fileno(), recorder, recorder, COMPONENT)


def test_rtp_and_rtcp_go_to_the_connection_and_the_rest_to_the_protocol_with_its_address(sockets):
    receiving, sending = sockets
    rtp = b"\x80\x60" + os.urandom(200)
    rtcp = b"\x81\xc8" + os.urandom(50)
    stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + os.urandom(12)
    dtls = b"\x16\xfe\xfd" + os.urandom(100)
    first_not_media = b"\xc0" + os.urandom(20)  # past RTP's range (RFC 7983: 128-191)
    for datagram in (rtp, stun, rtcp, dtls, first_not_media):
        sending.send(datagram)
    recorder = Recorder()
    _read(receiving, recorder)
    assert recorder.media == [(rtp, COMPONENT), (rtcp, COMPONENT)]
    assert recorder.other == [
        (stun, sending.getsockname()),
        (dtls, sending.getsockname()),
        (first_not_media, sending.getsockname()),
    ]
    assert recorder.errors == []


def test_one_call_reads_at_most_a_batch_and_nothing_waiting_is_not_an_error(sockets):
    receiving, sending = sockets
    sent = [bytes([0x80, 0x60]) + i.to_bytes(2, "big") + os.urandom(100) for i in range(BATCH + 8)]
    for datagram in sent:
        sending.send(datagram)
    recorder = Recorder()
    _read(receiving, recorder)
    assert len(recorder.media) == BATCH
    _read(receiving, recorder)
    _read(receiving, recorder)  # nothing left: EAGAIN is no error
    assert [data for data, _ in recorder.media] == sent
    assert recorder.errors == []


def test_datagrams_of_any_size_arrive_whole(sockets):
    receiving, sending = sockets
    sizes = [0, 1, 1500, 9000, 60000]
    sent = [b"\x16" + os.urandom(size - 1) if size else b"" for size in sizes]
    for datagram in sent:
        sending.send(datagram)
    recorder = Recorder()
    _read(receiving, recorder)
    assert [data for data, _ in recorder.other] == sent


def test_a_failing_callback_loses_nothing_else_of_the_batch(sockets, monkeypatch):
    receiving, sending = sockets
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    class Failing(Recorder):
        def data_received(self, data: bytes, component: int) -> None:
            super().data_received(data, component)
            if data[2] in (1, 3):
                raise ValueError(f"bad packet {data[2]}")

    for i in range(5):
        sending.send(bytes([0x80, 0x60, i]))
    recorder = Failing()
    with pytest.raises(ValueError, match="bad packet 1"):
        _read(receiving, recorder)
    assert [data[2] for data, _ in recorder.media] == [0, 1, 2, 3, 4]
    assert [str(u.exc_value) for u in unraisable] == ["bad packet 3"]


def test_a_socket_error_reaches_the_protocol_as_asyncio_reports_it():
    read_end, write_end = os.pipe()
    try:
        recorder = Recorder()
        read_datagrams(read_end, recorder, recorder, COMPONENT)
        [error] = recorder.errors
        assert isinstance(error, OSError)
        assert error.errno == errno.ENOTSOCK
    finally:
        os.close(read_end)
        os.close(write_end)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(TypeError, match="takes 4 arguments"):
        read_datagrams(0, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        read_datagrams("zero", None, None, COMPONENT)  # type: ignore[arg-type]


def _ice(pc: Any) -> Any:
    [transceiver, *_] = pc.getTransceivers()
    return transceiver.receiver.transport.transport._connection


async def _consent_check(connection: Any) -> None:
    """One RFC 7675 consent check on the nominated pair, as aioice sends every ~5 s."""
    pair = connection._nominated[1]
    await pair.protocol.request(
        connection.build_request(pair, nominate=False),
        pair.remote_addr,
        integrity_key=connection.remote_password.encode("utf8"),
        retransmissions=0,
    )


@pytest.mark.asyncio
async def test_a_relay_connections_sockets_are_read_in_batches_and_still_do_ice_and_media():
    lesson = Lesson()
    try:
        a = await lesson.join("a", "mic", "camera")
        await lesson.join("b")
        await _flowing(lesson.decoded("b", "a", "camera"))
        loop = asyncio.get_running_loop()
        relay = [_ice(peer.pc) for peer in lesson.forwarder._peers.values()]
        assert len(relay) == 2
        for connection in relay:
            for protocol in connection._protocols:
                fd = protocol.transport.get_extra_info("socket").fileno()
                reader = loop._selector.get_key(fd).data[0]  # type: ignore[attr-defined]
                assert reader._callback is read_datagrams
        # STUN both ways through the relay's readers: a's check of the relay is answered, and
        # the answer to the relay's own check reaches its transaction.
        await _consent_check(_ice(a.pc))
        await _consent_check(relay[0])
        # Media keeps flowing (and with it DTLS-keyed SRTP, read by the same readers).
        await _flowing(lesson.decoded("b", "a", "camera"), frames=10)
        await _flowing(lesson.decoded("b", "a", "mic"), frames=10)
    finally:
        await lesson.close()
