"""Every rendered engine of every stack is checked by vLLM's and LMCache's own code (in the
`.venv-engine` tool venv, at the engine image's versions), and that check names what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contracts import kv_events as kv
from stack_components import LoraAdapter, LoraArgs, ModelStore, VllmEngineArgs
from stack_components.engine_check import (
    EngineCase,
    ProbeReport,
    cases_from_manifests,
    container_case,
    engine_python,
    run_probe,
)
from stack_components.engine_manifests import build_container
from stack_components.versions import ENGINE_IMAGE, LMCACHE_VERSION, VLLM_COMMAND, VLLM_VERSION

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod", "lora")  # lora: the test stack tests/data/stacks/Pulumi.lora.yaml
GOOD_ENV = {"LMCACHE_CHUNK_SIZE": "256", "LMCACHE_LOCAL_CPU": "True", "LMCACHE_MAX_LOCAL_CPU_SIZE": "8"}
BASE = (*VLLM_COMMAND, "--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000")
KV = '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'
BAD: dict[str, tuple[EngineCase, str]] = {
    "unknown-flag": (EngineCase(name="unknown-flag", command=(*BASE, "--enable-turbo")), "--enable-turbo"),
    "bad-int": (EngineCase(name="bad-int", command=(*BASE, "--max-model-len", "lots")), "max-model-len"),
    "bad-connector": (
        EngineCase(name="bad-connector", command=(*BASE, "--kv-transfer-config",
                                                  '{"kv_connector":"NoSuchConnector","kv_role":"kv_both"}')),
        "NoSuchConnector",
    ),
    "fractional-drain": (
        EngineCase(name="fractional-drain", command=(*BASE, "--shutdown-timeout", "2.5")),
        "shutdown-timeout",
    ),
    "old-entrypoint": (
        EngineCase(name="old-entrypoint", command=("python3", "-m", "vllm.entrypoints.openai.api_server")),
        "vllm serve",
    ),
    "unknown-lmcache-key": (
        EngineCase(name="unknown-lmcache-key", command=BASE,
                   env=GOOD_ENV | {"LMCACHE_USE_EXPERIMENTAL": "True"}),
        "LMCACHE_USE_EXPERIMENTAL",
    ),
    "lora-cpu-below-gpu-slots": (
        EngineCase(name="lora-cpu-below-gpu-slots",
                   command=(*BASE, "--enable-lora", "--max-loras", "4", "--max-cpu-loras", "2")),
        "max_cpu_loras",
    ),
    "lora-rank-not-allowed": (
        EngineCase(name="lora-rank-not-allowed", command=(*BASE, "--enable-lora", "--max-lora-rank", "24")),
        "max-lora-rank",
    ),
    "bad-lmcache-value": (
        EngineCase(name="bad-lmcache-value", command=BASE, env=GOOD_ENV | {"LMCACHE_CHUNK_SIZE": "big"}),
        "LMCACHE_CHUNK_SIZE",
    ),
}
GOOD = EngineCase(name="good", command=(*BASE, "--kv-transfer-config", KV), env=GOOD_ENV)
STORE = ModelStore(bucket="acme-llm-weights", prefix="models", region="us-east-1",
                   service_account="llama-model-store", role_arn="arn:aws:iam::111122223333:role/reader")
MODEL_STORE = container_case("model-store", build_container(
    VllmEngineArgs(model="meta-llama/Llama-3.1-8B-Instruct", model_store=STORE)))
SQL_COMMIT = "0123456789abcdef0123456789abcdef01234567"
LORA = LoraArgs(adapters=(
    LoraAdapter(name="sql", source=f"hf://acme/llama-sql-lora@{SQL_COMMIT}", rank=16),
    LoraAdapter(name="support", source="s3://acme-llm-weights/models/adapters/support/v3", rank=24),
    LoraAdapter(name="legal", source="s3://acme-llm-weights/models/adapters/legal/v1", rank=8),
), max_loras=2)
LORA_ENGINE = container_case("lora", build_container(
    VllmEngineArgs(model="meta-llama/Llama-3.1-8B-Instruct", model_store=STORE, lmcache=None, lora=LORA)))


def _stack_cases() -> list[EngineCase]:
    docs = []
    for stack in STACKS:
        for path in sorted((ROOT / "tests" / "golden" / stack / "kubernetes").glob("*.deployment.*.yaml")):
            docs.append((f"{stack}/{path.name}", yaml.safe_load(path.read_text())))
    return cases_from_manifests(docs)


@pytest.fixture(scope="module")
def report() -> tuple[ProbeReport, list[EngineCase]]:
    """One probe run over every stack's engines plus the known-good and known-bad cases."""
    python = engine_python(ROOT)
    assert python is not None, "the engine-check venv is missing: run `make install` (.venv-engine)"
    cases = _stack_cases()
    known = [GOOD, MODEL_STORE, LORA_ENGINE, *(case for case, _ in BAD.values())]
    return run_probe([*cases, *known], python), cases


