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
    python -m benchmarks.router_instructions --granian             # add our app served by granian

granian (issue 22) runs the app in a worker process. A forked worker cannot be reached by
`callgrind_control` (valgrind 3.19 lists no control pipe for it), so granian is started with
multiprocessing's `spawn` method instead (`GRANIAN_SPAWN`, the same serving code in a freshly
executed worker) under `--trace-children=yes`; each process of the tree writes its own dump
(`%p` in the file name), counting is switched on in every one, and their counts are summed.
granian's Rust code (hyper, tokio, its ASGI glue in `_granian*.so`) runs in those processes'
user space and is counted like the interpreter; `--granian` also reports the share of the
instructions inside `_granian*.so`.

Needs valgrind (`apt-get install valgrind`). About 40 s per target.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
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
from benchmarks.router_bench.venvs import ensure_venv
from local.procs import BenchError, free_ports, processes, tree, wait_http

_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)
_READY_S = 600.0  # a router under valgrind starts 20-50x slower
_ROOT = Path(__file__).resolve().parents[1]
# granian's console script (`granian.cli.entrypoint`) with its workers spawned, not forked
GRANIAN_SPAWN = ("import multiprocessing, sys; multiprocessing.set_start_method('spawn'); "
                 "sys.argv[0] = 'granian'; from granian.cli import entrypoint; entrypoint()")
# callgrind's per-object cost lines: `ob=(id) name` defines an object, `ob=(id)` reuses it
_OB = re.compile(rb"^ob=\((\d+)\)(?: (.*))?$")
_COST = re.compile(rb"^(?:\+|-)?\d+ (\d+)$|^\* (\d+)$")


@dataclass(frozen=True, kw_only=True)
class Target:
    label: str
    source: Path | None  # None: this checkout
    granian: bool = False  # this checkout's app served by granian (issue 22)


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


def object_instructions(dump: bytes, needle: bytes) -> int:
    """Instructions a callgrind dump attributes to the objects (shared libraries, the
    executable) whose file name contains `needle`: the cost lines under each `ob=`."""
    names: dict[bytes, bytes] = {}
    inside = after_call = False
    total = 0
    for line in dump.splitlines():
        if after_call:  # the line after `calls=` is that call's inclusive cost, not self cost
            after_call = False
            continue
        if line.startswith(b"calls="):
            after_call = True
            continue
        ob = _OB.match(line)
        if ob:
            ident, name = ob.group(1), ob.group(2)
            if name is not None:
                names[ident] = name
            inside = needle in names.get(ident, b"")
            continue
        if inside:
            cost = _COST.match(line)
            if cost:
                total += int(cost.group(1) or cost.group(2))
    return total


def _spec(bench: Bench, target: Target, policy: str) -> routers.RouterSpec:
    plan = bench.plan
    if target.granian:
        spec = routers.ours_on_granian(_ROOT, policy, 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens,
                                       label=target.label)
        assert spec.venv and spec.package
        ensure_venv(_ROOT, spec.venv, spec.package, spec.pip_args)
        return spec
    return routers.ours(policy, 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens, source=target.source,
                        label=target.label)


@dataclass(frozen=True, kw_only=True)
class Counted:
    per_request: float
    processes: int  # how many processes' dumps were summed
    granian_share: float  # of the instructions, the part inside granian's own library


def measure(bench: Bench, target: Target, policy: str, scenario: Scenario, workdir: Path) -> Counted:
    """Instructions per request of `target` under one `scenario` load, over its process tree."""
    spec = _spec(bench, target, policy)
    for name, text in spec.files:
        (workdir / name).write_text(text)
    port, metrics_port = free_ports(2)
    out = workdir / f"callgrind-{target.label.replace(' ', '-')}.out"
    command = spec.argv(bench.engine_urls, port, metrics_port, workdir)
    tracing = []
    if target.granian:
        command = [str(Path(command[0]).with_name("python")), "-c", GRANIAN_SPAWN, *command[1:]]
        tracing = ["--trace-children=yes"]
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", *tracing,
            f"--callgrind-out-file={out}.%p", *command]
    env = {**os.environ, **spec.environ(bench.engine_urls, workdir)} if spec.environ else None
    proc = bench.procs.start(f"callgrind-{target.label.replace(' ', '-')}", argv, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", _READY_S, proc)
    warm = dataclasses.replace(scenario, n=min(200, scenario.n))
    bench.load(url, warm, None, timeout_s=_READY_S)
    pids = tree(proc.pid)  # granian: its main process and the worker it forked
    for pid in pids:
        _callgrind_control("-i", "on", str(pid))
    result, _, _ = bench.load(url, scenario, None, start=warm.n, timeout_s=_READY_S)
    for pid in pids:
        _callgrind_control("-i", "off", str(pid))
        _callgrind_control("-d", str(pid))
    bench.procs.stop(proc, grace_s=30.0)
    total = granian = 0
    for pid in pids:
        # `-d` writes FILE.1, the exit dump FILE itself (the part after the `-d`, not counted)
        dumps = sorted(workdir.glob(f"{out.name}.{pid}.*"))
        if not dumps:
            raise BenchError(f"callgrind wrote no dump for {target.label} pid {pid} (see its log)")
        dump = dumps[0].read_bytes()
        total += instructions_in(dump)
        granian += object_instructions(dump, b"_granian")
    return Counted(per_request=per_request(total, result.ok), processes=len(pids),
                   granian_share=granian / total if total else 0.0)


def _targets(args: argparse.Namespace) -> list[Target]:
    targets = [Target(label=f"before{i}" if i else "before", source=s) for i, s in enumerate(args.source)]
    targets.append(Target(label="ours", source=None))
    if args.granian:
        targets.append(Target(label="ours granian", source=None, granian=True))
    return targets


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.router_instructions",
                                description=__doc__.splitlines()[0])
    p.add_argument("--policy", default="prefix")
    p.add_argument("--stream", action="store_true", help="streamed answers (64 tokens each)")
    p.add_argument("-n", type=int, default=600, help="requests counted (default 600)")
    p.add_argument("-c", type=int, default=16, help="concurrency (default 16)")
    p.add_argument("--granian", action="store_true",
                   help="also measure this checkout's app served by granian (own venv)")
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
    print("| router | M instructions per request | processes | in _granian*.so |\n|---|---|---|---|")
    for label, counted in rows:
        print(f"| {label} | {counted.per_request / 1e6:.3f} | {counted.processes} "
              f"| {counted.granian_share:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
