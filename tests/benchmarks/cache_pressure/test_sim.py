"""The cache-pressure simulation: every request answered, deterministic per seed, a row per quick point."""

from __future__ import annotations

import pytest

from benchmarks.cache_pressure.__main__ import main
from benchmarks.cache_pressure.plan import Point
from benchmarks.cache_pressure.sim import Served, Simulation
from router.routing.policies.registry import build_policy
from router.settings import PolicySettings

POINT = Point(engines=2, users=4, gpu_cache_tokens=16_384, cpu_tier=False, duration_s=10.0)


def _run(kind: str, seed: int = 0) -> list[tuple[str, int, float | None]]:
    served = Simulation(POINT, [build_policy(PolicySettings(kind=kind, params={}))], seed).run()
    return [(s.user, s.engine, s.ttft_s) for s in served]


@pytest.mark.parametrize("kind", ["round_robin", "session", "prefix"])
def test_every_request_gets_a_first_token(kind: str) -> None:
    """Every request sent (warm-up included) is answered; a 10 s window sends some."""
    served = _run(kind)
    assert len(served) > 4
    assert all(ttft is not None and ttft > 0 for _, _, ttft in served)


def test_same_seed_same_run() -> None:
    """Virtual time: one seed gives the same placements and TTFTs on every run."""
    assert _run("prefix", 1) == _run("prefix", 1)


def test_point_rejects_a_bad_cache() -> None:
    """A point names the field it rejects."""
    with pytest.raises(ValueError, match="GPU tokens"):
        Point(engines=2, users=4, gpu_cache_tokens=10, cpu_tier=False)


def test_quick_prints_a_row_per_point(capsys: pytest.CaptureFixture[str]) -> None:
    """`--quick`: a header, a separator and one row per quick point, with both ratios."""
    main(["--quick"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.count("|") == 7 for line in lines[2:])


def test_independent_arrivals_answer_every_request_and_repeat() -> None:
    """`arrivals` "independent": every request answered, the same run per seed, users joining
    as others leave (more users than slots within a long enough window)."""
    point = Point(engines=2, users=4, gpu_cache_tokens=16_384, cpu_tier=False, duration_s=40.0,
                  arrivals="independent")

    def run() -> list[tuple[str, int, float | None]]:
        served = Simulation(point, [build_policy(PolicySettings(kind="prefix", params={}))], 3).run()
        return [(s.user, s.engine, s.ttft_s) for s in served]
    first = run()
    assert first == run()
    assert all(ttft is not None and ttft > 0 for _, _, ttft in first)
    assert len({user for user, _, _ in first}) > point.users


def test_independent_think_times_offer_the_point_rate() -> None:
    """Exponential think times with mean `user_gap_s`: a slot's launches average one gap apart."""
    import random

    from bench.schedule import Pacing
    from benchmarks.cache_pressure.arrivals import next_launch

    pacing = Pacing(users=10, rounds=10, qps=2.0, duration_s=60.0)
    rng, at = random.Random(0), 0.0
    for _ in range(20_000):
        at = next_launch(rng, pacing, at, at)
    assert abs(at / 20_000 - pacing.user_gap_s) < 0.1
    assert next_launch(rng, pacing, 0.0, 1e6) == 1e6  # never before the previous answer


def test_point_rejects_unknown_arrivals() -> None:
    with pytest.raises(ValueError, match="arrivals must be one of paced, independent"):
        Point(engines=2, users=4, gpu_cache_tokens=16_384, cpu_tier=False, arrivals="poisson")


def _prefix_events(point: Point, seed: int = 0) -> list[Served]:
    policy = build_policy(PolicySettings(kind="prefix", params={}))
    return Simulation(point, [policy], seed, events=True).run()


def test_events_mode_predicts_what_a_roomy_engine_hits() -> None:
    """`events`: the router's view is fed by the engines' own KV events; with roomy caches nothing
    is evicted between the decision and admission, so what the policy was told the chosen engine
    holds (GPU and CPU tiers) is exactly what the engine hit, for every request."""
    for cpu in (False, True):
        point = Point(engines=2, users=4, gpu_cache_tokens=65_536, cpu_tier=cpu, duration_s=20.0)
        served = [s for s in _prefix_events(point) if s.measured]
        assert len(served) > 10 and sum(s.hit_tokens for s in served) > 0
        assert [s.believed_tokens for s in served] == [s.hit_tokens for s in served]


def test_events_reach_the_view_only_after_their_delay() -> None:
    """A batch is applied `event_delay_s` after the step that produced it, (every one,
    through its feed); the same seed repeats exactly."""
    point = Point(engines=2, users=4, gpu_cache_tokens=65_536, cpu_tier=False, duration_s=20.0)
    policy = build_policy(PolicySettings(kind="prefix", params={}))
    sim = Simulation(point, [policy], 0, events=True, event_delay_s=0.25)
    assert all(s.ttft_s is not None for s in sim.run())
    assert sim.kv_lags and all(abs(lag - 0.25) < 1e-9 for lag in sim.kv_lags)
    first = [(s.user, s.engine, s.ttft_s) for s in _prefix_events(point, 2)]
    assert first == [(s.user, s.engine, s.ttft_s) for s in _prefix_events(point, 2)]


def test_an_exclusive_cpu_tier_is_seen_through_the_events() -> None:
    """The emulator's CPU tier takes what the GPU evicts; its stores and removals reach the view
    (vLLM's offloading-connector events) and the policy is told the CPU part of a hit."""
    point = Point(engines=2, users=10, gpu_cache_tokens=16_384, cpu_tier=True, duration_s=30.0)
    served = [s for s in _prefix_events(point) if s.measured]
    assert sum(s.cpu_hit_tokens for s in served) > 0
    assert all(s.believed_tokens == s.hit_tokens for s in served if s.queued_s == 0.0)


def test_quick_with_events_scoring_prints_a_row_per_point(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--quick", "--scoring", "events"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.count("|") == 7 for line in lines[2:])
