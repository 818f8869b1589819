"""`python -m benchmarks.cache_pressure [--quick]`: issue 24's sweep in virtual time (`sim`).

Per point and policy: the median over `--seeds` runs of the mean and p99 TTFT of the measured
requests, and `prefix`'s ratios to `round_robin` and `session`. `--replicas` router replicas,
each request to a random one (prod runs 3); `--arrivals independent`: users with independent
think times instead of `bench.schedule`'s fixed cycle (`arrivals`); `--scoring events`: `prefix`
scores engines by their KV events (`kv_events.scoring: events`, `sim`), not by its own index.
With one replica `prefix` is told it is the sole router, as the stack renders it for one router
pod (`infra.serving.router_policy`); `--no-sole-router` measures it as one of several.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

from benchmarks.cache_pressure.arrivals import ARRIVALS
from benchmarks.cache_pressure.plan import POLICIES, Point, quick, sweep
from benchmarks.cache_pressure.sim import Simulation
from router.routing.policies.registry import build_policy
from router.settings import PolicySettings


def _p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def policy_settings(policy: str, replicas: int, sole: bool = True) -> PolicySettings:
    """`policy` as a stack with `replicas` router pods renders it: `prefix` alone is told so
    (`sole_router`, infra.serving.router_policy) unless `sole` is False."""
    alone = sole and policy == "prefix" and replicas == 1
    return PolicySettings(kind=policy, params={"sole_router": True} if alone else {})


def measure(point: Point, policy: str, seeds: int, replicas: int,
            events: bool = False, sole: bool = True) -> tuple[float, float]:
    """Median over seeds of (mean TTFT, p99 TTFT), seconds; `events`: the routers get the
    engines' KV events (`sim.Simulation`); `sole`: see `policy_settings`."""
    means, p99s = [], []
    for seed in range(seeds):
        routers = [build_policy(policy_settings(policy, replicas, sole)) for _ in range(replicas)]
        served = Simulation(point, routers, seed, events=events).run()
        ttfts = [s.ttft_s for s in served if s.measured and s.ttft_s is not None]
        means.append(statistics.mean(ttfts))
        p99s.append(_p99(ttfts))
    return statistics.median(means), statistics.median(p99s)


def row(point: Point, seeds: int, replicas: int, scoring: str = "approximate", sole: bool = True) -> str:
    """One Markdown table row: each policy's mean / p99, prefix's ratios to the better baseline
    (`scoring` "events": prefix scores by the engines' KV events; the baselines ignore them)."""
    got = {p: measure(point, p, seeds, replicas, events=p == "prefix" and scoring == "events", sole=sole)
           for p in POLICIES}
    mean_ratio = got["prefix"][0] / min(got["round_robin"][0], got["session"][0])
    p99_ratio = got["prefix"][1] / min(got["round_robin"][1], got["session"][1])
    cells = " | ".join(f"{got[p][0]:.3f} / {got[p][1]:.3f}" for p in POLICIES)
    return f"| {point.label} | {cells} | {mean_ratio:.2f} | {p99_ratio:.2f} |"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cache_pressure")
    p.add_argument("--quick", action="store_true", help="two points, one seed (the suite)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--arrivals", choices=ARRIVALS, default="paced",
                   help="paced: bench.schedule's fixed cycle (the issue's setup); independent: "
                        "users with exponential think times (benchmarks/cache_pressure/arrivals.py)")
    p.add_argument("--scoring", choices=("approximate", "events"), default="approximate",
                   help="how prefix scores engines: its own index (approximate) or the engines' "
                        "KV events, applied a step after they happen (kv_events.scoring)")
    p.add_argument("--no-sole-router", dest="sole", action="store_false",
                   help="with --replicas 1, do not tell prefix it is the only router (policy.params."
                        "sole_router, which the stack sets for one router pod): new conversations "
                        "placed by rendezvous hashing, as with several replicas")
    args = p.parse_args(argv)
    for flag, value in (("--seeds", args.seeds), ("--replicas", args.replicas)):
        if value < 1:
            p.error(f"{flag}: {value}: must be a whole number >= 1")
    mode = args.arrivals
    points, seeds = (quick(arrivals=mode), 1) if args.quick else (sweep(arrivals=mode), args.seeds)
    print("| point | " + " | ".join(f"{p} mean / p99 (s)" for p in POLICIES)
          + " | prefix mean / best | prefix p99 / best |")
    print("|---|" + "---|" * (len(POLICIES) + 2))
    for point in points:
        print(row(point, seeds, args.replicas, args.scoring, args.sole), flush=True)


if __name__ == "__main__":
    main()
