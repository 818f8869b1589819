"""`python -m benchmarks.kv_events [--quick] [--mode MODE]... [--out DIR] [--require-targets]`:
issue 19's proof.

Prints one line per figure and mode, `SCENARIO MODE key value ... target T VERDICT` (PASS/FAIL
for the events mode, whose targets they are; `-` for the approximate mode it is compared with;
`n/a` where the router exports no prediction), and `SKIPPED ...` for a mode this router cannot
run. Progress goes to stderr; DIR gets the processes' logs and `records.jsonl`. Exit status: 0
when the run completed (with `--require-targets`: only when every events-mode target passed, else
1), 2 when the harness could not run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.kv_events.plan import MODES, KvPlan, PlanError
from benchmarks.kv_events.run import run_benchmark
from emulator.errors import EmulatorError
from local.procs import BenchError, processes


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.kv_events", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the suite's short run")
    p.add_argument("--mode", action="append", choices=MODES, default=None,
                   help="run only this mode (repeatable; default: both)")
    p.add_argument("--out", default=None, help="directory for logs (default: a temporary one)")
    p.add_argument("--require-targets", action="store_true",
                   help="exit 1 unless every events-mode target passed (and the events mode ran)")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="llm-stack-kv-events-"))

    def note(text: str) -> None:
        print(text, file=sys.stderr, flush=True)
    try:
        plan = KvPlan.quick() if args.quick else KvPlan()
        with processes(out / "logs") as procs:
            report = run_benchmark(plan, args.mode or MODES, out / "work", procs, say=note)
    except (PlanError, BenchError, EmulatorError) as exc:
        note(f"kv_events benchmark failed: {exc} (logs in {out / 'logs'})")
        return 2
    for line in report.lines():
        print(line, flush=True)
    if args.require_targets and not report.targets_met:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
