"""The "ours on granian" row (issue 22): its command line, the settings its factory builds, the
tool venv's install marker and the granian-vs-uvicorn verdict. Pure: nothing is started."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from benchmarks.router_bench import granian_app, report, routers
from benchmarks.router_bench.fake_engine import MODEL
from benchmarks.router_bench.venvs import stamp_name
from router.settings import SettingsError, build_settings
from router.shell.server import MAX_HEAD_BYTES

ROOT = Path(__file__).resolve().parents[3]
ENGINES = ["http://127.0.0.1:9101", "http://127.0.0.1:9102"]
# The value each flag takes in granian 2.8's `granian/cli.py` (click options); `--factory` and
# `--no-ws` are switches.
GRANIAN_CHOICES = {"--interface": {"asgi", "asginl", "rsgi", "wsgi"}, "--loop": {"auto", "asyncio", "rloop",
                   "uvloop", "winloop"}, "--http": {"auto", "1", "2"},
                   "--log-level": {"critical", "error", "warning", "warn", "info", "debug", "notset"}}
GRANIAN_VALUED = {*GRANIAN_CHOICES, "--workers", "--host", "--port", "--http1-buffer-size", "--working-dir"}
GRANIAN_SWITCHES = {"--factory", "--no-ws"}


def _flags(argv: list[str]) -> tuple[dict[str, str], set[str], str]:
    """granian's argv split into valued options, switches and the positional target; an
    unknown option, a missing value or a second positional fails the test."""
    valued: dict[str, str] = {}
    switches: set[str] = set()
    positional: list[str] = []
    words = iter(argv[1:])
    for word in words:
        if word in GRANIAN_VALUED:
            value = next(words)
            assert not value.startswith("--"), f"{word} has no value"
            valued[word] = value
        elif word in GRANIAN_SWITCHES:
            switches.add(word)
        else:
            assert not word.startswith("-"), f"{word} is not a granian 2.8 option used here"
            positional.append(word)
    assert len(positional) == 1, positional
    return valued, switches, positional[0]


def test_the_granian_command_line_is_well_formed(tmp_path: Path) -> None:
    spec = routers.ours_on_granian(ROOT, "prefix", 1, 400_000, 920_000)
    argv = spec.argv(ENGINES, 9200, 9201, tmp_path)
    assert argv[0] == str(ROOT / routers.GRANIAN_VENV / "bin" / "granian")
    valued, switches, target = _flags(argv)
    for flag, allowed in GRANIAN_CHOICES.items():
        assert valued[flag] in allowed, (flag, valued[flag])
    assert valued == {"--interface": "asgi", "--loop": "uvloop", "--http": "1", "--workers": "1",
                      "--host": "127.0.0.1", "--port": "9200", "--http1-buffer-size": str(MAX_HEAD_BYTES),
                      "--log-level": "warning", "--working-dir": str(ROOT)}
    assert switches == {"--factory", "--no-ws"}
    module, _, name = target.partition(":")
    assert callable(getattr(importlib.import_module(module), name))  # what granian will import
    assert Path(valued["--working-dir"], *module.split(".")).with_suffix(".py").is_file()
    assert (spec.name, spec.venv) == ("ours granian prefix w1", ".venv-granian")
    assert spec.package == "granian==2.8.9"
    assert spec.pip_args == ("-r", str(ROOT / "router" / "requirements.txt"))
    assert Path(spec.pip_args[1]).is_file()


def test_the_factory_builds_what_llm_stack_router_would_from_its_flags(tmp_path: Path) -> None:
    spec = routers.ours_on_granian(ROOT, "round_robin", 1, 400_000, 920_000)
    for name, text in spec.files:
        (tmp_path / name).write_text(text)
    assert spec.environ is not None
    settings = granian_app.settings_from_env(spec.environ(ENGINES, tmp_path))
    ours = routers.ours("round_robin", 1, 400_000, 920_000)
    (config, _), = ours.files
    (tmp_path / config).write_text(dict(ours.files)[config])
    flags = build_settings(str(tmp_path / config), engines=",".join(ENGINES), model=MODEL,
                           policy="round_robin", engine_capacity_tokens=400_000)
    assert settings == flags
    assert [e.url for e in settings.engines] == ENGINES and settings.policy.kind == "round_robin"
    assert (settings.default_gpu_cache_tokens, settings.default_cpu_cache_tokens) == (400_000, 920_000)


def test_the_factory_returns_the_router_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from router.shell.app import RouterApp

    spec = routers.ours_on_granian(ROOT, "prefix", 1, 1000, 2000)
    for name, text in spec.files:
        (tmp_path / name).write_text(text)
    assert spec.environ is not None
    for key, value in spec.environ(ENGINES, tmp_path).items():
        monkeypatch.setenv(key, value)
    app = granian_app.app()
    assert isinstance(app, RouterApp) and app.settings.models == (MODEL,)


def test_a_bad_capacity_variable_is_named() -> None:
    allowed = r"'LLMSTACK_ROUTER_ENGINE_CAPACITY_TOKENS' must be an integer .* \(got '4e5'\)"
    with pytest.raises(SettingsError, match=allowed):
        granian_app.settings_from_env({"LLMSTACK_ROUTER_ENGINE_CAPACITY_TOKENS": "4e5"})


def test_the_install_marker_changes_with_the_pip_arguments() -> None:
    assert stamp_name("sglang-router==0.3.2") == ".installed-sglang-router-0.3.2"
    a = stamp_name("granian==2.8.9", ("-r", "/a/router/requirements.txt"))
    b = stamp_name("granian==2.8.9", ("-r", "/b/router/requirements.txt"))
    assert a.startswith(".installed-granian-2.8.9-") and a != b
    assert stamp_name("granian==2.8.10", ("-r", "/a/router/requirements.txt")) != a


def _row(target: str, cpu_c16_us: float, cpu_token_us: float, added_ms: float = 0.3) -> report.Row:
    return report.Row(target=target, cpu_c1_us=0.0, cpu_c16_us=cpu_c16_us, cpu_c16_range_us=(0.0, 0.0),
                      cpu_token_us=cpu_token_us, p50_c1_ms=0.0, added_p50_ms=added_ms, stream_ttfb_ms=0.0,
                      stream_p50_ms=0.0, rps_c16=0.0, router_cores_c16=0.0, engine_cpu_c16_us=0.0, errors=0)


def test_granian_is_adopted_only_if_cheaper_per_request_and_per_token() -> None:
    uvicorn = _row(report.OURS, 250.0, 25.0)
    slower = report.granian_target(uvicorn, _row(report.OURS_GRANIAN, 350.0, 50.0, 0.55))
    assert slower.met is False
    assert slower.measured.startswith("350 us vs 250 us = 1.40x; 50.0 us vs 25.0 us per token = 2.00x")
    assert "added p50 c=1 0.550 vs 0.300 ms" in slower.measured
    assert report.granian_target(uvicorn, _row(report.OURS_GRANIAN, 200.0, 30.0)).met is False
    assert report.granian_target(uvicorn, _row(report.OURS_GRANIAN, 200.0, 20.0)).met is True


def test_edge_probe_reads_status_and_body() -> None:
    from benchmarks.router_bench.edges import _body, _status

    reply = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 2\r\n\r\n{}"
    assert (_status(reply), _body(reply)) == ("431", b"{}")
    assert _status(b"") == "no answer" and _status(b"garbage") == "no answer"
