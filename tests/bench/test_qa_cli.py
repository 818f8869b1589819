"""`llm-stack bench` and `bench plot` through the real Typer app: fail-fast flag errors, a
small run writing requests.csv and summary.json, and the plot."""

from __future__ import annotations

import csv
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from cli import build_app

SMALL = ["--users", "3", "--rounds", "2", "--system-prompt-tokens", "16", "--history-tokens", "32",
         "--question-tokens", "4", "--answer-tokens", "3", "--duration", "0.5", "--drain", "5",
         "--no-warmup"]


def _bench(*args: str):
    return CliRunner().invoke(build_app(), ["bench", *args])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("args", "message"), [
    (["--qps", "-1"], "--qps: must be a positive number of requests/s (got -1.0)"),
    (["--qps", "1,fast"], "--qps: must be a number, a comma list or start:stop:step (got '1,fast')"),
    (["--users", "0"], "--users: must be at least 1 (got 0)"),
    (["--duration", "0"], "--duration: must be a positive number of seconds (got 0.0)"),
    (["--qps", "1,2", "--duration", "5,6,7"], "--duration: must be one duration per --qps value (2)"),
])
def test_bad_flags_fail_before_any_request(args, message):
    """Invalid values exit with status 2 and a message naming flag, value and allowed range."""
    result = _bench("--base-url", f"http://127.0.0.1:{_closed_port()}", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_unreachable_url_fails_fast():
    """A URL nobody listens on is reported as unreachable, naming --base-url and the URL."""
    url = f"http://127.0.0.1:{_closed_port()}"
    result = _bench("--base-url", url, *SMALL)
    assert result.exit_code == 2
    assert f"--base-url: cannot reach {url}/v1/models" in result.output


def test_model_not_served_fails_fast(fake_engine):
    """Asking for a model the endpoint does not list fails with the served models named."""
    result = _bench("--base-url", fake_engine.url, "--model", "gpt-9", *SMALL)
    assert result.exit_code == 2
    assert "--model: 'gpt-9' is not served by" in result.output and "fake/llama" in result.output
    assert fake_engine.seen == []


def test_run_writes_csv_and_summary_then_plots(fake_engine, tmp_path):
    """A sweep writes a CSV row per request, a summary point per QPS, and `bench plot` draws it."""
    out = tmp_path / "run"
    result = _bench("--base-url", fake_engine.url + "/v1", "--qps", "6,10", "--out", str(out),
                    "--api-key", "sk-test", "--label", "fake", *SMALL)
    assert result.exit_code == 0, result.output
    assert "QPS 6 done:" in result.output and "QPS 10 done:" in result.output  # log-line progress
    with (out / "requests.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert len(rows) == len(fake_engine.seen) == sum(p["launched"] for p in summary["points"]) >= 6
    assert [p["qps"] for p in summary["points"]] == [6.0, 10.0]
    assert summary["label"] == "fake" and summary["config"]["api_key"] == "***"
    assert all(s["auth"] == "Bearer sk-test" for s in fake_engine.seen)
    assert summary["points"][0]["cache_hit_rate"] is not None
    assert all(float(r["ttft_s"]) > 0 and r["status"] == "200" for r in rows)
    png = tmp_path / "ttft.png"
    plotted = CliRunner().invoke(build_app(), ["bench", "plot", str(out), str(out), "--out", str(png)])
    assert plotted.exit_code == 0, plotted.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_a_missing_run_dir_names_it(tmp_path):
    """`bench plot` on a directory without summary.json fails with the directory named."""
    result = CliRunner().invoke(build_app(), ["bench", "plot", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "nope" in result.output and "summary.json" in result.output


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    """Plotting is the `plot` extra: without matplotlib, `bench plot` fails (2) naming the extra."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text('{"label": "x", "points": [{"qps": 1.0}]}')
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it raises ModuleNotFoundError
    result = CliRunner().invoke(build_app(), ["bench", "plot", str(run), "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 2
    assert "pip install 'llm-stack[plot]'" in result.output and not (tmp_path / "p.png").exists()


def test_ctrl_c_stops_the_run_and_writes_what_it_has(fake_engine, tmp_path):
    """SIGINT ends the run within seconds (exit 130) and writes the results marked interrupted."""
    fake_engine.token_pause_s = 0.02
    out = tmp_path / "cut"
    args = [*SMALL, "--duration", "60", "--qps", "10", "--base-url", fake_engine.url, "--out", str(out)]
    script = Path(sys.executable).with_name("llm-stack")
    proc = subprocess.Popen([str(script), "bench", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while len(fake_engine.seen) < 3:
            assert time.monotonic() < deadline and proc.poll() is None, "benchmark never sent 3 requests"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=15)[0].decode()
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["interrupted"] is True and summary["points"][0]["launched"] >= 3
    assert (out / "requests.csv").read_text().count("\n") == summary["points"][0]["launched"] + 1
