"""`join-storm`: 31 clients join the demo's live lesson within 5 s through the real signalling.

A real daphne serves the demo school (`migrate`, `seed_demo`: the live "5B Maths" lesson's class
is its teacher and 30 pupils, so nobody needs adding) with HOMEROOM_RELAY_ALLOW_LOOPBACK=1, pinned
to the relay core. Each client is a session made in the server's database (`manage.py shell`), a
websocket to `/ws/lessons/<key>/` and one aiortc peer connection that follows docs/signalling.md
as the class page does: three `sendonly` transceivers (mic, camera, screen) and as many `recvonly`
ones as `hello`, `admitted` and `slots` ask for, always the offerer, a `ping` every 5 s. The peer
connection is built on `hello` with its `iceServers`, as the page does: aiortc's default
configuration adds a public STUN server, and waiting on it cost each offer ~2 s here.

Only the teacher publishes: its mic and camera send the pre-encoded clip (bench.relay.media) and
it switches them on with `media`; pupils are not granted anything, so theirs carry no track, as
for a pupil whose camera is not allowed. The teacher opens its socket first (so pupils skip the
lobby), then the 30 pupils one after another, the last 5 s after the teacher. A pupil's first
frame is the first complete video frame (RTP marker bit) on any of its receive slots, which can
only be the teacher's camera; it is timed from the moment its websocket opened, on the clock of
the generator process, which holds every client and is pinned to the other core. Packets are
counted after SRTP, never decoded. The relay's CPU comes from daphne's /proc/<pid>/stat over the
storm: from the teacher's connect until the last pupil's first frame (an upper bound: daphne also
answers each socket's admission from the database). A run whose generator process or core was
more than 90 % busy is `valid: false`.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket

from media_relay.aiortc_internals import hook_keyframe_requests

from .loadgen import SATURATED_PCT, cores_busy, cpu_seconds
from .media import ClipTrack, EncodedClip, encoded_clip
from .relay_server import rss_mb
from .scenarios import GENERATOR_CORE, RELAY_CORE

ROOT = Path(__file__).resolve().parents[2]
TEACHER = "teacher@demo.test"
PUPILS = [f"pupil{n}@demo.test" for n in range(1, 31)]
STORM_SECONDS = 5.0
PING_EVERY = 5.0
# After the last socket opened, how long the stragglers get before they count as failures.
FIRST_FRAME_TIMEOUT = 30.0
GOAL_P95_MS = 2000
CLOSE_TIMEOUT = 5.0
OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x0, 0x1, 0x8, 0x9, 0xA
# Made in the server's database before the storm, so that logging in costs the storm nothing.
SESSIONS_SCRIPT = """
import json
from django.conf import settings
from django.test import Client
from accounts.models import User
from classrooms.demo import LIVE_CLASS
from classrooms.models import Lesson, LessonState

lesson = Lesson.objects.get(school_class__name=LIVE_CLASS, state=LessonState.LIVE)
cookies = {}
for email in EMAILS:
    client = Client()
    client.force_login(User.objects.get(email=email))
    name = settings.SESSION_COOKIE_NAME
    cookies[email] = f"{name}={client.cookies[name].value}"
print(json.dumps({"lesson": lesson.key, "cookies": cookies}))
"""


def run(seconds: float) -> dict[str, Any]:
    """One storm against a fresh demo server; `seconds` does not apply (the storm is 5 s)."""
    # Imported here: the other relay benchmarks' processes import this package and need none of
    # the browser tests' server helpers (pytest, Playwright).
    from tests.browser.conftest import run_demo_server

    clip = encoded_clip()
    work = Path(tempfile.mkdtemp(prefix="homeroom-join-storm-"))
    (work / "data").mkdir()
    (work / "logs").mkdir()
    database_url = f"sqlite:///{work / 'db.sqlite3'}"
    with run_demo_server(database_url, work / "data", work / "logs") as server:
        os.sched_setaffinity(server.pid, {RELAY_CORE})
        lesson, cookies = _sessions(database_url, work / "data")
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            result: dict[str, Any] = pool.submit(
                _generate, server.base, lesson, cookies, clip, server.pid
            ).result()
    result["conditions"].update(
        {
            "relay": "daphne (whole Homeroom server) with LessonForwarder",
            "relay_core": RELAY_CORE,
            "generator_core": GENERATOR_CORE,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "media": clip.describe(),
            "server_log": str(work / "logs" / "daphne.log"),
        }
    )
    return result


def _sessions(database_url: str, data_dir: Path) -> tuple[str, dict[str, str]]:
    """The live lesson's key and a session cookie of each participant, from the server's DB."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HOMEROOM_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    script = f"EMAILS = {[TEACHER, *PUPILS]!r}\n{SESSIONS_SCRIPT}"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found["lesson"], found["cookies"]


