"""Pacing users to an overall QPS, as production-stack's multi-round-qa.py does. Pure.

The run has `users` slots; slot s launches at `(s + j * users) / qps` for j = 0, 1, 2 ...,
so the slots together launch exactly one request every `1 / qps` seconds and each slot
once every `user_gap_s = users / qps` (the original's per-user gap). A slot hosts one user
for `rounds` launches, then the next user joins it. Like the original's ramp, the run starts
in steady state: slot s's first user is already at round `s * rounds // users` (its earlier
rounds are filled in by the workload), so users leave and join gradually, one every
`rounds / qps` seconds on average. A user never sends a round before its previous answer
finished: a late answer pushes that user's next round back (the load the server sees then
drops below `qps`, as it would with real users). Times are seconds from the run start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """Users, rounds per user, overall QPS and the launch window (seconds)."""

    users: int
    rounds: int
    qps: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ConfigError(f"--users: must be at least 1 (got {self.users})")
        if self.rounds < 1:
            raise ConfigError(f"--rounds: must be at least 1 (got {self.rounds})")
        if not (math.isfinite(self.qps) and self.qps > 0):
            raise ConfigError(f"--qps: must be a positive number of requests/s (got {self.qps})")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ConfigError(f"--duration: must be a positive number of seconds (got {self.duration_s})")

    @property
    def user_gap_s(self) -> float:
        """Seconds between two rounds of one user."""
        return self.users / self.qps

    @property
    def join_gap_s(self) -> float:
        """Mean seconds between two users joining."""
        return self.rounds / self.qps

    def slot_launch(self, slot: int, index: int) -> float:
        """When slot `slot` launches for the `index`-th time."""
        return (slot + index * self.users) / self.qps

    def ramp_round(self, slot: int) -> int:
        """The round the slot's first user is at when the run starts."""
        return slot * self.rounds // self.users


@dataclass(frozen=True, kw_only=True)
class UserStart:
    """A user: its number, its slot, when its first round is due and which round it is."""

    index: int
    slot: int
    first_launch: float
    first_round: int


def next_launch(pacing: Pacing, prev_launch: float, prev_done: float) -> float:
    """When a user's next round is due: one gap after the previous launch, never before the
    previous answer finished."""
    return max(prev_launch + pacing.user_gap_s, prev_done)


def initial_users(pacing: Pacing) -> list[UserStart]:
    """The steady-state population at the start: one user per slot, at staggered rounds."""
    return [
        UserStart(index=slot, slot=slot, first_launch=pacing.slot_launch(slot, 0),
                  first_round=pacing.ramp_round(slot))
        for slot in range(pacing.users)
        if pacing.slot_launch(slot, 0) < pacing.duration_s
    ]


def joining_users(pacing: Pacing) -> list[UserStart]:
    """Users who take over a slot within the window, in joining order, numbered after the
    initial population."""
    joins: list[tuple[float, int]] = []
    for slot in range(pacing.users):
        launch_index = pacing.rounds - pacing.ramp_round(slot)
        while (at := pacing.slot_launch(slot, launch_index)) < pacing.duration_s:
            joins.append((at, slot))
            launch_index += pacing.rounds
    joins.sort()
    return [
        UserStart(index=pacing.users + n, slot=slot, first_launch=at, first_round=0)
        for n, (at, slot) in enumerate(joins)
    ]


def offered_launches(pacing: Pacing) -> list[float]:
    """Every launch time in the window when answers are instant: the load the schedule
    offers (what `qps` promises), sorted."""
    times = []
    for start in [*initial_users(pacing), *joining_users(pacing)]:
        for step in range(pacing.rounds - start.first_round):
            at = start.first_launch + step * pacing.user_gap_s
            if at >= pacing.duration_s:
                break
            times.append(at)
    return sorted(times)
