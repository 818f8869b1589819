"""Multi-round QA benchmark (the seed's workload) against any OpenAI-compatible endpoint.

Python API (loaded lazily so `llm-stack --help` stays fast)::

    from benchmarks.qa import BenchConfig, run_benchmark, write_report, plot_runs
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
    "BenchConfig": "benchmarks.qa.config",
    "parse_qps": "benchmarks.qa.config",
    "BenchError": "benchmarks.qa.errors",
    "ConfigError": "benchmarks.qa.errors",
    "EndpointError": "benchmarks.qa.errors",
    "InputFileError": "benchmarks.qa.errors",
    "BenchResult": "benchmarks.qa.runner",
    "PointResult": "benchmarks.qa.runner",
    "run_benchmark": "benchmarks.qa.runner",
    "PointStats": "benchmarks.qa.stats",
    "RequestRecord": "benchmarks.qa.records",
    "WarmupResult": "benchmarks.qa.warmup",
    "write_report": "benchmarks.qa.report",
    "print_table": "benchmarks.qa.report",
    "plot_runs": "benchmarks.qa.plot",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmarks.qa' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
