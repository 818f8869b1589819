"""Run output: `requests.csv` (one row per request), `summary.json` (config + one entry per
QPS point) and the terminal table. Writing is the only I/O here; rendering is pure."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from bench.records import RequestRecord
from bench.runner import BenchResult
from bench.stats import Dist, PointStats

REQUESTS_CSV = "requests.csv"
SUMMARY_JSON = "summary.json"
CSV_COLUMNS = (
    "request_id", "user_id", "round", "qps", "launch_s", "ttft_s", "e2e_s", "itl_mean_s",
    "itl_s", "prompt_tokens", "output_tokens", "status", "error",
)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def csv_row(record: RequestRecord) -> list[Any]:
    """One requests.csv row (ITLs as a `;`-separated list of seconds)."""
    itl = record.itl_s
    return [
        record.request_id, record.user_id, record.round, record.qps, _num(record.launch_s),
        _num(record.ttft_s), _num(record.e2e_s), _num(sum(itl) / len(itl) if itl else None),
        ";".join(f"{gap:.6f}" for gap in itl), record.prompt_tokens, record.output_tokens,
        record.status, record.error,
    ]


def summary(result: BenchResult) -> dict[str, Any]:
    """The summary.json document of a run."""
    return {
        "label": result.config.label,
        "model": result.model,
        "interrupted": result.interrupted,
        "metrics_urls": list(result.metrics_urls),
        "warmup": asdict(result.warmup) if result.warmup is not None else None,
        "config": result.config.to_dict(),
        "points": [point.stats.to_dict() for point in result.points],
    }


def write_report(result: BenchResult, out_dir: str | Path) -> Path:
    """Write DIR/requests.csv and DIR/summary.json; return DIR."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / REQUESTS_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for point in result.points:
            writer.writerows(csv_row(record) for record in point.records)
    (out / SUMMARY_JSON).write_bytes(orjson.dumps(summary(result), option=orjson.OPT_INDENT_2) + b"\n")
    return out


def _ms(dist: Dist | None, attr: str) -> str:
    return "-" if dist is None else f"{getattr(dist, attr) * 1000:.1f}"


def table_rows(points: Iterable[PointStats]) -> list[list[str]]:
    """The terminal table's rows, one per QPS point (latencies in ms)."""
    rows = []
    for s in points:
        hit = "-" if s.cache_hit_rate is None else f"{s.cache_hit_rate:.1%}"
        rows.append([
            f"{s.qps:g}", str(s.finished), str(s.errors),
            _ms(s.ttft, "mean"), _ms(s.ttft, "p50"), _ms(s.ttft, "p90"), _ms(s.ttft, "p99"),
            _ms(s.itl, "mean"), _ms(s.itl, "p50"), _ms(s.itl, "p99"), _ms(s.e2e, "p50"),
            f"{s.finished_rps:.2f}", f"{s.input_tps:.0f}", f"{s.output_tps:.0f}", hit,
        ])
    return rows


TABLE_HEADERS = (
    "QPS", "done", "err", "TTFT mean", "TTFT p50", "TTFT p90", "TTFT p99", "ITL mean", "ITL p50",
    "ITL p99", "E2E p50", "req/s", "in tok/s", "out tok/s", "cache hit",
)


def print_table(points: Sequence[PointStats], title: str = "multi-round QA (latencies in ms)") -> None:
    """Print the per-point table with rich."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in TABLE_HEADERS:
        table.add_column(header, justify="right")
    for row in table_rows(points):
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # logs and pipes: never squeeze the columns to 80 characters
        console = Console(width=200)
    console.print(table)
