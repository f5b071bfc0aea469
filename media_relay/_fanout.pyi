"""Types of the compiled fan-out loop (media_relay/_fanout.c)."""

from collections.abc import Callable
from typing import Literal

class Slot:
    """One subscriber slot's RTP stream."""

    ready: bool
    last_seq: int
    mode: Literal["socket", "callable"] | None
    def __init__(self, video: bool) -> None: ...
    def configure(
        self, template: bytes, payload_type: int, abs_send_time_at: int, audio_level_at: int
    ) -> None: ...
    def connect_socket(
        self, session: object, srtp: int, protect: int, fd: int, host: str, port: int
    ) -> None: ...
    def connect_callable(self, send: Callable[[bytes], bool]) -> None: ...
    def disconnect(self) -> None: ...
    def start_source(self, origin: int) -> None: ...
    def stop_source(self) -> None: ...
    def sent_packet(self, sequence_number: int) -> bytes | None: ...
    def counters(self) -> tuple[int, int, int, int, int, int, int, int]: ...

def forward(
    slots: list[Slot],
    sequence_number: int,
    timestamp: int,
    marker: int,
    payload: bytes,
    keyframe_start: bool,
    frame_end: bool,
    abs_send_time: int,
    audio_level: int,
    ntp: int,
    /,
) -> tuple[int, int]: ...