def test_tool_venv_holds_the_engine_image_versions(report) -> None:
    """The checks run on exactly the vLLM and LMCache versions the pinned image ships."""
    probe, _ = report
    assert probe.versions["vllm"] == VLLM_VERSION
    assert probe.versions["lmcache"] == LMCACHE_VERSION
    assert ENGINE_IMAGE.endswith(f":v{LMCACHE_VERSION}")


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_engine_passes_vllm_and_lmcache(report, stack) -> None:
    """vLLM parses and accepts each engine command; LMCache loads each engine's settings."""
    probe, cases = report
    mine = [c for c in cases if c.name.startswith(f"{stack}/")]
    assert mine, f"no engine Deployment found in tests/golden/{stack}"
    for case in mine:
        assert case.command[:2] == VLLM_COMMAND
        assert probe.errors[case.name] == (), f"{case.name}: {probe.errors[case.name]}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_engine_drains_within_its_grace_period(report, stack) -> None:
    """vLLM reads each engine's `--shutdown-timeout` as a drain (> 0 s; its default 0 aborts
    in-flight requests on SIGTERM) that ends before the pod's grace period does."""
    probe, cases = report
    checked = 0
    for path in sorted((ROOT / "tests" / "golden" / stack / "kubernetes").glob("*.deployment.*.yaml")):
        pod = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
        if not any(c["name"] == "vllm" for c in pod["containers"]):
            continue
        drain = probe.values[f"{stack}/{path.name}"]["shutdown_timeout"]
        assert isinstance(drain, int) and 0 < drain < pod["terminationGracePeriodSeconds"], path.name
        checked += 1
    assert checked == len([c for c in cases if c.name.startswith(f"{stack}/")]) > 0


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_engine_keeps_probes_and_scrapes_out_of_its_access_log(report, stack) -> None:
    """vLLM's own access-log filter, built from each engine's command, drops `/health` (kubelet
    probes, the router's health checks) and `/metrics` (Prometheus, the router) and keeps the
    requests and `/v1/models`."""
    probe, cases = report
    mine = [c for c in cases if c.name.startswith(f"{stack}/")]
    for case in mine:
        assert probe.values[case.name]["access_log_silenced"] == ["/health", "/metrics"], case.name
    assert mine


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_engine_compiles_into_its_model_cache(report, stack) -> None:
    """vLLM reads each engine's compile-cache root (`VLLM_CACHE_ROOT`) as a directory on the
    model-cache volume (the node's hostPath where the stack has one), one per model and vLLM
    version, not under the pod's emptyDir `/tmp` (`HOME`): a restart keeps the compiled graphs."""
    probe, _ = report
    checked = 0
    for path in sorted((ROOT / "tests" / "golden" / stack / "kubernetes").glob("*.deployment.*.yaml")):
        pod = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
        (vllm,) = [c for c in pod["containers"] if c["name"] == "vllm"] or [None]
        if vllm is None:
            continue
        (mount,) = [m["mountPath"] for m in vllm["volumeMounts"] if m["name"] == "model-cache"]
        where = probe.values[f"{stack}/{path.name}"]["compile_cache"]
        assert where.startswith(f"{mount}/compile/") and f"/vllm-{VLLM_VERSION}/" in where, where
        assert where.endswith("/torch_compile_cache") and not where.startswith("/tmp"), where
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_engine_names_its_model_positionally(report, stack) -> None:
    """The model follows `vllm serve` as its positional argument (vLLM 0.33 deprecates
    `--model` there) and vLLM reads it as the model to serve."""
    probe, cases = report
    mine = [c for c in cases if c.name.startswith(f"{stack}/")]
    for case in mine:
        assert "--model" not in case.command and not case.command[2].startswith("-"), case.name
        assert probe.values[case.name]["model"] == case.command[2], case.name
    assert mine


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_engine_publishes_kv_events_as_vllm_reads_them(report, stack) -> None:
    """vLLM reads each engine's `--kv-events-config` as a ZMQ publisher on the events port with a
    replay socket and the `kv@$(POD_IP):<port>@<served model>` topic, `--block-size` and the hash
    algorithm as `contracts.kv_events` fixes them; the pod sets POD_IP from its own status."""
    probe, cases = report
    checked = 0
    for path in sorted((ROOT / "tests" / "golden" / stack / "kubernetes").glob("*.deployment.*.yaml")):
        pod = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
        vllm = next((c for c in pod["containers"] if c["name"] == "vllm"), None)
        if vllm is None:
            continue
        values = probe.values[f"{stack}/{path.name}"]
        served = vllm["args"][vllm["args"].index("--served-model-name") + 1]
        events = values["kv_events_config"]
        assert events["enable_kv_cache_events"] is True and events["publisher"] == "zmq", events
        assert events["endpoint"] == f"tcp://*:{kv.KV_EVENTS_PORT}", events
        assert events["replay_endpoint"] == f"tcp://*:{kv.KV_REPLAY_PORT}", events
        assert events["topic"] == f"kv@$(POD_IP):8000@{served}", events
        assert values["block_size"] == kv.KV_BLOCK_SIZE
        assert values["prefix_caching_hash_algo"] == kv.KV_HASH_ALGO
        pod_ip = next(e for e in vllm["env"] if e["name"] == kv.POD_IP_ENV)
        assert pod_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        ports = {p["name"]: p["containerPort"] for p in vllm["ports"]}
        assert ports[kv.KV_EVENTS_PORT_NAME] == kv.KV_EVENTS_PORT
        assert ports[kv.KV_REPLAY_PORT_NAME] == kv.KV_REPLAY_PORT
        checked += 1
    assert checked == len([c for c in cases if c.name.startswith(f"{stack}/")]) > 0