class LessonSocket:
    """A minimal websocket client (RFC 6455) for the lesson socket: JSON text frames in and out.

    Written here rather than taken from autobahn: importing autobahn's asyncio flavour pins txaio
    to asyncio for the whole process, and bench/run.py's process also loads daphne, which needs
    autobahn's Twisted flavour.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None
        self._close_sent = False

    @classmethod
    async def open(cls, base: str, path: str, cookie: str) -> LessonSocket:
        """Connect and upgrade, with the session cookie and the site's own origin."""
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {base}\r\nCookie: {cookie}\r\n\r\n"
        )
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    def send_json(self, kind: str, **body: Any) -> None:
        self._send(OPCODE_TEXT, json.dumps({"v": 1, "type": kind, **body}).encode())

    def close(self) -> None:
        """Start the closing handshake; `receive` returns None once the server has answered."""
        if not self._close_sent and not self.writer.is_closing():
            self._close_sent = True
            self._send(OPCODE_CLOSE, (1000).to_bytes(2, "big"))

    async def receive(self) -> dict[str, Any] | None:
        """The next message, or None once the socket closed (`close_code` says how)."""
        message = b""
        while True:
            try:
                first, second = await self.reader.readexactly(2)
                length = second & 0x7F
                if length >= 126:
                    size = 2 if length == 126 else 8
                    length = int.from_bytes(await self.reader.readexactly(size), "big")
                payload = await self.reader.readexactly(length)  # the server never masks
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close_code = self.close_code or 1006
                self.writer.close()
                return None
            opcode = first & 0x0F
            if opcode == OPCODE_CLOSE:
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
                self.close()
                self.writer.close()
                return None
            if opcode == OPCODE_PING:
                self._send(OPCODE_PONG, payload)
            elif opcode in (OPCODE_TEXT, OPCODE_CONTINUATION):
                message += payload
                if first & 0x80:  # the final fragment
                    parsed: dict[str, Any] = json.loads(message)
                    return parsed

    def _send(self, opcode: int, payload: bytes) -> None:
        # A client masks every frame it sends.
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = bytes([0x80 | opcode, 0x80 | length])
        elif length < 1 << 16:
            header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
        key = (mask * (length // 4 + 1))[:length]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
            length, "big"
        )
        self.writer.write(header + mask + masked)


@dataclass(eq=False)
class Client:
    """One participant: its socket, its peer connection, and when each step of its join happened."""

    email: str
    cookie: str
    clip: EncodedClip | None
    """The teacher's: what its mic and camera send. Pupils publish nothing."""

    def __post_init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.failure: str | None = None
        self.slots = {"audio": 0, "video": 0}
        self.pc: RTCPeerConnection | None = None
        self.sources: dict[RTCRtpTransceiver, str] = {}
        self.receivers: dict[str, list[RTCRtpTransceiver]] = {"audio": [], "video": []}
        self.awaiting_answer = False
        self.socket: LessonSocket | None = None
        self.closing = False
        self.first_frame: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[None]] = set()

    def _build_peer(self, ice_servers: list[dict[str, Any]]) -> RTCPeerConnection:
        """The peer connection, as the page builds it on `hello`: with the server's ICE servers."""
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=[RTCIceServer(**server) for server in ice_servers],
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )
        tracks: dict[str, ClipTrack | None] = {"mic": None, "camera": None}
        if self.clip is not None:
            tracks["mic"] = ClipTrack("audio", self.clip.audio, _unobserved)
            tracks["camera"] = ClipTrack("video", self.clip.video, _unobserved)
        for source, kind in (("mic", "audio"), ("camera", "video"), ("screen", "video")):
            track = tracks.get(source)
            transceiver = pc.addTransceiver(track or kind, direction="sendonly")
            self.sources[transceiver] = source
            if source == "camera" and track is not None:
                hook_keyframe_requests(transceiver.sender, track.request_keyframe)
        return pc

    async def join(self, base: str, lesson: str) -> None:
        """Open the socket and follow the signalling until the socket closes."""
        socket = await LessonSocket.open(base, f"/ws/lessons/{lesson}/", self.cookie)
        self.socket = socket
        self.marks["open"] = time.monotonic()
        self._spawn(self._ping(socket))
        while (message := await socket.receive()) is not None:
            await self._handle(socket, message)
        if not self.closing:
            self.failure = self.failure or f"socket closed with {socket.close_code}"

    async def _handle(self, socket: LessonSocket, message: dict[str, Any]) -> None:
        kind = message.get("type")
        self.marks.setdefault(f"{kind}", time.monotonic())
        if kind in ("hello", "admitted", "slots"):
            wanted = message["slots"] if kind != "slots" else message
            self.slots = {"audio": int(wanted["audio"]), "video": int(wanted["video"])}
            if kind == "hello":
                self.pc = self._build_peer(message["iceServers"])
                if self.clip is not None:
                    socket.send_json("media", mic=True, camera=True)
            if kind != "hello" or message["state"] == "in":
                await self._offer_if_needed(socket, always=kind != "slots")
        elif kind == "answer" and self.pc is not None:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="answer")
            )
            self.awaiting_answer = False
            await self._offer_if_needed(socket, always=False)
        elif kind == "error":
            if message.get("code") == "busy":
                return  # the answer under way is followed by another offer if slots are missing
            self.failure = f"error {message.get('code')}: {message.get('detail')}"

    async def _offer_if_needed(self, socket: LessonSocket, *, always: bool) -> None:
        """Offer once there are as many receive slots as asked for (or when `always`)."""
        if self.awaiting_answer or self.pc is None:
            return
        missing = False
        for kind in ("audio", "video"):
            while len(self.receivers[kind]) < self.slots[kind]:
                missing = True
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                self.receivers[kind].append(transceiver)
                if kind == "video":
                    self._watch(transceiver)
        if not (missing or always):
            return
        self.awaiting_answer = True
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sources = {t.mid: source for t, source in self.sources.items() if t.mid is not None}
        self.marks.setdefault("offer", time.monotonic())
        socket.send_json("offer", sdp=self.pc.localDescription.sdp, sources=sources)

    def _watch(self, transceiver: RTCRtpTransceiver) -> None:
        """Note the slot's first video packet and first complete frame; count nothing else.

        The DTLS transport looks `_handle_rtp_packet` up on the receiver instance, so an instance
        attribute replaces it (aiortc 1.16.0, as bench.relay.loadgen).
        """

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            now = time.monotonic()
            self.marks.setdefault("first_packet", now)
            if packet.marker and not self.first_frame.done():
                self.marks["first_frame"] = now
                self.first_frame.set_result(now)

        transceiver.receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

    async def _ping(self, socket: LessonSocket) -> None:
        while True:
            await asyncio.sleep(PING_EVERY)
            socket.send_json("ping")

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def since_open_ms(self, mark: str) -> float | None:
        if "open" not in self.marks or mark not in self.marks:
            return None
        return round((self.marks[mark] - self.marks["open"]) * 1000, 1)

    async def close(self) -> None:
        self.closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.socket is not None:
            self.socket.close()
        if self.pc is not None:
            await self.pc.close()


