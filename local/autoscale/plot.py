"""The closed loop's plot: offered load, engines, queue depth and TTFT over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from local.autoscale.loadgen import Sent
from local.autoscale.summary import Sample


def plot(samples: Sequence[Sample], sent: Sequence[Sent], objective_s: float, out: Path) -> Path:
    """Four stacked panels sharing the time axis; written as PNG to `out`."""
    from bench.plot import pyplot

    plt = pyplot()
    t = [s.t for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    axes[0].plot(t, [s.offered_rps for s in samples], color="tab:blue")
    axes[0].set_ylabel("offered req/s")
    axes[1].step(t, [s.replicas for s in samples], where="post", label="replicas (started)",
                 color="tab:orange")
    axes[1].step(t, [s.ready for s in samples], where="post", label="ready (in router)", color="tab:green")
    axes[1].set_ylabel("engines")
    axes[1].legend(loc="upper left")
    axes[2].plot(t, [s.queue for s in samples], color="tab:red")
    axes[2].set_ylabel("waiting (Prometheus)")
    ok = [(s.at, s.ttft) for s in sent if s.ttft is not None]
    axes[3].scatter([a for a, _ in ok], [b for _, b in ok], s=4, alpha=0.5, color="tab:purple")
    axes[3].axhline(objective_s, color="black", linestyle="--", linewidth=1,
                    label=f"objective {objective_s} s")
    axes[3].set_ylabel("TTFT (s)")
    axes[3].set_xlabel("run time (s)")
    axes[3].legend(loc="upper left")
    fig.suptitle("Closed-loop autoscaling on emulated engines")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
