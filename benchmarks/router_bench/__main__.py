"""`python -m benchmarks.router_bench`: our router against sglang-router, side by side.

    python -m benchmarks.router_bench                 # the recorded configuration (~5-10 min)
    python -m benchmarks.router_bench --quick         # smoke-sized (about a minute)
    python -m benchmarks.router_bench --only ours     # skip the peers
    python -m benchmarks.router_bench --vllm-router   # add vllm-router (own venv)
    python -m benchmarks.router_bench --granian       # add our app served by granian (own venv)
    python -m benchmarks.router_bench --only granian  # just ours prefix w1 on uvicorn and on granian
    python -m benchmarks.router_bench --baseline /tmp/before   # add a "before" row from an older tree
    python -m benchmarks.router_bench --skip-speed --only ours --memory-prompts 1000000

Prints the side-by-side table, the memory table and the verdict on each target, and writes
every raw measurement to `--out` (JSON).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from benchmarks.router_bench import report, routers
from benchmarks.router_bench.plan import Plan, checkpoints
from benchmarks.router_bench.run import Results, execute, save
from benchmarks.router_bench.venvs import ensure_venv
from local.procs import BenchError, processes

ROOT = Path(__file__).resolve().parents[2]


def _specs(args: argparse.Namespace, plan: Plan) -> tuple[list[routers.RouterSpec], list[routers.RouterSpec]]:
    specs: list[routers.RouterSpec] = []
    memory: list[routers.RouterSpec] = []
    granian = routers.ours_on_granian(ROOT, "prefix", 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens)
    if args.only == "granian":
        return [routers.ours("prefix", 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens), granian], []
    if args.only != "peers":
        ours_w1 = routers.ours("prefix", 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens)
        specs += [ours_w1, routers.ours("prefix", 2, plan.gpu_cache_tokens, plan.cpu_cache_tokens),
                  routers.ours("round_robin", 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens)]
        memory.append(ours_w1)
        if args.granian:
            specs.insert(1, granian)
        if args.baseline:
            specs.insert(0, routers.ours("prefix", 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens,
                                         source=args.baseline, label="before"))
    if args.only != "ours":
        sg = routers.sglang(ROOT)
        specs.append(sg)
        memory.append(sg)
    if args.vllm_router and args.only != "ours":
        specs.append(routers.vllm_router(ROOT))
    return specs, memory


def _installed(specs: list[routers.RouterSpec]) -> list[routers.RouterSpec]:
    """`specs` whose tool venv exists or could be installed; a peer that cannot be installed
    (no network, no wheel for this platform) is left out with a message, not a failure."""
    kept = []
    for spec in specs:
        if spec.venv and spec.package:
            print(f"ensuring {spec.package} in {spec.venv} ...", flush=True)
            try:
                ensure_venv(ROOT, spec.venv, spec.package, spec.pip_args)
            except BenchError as exc:
                print(f"leaving out {spec.name}: {exc}", file=sys.stderr)
                continue
        kept.append(spec)
    return kept


def _print(results: Results, plan: Plan, elapsed_s: float) -> None:
    load = os.getloadavg()
    print(f"\n# router benchmark ({plan.repeats} repeats, medians; {elapsed_s:.0f} s; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores)\n")
    print(report.table(results, plan))
    if results.memory:
        print("\n" + report.memory_table(results))
    print("\n" + report.targets_table(report.targets(results, plan)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.router_bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke-sized counts, one repeat")
    p.add_argument("--repeats", type=int, help="override the plan's repeats")
    p.add_argument("--only", choices=("all", "ours", "peers", "granian"), default="all",
                   help="granian: only ours prefix w1 on uvicorn and on granian")
    p.add_argument("--vllm-router", action="store_true", help="also benchmark vllm-router")
    p.add_argument("--granian", action="store_true",
                   help="also benchmark our app served by granian (a Rust ASGI server, own venv)")
    p.add_argument("--baseline", type=Path, metavar="DIR",
                   help="also run `prefix` w1 from this source tree, labelled 'before' "
                        "(e.g. git archive main | tar -x -C DIR)")
    p.add_argument("--skip-speed", action="store_true", help="only the memory phase")
    p.add_argument("--memory-prompts", type=int,
                   help="distinct prompts for the memory phase (checkpoints at 1%%, 10%%, 100%%)")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "router_bench" / "results.json")
    args = p.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()
    if args.repeats:
        plan = dataclasses.replace(plan, repeats=args.repeats)
    if args.memory_prompts:
        plan = dataclasses.replace(plan, memory_checkpoints=checkpoints(args.memory_prompts))
    specs, memory = _specs(args, plan)
    if args.skip_speed:
        specs = []
    began = time.monotonic()
    specs, memory = _installed(specs), _installed(memory)
    try:
        with processes(args.out.parent / "logs") as procs:
            results = execute(plan, procs, specs, memory, progress=lambda m: print(m, flush=True))
    except BenchError as exc:
        print(f"router benchmark failed: {exc}", file=sys.stderr)
        return 1
    save(results, args.out)
    _print(results, plan, time.monotonic() - began)
    print(f"\nraw measurements: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
