"""`python -m benchmarks.lora [--quick] [--seed N]`: LoRA adapters on emulated engines, in
virtual time (`sim`: the real policies over the emulator's scheduler and LoRA slots; why not
processes is in its docstring). Prints each scenario's figures with PASS/FAIL against its target.

`SCENARIOS` is the list the command runs, in order: a scenario is a function of (quick, seed)
returning `Check`s, so another one (the weighted rollout, `benchmarks/lora/rollout.py`) is added
by appending it here.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from benchmarks.lora.scenarios import Check, first_request, placement

Scenario = Callable[[bool, int], list[Check]]
SCENARIOS: list[tuple[str, Scenario]] = [
    ("first request to a new adapter", first_request),
    ("placement: 4 engines x max_loras 4, 40 adapters (Zipf)", placement),
]


def line(check: Check) -> str:
    """One printed figure."""
    verdict = "" if check.ok is None else ("PASS" if check.ok else "FAIL")
    target = f"(target {check.target})" if check.target else ""
    return f"  {check.name}: {check.value:.3f}{check.unit} {target} {verdict}".rstrip()


def main(argv: Sequence[str] | None = None) -> list[Check]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lora")
    p.add_argument("--quick", action="store_true", help="a small run (the test suite)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    checks: list[Check] = []
    for title, scenario in SCENARIOS:
        started = time.perf_counter()
        found = scenario(args.quick, args.seed)
        print(f"{title} ({time.perf_counter() - started:.1f} s)")
        for check in found:
            print(line(check), flush=True)
        checks += found
    return checks


if __name__ == "__main__":
    main()
