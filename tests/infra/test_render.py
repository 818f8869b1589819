"""`llm-stack render` per environment (run once per session as a subprocess): golden files,
Kubernetes schema validation, Helm releases by their inputs, checkov with written skips."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from infra.aws.addons import METRICS_SERVER, NVIDIA_DEVICE_PLUGIN
from infra.aws.autoscaler import CLUSTER_AUTOSCALER
from infra.aws.load_balancer import LOAD_BALANCER_CONTROLLER
from infra.config import parse_stack_config
from infra.stackfile import STACKS, raw_project_config, read_stack_file
from tests import crd_schema

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SKIPS = yaml.safe_load((Path(__file__).parent / "checkov_skips.yaml").read_text())
REFRESH = "run `make render-golden` and review the diff"
CRD_GROUPS = ("monitoring.coreos.com/", "keda.sh/")
"""Custom resources (not in the cluster's OpenAPI schema): checked against their own CRDs
(tests/crd_schema.py, the CRDs at the pinned chart versions in tests/data/crds)."""


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _objects(rendered_dir: Path) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((rendered_dir / "kubernetes").glob("*.yaml"))]


def _kubernetes_version(stack: str) -> str:
    return parse_stack_config(raw_project_config(read_stack_file(ROOT, stack))).cluster.kubernetes_version


@pytest.mark.parametrize("stack", STACKS)
def test_golden_files_are_current(rendered, stack):
    """A fresh render equals tests/golden/<env> file for file (else: run `make render-golden`)."""
    fresh, golden = _files(rendered[stack]), _files(GOLDEN / stack)
    assert sorted(fresh) == sorted(golden), f"rendered files differ from tests/golden/{stack}: {REFRESH}"
    stale = [name for name in fresh if fresh[name] != golden[name]]
    assert not stale, f"tests/golden/{stack} is stale in {stale}: {REFRESH}"
    assert len(fresh) >= 10


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_validates_against_the_cluster_schema(rendered, stack):
    """Each rendered object validates strictly (no unknown fields) against its cluster version's schema."""
    version = _kubernetes_version(stack)
    objects = [o for o in _objects(rendered[stack]) if not o["apiVersion"].startswith(CRD_GROUPS)]
    for obj in objects:
        used = kubernetes_validate.validate(obj, version, strict=True)
        assert used == version, f"validated against {used}, not {version}"
    assert len(objects) >= 15


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_validates_against_its_crd(rendered, stack):
    """Each rendered PodMonitor, PrometheusRule and ScaledObject validates strictly (no field
    the CRD would prune) against its CRD's schema at the pinned chart version, CEL rules included."""
    objects = [o for o in _objects(rendered[stack]) if o["apiVersion"].startswith(CRD_GROUPS)]
    rules = sum(crd_schema.validate(obj) for obj in objects)
    kinds = {o["kind"] for o in objects}
    assert {"PodMonitor", "PrometheusRule", "ScaledObject"} <= kinds
    assert rules == sum(o["kind"] == "ScaledObject" for o in objects)


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_numbers_are_ints(rendered, stack):
    """Replica counts and ports are written as ints (the mock runtime's floats are converted)."""
    checked = 0
    for obj in _objects(rendered[stack]):
        if obj["kind"] == "Deployment":
            assert type(obj["spec"].get("replicas", 0)) is int
            ports = [p["containerPort"] for c in obj["spec"]["template"]["spec"]["containers"]
                     for p in c.get("ports", [])]
            assert ports and all(type(p) is int for p in ports)
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize("stack", STACKS)
def test_helm_releases_are_pinned(rendered, stack):
    """The device plugin, metrics-server, cluster autoscaler and AWS Load Balancer Controller are
    Helm releases from their repos at pinned versions, the device plugin restricted to GPU nodes
    and tolerating their taint."""
    records = json.loads((rendered[stack] / "resources.json").read_text())
    helm = "kubernetes:helm.sh/v3:Release"
    releases = {r["inputs"]["chart"]: r["inputs"] for r in records if r["type"] == helm}
    charts = (NVIDIA_DEVICE_PLUGIN, METRICS_SERVER, CLUSTER_AUTOSCALER, LOAD_BALANCER_CONTROLLER)
    assert {chart.name for chart in charts} <= set(releases)
    for chart in charts:
        inputs = releases[chart.name]
        assert inputs["version"] == chart.version and inputs["version"][0].isdigit()
        assert inputs["repositoryOpts"]["repo"] == chart.repo
        assert inputs["namespace"] == "kube-system"
    plugin = releases[NVIDIA_DEVICE_PLUGIN.name]["values"]
    assert plugin["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in plugin["tolerations"]


@pytest.mark.parametrize("stack", STACKS)
def test_resources_json_redacts_secrets(rendered, stack):
    """resources.json lists every resource with type, name, parent and inputs, and no secret value."""
    text = (rendered[stack] / "resources.json").read_text()
    records = json.loads(text)
    assert "placeholder-secret" not in text
    assert all({"type", "name", "parent", "inputs"} <= set(r) for r in records)
    assert sum(r["type"] == "aws:eks/cluster:Cluster" for r in records) == 1


def test_unknown_stack_fails_clearly(tmp_path):
    """`llm-stack render --stack qa` exits 2 naming the stacks that exist."""
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "llm-stack"), "render", "--stack", "qa", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown stack 'qa': expected one of dev, prod, staging" in proc.stderr


@pytest.fixture(scope="module")
def checkov_report(rendered, tmp_path_factory) -> dict:
    """One checkov run over every environment's rendered manifests."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov not installed at {CHECKOV}: run `make install`")
    scan = tmp_path_factory.mktemp("checkov")
    for stack, path in rendered.items():
        shutil.copytree(path / "kubernetes", scan / stack)  # checkov does not follow symlinks
    command = [str(CHECKOV), "-d", str(scan), "--framework", "kubernetes", "-o", "json", "--quiet"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_has_no_failure_without_a_reason(checkov_report):
    """Every checkov failure is a check listed in checkov_skips.yaml (with a reason) for that object,
    and every listed skip still matches a finding."""
    failed = checkov_report["results"]["failed_checks"]
    unexplained, used = [], set()
    for check in failed:
        skip, obj = SKIPS.get(check["check_id"]), Path(check["file_path"]).name
        if skip and any(fnmatch.fnmatch(obj, pattern) for pattern in skip["objects"]):
            used.add(check["check_id"])
        else:
            unexplained.append(f"{check['check_id']} ({check['check_name']}) in {check['file_path']}")
    listing = "\n".join(unexplained)
    assert not unexplained, f"checkov failures without a reason in checkov_skips.yaml:\n{listing}"
    assert used == set(SKIPS), f"stale skips (no longer needed): {sorted(set(SKIPS) - used)}"
    assert all(len(s["reason"]) > 40 for s in SKIPS.values())
    summary = checkov_report["summary"]
    print(f"checkov: {summary['passed']} passed, {len(failed)} skipped with a reason "
          f"({len(SKIPS)} check ids), 0 unexplained")
    assert summary["passed"] > 500
