"""From raw measurements to the figures, the side-by-side table and the verdict on each of
the issue's speed targets. Pure: medians over repeats, differences against the direct run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.router_bench.plan import LATENCY, PLAIN, STREAM, Plan
from benchmarks.router_bench.run import DIRECT, Measurement, MemoryPoint, Results
from benchmarks.router_bench.stats import cpu_per_request_us, cpu_per_token_us, median, same_decisions

OURS = "ours prefix w1"
OURS_W2 = "ours prefix w2"
OURS_GRANIAN = "ours granian prefix w1"
PEER = "sglang cache_aware"
MB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Row:
    """Median figures of one target over the repeats."""

    target: str
    cpu_c1_us: float
    cpu_c16_us: float
    cpu_c16_range_us: tuple[float, float]  # min and max over the repeats: how noisy it was
    cpu_token_us: float
    p50_c1_ms: float
    added_p50_ms: float
    stream_ttfb_ms: float  # c=16 streamed: first byte p50 (a stall here is a missing TCP_NODELAY)
    stream_p50_ms: float  # c=16 streamed: whole 64-token stream p50
    rps_c16: float
    router_cores_c16: float  # router CPU seconds per wall second during the c=16 run
    engine_cpu_c16_us: float
    errors: int


@dataclass(frozen=True, kw_only=True)
class Target:
    """One of the issue's targets: the claim, the measured value and whether it holds."""

    claim: str
    measured: str
    met: bool | None  # None: not measured in this run


def _of(ms: Sequence[Measurement], target: str, scenario: str) -> list[Measurement]:
    return [m for m in ms if m.target == target and m.scenario == scenario]


def _cpu_each_us(ms: Sequence[Measurement]) -> list[float]:
    return [cpu_per_request_us(m.router_cpu_s, max(m.load.ok, 1)) for m in ms]


def _cpu_us(ms: Sequence[Measurement]) -> float:
    return median(_cpu_each_us(ms))


def row(results: Results, target: str, plan: Plan) -> Row:
    """The median figures of `target`."""
    ms = results.measurements
    c1, c16, st = _of(ms, target, LATENCY), _of(ms, target, PLAIN), _of(ms, target, STREAM)
    p50 = median([m.load.p50_s * 1e3 for m in c1])
    direct = median([m.load.p50_s * 1e3 for m in _of(ms, DIRECT, LATENCY)])
    cpu_c16 = _cpu_us(c16)
    return Row(
        target=target, cpu_c1_us=_cpu_us(c1), cpu_c16_us=cpu_c16,
        cpu_c16_range_us=(min(_cpu_each_us(c16), default=0.0), max(_cpu_each_us(c16), default=0.0)),
        cpu_token_us=cpu_per_token_us(_cpu_us(st), cpu_c16, plan.max_tokens),
        p50_c1_ms=p50, added_p50_ms=p50 - direct,
        stream_ttfb_ms=median([m.load.ttfb_p50_s * 1e3 for m in st]),
        stream_p50_ms=median([m.load.p50_s * 1e3 for m in st]),
        rps_c16=median([m.load.rps for m in c16]),
        router_cores_c16=median([m.router_cpu_s / m.load.wall_s for m in c16 if m.load.wall_s > 0]),
        engine_cpu_c16_us=median([cpu_per_request_us(m.engine_cpu_s, max(m.load.ok, 1)) for m in c16]),
        errors=sum(m.load.errors for m in ms if m.target == target),
    )


def targets_in(results: Results) -> list[str]:
    """Targets in first-seen order."""
    seen: dict[str, None] = {}
    for m in results.measurements:
        seen.setdefault(m.target, None)
    return list(seen)


def decisions_agree(results: Results, scenario: str) -> tuple[int, int]:
    """Conversations placed on the same single engine by one worker and by two in `scenario`
    (summed over repeats, pairing runs of the same repeat). At c=1 placement is by cache and
    hash alone; at c=16 the bounded-load rule also moves requests off a busy engine, and each
    worker sees only its own in-flight requests."""
    same = total = 0
    for a in _of(results.measurements, OURS, scenario):
        for b in _of(results.measurements, OURS_W2, scenario):
            if a.repeat == b.repeat:
                s, t = same_decisions(a.placements, b.placements)
                same, total = same + s, total + t
    return same, total


def _memory_after(points: Sequence[MemoryPoint], target: str) -> MemoryPoint | None:
    mine = [p for p in points if p.target == target]
    return max(mine, key=lambda p: p.prompts) if mine else None


def _ratio_target(rows: dict[str, Row]) -> Target:
    ours, peer = rows.get(OURS), rows.get(PEER)
    if not ours or not peer:
        return Target(claim="CPU/request (c=16) <= 1.5x sglang cache_aware", measured="not run", met=None)
    ratio = ours.cpu_c16_us / peer.cpu_c16_us
    return Target(claim="CPU/request (c=16) <= 1.5x sglang cache_aware",
                  measured=f"{ours.cpu_c16_us:.0f} us vs {peer.cpu_c16_us:.0f} us = {ratio:.2f}x",
                  met=ratio <= 1.5)


