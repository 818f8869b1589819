"""The benchmark Job's publisher writes summary.json to a ConfigMap over the Kubernetes API:
created the first time, replaced when it exists (against a fake API server on loopback)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.publish import PublishError, Target, config_map_body, publish


class _FakeApi(BaseHTTPRequestHandler):
    existing: set[str] = set()
    seen: list[tuple[str, str, dict, str | None]] = []

    def _handle(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.command, self.path, body, self.headers.get("Authorization")))
        name = body["metadata"]["name"]
        if name == "forbidden":
            self.send_response(403)
        elif self.command == "POST" and name in self.existing:
            self.send_response(409)
        else:
            self.existing.add(name)
            self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = _handle

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api():
    _FakeApi.existing, _FakeApi.seen = set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


def test_creates_then_replaces_the_config_map(api) -> None:
    """First run POSTs the ConfigMap (with the bearer token); a rerun gets 409 and PUTs it."""
    target = Target(api_url=api, namespace="llm", name="bench-results", token="t0k")
    assert publish(target, '{"a": 1}') == "created"
    assert publish(target, '{"a": 2}') == "replaced"
    methods = [(m, p) for m, p, _, _ in _FakeApi.seen]
    assert methods == [
        ("POST", "/api/v1/namespaces/llm/configmaps"),
        ("POST", "/api/v1/namespaces/llm/configmaps"),
        ("PUT", "/api/v1/namespaces/llm/configmaps/bench-results"),
    ]
    assert _FakeApi.seen[-1][2]["data"] == {"summary.json": '{"a": 2}'}
    assert {auth for *_, auth in _FakeApi.seen} == {"Bearer t0k"}


def test_refusal_names_the_config_map(api) -> None:
    """Any other status fails with the ConfigMap's name and the HTTP code."""
    with pytest.raises(PublishError, match="forbidden: HTTP 403"):
        publish(Target(api_url=api, namespace="llm", name="forbidden"), "{}")


def test_body_is_a_config_map_in_the_namespace() -> None:
    """The body is a v1 ConfigMap holding summary.json."""
    body = config_map_body("ns", "cm", "{}")
    assert (body["kind"], body["metadata"]["namespace"]) == ("ConfigMap", "ns")
    assert body["data"] == {"summary.json": "{}"}