def test_a_known_good_engine_passes(report) -> None:
    """The reference command (LMCache connector, CPU tier) has no error: the check is not all-red."""
    assert report[0].errors["good"] == ()


def test_an_engine_loading_from_the_model_store_passes(report) -> None:
    """With a model store, vLLM accepts the local directory as `--model` (served under its name)."""
    command = MODEL_STORE.command
    assert command[2] == "/models/s3/meta-llama/Llama-3.1-8B-Instruct/main"  # after `vllm serve`
    assert "--served-model-name" in command and "--revision" not in command
    assert report[0].errors["model-store"] == ()
    assert report[0].values["model-store"]["model"] == command[2]


def test_an_engine_with_lora_adapters_passes_and_vllm_reads_its_slots_and_modules(report) -> None:
    """vLLM parses the rendered LoRA flags into the `LoRAConfig` meant (2 GPU slots, every
    adapter in host memory, the smallest allowed rank above 24) and the `--lora-modules` into
    one module per adapter, each at its directory in the model cache."""
    probe = report[0]
    assert probe.errors["lora"] == (), probe.errors["lora"]
    values = probe.values["lora"]
    assert values["enable_lora"] is True
    assert values["lora_config"] == {"max_loras": 2, "max_cpu_loras": 3, "max_lora_rank": 32}
    modules = {m["name"]: m["path"] for m in values["lora_modules"]}
    assert modules == {
        "sql": f"/models/lora/hf/acme/llama-sql-lora/{SQL_COMMIT}",
        "support": "/models/lora/s3/acme-llm-weights/models/adapters/support/v3",
        "legal": "/models/lora/s3/acme-llm-weights/models/adapters/legal/v1",
    }
    assert all(m["base_model_name"] is None for m in values["lora_modules"])  # parent: the served name


def test_the_lora_test_stack_engine_reads_its_adapters_as_rendered(report) -> None:
    """The golden engine of the LoRA test stack: vLLM reads 2 GPU slots, both adapters in host
    memory, rank 32, and one module per declared adapter."""
    values = report[0].values["lora/llm-stack.deployment.llm-llama8b.yaml"]
    assert values["lora_config"] == {"max_loras": 2, "max_cpu_loras": 2, "max_lora_rank": 32}
    assert [m["name"] for m in values["lora_modules"]] == ["sql", "support"]


def test_an_engine_without_lora_reads_lora_off(report) -> None:
    """Without adapters vLLM reads LoRA off and the probe reports no LoRA config."""
    assert not report[0].values["good"]["enable_lora"]  # None: `--enable-lora` is a BooleanOptionalAction
    assert "lora_config" not in report[0].values["good"]


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_setting_fails_naming_it(report, name) -> None:
    """A removed/unknown flag, malformed value, unknown connector, wrong entrypoint, unknown
    or malformed LMCache key fails, and the message names the offender."""
    errors = report[0].errors[name]
    expected = BAD[name][1]
    assert errors, f"{name} passed vLLM/LMCache's checks"
    assert any(expected in e for e in errors), errors


def test_render_refuses_extra_args_vllm_does_not_know(tmp_path) -> None:
    """`llm-stack render` (the same program `pulumi up` runs) sends a stack file's extraArgs
    through vLLM's parser before any resource, failing under the model's stack key."""
    import os
    import subprocess
    import sys

    assert engine_python(ROOT) is not None, "run `make install` (.venv-engine)"
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    model = stack["config"]["llm-stack:models"]["llama3b"]
    model["extraArgs"] = ["--enable-chunked-prefill", "--enable-turbo"]
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))
    env = dict(os.environ, LLMSTACK_ENGINE_CHECK="required")
    done = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "render", "--stack", "dev",
         "--out", str(tmp_path / "out"), "--project-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode != 0, done.stdout
    assert "llm-stack:models.llama3b.extraArgs" in done.stderr, done.stderr[-3000:]
    assert "--enable-turbo" in done.stderr
    assert not (tmp_path / "out" / "kubernetes").exists()  # nothing rendered
