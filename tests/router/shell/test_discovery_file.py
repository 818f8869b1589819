"""File discovery: the file_sd-shaped targets file parsed purely, and a running router that
follows the file as engines come and go."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from router.settings import FileDiscovery, RouterSettings, SettingsError, build_settings
from router.shell.discovery.file import FileWatcher, TargetsFileError, parse_targets
from tests.router.fake_engine import FakeEngine
from tests.router.harness import json_session, run, running, settings_for, until

DISCOVERY = FileDiscovery(path="unused")


def _write(path: Path, groups: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    os.replace(tmp, path)


def test_parse_reads_targets_models_and_capacities():
    """Targets become engines; model_name, the capacity labels and __scheme__ are honoured."""
    text = json.dumps([
        {"targets": ["10.0.0.5:8000", "10.0.0.6:8000"],
         "labels": {"model_name": "llama", "__llmstack_gpu_cache_tokens": "1000",
                    "__llmstack_cpu_cache_tokens": "5"}},
        {"targets": ["e:443"], "labels": {"__scheme__": "https"}},
    ])
    specs = parse_targets(text, DISCOVERY, default_gpu=7, default_cpu=0)
    assert [s.url for s in specs] == ["http://10.0.0.5:8000", "http://10.0.0.6:8000", "https://e:443"]
    assert specs[0].models == frozenset({"llama"}) and specs[0].gpu_cache_tokens == 1000
    assert specs[0].cpu_cache_tokens == 5 and specs[2].gpu_cache_tokens == 7 and not specs[2].models


@pytest.mark.parametrize(("text", "message"), [
    ("{}", "list of target groups"),
    ('[{"labels": {}}]', "target group 0 must be a mapping with a 'targets' list"),
    ('[{"targets": ["http://a:1"]}]', "must be 'host:port'"),
    ('[{"targets": ["a:1"], "labels": {"__llmstack_gpu_cache_tokens": "lots"}}]', "must be an integer"),
    ('[{"targets": ["a:1"], "labels": {"__scheme__": "ftp"}}]', "http or https"),
])
def test_parse_refuses_malformed_files(text, message):
    """A malformed file is a TargetsFileError saying where."""
    with pytest.raises(TargetsFileError, match=message):
        parse_targets(text, DISCOVERY, default_gpu=1, default_cpu=0)


def test_bad_file_keeps_last_engines_and_missing_file_empties(tmp_path: Path):
    """A file that does not parse keeps the last good set; a missing one means no engines."""
    path = tmp_path / "engines.json"
    applied: list[list[str]] = []
    watcher = FileWatcher(FileDiscovery(path=str(path)), lambda s: applied.append([e.url for e in s]),
                          default_gpu=1, default_cpu=0)
    _write(path, [{"targets": ["a:1"]}])
    assert watcher.poll() and applied[-1] == ["http://a:1"]
    assert not watcher.poll()  # unchanged
    path.write_text("[{not json")
    assert not watcher.poll() and applied[-1] == ["http://a:1"]
    path.unlink()
    assert watcher.poll() and applied[-1] == []


def test_settings_select_file_discovery(tmp_path: Path):
    """--engines-file selects file discovery; it excludes the other sources."""
    settings = build_settings(None, engines_file=str(tmp_path / "e.json"))
    assert settings.file_discovery is not None and settings.file_discovery.path.endswith("e.json")
    assert RouterSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(SettingsError, match="exactly one"):
        RouterSettings(engines=(), discovery=None, file_discovery=None)


def test_router_follows_the_file_while_running(tmp_path: Path):
    """Engines added to the file receive traffic; removed ones stop receiving it."""
    path = tmp_path / "engines.json"

    async def body() -> None:
        engines = [FakeEngine(name="a"), FakeEngine(name="b")]
        urls = [await e.start() for e in engines]
        targets = [u.removeprefix("http://") for u in urls]
        _write(path, [{"targets": targets[:1], "labels": {"model_name": "m"}}])
        settings = settings_for([], engines=(), file_discovery=FileDiscovery(path=str(path), interval_s=0.05))
        async with running(settings) as (app, base), json_session() as http:
            await until(lambda: set(app.registry.states) == {urls[0]})
            _write(path, [{"targets": targets, "labels": {"model_name": "m"}}])
            await until(lambda: set(app.registry.states) == set(urls))
            await until(lambda: app.registry.healthy_count() == 2)
            for _ in range(4):
                async with http.post(f"{base}/v1/completions", json={"model": "m", "prompt": "hi"}) as resp:
                    assert resp.status == 200
            assert engines[0].requests >= 1 and engines[1].requests >= 1
            _write(path, [{"targets": targets[1:], "labels": {"model_name": "m"}}])
            await until(lambda: set(app.registry.states) == {urls[1]})
        for e in engines:
            await e.stop()

    run(body())
