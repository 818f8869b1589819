"""Publish a benchmark's summary.json to a ConfigMap from inside the cluster, with the pod's own
service-account token: the benchmark Job's second container, run from the router image (so the
Job needs no third-party kubectl image). Standard library only.

    python -m bench.publish --namespace NS --config-map NAME --file /results/summary.json

The request builder is pure; `publish` is the thin shell (create, or replace when it exists).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DATA_KEY = "summary.json"


class PublishError(RuntimeError):
    """The ConfigMap could not be written."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where the ConfigMap goes and how to reach the API server."""

    api_url: str
    """API server base URL, e.g. https://10.100.0.1:443."""
    namespace: str
    """Namespace of the ConfigMap."""
    name: str
    """ConfigMap name."""
    token: str | None = None
    """Bearer token (the pod's service-account token)."""
    ca_file: str | None = None
    """CA bundle verifying the API server."""


def config_map_body(namespace: str, name: str, summary: str) -> dict:
    """The ConfigMap holding the summary under `summary.json`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/part-of": "llm-stack"}},
        "data": {DATA_KEY: summary},
    }


def requests_for(target: Target, summary: str) -> tuple[urllib.request.Request, urllib.request.Request]:
    """(create, replace) requests for the ConfigMap."""
    body = json.dumps(config_map_body(target.namespace, target.name, summary)).encode()
    headers = {"Content-Type": "application/json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    base = f"{target.api_url.rstrip('/')}/api/v1/namespaces/{target.namespace}/configmaps"
    create = urllib.request.Request(base, data=body, headers=headers, method="POST")
    replace = urllib.request.Request(f"{base}/{target.name}", data=body, headers=headers, method="PUT")
    return create, replace


def publish(target: Target, summary: str, timeout_s: float = 30.0) -> str:
    """Create the ConfigMap, or replace it when it already exists; returns 'created'/'replaced'."""
    context = ssl.create_default_context(cafile=target.ca_file) if target.ca_file else None
    create, replace = requests_for(target, summary)
    try:
        urllib.request.urlopen(create, timeout=timeout_s, context=context).close()
        return "created"
    except urllib.error.HTTPError as err:
        if err.code != 409:
            raise PublishError(f"creating configmap {target.name}: HTTP {err.code} {_body(err)}") from err
    try:
        urllib.request.urlopen(replace, timeout=timeout_s, context=context).close()
    except urllib.error.HTTPError as err:
        raise PublishError(f"replacing configmap {target.name}: HTTP {err.code} {_body(err)}") from err
    return "replaced"


def _body(err: urllib.error.HTTPError) -> str:
    return repr(err.read()[:300])


def in_cluster_target(namespace: str, name: str) -> Target:
    """The API server and credentials a pod sees."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if not host:
        raise PublishError("not running in a cluster (KUBERNETES_SERVICE_HOST is not set)")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token_file = SA_DIR / "token"
    return Target(
        api_url=f"https://{host}:{port}", namespace=namespace, name=name,
        token=token_file.read_text().strip() if token_file.is_file() else None,
        ca_file=str(SA_DIR / "ca.crt") if (SA_DIR / "ca.crt").is_file() else None,
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.publish")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--config-map", required=True)
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--api-url", help="API server URL (default: the in-cluster one)")
    ns = parser.parse_args(argv)
    if ns.api_url:
        target = Target(api_url=ns.api_url, namespace=ns.namespace, name=ns.config_map)
    else:
        target = in_cluster_target(ns.namespace, ns.config_map)
    print(f"configmap {ns.config_map} {publish(target, ns.file.read_text())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