def _unobserved(key: bytes, sent: float) -> None:
    """Send times are not needed here: only when each pupil's first frame arrives."""


def _generate(
    base: str, lesson: str, cookies: dict[str, str], clip: EncodedClip, relay_pid: int
) -> dict[str, Any]:
    """The generator process: pinned to its core, runs the storm, returns the figures."""
    os.sched_setaffinity(0, {GENERATOR_CORE})
    return asyncio.run(_storm(base, lesson, cookies, clip, relay_pid))


async def _storm(
    base: str, lesson: str, cookies: dict[str, str], clip: EncodedClip, relay_pid: int
) -> dict[str, Any]:
    teacher = Client(TEACHER, cookies[TEACHER], clip)
    pupils = [Client(email, cookies[email], None) for email in PUPILS]
    joins: list[asyncio.Task[None]] = []
    started = time.monotonic()
    relay_before, generator_before, cores_before = (
        cpu_seconds(relay_pid),
        cpu_seconds(),
        cores_busy(),
    )
    for index, client in enumerate([teacher, *pupils]):
        # The teacher at 0, the pupils evenly after it, the last one 5 s after the teacher.
        due = started + index * STORM_SECONDS / len(pupils)
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        joins.append(asyncio.create_task(_join(client, base, lesson)))
    await asyncio.wait(
        [asyncio.ensure_future(p.first_frame) for p in pupils], timeout=FIRST_FRAME_TIMEOUT
    )
    ended = time.monotonic()
    relay_after, generator_after, cores_after = cpu_seconds(relay_pid), cpu_seconds(), cores_busy()
    relay_rss = rss_mb(relay_pid)
    await asyncio.gather(*(c.close() for c in [teacher, *pupils]), return_exceptions=True)
    # Each join ends when the server has answered its socket's close; stragglers are cut off.
    await asyncio.wait(joins, timeout=CLOSE_TIMEOUT)
    for join in joins:
        join.cancel()
    await asyncio.gather(*joins, return_exceptions=True)
    return _figures(
        teacher,
        pupils,
        wall=ended - started,
        relay_cpu=relay_after - relay_before,
        generator_cpu=generator_after - generator_before,
        core_busy=_busy_pct(cores_before, cores_after, GENERATOR_CORE),
        relay_rss=relay_rss,
    )


