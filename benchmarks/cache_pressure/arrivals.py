"""Independent users: the sweep's second arrival mode (`--arrivals independent`). Pure, seeded.

`bench.schedule` (mode `paced`) launches the users' slots in one fixed cycle, slot s at
`(s + j * users) / qps`, and starts users of one round in consecutive slots, so they leave
and are replaced in bursts of `users / rounds`. With one router and `users` a multiple of the
engines, `round_robin` then sends each slot to the same engine every round: perfect affinity
and perfect balance at once, which a client of independent users never offers (benchmarks/RESULTS.md,
issue 24, third pass). Here every slot is its own renewal process: a user's next round is due
an exponential think time (mean `user_gap_s`, so the slots together still offer `qps`) after
its previous launch, and never before its previous answer finished (as in `bench.schedule`);
a slot's first user starts at a random round and a random point of its first gap, and when a
user has sent its `rounds` the next one takes the slot at its next launch.
"""

from __future__ import annotations

import random

from bench.schedule import Pacing

ARRIVALS = ("paced", "independent")


def first_launch(rng: random.Random, pacing: Pacing) -> tuple[float, int]:
    """A slot's first user: when its first round in the window is due, and which round it is."""
    return rng.uniform(0.0, pacing.user_gap_s), rng.randrange(pacing.rounds)


def next_launch(rng: random.Random, pacing: Pacing, prev_launch: float, prev_done: float) -> float:
    """When the slot's next round is due: an exponential think time after the previous
    launch (mean `user_gap_s`), never before the previous answer finished."""
    return max(prev_launch + rng.expovariate(1.0 / pacing.user_gap_s), prev_done)