def _scaling_target(rows: dict[str, Row], results: Results) -> Target:
    w1, w2 = rows.get(OURS), rows.get(OURS_W2)
    if not w1 or not w2:
        return Target(claim="--workers 2 >= 1.8x throughput", measured="not run", met=None)
    same, total = decisions_agree(results, LATENCY)
    same16, total16 = decisions_agree(results, PLAIN)
    ratio = w2.rps_c16 / w1.rps_c16
    return Target(claim="--workers 2 >= 1.8x throughput, same decisions",
                  measured=f"{w2.rps_c16:.0f} vs {w1.rps_c16:.0f} req/s = {ratio:.2f}x "
                           f"(router used {w1.router_cores_c16:.2f} vs {w2.router_cores_c16:.2f} cores); "
                           f"same single engine for {same}/{total} conversations at c=1, "
                           f"{same16}/{total16} at c=16",
                  met=ratio >= 1.8 and same == total)


def granian_target(uvicorn: Row, granian: Row) -> Target:
    """Issue 22: adopt granian only if it costs less CPU per request and per streamed token
    than our uvicorn server (and keeps the behaviours, which this run does not judge)."""
    per_req = granian.cpu_c16_us / uvicorn.cpu_c16_us
    per_token = granian.cpu_token_us / uvicorn.cpu_token_us
    return Target(claim="granian: less CPU per request (c=16) and per streamed token than uvicorn",
                  measured=f"{granian.cpu_c16_us:.0f} us vs {uvicorn.cpu_c16_us:.0f} us = {per_req:.2f}x; "
                           f"{granian.cpu_token_us:.1f} us vs {uvicorn.cpu_token_us:.1f} us per token = "
                           f"{per_token:.2f}x; added p50 c=1 {granian.added_p50_ms:.3f} vs "
                           f"{uvicorn.added_p50_ms:.3f} ms",
                  met=per_req < 1.0 and per_token < 1.0)


def targets(results: Results, plan: Plan) -> list[Target]:
    """The speed targets (issue 12's bounds), judged on this run."""
    rows = {t: row(results, t, plan) for t in targets_in(results)}
    ours, peer = rows.get(OURS), rows.get(PEER)
    out = [_ratio_target(rows)]
    if ours and peer:
        out.append(Target(claim="CPU per streamed token <= sglang cache_aware's",
                          measured=f"{ours.cpu_token_us:.1f} us vs {peer.cpu_token_us:.1f} us",
                          met=ours.cpu_token_us <= peer.cpu_token_us))
    if ours:
        out.append(Target(claim="added p50 latency at c=1 <= 0.3 ms", measured=f"{ours.added_p50_ms:.3f} ms",
                          met=ours.added_p50_ms <= 0.3))
    out.append(_scaling_target(rows, results))
    if ours and OURS_GRANIAN in rows:
        out.append(granian_target(ours, rows[OURS_GRANIAN]))
    mem = _memory_after(results.memory, OURS)
    if mem:
        out.append(Target(claim="RSS <= 300 MB after 1M distinct 8 KB prompts",
                          measured=f"{mem.rss_bytes / MB:.0f} MB after {mem.prompts:,} prompts "
                                   "(index bounded by engine capacity: flat once full)",
                          met=mem.rss_bytes <= 300 * MB))
    return out


def table(results: Results, plan: Plan) -> str:
    """The side-by-side table (markdown)."""
    head = ("| target | CPU/req c=1 (us) | CPU/req c=16 (us, min-max) | CPU/streamed token (us) "
            "| p50 c=1 (ms) | added p50 (ms) | stream first byte / whole p50 (ms) | req/s c=16 "
            "| router cores c=16 | engine CPU/req (us) | errors |")
    lines = [head, "|" + "---|" * 11]
    for t in targets_in(results):
        r = row(results, t, plan)
        router = t != DIRECT
        lines.append(
            f"| {t} | {_fmt(r.cpu_c1_us, router)} | {_spread(r, router)} "
            f"| {_fmt(r.cpu_token_us, router, 1)} | {r.p50_c1_ms:.3f} | {_fmt(r.added_p50_ms, router, 3)} "
            f"| {r.stream_ttfb_ms:.2f} / {r.stream_p50_ms:.1f} | {r.rps_c16:.0f} "
            f"| {_fmt(r.router_cores_c16, router, 2)} | {r.engine_cpu_c16_us:.0f} | {r.errors} |")
    return "\n".join(lines)


def _spread(r: Row, show: bool) -> str:
    low, high = r.cpu_c16_range_us
    return f"{r.cpu_c16_us:.0f} ({low:.0f}-{high:.0f})" if show else "-"


def _fmt(value: float, show: bool, digits: int = 0) -> str:
    return f"{value:.{digits}f}" if show else "-"


def memory_table(results: Results) -> str:
    """RSS per target at each checkpoint (markdown)."""
    lines = ["| target | prompts | RSS (MB) | errors |", "|---|---|---|---|"]
    for p in results.memory:
        lines.append(f"| {p.target} | {p.prompts:,} | {p.rss_bytes / MB:.0f} | {p.errors} |")
    return "\n".join(lines)


def targets_table(items: Sequence[Target]) -> str:
    """The verdicts (markdown)."""
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t.claim} | {t.measured} | {verdict[t.met]} |" for t in items]
    return "\n".join(lines)
