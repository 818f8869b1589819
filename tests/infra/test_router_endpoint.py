"""`routerEndpoint` is where clients reach the router: the NLB's address with exposure internal
or public (https when the NLB terminates TLS), the in-cluster URL otherwise; the in-cluster URL
is exported on its own too."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
import yaml

from infra.aws.load_balancer import nlb_endpoint
from infra.config.exposure import ExposureConfig
from infra.stackfile import parse_stack_yaml
from stack_components.router import ingress_host

ROOT = Path(__file__).resolve().parents[2]
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


def test_nlb_endpoint_scheme_follows_tls():
    """http without a certificate, https with one; nothing in-cluster or before an address."""
    assert nlb_endpoint(ExposureConfig(kind="internal"), "nlb.example", 8080) == "http://nlb.example:8080"
    tls = ExposureConfig(kind="internal", tls_certificate_arn=CERT)
    assert nlb_endpoint(tls, "nlb.example", 8080) == "https://nlb.example:8080"
    assert nlb_endpoint(ExposureConfig(), "nlb.example", 8080) is None
    assert nlb_endpoint(tls, None, 8080) is None


def test_ingress_host_reads_typed_and_plain_status():
    """The first ingress hostname (else IP), from plain dicts or attribute objects."""
    class _Obj:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    assert ingress_host({"loadBalancer": {"ingress": [{"hostname": "h"}]}}) == "h"
    assert ingress_host(_Obj(load_balancer=_Obj(ingress=[_Obj(hostname=None, ip="10.0.0.9")]))) == "10.0.0.9"
    assert ingress_host(None) is None and ingress_host({"loadBalancer": {}}) is None


@pytest.mark.parametrize(("stack", "exposure", "expected"), [
    ("prod", {"kind": "internal"}, "http://k8s-llm-router-service-0123456789.elb.us-east-1.amazonaws.com:8080"),
    ("prod", {"kind": "internal", "tlsCertificateArn": CERT},
     "https://k8s-llm-router-service-0123456789.elb.us-east-1.amazonaws.com:8080"),
    ("dev", None, "http://llm-router.llm-stack.svc.cluster.local:8080"),
])
def test_program_exports_the_nlb_address(run_program, monkeypatch, stack, exposure, expected):
    """The program under the mocks (the Service's status as the controller writes it): the
    exported routerEndpoint, and routerInClusterEndpoint always the Service's DNS name."""
    seen: dict[str, object] = {}

    def export(name, value):
        pulumi.Output.from_input(value).apply(lambda v: seen.__setitem__(name, v))

    monkeypatch.setattr("infra.program.pulumi.export", export)
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    if exposure is not None:
        document["config"]["llm-stack:router"]["exposure"] = exposure
    run_program(parse_stack_yaml(document))
    assert seen["routerEndpoint"] == expected
    assert seen["routerInClusterEndpoint"] == "http://llm-router.llm-stack.svc.cluster.local:8080"
