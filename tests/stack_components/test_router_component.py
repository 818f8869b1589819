"""`Router` under the recording mocks: settings ConfigMap, least-privilege RBAC, secrets as files."""

from __future__ import annotations

import json

import pulumi
from component_helpers import validate_all

from contracts import LABEL_PART_OF, LABEL_ROLE, PART_OF, ROLE_ENGINE
from router.settings import PolicySettings, RouterSettings
from stack_components import EngineCapacity, Router, RouterArgs, SecretRef
from stack_components.router_manifests import CONFIG_FILE

ENGINES = {
    "llama-8b": EngineCapacity(
        served_model_name="llama-8b", gpu_cache_tokens=396_000, cpu_cache_tokens=915_000
    ),
    "llama-70b": EngineCapacity(served_model_name="llama-70b", gpu_cache_tokens=399_000, cpu_cache_tokens=0),
}
KEYS = "sk-alpha\nsk-beta"
ARGS = RouterArgs(
    image="ghcr.io/example/router:1.0",
    namespace="llm",
    replicas=2,
    engines=ENGINES,
    policy=PolicySettings(kind="prefix", params={"block_tokens": 16}),
    api_keys=SecretRef(name="router-api-keys", key="keys", value=KEYS),
)


def _settings(k8s_objects) -> RouterSettings:
    (cm,) = k8s_objects("ConfigMap")
    return RouterSettings.from_dict(json.loads(cm["data"][CONFIG_FILE]))


def test_objects_validate_against_the_kubernetes_schema(deploy, k8s_objects) -> None:
    """Secret, ConfigMap, ServiceAccount, Role, RoleBinding, Deployment, Service, PDB all validate."""
    deploy(lambda: Router("router", ARGS))
    objects = k8s_objects()
    assert sorted(o["kind"] for o in objects) == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    assert validate_all(objects) == 8


def test_settings_round_trip_and_discover_engine_pods(deploy, k8s_objects) -> None:
    """The ConfigMap holds RouterSettings JSON: Kubernetes discovery of this stack's engines."""
    deploy(lambda: Router("router", ARGS))
    settings = _settings(k8s_objects)
    assert settings.discovery is not None and settings.discovery.namespace == "llm"
    assert settings.discovery.label_selector == f"{LABEL_PART_OF}={PART_OF},{LABEL_ROLE}={ROLE_ENGINE}"
    assert settings.models == ("llama-8b", "llama-70b")
    assert settings.policy == PolicySettings(kind="prefix", params={"block_tokens": 16})


def test_default_capacity_is_the_smallest_engines(deploy, k8s_objects) -> None:
    """The router's default capacities never exceed any engine's (min over engines)."""
    deploy(lambda: Router("router", ARGS))
    settings = _settings(k8s_objects)
    assert settings.default_gpu_cache_tokens == 396_000
    assert settings.default_cpu_cache_tokens == 0


def test_rbac_is_read_only_on_pods_in_its_namespace(deploy, k8s_objects) -> None:
    """One rule: pods get/list/watch; bound only to the router's ServiceAccount; no ClusterRole."""
    deploy(lambda: Router("router", ARGS))
    (role,), (binding,), (account,) = (
        k8s_objects("Role"),
        k8s_objects("RoleBinding"),
        k8s_objects("ServiceAccount"),
    )
    assert role["metadata"]["namespace"] == "llm"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "llm"}
    ]
    assert not k8s_objects("ClusterRole") and not k8s_objects("ClusterRoleBinding")
    pod = k8s_objects("Deployment")[0]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_api_keys_are_a_mounted_secret_never_in_the_config_map(deploy, k8s_objects, pulumi_mocks) -> None:
    """Keys live in a Secret (recorded redacted) mounted as a file the settings point to."""
    deploy(lambda: Router("router", ARGS))
    (cm,) = k8s_objects("ConfigMap")
    assert "sk-alpha" not in json.dumps(cm)
    assert all("sk-alpha" not in json.dumps(r.inputs) for r in pulumi_mocks.resources)
    pod = k8s_objects("Deployment")[0]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == "router-api-keys"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert _settings(k8s_objects).api_keys_file == f"{mount['mountPath']}/keys"


def test_container_runs_the_router_with_its_config_as_non_root(deploy, k8s_objects) -> None:
    """`python -m router --config ...`, read-only root filesystem, non-root; readiness on /health
    (engines), liveness a TCP connect (the process), so a router waiting for loading engines is
    never restarted."""
    deploy(lambda: Router("router", ARGS))
    pod = k8s_objects("Deployment")[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "router", "--config", "/etc/llm-stack/router.json"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert "httpGet" not in container["livenessProbe"]


def test_pulumi_waits_for_the_router_as_long_as_for_the_engines(deploy, k8s_objects) -> None:
    """await_timeout_s becomes Pulumi's documented pulumi.com/timeoutSeconds on the Deployment."""
    import dataclasses

    deploy(lambda: Router("router", dataclasses.replace(ARGS, await_timeout_s=2400)))
    (deployment,) = k8s_objects("Deployment")
    assert deployment["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "2400"


def test_router_pods_wait_then_drain_within_their_grace(deploy, k8s_objects) -> None:
    """A preStop sleep (the kubelet's own: no shell needed), then the drain the settings carry;
    the grace period covers both plus the close; the Deployment stays schema-valid."""
    import dataclasses

    deploy(lambda: Router("router", dataclasses.replace(ARGS, drain_s=600, prestop_s=30)))
    (deployment,) = k8s_objects("Deployment")
    (config_map,) = k8s_objects("ConfigMap")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 30}}}
    assert json.loads(config_map["data"][CONFIG_FILE])["drain_s"] == 600
    assert pod["terminationGracePeriodSeconds"] >= 30 + 600 + 1
    assert validate_all([deployment]) == 1


def test_endpoint_output_is_the_in_cluster_url(deploy) -> None:
    """`endpoint` resolves to the Service's cluster DNS name and the router port."""
    seen: list[str] = []

    def build() -> pulumi.Output:
        return Router("router", ARGS).endpoint.apply(seen.append)

    deploy(build)
    assert seen == ["http://router.llm.svc.cluster.local:8080"]


def test_router_reads_the_rendered_config_file(deploy, k8s_objects, tmp_path) -> None:
    """The router's own loader (`router.settings.build_settings`) reads the ConfigMap's file as rendered."""
    from router.settings import build_settings

    holder: list[Router] = []
    deploy(lambda: holder.append(Router("router", ARGS)))
    (cm,) = k8s_objects("ConfigMap")
    path = tmp_path / CONFIG_FILE
    path.write_text(cm["data"][CONFIG_FILE], encoding="utf-8")
    assert build_settings(str(path)) == holder[0].settings


def test_router_settings_name_each_adapter_with_its_base_model_and_its_deadlines() -> None:
    """The router's settings list the base models, map every adapter to the base model whose
    engines serve it, and give an adapter its base model's deadlines."""
    from stack_components import EngineCapacity
    from stack_components.router import RouterArgs, router_settings

    cap = EngineCapacity(served_model_name="llama", gpu_cache_tokens=1000, adapters=("sql", "legal"))
    other = EngineCapacity(served_model_name="qwen", gpu_cache_tokens=2000)
    settings = router_settings(RouterArgs(image="ghcr.io/llm-stack/router:1", engines={"a": cap, "b": other}))
    assert settings.models == ("llama", "qwen")
    assert settings.adapters == {"sql": "llama", "legal": "llama"}
    assert settings.deadlines.for_model("sql") == settings.deadlines.for_model("llama") == cap.deadlines
