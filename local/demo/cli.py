"""`llm-stack demo --out DIR` (and `make demo`): the whole stack locally.

4 emulated vLLM engines sized so that round-robin thrashes their caches while per-user
affinity fits (arithmetic in `local.demo.plan`), our router, a real Prometheus when
installed, and the seed's multi-round QA benchmark swept over QPS with `round_robin`,
`session` and `prefix` (fresh engines per policy). Prints a comparison table and writes
DIR/summary.json, DIR/ttft_vs_qps.png and each policy's run under DIR/runs/.
"""

from __future__ import annotations

import typer


def run_demo(out: str, quick: bool = False, say=print) -> dict:
    """Run the demo into `out`; returns the summary document."""
    from pathlib import Path

    import orjson

    from bench import plot_runs
    from local.demo import summary
    from local.demo.plan import DemoPlan, capacity
    from local.demo.stack import run_all

    plan = DemoPlan.quick() if quick else DemoPlan()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    cap = capacity(plan)
    say(f"engines: {plan.engines} x (GPU {cap.gpu_tokens:,} + CPU {cap.cpu_tokens:,} tokens); "
        f"per engine, affinity needs {cap.affinity_tokens:,}, round-robin {cap.round_robin_tokens:,}")
    stats, elapsed, prom = run_all(plan, out_dir, say)
    doc = summary.build_summary(plan, cap, stats, elapsed_s=elapsed, prometheus=prom)
    (out_dir / "summary.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    plot_runs([out_dir / "runs" / p for p in plan.policies], out_dir / "ttft_vs_qps.png")
    say("\n" + summary.table(doc) + "\n")
    say(summary.finding_line(doc))
    say(f"wrote {out_dir / 'summary.json'} and {out_dir / 'ttft_vs_qps.png'} in {elapsed:.0f} s")
    return doc


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: str = typer.Option("demo-out", "--out", help="Directory for summary.json, the plot and runs."),
        quick: bool = typer.Option(False, "--quick", help="A few seconds: two policies, one QPS point."),
    ) -> None:
        """The whole stack locally: emulated engines, router, Prometheus, benchmark sweep."""
        from bench.errors import PlotError
        from bench.plot import pyplot
        from local.demo.errors import DemoError

        try:
            pyplot()  # it ends with plots: without matplotlib, fail before starting anything
            run_demo(out, quick=quick, say=typer.echo)
        except (DemoError, PlotError) as exc:
            typer.echo(f"demo failed: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("demo interrupted: every process it started has been stopped", err=True)
            raise typer.Exit(130) from None
