"""`llm-stack autoscale --out DIR`: the closed autoscaling loop on this machine (needs the
`prometheus` binary, which `make install` provides). Writes DIR/autoscale.png and
DIR/autoscale.json and prints the summary."""

from __future__ import annotations

import typer


def run_autoscale(out: str, quick: bool = False, say=print) -> dict:
    """Run the loop into `out`; returns the summary document."""
    from pathlib import Path

    import orjson

    from local.autoscale.loop import run_loop
    from local.autoscale.plan import AutoscalePlan
    from local.autoscale.plot import plot
    from local.autoscale.summary import lines, summarize
    from local.procs import processes

    plan = AutoscalePlan.quick() if quick else AutoscalePlan()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    say(f"closed loop: {plan.duration_s:.0f} s, one engine ≈ {plan.engine_rps:.1f} req/s, load "
        f"{plan.base_rps_share:g} → {plan.peak_engines:g} engines' worth and back, "
        f"policy clock × {plan.time_scale:g}")
    with processes(out_dir / "logs") as procs:
        run = run_loop(plan, out_dir / "work", procs)
    doc = summarize(plan, run.samples, run.changes, run.sent)
    doc["trigger_queries_max"] = run.trigger_max
    doc["plot"] = str(plot(run.samples, run.sent, plan.ttft_objective_s, out_dir / "autoscale.png"))
    doc["samples"] = [s.__dict__ for s in run.samples]
    (out_dir / "autoscale.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    for line in lines(doc):
        say(line)
    say(f"wrote {doc['plot']} and {out_dir / 'autoscale.json'}")
    return doc


def run_from_zero(out: str, quick: bool = False, say=print) -> dict:
    """The scale-from-zero scenario (`local.autoscale.wake`) into `out`; returns its summary."""
    from pathlib import Path

    import orjson

    from local.autoscale.wake import WakePlan, lines, run_wake
    from local.procs import processes

    plan = WakePlan.quick() if quick else WakePlan()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    say(f"scale from zero: one model at 0 engines, load time {plan.load_time_s} s, polling "
        f"{plan.polling_interval_s} s, policy clock × {plan.time_scale:g}")
    with processes(out_dir / "logs") as procs:
        doc = run_wake(plan, out_dir / "work", procs)
    (out_dir / "from-zero.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    for line in lines(doc):
        say(line)
    return doc


def register(app: typer.Typer) -> None:
    @app.command()
    def autoscale(
        out: str = typer.Option("autoscale-out", "--out", help="Directory for the plot and summary."),
        quick: bool = typer.Option(False, "--quick", help="A shorter ramp (about 50 s)."),
        from_zero: bool = typer.Option(False, "--from-zero", help="Dev-style scale from zero instead: "
                                       "0 engines, the first request held and answered (about 20 s)."),
    ) -> None:
        """Closed-loop autoscaling: emulated engines, router, Prometheus, local scaler, load ramp."""
        from bench.errors import EndpointError, PlotError
        from bench.plot import pyplot
        from local.autoscale.loop import LoopError
        from local.procs import BenchError

        try:
            if from_zero:
                if not run_from_zero(out, quick=quick, say=typer.echo)["ok"]:
                    raise typer.Exit(1)
                return
            pyplot()  # it ends with a plot: without matplotlib, fail before starting anything
            run_autoscale(out, quick=quick, say=typer.echo)
        except (LoopError, BenchError, PlotError, EndpointError) as exc:
            typer.echo(f"autoscale failed: {exc}", err=True)
            raise typer.Exit(1) from None
