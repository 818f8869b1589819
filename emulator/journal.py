"""Recent requests of one engine with their server-side timings, for `GET /emulator/requests`.

Keyed by the client's `x-request-id` (or a generated id), bounded to the newest `size`
records, so a benchmark can compare its own TTFT with the engine's. Times are wall-clock
seconds since the epoch (`time.time()` scale, comparable across processes on one machine);
the shell passes them in. Pure.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

STATUS_RUNNING = "running"
STATUS_OK = "ok"
STATUS_CANCELLED = "cancelled"
STATUS_FAILED = "failed"
STATUS_ABORTED = "aborted"  # the engine aborted it (shutdown)


@dataclass(kw_only=True)
class RequestRecord:
    """Server-side life of one generation request."""

    request_id: str
    prompt_tokens: int
    max_tokens: int
    stream: bool
    arrival: float
    admitted: float | None = None
    first_token: float | None = None
    finish: float | None = None
    output_tokens: int = 0
    gpu_hit_tokens: int = 0
    cpu_hit_tokens: int = 0
    status: str = STATUS_RUNNING

    @property
    def ttft_s(self) -> float | None:
        """Arrival to first token."""
        return None if self.first_token is None else self.first_token - self.arrival

    @property
    def e2e_s(self) -> float | None:
        """Arrival to last token (or to the end of a cancelled/failed request)."""
        return None if self.finish is None else self.finish - self.arrival

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record, with the derived durations."""
        return {**asdict(self), "ttft_s": self.ttft_s, "e2e_s": self.e2e_s}


class Journal:
    """The newest `size` request records, oldest dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._records: OrderedDict[str, RequestRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: RequestRecord) -> None:
        """Keep a new record (a reused id replaces the older record)."""
        self._records.pop(record.request_id, None)
        self._records[record.request_id] = record
        while len(self._records) > self.size:
            self._records.popitem(last=False)

    def get(self, request_id: str) -> RequestRecord | None:
        """The record of one request id, if still kept."""
        return self._records.get(request_id)

    def recent(self, limit: int) -> list[RequestRecord]:
        """The newest `limit` records, oldest first."""
        items = list(self._records.values())
        return items[-limit:] if limit > 0 else []
