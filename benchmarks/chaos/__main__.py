"""`python -m benchmarks.chaos [--quick] [--out DIR] [--require-targets]`: issue 18's proof.

Prints one line per scenario, `SCENARIO requests N failed F truncated T migrated M p99_ttft_s X`
followed by `twin_mismatch K` and the scenario's own fields, then `TOTAL ...` and
`TWIN_CHECK replayed R identical I`. Progress goes to stderr; DIR gets the processes' logs and
`requests.jsonl` (every request that was not OK, with the reason). Exit status: 0 when the
run completed (whatever it measured; with `--require-targets`, only when the issue's targets
are met, else 1), 2 when the harness could not run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.chaos.plan import ChaosPlan, PlanError
from benchmarks.chaos.run import ChaosError, run_chaos
from emulator.errors import EmulatorError
from local.autoscale.loop import LoopError
from local.procs import BenchError, processes


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the suite's short run (under a minute)")
    p.add_argument("--out", default=None,
                   help="directory for logs and requests.jsonl (default: a temporary one)")
    p.add_argument("--require-targets", action="store_true",
                   help="exit 1 unless F = T = 0, no twin mismatch and scale from zero within its bound")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="llm-stack-chaos-"))

    def note(text: str) -> None:
        print(text, file=sys.stderr, flush=True)
    try:
        plan = ChaosPlan.quick() if args.quick else ChaosPlan()
        with processes(out / "logs") as procs:
            report = run_chaos(plan, out / "work", procs, say=note)
    except (PlanError, ChaosError, LoopError, BenchError, EmulatorError) as exc:
        note(f"chaos run failed: {exc} (logs in {out / 'logs'})")
        return 2
    for line in report.lines():
        print(line, flush=True)
    note(f"requests that were not OK: {out / 'work' / 'requests.jsonl'}")
    if args.require_targets and not report.targets_met:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
