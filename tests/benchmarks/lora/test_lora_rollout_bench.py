"""`benchmarks.lora.rollout` end to end on loopback (quick): router processes and emulated
engines through a 90/10 -> 0/100 rollout under load answer every request, with streams open on
the old routers at their SIGTERM, the old split sending some conversations to v2 and the new
one all of them."""

from __future__ import annotations

from benchmarks.lora.rollout import line, run


def test_the_quick_rollout_answers_every_request() -> None:
    """0 non-2xx of a few hundred; v2 took some (not all) before and all after; the old routers
    drained open streams and exited 0."""
    result = run(quick=True)
    print(line(result))
    assert result["requests"] > 100 and result["non_2xx"] == 0, result
    assert 0 < result["v2_share_before"] < 0.5 and result["v2_share_after"] == 1.0, result
    assert result["in_flight_at_sigterm"] > 0 and result["router_exits"] == [0, 0], result
