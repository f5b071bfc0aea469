"""Types of the compiled bandwidth estimator (media_relay/_estimate.c)."""

class Estimator:
    """aiortc's RemoteBitrateEstimator, compiled."""

    def __init__(self) -> None: ...
    def add(
        self, *, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> int | None: ...
