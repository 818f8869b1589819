"""`llm-stack router` and `python -m router`: one settings object from file, env and flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import build_app
from router.settings import SettingsError, build_settings


def test_flags_override_the_file_and_build_one_settings_object(tmp_path: Path) -> None:
    """File values are kept unless a flag overrides them; engines from flags replace discovery."""
    config = tmp_path / "router.yaml"
    config.write_text("discovery: {namespace: serving}\nport: 9000\npolicy: {kind: session, params: {}}\n"
                      "limits: {max_body_bytes: 1000}\n")
    settings = build_settings(str(config), engines="http://a:1, http://b:2", model="llama",
                              engine_capacity_tokens=1234, workers=2)
    assert [e.url for e in settings.engines] == ["http://a:1", "http://b:2"] and settings.discovery is None
    assert (settings.port, settings.policy.kind, settings.models) == (9000, "session", ("llama",))
    assert settings.default_gpu_cache_tokens == 1234 and settings.workers == 2
    assert settings.limits.max_body_bytes == 1000
    assert build_settings(str(config), port=8081).discovery.namespace == "serving"  # type: ignore[union-attr]


@pytest.mark.parametrize(("args", "field"), [
    (["--engines", "http://a:1", "--port", "0"], "'port'"),
    (["--engines", "http://a:1", "--policy", "nope"], "'policy.kind'"),
    (["--engines", "ftp://a"], "'engines.url'"),
    (["--engines", "http://a:1", "--workers", "0"], "'workers'"),
    ([], "'engines'"),
])
def test_invalid_settings_exit_2_naming_the_field(args: list[str], field: str) -> None:
    """Every invalid value is refused before serving, with a message naming the setting."""
    result = CliRunner().invoke(build_app(), ["router", *args])
    assert result.exit_code == 2 and field in result.output, result.output


def test_environment_variables_feed_the_flags() -> None:
    """LLMSTACK_ROUTER_* variables stand in for flags (here an invalid port, to stop before serving)."""
    env = {"LLMSTACK_ROUTER_ENGINES": "http://a:1", "LLMSTACK_ROUTER_PORT": "70000"}
    result = CliRunner().invoke(build_app(), ["router"], env=env)
    assert result.exit_code == 2 and "'port'" in result.output and "70000" in result.output


def test_settings_file_errors_name_the_field(tmp_path: Path) -> None:
    """Unknown keys, unreadable and malformed files are SettingsErrors naming what is wrong."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"engines": [{"url": "http://a:1"}], "limits": {"max_body": 1}}))
    with pytest.raises(SettingsError, match="'limits.max_body'"):
        build_settings(str(bad))
    with pytest.raises(SettingsError, match="'config'"):
        build_settings(str(tmp_path / "missing.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(SettingsError, match="mapping"):
        build_settings(str(tmp_path / "list.yaml"))


def test_python_m_router_needs_a_config_and_reports_bad_ones(tmp_path: Path) -> None:
    """The container entrypoint refuses to start without a valid settings file."""
    missing = subprocess.run([sys.executable, "-m", "router"], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "--config" in missing.stderr
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"engines": [{"url": "http://a:1"}], "port": 0}))
    bad = subprocess.run([sys.executable, "-m", "router", "--config", str(config)], capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 2 and "'port'" in bad.stderr
