"""Multi-round QA benchmark (the seed's workload) against any OpenAI-compatible endpoint.

Python API (loaded lazily so `llm-stack --help` stays fast)::

    from bench import BenchConfig, run_benchmark, write_report, plot_runs
    config = BenchConfig(base_url=router_url, qps=(0.5, 1.0, 2.0), durations_s=(60, 40, 30),
                         metrics_urls=tuple(f"{u}/metrics" for u in engine_urls), label="prefix")
    result = await run_benchmark(config)          # BenchResult: .points[i].stats / .records
    write_report(result, "out/prefix")            # requests.csv + summary.json
    plot_runs(["out/prefix", "out/round_robin"], "ttft.png")
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BenchConfig": "bench.config",
    "parse_qps": "bench.config",
    "BenchError": "bench.errors",
    "ConfigError": "bench.errors",
    "EndpointError": "bench.errors",
    "InputFileError": "bench.errors",
    "BenchResult": "bench.runner",
    "PointResult": "bench.runner",
    "run_benchmark": "bench.runner",
    "PointStats": "bench.stats",
    "RequestRecord": "bench.records",
    "WarmupResult": "bench.warmup",
    "write_report": "bench.report",
    "print_table": "bench.report",
    "plot_runs": "bench.plot",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
