"""`python -m benchmarks.router_instructions`: instructions a router executes per request.

CPU seconds per request (`benchmarks.router_bench`) move by 10-30 % between runs on a shared
box; the instructions a process executes do not. This runs each router under valgrind's
callgrind with instrumentation off, warms it up, switches instrumentation on for exactly one
load-generator run (`callgrind_control -i on`), dumps, and divides the instruction count by
the requests. User-space instructions only: the kernel's share (socket calls) and the cost
per instruction (a Python interpreter retires far fewer per cycle than compiled Rust) are not
in it, so compare our router with itself (before/after a change), not with another program.

    python -m benchmarks.router_instructions                       # this checkout, prefix, c=16
    python -m benchmarks.router_instructions --source /tmp/before  # add an older tree (git archive)
    python -m benchmarks.router_instructions --stream -n 96        # streamed answers
    python -m benchmarks.router_instructions --policy round_robin

Needs valgrind (`apt-get install valgrind`). About 40 s per target.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.router_bench import routers
from benchmarks.router_bench.plan import Plan, Scenario
from benchmarks.router_bench.run import Bench
from local.procs import BenchError, free_ports, processes, wait_http

_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)
_READY_S = 600.0  # a router under valgrind starts 20-50x slower


@dataclass(frozen=True, kw_only=True)
class Target:
    label: str
    source: Path | None  # None: this checkout


def instructions_in(dump: bytes) -> int:
    """The instruction count of one callgrind dump: its `totals:` line (a dump requested with
    `callgrind_control -d` carries `summary: 0`, the total is in `totals:`)."""
    found = _TOTALS.findall(dump)
    if not found:
        raise BenchError("callgrind dump has no totals line")
    return int(found[-1])


def per_request(instructions: int, requests: int) -> float:
    """Instructions per request; the run must have completed some."""
    if requests <= 0:
        raise BenchError(f"no request completed (got {requests}): nothing to divide by")
    return instructions / requests


def _callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=60)


def measure(bench: Bench, target: Target, policy: str, scenario: Scenario, workdir: Path) -> float:
    """Instructions per request of `target` under one `scenario` load."""
    plan = bench.plan
    spec = routers.ours(policy, 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens, source=target.source,
                        label=target.label)
    for name, text in spec.files:
        (workdir / name).write_text(text)
    port, metrics_port = free_ports(2)
    out = workdir / f"callgrind-{target.label}.out"
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            *spec.argv(bench.engine_urls, port, metrics_port, workdir)]
    proc = bench.procs.start(f"callgrind-{target.label}", argv)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", _READY_S, proc)
    warm = dataclasses.replace(scenario, n=min(200, scenario.n))
    bench.load(url, warm, None, timeout_s=_READY_S)
    _callgrind_control("-i", "on", str(proc.pid))
    result, _, _ = bench.load(url, scenario, None, start=warm.n, timeout_s=_READY_S)
    _callgrind_control("-i", "off", str(proc.pid))
    _callgrind_control("-d", str(proc.pid))
    bench.procs.stop(proc, grace_s=30.0)
    dumps = sorted(workdir.glob(out.name + ".*"))  # the `-d` dump; the exit dump has the rest
    if not dumps:
        raise BenchError(f"callgrind wrote no dump for {target.label} (see its log)")
    return per_request(instructions_in(dumps[0].read_bytes()), result.ok)


def _targets(args: argparse.Namespace) -> list[Target]:
    targets = [Target(label=f"before{i}" if i else "before", source=s) for i, s in enumerate(args.source)]
    return targets + [Target(label="ours", source=None)]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.router_instructions",
                                description=__doc__.splitlines()[0])
    p.add_argument("--policy", default="prefix")
    p.add_argument("--stream", action="store_true", help="streamed answers (64 tokens each)")
    p.add_argument("-n", type=int, default=600, help="requests counted (default 600)")
    p.add_argument("-c", type=int, default=16, help="concurrency (default 16)")
    p.add_argument("--source", type=Path, action="append", default=[], metavar="DIR",
                   help="also measure the router from this source tree (repeatable)")
    args = p.parse_args(argv)
    if not 0 < args.c <= args.n:
        p.error(f"-c must be in 1..n={args.n} (got {args.c})")
    for src in args.source:
        if not (src / "router").is_dir():
            p.error(f"--source {src}: no router/ package there")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("router_instructions needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    scenario = Scenario(name="counted", n=args.n, c=args.c, stream=args.stream)
    plan = Plan(repeats=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, processes(Path(tmp) / "logs") as procs:
        bench = Bench(plan, procs)
        bench.start_engines()
        for target in _targets(args):
            print(f"measuring {target.label} ...", flush=True)
            rows.append((target.label, measure(bench, target, args.policy, scenario, Path(tmp))))
    kind = "streamed" if args.stream else "non-streamed"
    print(f"\n{args.n} {kind} requests at c={args.c}, policy {args.policy}, 8 KB prompts\n")
    print("| router | M instructions per request |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value / 1e6:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
