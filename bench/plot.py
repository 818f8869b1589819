"""`llm-stack bench plot`: TTFT-vs-QPS and ITL-vs-QPS curves of several runs in one PNG.

`load_curve` reads one run's summary.json into plain numbers (pure parsing); `plot_runs`
draws with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.errors import InputFileError, PlotError
from bench.report import SUMMARY_JSON


@dataclass(frozen=True, kw_only=True)
class Curve:
    """One run's points, sorted by QPS; latencies in seconds (None where nothing finished)."""

    label: str
    qps: tuple[float, ...]
    ttft_mean: tuple[float | None, ...]
    ttft_p90: tuple[float | None, ...]
    itl_mean: tuple[float | None, ...]


def _field(point: dict, dist: str, stat: str) -> float | None:
    value = point.get(dist)
    return None if not value else float(value[stat])


def curve_from_summary(doc: dict, default_label: str) -> Curve:
    """A curve from a parsed summary.json document."""
    points = sorted(doc.get("points") or [], key=lambda p: p["qps"])
    return Curve(
        label=doc.get("label") or default_label,
        qps=tuple(float(p["qps"]) for p in points),
        ttft_mean=tuple(_field(p, "ttft", "mean") for p in points),
        ttft_p90=tuple(_field(p, "ttft", "p90") for p in points),
        itl_mean=tuple(_field(p, "itl", "mean") for p in points),
    )


def load_curve(run_dir: str | Path) -> Curve:
    """The curve of a run directory written by `llm-stack bench --out`."""
    path = Path(run_dir) / SUMMARY_JSON
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError:
        raise InputFileError(f"RUN_DIR: {str(run_dir)!r} has no readable {SUMMARY_JSON}") from None
    except orjson.JSONDecodeError as exc:
        raise InputFileError(f"RUN_DIR: {str(path)!r} is not valid JSON ({exc})") from None
    curve = curve_from_summary(doc, Path(run_dir).name)
    if not curve.qps:
        raise InputFileError(f"RUN_DIR: {str(path)!r} holds no QPS point")
    return curve


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend. Plotting is an extra: without matplotlib, a
    `PlotError` that says how to install it (the benchmark image runs without)."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise PlotError("plots need matplotlib: pip install 'llm-stack[plot]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _ms(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else v * 1000 for v in values]


def plot_runs(run_dirs: Sequence[str | Path], out_png: str | Path) -> Path:
    """Draw every run's TTFT (mean, p90 dashed) and mean ITL against QPS; write the PNG."""
    if not run_dirs:
        raise InputFileError("RUN_DIR: give at least one run directory")
    curves = [load_curve(d) for d in run_dirs]
    plt = pyplot()
    fig, (ax_ttft, ax_itl) = plt.subplots(1, 2, figsize=(12, 4.5))
    for curve in curves:
        line = ax_ttft.plot(curve.qps, _ms(curve.ttft_mean), marker="o", label=f"{curve.label} mean")[0]
        ax_ttft.plot(curve.qps, _ms(curve.ttft_p90), linestyle="--", color=line.get_color(),
                     label=f"{curve.label} p90")
        ax_itl.plot(curve.qps, _ms(curve.itl_mean), marker="o", color=line.get_color(), label=curve.label)
    for ax, title in ((ax_ttft, "Time to first token"), (ax_itl, "Inter-token latency (mean)")):
        ax.set_xlabel("QPS")
        ax.set_ylabel("ms")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
