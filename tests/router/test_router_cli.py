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


@pytest.mark.parametrize(("data", "field", "allowed"), [
    ({"limits": {"upstream_read_timeout_s": 600}}, "limits.upstream_read_timeout_s",
     "was replaced by 'deadlines'"),
    ({"deadlines": {"default": {"first_byte_s": 0}}}, "deadlines.default.first_byte_s", "(0, 86400]"),
    ({"deadlines": {"models": {"m": {"whole_s": 5, "first_byte_s": 10}}}}, "deadlines.models.m.whole_s",
     "must be >= first_byte_s"),
    ({"deadlines": {"default": {"per_token_s": 1}}}, "deadlines.default.per_token_s",
     "allowed: first_byte_s"),
    ({"deadlines": {"fallback": {}}}, "deadlines.fallback", "allowed: default, models"),
    ({"limits": {"max_migrations": -1}}, "limits.max_migrations", "0..16"),
    ({"ejection": {"max_out_fraction": 2}}, "ejection.max_out_fraction", "[0, 1]"),
])
def test_deadline_migration_and_ejection_settings_name_what_is_wrong(data: dict, field: str,
                                                                     allowed: str) -> None:
    from router.settings import RouterSettings
    with pytest.raises(SettingsError) as info:
        RouterSettings.from_dict({"engines": [{"url": "http://e:8000"}], **data})
    assert info.value.field_name == field and allowed in str(info.value)


def test_per_model_deadlines_round_trip_and_fall_back_to_the_default() -> None:
    from router.settings import RouterSettings
    data = {"engines": [{"url": "http://e:8000"}],
            "deadlines": {"models": {"big": {"first_byte_s": 103, "inter_chunk_s": 47, "whole_s": 3703}}}}
    settings = RouterSettings.from_dict(data)
    assert RouterSettings.from_dict(settings.to_dict()) == settings
    assert settings.deadlines.for_model("big").inter_chunk_s == 47
    assert settings.deadlines.for_model("other") == settings.deadlines.default


def test_a_sole_router_policy_refuses_several_workers(tmp_path: Path) -> None:
    """`policy.params.sole_router` places new conversations by one process's load: with more
    than one worker process (each its own index) the settings are refused, naming `workers`."""
    config = tmp_path / "router.json"
    config.write_text(json.dumps({"policy": {"kind": "prefix", "params": {"sole_router": True}}}))
    with pytest.raises(SettingsError, match="'workers' must be 1 with policy.params.sole_router"):
        build_settings(str(config), engines="http://a:1", workers=2)
    assert build_settings(str(config), engines="http://a:1", workers=1).policy.params == {"sole_router": True}
