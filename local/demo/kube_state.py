"""A stand-in for kube-state-metrics on loopback: the node-pool and pod-phase series the
capacity dashboard and the pool-at-max alert read, for the emulated stack's nodes and engine
pods. `render` is pure (kube-state-metrics' names: `kube_node_labels` with the allow-listed
node label as `label_<sanitised>`, `kube_pod_status_phase` one series per phase);
`deployments` renders `kube_deployment_status_replicas_available` (what the autoscaling
triggers read to tell a model at zero engines from a lost scrape). `KubeStateServer` serves
a fixed text, or one rendered per scrape, from a stdlib HTTP server thread until stopped."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from contracts import KSM_DEPLOYMENT_AVAILABLE

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def label_name(node_label: str) -> str:
    """kube-state-metrics' metric label for a Kubernetes label: `label_` + non-alphanumerics as `_`."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", node_label)


def render(nodes: Mapping[str, str], pods: Mapping[str, str], namespace: str, node_label: str) -> str:
    """`nodes`: node name -> pool; `pods`: pod name -> phase."""
    pool = label_name(node_label)
    lines = ["# TYPE kube_node_labels gauge"]
    lines += [f'kube_node_labels{{node="{n}",{pool}="{p}"}} 1' for n, p in sorted(nodes.items())]
    lines.append("# TYPE kube_pod_status_phase gauge")
    for pod, phase in sorted(pods.items()):
        where = f'namespace="{namespace}",pod="{pod}"'
        lines += [f'kube_pod_status_phase{{{where},phase="{ph}"}} {int(ph == phase)}' for ph in PHASES]
    return "\n".join(lines) + "\n"


def deployments(available: Mapping[tuple[str, str], int]) -> str:
    """`available`: (namespace, deployment) -> available replicas."""
    lines = [f"# TYPE {KSM_DEPLOYMENT_AVAILABLE} gauge"]
    lines += [f'{KSM_DEPLOYMENT_AVAILABLE}{{namespace="{ns}",deployment="{name}"}} {count}'
              for (ns, name), count in sorted(available.items())]
    return "\n".join(lines) + "\n"


class KubeStateServer:
    """Serves `text` (or what `text()` returns, per scrape) at `/metrics` on 127.0.0.1 (a free port)."""

    def __init__(self, text: str | Callable[[], str]) -> None:
        make = text if callable(text) else (lambda: text)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = make().encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="kube-state", daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
