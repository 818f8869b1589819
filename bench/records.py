"""`RequestRecord`: what the benchmark keeps about one request (one row of requests.csv)."""

from __future__ import annotations

from dataclasses import dataclass, field

STATUS_OK = 200
STATUS_NO_RESPONSE = 0  # connection failed, or the stream broke before a status line
CANCELLED = "cancelled"  # the error text of a request cut off by Ctrl-C or the drain limit


@dataclass(frozen=True, kw_only=True)
class RequestRecord:
    """One request. Times are seconds; `launch_s` is relative to the QPS point's start;
    `ttft_s` and `e2e_s` are None when no token / no end was seen."""

    request_id: str
    user_id: str
    round: int
    qps: float
    launch_s: float
    ttft_s: float | None
    e2e_s: float | None
    itl_s: tuple[float, ...] = field(default=(), repr=False)
    prompt_tokens: int = 0
    output_tokens: int = 0
    status: int = STATUS_OK
    error: str = ""

    @property
    def ok(self) -> bool:
        """Finished with HTTP 200, a complete stream and no error."""
        return self.status == STATUS_OK and not self.error and self.e2e_s is not None
