"""A token bucket that caps how fast one websocket may send messages.

The lesson socket allows a burst of 40 messages, then 20 a second (docs/signalling.md); a client
over that is closed with 4429. The bucket reads no clock: the caller passes monotonic seconds, so
it is pure arithmetic and tests need no sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`burst` messages at once, refilled at `rate` a second; one message spends one token."""

    rate: float = 20.0
    burst: int = 40
    _tokens: float = field(init=False, repr=False)
    _last: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("rate must be a positive number of messages a second.")
        if self.burst < 1:
            raise ValueError("burst must be at least one message.")
        self._tokens = float(self.burst)

    def allow(self, now: float) -> bool:
        """Spend a token for a message at `now` (monotonic seconds); False when none is left."""
        if self._last is not None:
            # A clock that steps back must not mint tokens, nor take them away.
            elapsed = max(0.0, now - self._last)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._last = now if self._last is None else max(self._last, now)
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
