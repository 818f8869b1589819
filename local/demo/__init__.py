"""`llm-stack demo`: the whole stack locally (`make demo`).

Modules: `plan` (the workload, cache sizes and load: pure arithmetic), `summary`
(summary.json, the comparison table and the seed's finding: pure), `prometheus` (config
rendering and the optional real Prometheus), `stack` (engines, router and benchmark runs:
the I/O shell), `cli` (the command)."""
