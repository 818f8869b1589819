"""`llm-stack bench` (run the multi-round QA benchmark) and `llm-stack bench plot`.

Only typer is imported at module level; the benchmark's modules load inside the commands.
Every bad flag fails before any load is sent, with the flag, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def _opt(help_text: str) -> typer.models.OptionInfo:
    return typer.Option(help=help_text)


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"llm-stack bench: error: {exc}", err=True)
    return typer.Exit(2)


def _event_loop_runner() -> Any:
    import asyncio

    try:
        import uvloop
    except ImportError:  # uvloop is not built for every platform (Windows)
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


async def _run_with_signals(config: Any, display: str) -> Any:
    """Run the benchmark with a `live` bar, `log` lines or no (`none`) progress display; the
    first Ctrl-C stops it and keeps what was measured, a second one aborts."""
    import asyncio
    import contextlib
    import signal

    from bench.progress import LiveProgress, LogProgress
    from bench.runner import run_benchmark

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def first_interrupt() -> None:
        typer.echo("\ninterrupted: stopping, writing what was measured (Ctrl-C again to abort)", err=True)
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, first_interrupt)
    if display == "live":
        with LiveProgress() as progress:
            return await run_benchmark(config, stop=stop, progress=progress)
    lines = LogProgress(lambda line: typer.echo(line, err=True)) if display == "log" else None
    return await run_benchmark(config, stop=stop, progress=lines)


def _warn_missing_metrics(config: Any, answered: tuple[str, ...]) -> None:
    from bench.metrics_scrape import metrics_url

    wanted = [metrics_url(u) for u in (config.metrics_urls or ())]
    missing = [u for u in wanted if u not in answered]
    if missing:
        typer.echo(f"--metrics-url: no vLLM prefix-cache counters at {', '.join(missing)}", err=True)
    if not answered:
        typer.echo("cache hit rate: not measured (no engine /metrics with vLLM counters; see --metrics-url)",
                   err=True)


def run_cli(config: Any, out: Path | None, display: str) -> None:
    """Run, print the table, write the report (also after Ctrl-C)."""
    from bench.errors import BenchError
    from bench.report import print_table, write_report

    try:
        with _event_loop_runner() as runner:
            result = runner.run(_run_with_signals(config, display))
    except BenchError as exc:
        raise _fail(exc) from None
    print_table([p.stats for p in result.points])
    _warn_missing_metrics(config, result.metrics_urls)
    if out is not None:
        typer.echo(f"wrote {write_report(result, out)}/{{requests.csv,summary.json}}", err=True)
    if result.interrupted:
        raise typer.Exit(130)


def _config(flags: dict[str, Any]) -> Any:
    """The BenchConfig the flags describe (ConfigError names the bad flag)."""
    from bench.config import BenchConfig, parse_durations, parse_qps

    durations = parse_durations(flags["duration"])
    return BenchConfig(
        base_url=flags["base_url"], model=flags["model"], api_key=flags["api_key"], users=flags["users"],
        rounds=flags["rounds"], system_prompt_tokens=flags["system_prompt_tokens"],
        history_tokens=flags["history_tokens"], question_tokens=flags["question_tokens"],
        answer_tokens=flags["answer_tokens"], qps=parse_qps(flags["qps"]), duration_s=durations[0],
        durations_s=durations if len(durations) > 1 else None, drain_s=flags["drain"],
        warmup=flags["warmup"], request_timeout_s=flags["request_timeout"], seed=flags["seed"],
        sharegpt=str(flags["sharegpt"]) if flags["sharegpt"] else None,
        metrics_urls=_split(flags["metrics_url"]), label=flags["label"],
    )


def bench_command(
    ctx: typer.Context,
    base_url: Annotated[str, _opt("Endpoint root (router or engine).")] = "http://127.0.0.1:8000",
    model: Annotated[str, _opt("Model to ask for; default: the first the endpoint serves.")] = "",
    api_key: Annotated[str, typer.Option(envvar="LLM_STACK_API_KEY", help="Bearer token.")] = "",
    users: Annotated[int, _opt("Concurrent users.")] = 320,
    rounds: Annotated[int, _opt("Rounds (questions) per user.")] = 10,
    system_prompt_tokens: Annotated[int, _opt("System prompt shared by all users.")] = 1000,
    history_tokens: Annotated[int, _opt("Private history per user.")] = 20000,
    question_tokens: Annotated[int, _opt("Tokens per question.")] = 32,
    answer_tokens: Annotated[int, _opt("max_tokens per answer.")] = 100,
    qps: Annotated[str, _opt("One QPS, a comma sweep (0.5,1,2) or start:stop:step.")] = "1",
    duration: Annotated[str, _opt("Seconds of launches per QPS point (or one per --qps value).")] = "60",
    drain: Annotated[float, _opt("Seconds to wait for answers after the window.")] = 60.0,
    request_timeout: Annotated[float, _opt("Seconds without a byte before a request fails.")] = 600.0,
    seed: Annotated[int, _opt("Workload seed.")] = 0,
    sharegpt: Annotated[Path | None, _opt("ShareGPT JSON: questions and answer lengths.")] = None,
    metrics_url: Annotated[str | None, _opt(
        "Engine /metrics URLs (comma list); default: the base URL's, if it has vLLM counters."
    )] = None,
    out: Annotated[Path | None, _opt("Write DIR/requests.csv and DIR/summary.json.")] = None,
    label: Annotated[str, _opt("Name of this run in plots.")] = "",
    warmup: Annotated[bool, _opt("Resend each user's previous round once before measuring.")] = True,
    progress: Annotated[bool, _opt("Progress: a live bar on a terminal, else a line per point.")] = True,
) -> None:
    """Run the multi-round QA benchmark (or `bench plot RUN_DIR...`)."""
    if ctx.invoked_subcommand is not None:
        return
    import sys

    from bench.errors import BenchError

    try:
        config = _config(dict(locals()))
    except BenchError as exc:
        raise _fail(exc) from None
    run_cli(config, out, ("live" if sys.stderr.isatty() else "log") if progress else "none")


def plot_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories written by `bench --out`.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("bench.png"),
) -> None:
    """Draw TTFT-vs-QPS and ITL-vs-QPS curves of several runs into one PNG."""
    from bench.errors import BenchError
    from bench.plot import plot_runs

    try:
        typer.echo(f"wrote {plot_runs(run_dirs, out)}")
    except BenchError as exc:
        raise _fail(exc) from None


def register(app: typer.Typer) -> None:
    """Add the `bench` group (its callback runs the benchmark) and `bench plot`."""
    bench = typer.Typer(help="Multi-round QA benchmark against an OpenAI-compatible endpoint.",
                        invoke_without_command=True, no_args_is_help=False)
    bench.callback()(bench_command)
    bench.command("plot")(plot_command)
    app.add_typer(bench, name="bench")
