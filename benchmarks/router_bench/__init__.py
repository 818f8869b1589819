"""The router speed benchmark: ours against sglang-router (and optionally vllm-router) on
fast fake engines, side by side in one run. `python -m benchmarks.router_bench`.

Modules: `fake_engine` (the upstream), `loadgen` (the client, its own process), `procs`
(child processes, /proc CPU and RSS), `routers` (launch specs), `venvs` (peer tool venvs),
`plan` (what a run does), `run` (executes it), `stats` and `report` (pure figures, table
and target verdicts)."""
