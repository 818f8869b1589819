"""No public endpoint without TLS and API keys: a Service of type LoadBalancer without an
internal-scheme annotation (or an Ingress without one) is public, and then it must terminate
TLS and every pod behind it must read API keys from a Secret."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policies.guardrails.config import GuardrailConfig
from policies.guardrails.label_selectors import namespace, workloads_selected
from policies.guardrails.objects import Resource, dig, mapping, pod_spec, sequence

SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
# AWS Load Balancer Controller service annotations (kubernetes-sigs/aws-load-balancer-controller,
# docs/guide/service/annotations.md); `-internal` is the deprecated in-tree spelling.
LB_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LB_INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"
LB_SSL_CERT = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert"
ALB_SCHEME = "alb.ingress.kubernetes.io/scheme"
ALB_CERT = "alb.ingress.kubernetes.io/certificate-arn"


def _annotations(res: Resource) -> Mapping[str, Any]:
    return mapping(dig(res.props, "metadata", "annotations"))


def is_public(res: Resource) -> bool:
    """A LoadBalancer Service or an Ingress that no annotation makes internal."""
    notes = _annotations(res)
    if res.type == SERVICE:
        internal = notes.get(LB_SCHEME) == "internal" or str(notes.get(LB_INTERNAL)).lower() == "true"
        return dig(res.props, "spec", "type") == "LoadBalancer" and not internal
    return res.type == INGRESS and notes.get(ALB_SCHEME) != "internal"


def has_tls(res: Resource) -> bool:
    """Whether the load balancer terminates TLS (an ACM certificate, or an Ingress `tls` block)."""
    notes = _annotations(res)
    if res.type == SERVICE:
        return bool(notes.get(LB_SSL_CERT))
    return bool(notes.get(ALB_CERT)) or bool(sequence(dig(res.props, "spec", "tls")))


def reads_secret(workload: Resource) -> bool:
    """Whether a workload's pods read a Secret (a volume, `env.valueFrom` or `envFrom`)."""
    spec = mapping(pod_spec(workload))
    if any("secret" in mapping(v) for v in sequence(spec.get("volumes"))):
        return True
    for container in map(mapping, sequence(spec.get("containers"))):
        if any(dig(e, "valueFrom", "secretKeyRef") for e in sequence(container.get("env"))):
            return True
        if any("secretRef" in mapping(e) for e in sequence(container.get("envFrom"))):
            return True
    return False


def _backends(res: Resource, resources: Sequence[Resource]) -> list[Resource]:
    if res.type == SERVICE:
        return workloads_selected(resources, mapping(dig(res.props, "spec", "selector")), namespace(res))
    return []


def _issues(res: Resource, resources: Sequence[Resource]) -> Iterator[str]:
    if not has_tls(res):
        yield (
            f"{res.label} is internet-facing without TLS; fix: set {LB_SSL_CERT} to an ACM certificate "
            f"ARN (or {LB_SCHEME}: internal)"
        )
    for backend in _backends(res, resources):
        if not reads_secret(backend):
            yield (
                f"{res.label} is internet-facing and its backend {backend.label} reads no API keys from a "
                f"Secret; fix: require API keys (llm-stack:router.requireApiKeys) or make it internal"
            )


def check_public_endpoints(
    resources: Sequence[Resource], config: GuardrailConfig
) -> Iterator[tuple[str, str]]:
    """Every public endpoint terminates TLS and its pods read API keys from a Secret."""
    for res in resources:
        if is_public(res):
            yield from ((res.urn, issue) for issue in _issues(res, resources))
