"""Reading the routers' and engines' Prometheus text."""

from __future__ import annotations

from benchmarks.chaos.cluster import COMPLETED, MIGRATIONS, metric_sum


def test_migrations_are_read_by_outcome_and_a_missing_metric_is_none():
    """`completed` is what `migrated` counts; the other outcomes apart; no metric: None (reads 0)."""
    text = ('# TYPE llmstack_router_migrations_total counter\n'
            'llmstack_router_migrations_total{model="m",outcome="completed"} 3.0\n'
            'llmstack_router_migrations_total{model="n",outcome="completed"} 1.0\n'
            'llmstack_router_migrations_total{model="m",outcome="failed"} 2.0\n'
            'llmstack_router_migrations_totally_else 7.0\n')
    assert metric_sum(text, MIGRATIONS, COMPLETED) == 4.0
    assert metric_sum(text, MIGRATIONS, COMPLETED, without=True) == 2.0
    assert metric_sum(text, MIGRATIONS) == 6.0 and metric_sum("up 1\n", MIGRATIONS) is None
