"""`llm-stack render`: run a stack's program under the recording mock runtime and write what it
would create — every Kubernetes object as YAML and every resource in `resources.json`.

The layout is pure (`kubernetes_documents`, `resource_records`) and deterministic: files are
named after the object (`<namespace>.<kind>.<name>.yaml`, `_cluster` for cluster-scoped ones),
keys are sorted, integral numbers are ints, secrets are redacted.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.errors import NAMESPACE, RenderError
from infra.mocks import _SIG_KEY, _SIG_SECRET, REDACTED, RecordedResource, RecordingMocks

NOT_MANIFESTS = ("kubernetes:helm.sh/", "pulumi:providers:")
"""Kubernetes-package types that are not objects of the API (checked by their inputs instead)."""
CLUSTER = "_cluster"


@dataclass(frozen=True, kw_only=True)
class RenderSummary:
    """What one render wrote."""

    kubernetes_objects: int
    """Files under `kubernetes/`."""
    resources: int
    """Entries in `resources.json`."""
    notes: tuple[str, ...] = ()
    """Lines for the reader: each pool's capacity and cost range, the offline stand-ins used."""


def is_manifest(resource: RecordedResource) -> bool:
    """Whether a recorded resource is a Kubernetes API object (not a Helm release or provider)."""
    return resource.custom and resource.type.startswith("kubernetes:") and not resource.type.startswith(
        NOT_MANIFESTS)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _keep_secret_shape(inputs: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A field redacted whole (Pulumi marks the containing property secret) keeps its keys,
    each value redacted: `stringData: {token: "[secret]"}`, so the object still validates."""
    return {k: _secret_shape(state.get(k)) if v == REDACTED else v for k, v in inputs.items()}


def _secret_shape(plain: Any) -> Any:
    if isinstance(plain, dict) and plain.get(_SIG_KEY) == _SIG_SECRET:
        plain = plain.get("value")
    return {key: REDACTED for key in plain} if isinstance(plain, dict) else REDACTED


def manifest(resource: RecordedResource) -> dict[str, Any]:
    """The object as the API server would receive it; a missing name takes the resource name
    (the provider would add a random suffix)."""
    body = _drop_none(_keep_secret_shape(dict(resource.inputs), resource.state))
    metadata = dict(body.get("metadata") or {})
    metadata.setdefault("name", resource.name)
    return body | {"metadata": metadata}


def file_name(obj: dict[str, Any]) -> str:
    """Stable file name of an object: `<namespace>.<kind>.<name>.yaml`."""
    meta = obj["metadata"]
    return f"{meta.get('namespace', CLUSTER)}.{obj['kind'].lower()}.{meta['name']}.yaml"


def kubernetes_documents(resources: Iterable[RecordedResource]) -> dict[str, str]:
    """File name → YAML text of every Kubernetes object; a `RenderError` if two share a name."""
    documents: dict[str, str] = {}
    for resource in resources:
        if not is_manifest(resource):
            continue
        obj = manifest(resource)
        name = file_name(obj)
        if name in documents:
            raise RenderError(f"two Kubernetes objects render to {name} (resource {resource.urn})")
        documents[name] = yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, width=120)
    return dict(sorted(documents.items()))


def resource_records(resources: Iterable[RecordedResource]) -> list[dict[str, Any]]:
    """Every resource (type, name, parent, custom, inputs with secrets redacted, and the URNs it
    waits for: its `depends_on`, components expanded to their children, plus the resources its
    inputs reference), sorted by URN."""
    return [
        {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "custom": r.custom,
         "inputs": r.inputs, "dependsOn": list(r.depends_on)}
        for r in sorted(resources, key=lambda r: r.urn)
    ]


def write_render(mocks: RecordingMocks, out: Path) -> RenderSummary:
    """Write `out/kubernetes/*.yaml` (replacing what was there) and `out/resources.json`."""
    documents = kubernetes_documents(mocks.resources)
    records = resource_records(mocks.resources)
    target = out / "kubernetes"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, text in documents.items():
        (target / name).write_text(text)
    (out / "resources.json").write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    return RenderSummary(kubernetes_objects=len(documents), resources=len(records))


def run_stack(project_dir: Path, stack: str) -> RecordingMocks:
    """Run the program for `stack` under the recording mocks, with its `Pulumi.<stack>.yaml`
    config (secrets replaced by placeholders)."""
    from pulumi.runtime.config import set_all_config

    from infra.mocks import run_program
    from infra.program import main
    from infra.stackfile import read_stack_file

    stack_file = read_stack_file(project_dir, stack)
    set_all_config(dict(stack_file.config), list(stack_file.secret_keys))
    return run_program(main, project=NAMESPACE, stack=stack)


def render_stack(project_dir: Path, stack: str, out: Path) -> RenderSummary:
    """Render one stack into `out`; the summary's notes give each pool's capacity and cost range."""
    import dataclasses

    summary = write_render(run_stack(project_dir, stack), out)
    return dataclasses.replace(summary, notes=stack_notes(project_dir, stack))


def stack_notes(project_dir: Path, stack: str) -> tuple[str, ...]:
    """`capacity <pool>: ...` per pool, `bill ...` for the rest of the bill's fixed part and
    per-unit prices, `placement <pool>: ...` per GPU pool with engines (and a
    warning where maxSize does not guarantee them a node), and which per-account values were
    offline stand-ins."""
    from infra.aws.bill import bill_lines, stack_bill
    from infra.aws.prices import capacity_line
    from infra.config import parse_stack_config
    from infra.config.placement import placement_line, placement_warnings, pool_placements
    from infra.program import stack_region, version_warnings
    from infra.stackfile import raw_project_config, read_stack_file

    stack_file = read_stack_file(project_dir, stack)
    config = parse_stack_config(raw_project_config(stack_file))
    region = stack_region(config)
    notes = [f"capacity {capacity_line(name, pool, region)}" for name, pool in config.node_pools.items()]
    bill = stack_bill(config)
    notes += [f"bill {line}" for line in (bill_lines(bill) if bill else [])]
    notes += [f"placement {placement_line(p)}" for p in pool_placements(config).values()]
    notes += [f"warning: {text}" for text in [*version_warnings(config), *placement_warnings(config)]]
    if config.cluster.mode == "eks":
        from infra.aws.preflight.run import SKIPPED

        notes.append(SKIPPED)
    if stack_file.standins:
        notes.append(f"offline stand-ins (set them before `pulumi up`): {', '.join(stack_file.standins)}")
    return tuple(notes)


def find_project_dir(start: Path) -> Path:
    """The directory holding `Pulumi.yaml`: `start` or a parent, else this package's checkout."""
    for candidate in (start, *start.parents, Path(__file__).resolve().parents[1]):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise RenderError(f"no Pulumi.yaml in {start} or its parents")
