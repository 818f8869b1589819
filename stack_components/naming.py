"""Names derived from keys (pure): Kubernetes object names and label-safe model names."""

from __future__ import annotations

import hashlib
import re

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


def _shorten(text: str, limit: int) -> str:
    """Cut to `limit` characters, keeping it unique with a short hash suffix when cut."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return text[: limit - 9].rstrip("-_.") + "-" + digest


def object_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label from parts joined with '-', e.g. ("llm", "llama-8b", "engine")."""
    raw = "-".join(p for p in parts if p).lower()
    text = _NOT_DNS.sub("-", raw).strip("-")
    text = re.sub(r"-{2,}", "-", text) or "x"
    return _shorten(text, limit).strip("-")


def label_value(text: str) -> str:
    """A valid label value for any string, e.g. "meta-llama/Llama-3.1-8B" → "meta-llama.Llama-3.1-8B"."""
    text = _NOT_LABEL.sub(".", text.replace("/", ".")).strip("-_.")
    return _shorten(text, 63).strip("-_.")


def service_host(service: str, namespace: str) -> str:
    """The in-cluster DNS name of a Service."""
    return f"{service}.{namespace}.svc.cluster.local"
