"""The live progress display follows the runner's hooks."""

from __future__ import annotations

import io

from rich.console import Console

from bench.progress import LiveProgress
from bench.records import RequestRecord
from bench.stats import summarize
from bench.warmup import WarmupResult


def _rec(i: int, ok: bool) -> RequestRecord:
    return RequestRecord(request_id=f"r{i}", user_id="u", round=0, qps=4.0, launch_s=0.0, ttft_s=0.123,
                         e2e_s=0.5 if ok else None, status=200 if ok else 500, error="" if ok else "boom")


def test_progress_shows_counts_errors_and_ttft():
    """The display announces the warm-up and shows requests done, errors and the TTFT median."""
    out = io.StringIO()
    records = [_rec(0, True), _rec(1, False), _rec(2, True)]
    with LiveProgress(Console(file=out, force_terminal=True, width=120)) as progress:
        progress.warmup_started(5)
        progress.warmup_finished(WarmupResult(requests=5, errors=0, elapsed_s=1.25))
        progress.point_started(4.0, 8, 2.0)
        for record in records:
            progress.request_done(record)
        progress.point_finished(summarize(records, qps=4.0, elapsed_s=2.0))
    text = out.getvalue()
    assert "warm-up done: 5 requests, 0 errors, 1.2 s" in text
    assert "QPS 4" in text and "3/3 req" in text and "err 1" in text and "TTFT p50 123 ms" in text
