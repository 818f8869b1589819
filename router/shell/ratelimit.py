"""Token-bucket rate limiting per caller: pure arithmetic over a passed-in `now`.

Each caller (API key identity, or client address when keys are off) gets a bucket of
`burst` tokens refilled at `rate` per second; a request takes one token. The table is
bounded: when full, the least recently seen callers are forgotten (a forgotten caller
starts again with a full bucket, which only ever errs on the side of letting through).
"""

from __future__ import annotations

from collections import OrderedDict


class RateLimiter:
    def __init__(self, *, rate: float, burst: int, max_callers: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate limiter needs rate > 0 and burst >= 1 (got {rate!r}, {burst!r})")
        self.rate = rate
        self.burst = float(burst)
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, at)

    def acquire(self, caller: str, now: float) -> float:
        """0.0 when the request may pass (a token is taken), else seconds until one is free."""
        tokens, at = self._buckets.pop(caller, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens, now)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return wait
