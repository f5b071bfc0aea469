"""The floor under any relay on this machine: the kernel's CPU per datagram, with no relay.

The relay's `forwarded_packets_per_cpu_second` counts everything a forwarded packet costs; on
loopback the sender's core also runs the receiving side of each datagram in the kernel. Two
benchmarks measure what is left when the relay's work is taken away, in the same conditions as
the relay benchmarks (sender on core 1, reader on core 0, 1,200-byte datagrams: a video RTP
packet's size):

- `udp-send-floor`: a bare Python `send` loop on a connected socket to one reader, with nothing
  else per datagram: its packets per CPU-second are what no relay on this machine can beat. Then
  the same datagrams sent by UDP GSO (`UDP_SEGMENT`: one `sendmsg` carries several datagrams to
  the same receiver), in batches of 2, 4 and 20 (a video frame's packets to one subscriber: a
  delta frame is ~2, a keyframe ~20): what batching a subscriber's packets could save per
  datagram (`gso`; null where the kernel refuses GSO).
- `udp-fanout-floor`: bench/fanout_floor.c, compiled with `cc`, sends each packet to many
  distinct receivers at the relay benchmarks' rates (relay-lecture's and relay-full's shapes), with
  the sender sleeping between packets and the receivers woken by epoll, by `sendto` (one socket
  per receiver, as the relay does) and by `sendmmsg` (one call per packet): the kernel's cost of
  the relay's own datagrams, the floor under those benchmarks' CPU.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SENDER_CORE, READER_CORE = 1, 0
DATAGRAM_BYTES = 1200
# Yield now and then so the reader keeps up: a full socket buffer would drop, which costs less.
YIELD_EVERY = 64

# linux/udp.h: the segment size of a GSO send, as a control message (Linux 4.18 and later).
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
GSO_BATCHES = (2, 4, 20)
GSO_PAUSE = 0.0003

FANOUT_SOURCE = Path(__file__).with_name("fanout_floor.c")
FANOUT_METHODS = ("sendto", "sendmmsg")
# (receivers, packets a second) of the relay benchmarks, from their recorded forwarded_pps: a
# publisher sends 121 RTP packets a second (50 Opus + ~71 VP8 at 543 kbit/s, 30 fps).
# relay-lecture: 1 publisher to 30 subscribers (3,619 forwarded a second = 30 x 121).
# relay-full: 10 publishers, each to the 9 others (10,890 forwarded a second = 10 x 9 x 121).
FANOUT_SHAPES = {"lecture": (30, 121), "full": (9, 1210)}


def _read(conn: Connection) -> None:
    os.sched_setaffinity(0, {READER_CORE})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.settimeout(0.5)
        conn.send(sock.getsockname()[1])
        received = 0
        while True:
            try:
                sock.recv(2048)
                received += 1
            except TimeoutError:
                if conn.poll():
                    break
        conn.recv()
        conn.send(received)


def _send_loop(sock: socket.socket, seconds: float, batch: int) -> tuple[int, float, float]:
    """Send for `seconds`, `batch` datagrams a call; return (datagrams, user s, system s)."""
    data = bytes(DATAGRAM_BYTES)
    segments = [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", DATAGRAM_BYTES))]
    buffers = [data * batch]
    calls = max(1, YIELD_EVERY // batch)
    sent = 0
    before = resource.getrusage(resource.RUSAGE_SELF)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(calls):
            if batch == 1:
                sock.send(data)
            else:
                sock.sendmsg(buffers, segments)
        sent += calls * batch
        # GSO sends faster than the reader reads: a short sleep keeps it from dropping (which
        # costs the sender less), at a cost to the sender of one wakeup per ~64 datagrams.
        time.sleep(0 if batch == 1 else GSO_PAUSE)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return sent, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def _per_datagram(sent: int, user: float, system: float) -> dict[str, float]:
    return {
        "us_cpu_per_datagram": round((user + system) / sent * 1e6, 2),
        "us_kernel_per_datagram": round(system / sent * 1e6, 2),
    }


def bench_udp_send_floor(seconds: float) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    reader = context.Process(target=_read, args=(theirs,))
    reader.start()
    port = ours.recv()
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SENDER_CORE})
    gso: dict[str, dict[str, float]] = {}
    gso_refused = False
    gso_sent = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", port))
            sent, user, system = _send_loop(sock, seconds, 1)
            for batch in GSO_BATCHES:
                try:
                    batch_sent, batch_user, batch_system = _send_loop(sock, seconds / 2, batch)
                except OSError:  # no GSO here (an older kernel, or a socket layer without it)
                    gso_refused = True
                    break
                gso_sent += batch_sent
                gso[str(batch)] = _per_datagram(batch_sent, batch_user, batch_system)
    finally:
        os.sched_setaffinity(0, affinity)
    ours.send("stop")
    received = ours.recv()
    reader.join()
    return {
        "datagrams_sent": sent + gso_sent,
        "datagrams_received": received,
        **_per_datagram(sent, user, system),
        "datagrams_per_cpu_second": round(sent / (user + system)),
        "gso": None if gso_refused else gso,
        "conditions": {
            "datagram_bytes": DATAGRAM_BYTES,
            "sender_core": SENDER_CORE,
            "reader_core": READER_CORE,
            "gso_batches": list(GSO_BATCHES),
            "note": "Python socket.send on loopback, no SRTP, no RTP: the kernel's send and "
            "receive path per datagram, charged to the sender's core; `gso`: the same datagrams "
            "sent with UDP_SEGMENT, that many to a sendmsg, per datagram",
        },
    }


def _compile_fanout(directory: Path) -> Path:
    compiler = shutil.which("cc")
    if compiler is None:
        raise RuntimeError(f"udp-fanout-floor compiles {FANOUT_SOURCE.name}: no `cc` on PATH")
    binary = directory / "fanout_floor"
    subprocess.run(
        [compiler, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(FANOUT_SOURCE)],
        check=True,
    )
    return binary


def _run_fanout(
    binary: Path, method: str, receivers: int, rate: int, seconds: float
) -> dict[str, Any]:
    # Its stderr (the reason it failed, if it does) goes straight to ours.
    done = subprocess.run(
        [str(binary), method, str(receivers), str(rate), str(seconds)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        timeout=seconds + 60,
    )
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def bench_udp_fanout_floor(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="homeroom-fanout-floor-") as directory:
        binary = _compile_fanout(Path(directory))
        cases = {
            f"{shape}_{method}": _run_fanout(binary, method, receivers, rate, seconds)
            for shape, (receivers, rate) in FANOUT_SHAPES.items()
            for method in FANOUT_METHODS
        }
    return {
        **cases,
        "lecture_floor_cpu_pct_one_core": cases["lecture_sendto"]["cpu_pct_one_core"],
        "full_floor_packets_per_cpu_second": round(
            1e6 / cases["full_sendto"]["us_cpu_per_datagram"]
        ),
        "conditions": {
            "datagram_bytes": DATAGRAM_BYTES,
            "sender_core": SENDER_CORE,
            "reader_core": READER_CORE,
            "shapes": {
                shape: {"receivers": receivers, "packets_per_second": rate}
                for shape, (receivers, rate) in FANOUT_SHAPES.items()
            },
            "note": "the kernel's cost of the relay's datagrams on loopback (C, no relay work), "
            "each packet sent to every receiver at relay-lecture's and relay-full's rates, the "
            "receivers in another process woken by epoll: the floor under those benchmarks' "
            "relay_cpu_pct_one_core and forwarded_packets_per_cpu_second",
        },
    }
