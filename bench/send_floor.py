"""The floor under any relay on this machine: a bare UDP send loop's CPU per datagram.

The relay's `forwarded_packets_per_cpu_second` counts everything a forwarded packet costs; on
loopback the sender's core also runs the receiving side of each datagram in the kernel. This
loop sends 1,200-byte datagrams (a video RTP packet's size) on a connected socket to a reader
pinned to the other core, with nothing else per datagram: its packets per CPU-second are what no
relay on this machine can beat, measured in the same conditions as the relay benchmarks.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

SENDER_CORE, READER_CORE = 1, 0
DATAGRAM_BYTES = 1200
# Yield now and then so the reader keeps up: a full socket buffer would drop, which costs less.
YIELD_EVERY = 64


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


def bench_udp_send_floor(seconds: float) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    reader = context.Process(target=_read, args=(theirs,))
    reader.start()
    port = ours.recv()
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SENDER_CORE})
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", port))
            data = bytes(DATAGRAM_BYTES)
            sent = 0
            before = resource.getrusage(resource.RUSAGE_SELF)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for _ in range(YIELD_EVERY):
                    sock.send(data)
                sent += YIELD_EVERY
                time.sleep(0)
            after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        os.sched_setaffinity(0, affinity)
    ours.send("stop")
    received = ours.recv()
    reader.join()
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "datagrams_sent": sent,
        "datagrams_received": received,
        "us_cpu_per_datagram": round((user + system) / sent * 1e6, 2),
        "us_kernel_per_datagram": round(system / sent * 1e6, 2),
        "datagrams_per_cpu_second": round(sent / (user + system)),
        "conditions": {
            "datagram_bytes": DATAGRAM_BYTES,
            "sender_core": SENDER_CORE,
            "reader_core": READER_CORE,
            "note": "Python socket.send on loopback, no SRTP, no RTP: the kernel's send and "
            "receive path per datagram, charged to the sender's core",
        },
    }