async def _join(client: Client, base: str, lesson: str) -> None:
    try:
        await client.join(base, lesson)
    except Exception as exc:  # one client's failure is a figure, not the end of the run
        client.failure = client.failure or repr(exc)


def _figures(
    teacher: Client,
    pupils: list[Client],
    *,
    wall: float,
    relay_cpu: float,
    generator_cpu: float,
    core_busy: float | None,
    relay_rss: float,
) -> dict[str, Any]:
    first_frames = [ms for p in pupils if (ms := p.since_open_ms("first_frame")) is not None]
    failures = [
        {"email": p.email, "reason": p.failure or "no video frame"}
        for p in pupils
        if p.since_open_ms("first_frame") is None
    ]
    if teacher.failure:
        failures.append({"email": teacher.email, "reason": teacher.failure})
    generator_pct = round(generator_cpu / wall * 100, 1)
    reasons = []
    if generator_pct > SATURATED_PCT:
        reasons.append(f"generator process {generator_pct:.0f}% of its core")
    if core_busy is not None and core_busy > SATURATED_PCT:
        reasons.append(f"generator core {core_busy:.0f}% busy")
    steps = ("hello", "offer", "answer", "first_packet", "first_frame")
    return {
        "first_frame_p50_ms": _percentile(first_frames, 0.50),
        "first_frame_p95_ms": _percentile(first_frames, 0.95),
        "first_frame_max_ms": max(first_frames, default=None),
        "first_frame_all_ms": sorted(first_frames),
        "goal_first_frame_p95_ms": GOAL_P95_MS,
        "joined_with_video": len(first_frames),
        "failures": len(failures),
        "failed": failures,
        # Median time from a pupil's socket opening to each step of its join.
        "steps_p50_ms": {
            step: _percentile(
                [ms for p in pupils if (ms := p.since_open_ms(step)) is not None], 0.50
            )
            for step in steps
        },
        # The teacher's join, from its socket opening: when its offer was answered (its camera
        # can flow from then on, once ICE and DTLS are up).
        "teacher_steps_ms": {
            step: teacher.since_open_ms(step) for step in ("hello", "offer", "answer")
        },
        "relay_cpu_pct_one_core": round(relay_cpu / wall * 100, 1),
        "relay_cpu_seconds": round(relay_cpu, 2),
        "relay_rss_mb": relay_rss,
        "valid": not reasons,
        "invalid_reasons": reasons,
        "conditions": {
            "participants": 1 + len(pupils),
            "publishers": "the teacher only (mic and camera); pupils are granted nothing",
            "storm_seconds": STORM_SECONDS,
            "storm_window_s": round(wall, 2),
            "generator_cpu_pct": generator_pct,
            "generator_core_busy_pct": core_busy,
        },
    }


def _busy_pct(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], core: int
) -> float | None:
    if core not in before or core not in after:
        return None
    total = after[core][1] - before[core][1]
    return round((after[core][0] - before[core][0]) / total * 100, 1) if total else None


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))], 1)
