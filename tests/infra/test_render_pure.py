"""The pure parts of `llm-stack render` and of the Pulumi config reader."""

from __future__ import annotations

import json

import pytest
import yaml
from pulumi.runtime.config import set_all_config

from infra.config.load import raw_from_pulumi
from infra.config.stack import SecretRef
from infra.errors import RenderError
from infra.mocks import REDACTED, RecordedResource
from infra.render import file_name, kubernetes_documents, manifest, resource_records


def _resource(typ: str, name: str, inputs: dict, state: dict | None = None) -> RecordedResource:
    return RecordedResource(type=typ, name=name, urn=f"urn:{typ}::{name}", parent=None, custom=True,
                            inputs=inputs, state=state or {})


CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"},
              "data": {"a": "1"}}


def test_file_names_are_stable_and_scoped():
    """Files are `<namespace>.<kind>.<name>.yaml`, `_cluster` for cluster-scoped objects."""
    assert file_name(CONFIG_MAP) == "ns.configmap.c.yaml"
    assert file_name({"kind": "Namespace", "metadata": {"name": "ns"}}) == "_cluster.namespace.ns.yaml"


def test_helm_releases_and_providers_are_not_manifests():
    """Only Kubernetes API objects become files; Helm releases and providers stay in resources.json."""
    resources = [_resource("kubernetes:core/v1:ConfigMap", "c", CONFIG_MAP),
                 _resource("kubernetes:helm.sh/v3:Release", "r", {"chart": "x"}),
                 _resource("pulumi:providers:kubernetes", "p", {"kubeconfig": REDACTED})]
    documents = kubernetes_documents(resources)
    assert list(documents) == ["ns.configmap.c.yaml"]
    assert yaml.safe_load(documents["ns.configmap.c.yaml"]) == CONFIG_MAP
    assert [r["name"] for r in resource_records(resources)] == ["c", "r", "p"]  # every resource, by URN


def test_clashing_objects_fail():
    """Two objects rendering to one file name fail instead of overwriting each other."""
    resources = [_resource("kubernetes:core/v1:ConfigMap", n, CONFIG_MAP) for n in ("one", "two")]
    with pytest.raises(RenderError, match="ns.configmap.c.yaml"):
        kubernetes_documents(resources)


def test_secret_payload_keeps_keys_not_values():
    """A Secret whose whole stringData is secret renders its keys with redacted values."""
    inputs = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": REDACTED}
    state = {"stringData": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                            "value": {"token": "hunter2"}}}
    obj = manifest(_resource("kubernetes:core/v1:Secret", "s", inputs, state))
    assert obj["stringData"] == {"token": REDACTED}
    assert "hunter2" not in json.dumps(obj)


def test_missing_name_takes_the_resource_name_and_nones_drop():
    """An object without metadata.name gets the resource's name; null fields are dropped."""
    obj = manifest(_resource("kubernetes:core/v1:ConfigMap", "cm", {"apiVersion": "v1", "kind": "ConfigMap",
                                                                   "metadata": {}, "data": None}))
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}


def test_pulumi_config_reader_marks_secrets_and_decodes_json():
    """The one Pulumi config reader: JSON objects decoded, secrets as SecretRef, other namespaces ignored."""
    try:
        set_all_config({"llm-stack:router": '{"replicas": 2}', "llm-stack:hfToken": "value-not-read",
                        "llm-stack:namespace": "serving", "aws:region": "us-east-1"},
                       ["llm-stack:hfToken"])
        raw = raw_from_pulumi()
    finally:
        set_all_config({}, [])
    assert raw == {"router": {"replicas": 2}, "hfToken": SecretRef(key="hfToken"), "namespace": "serving"}
