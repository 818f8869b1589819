"""Secrets reach pods only from Kubernetes Secrets (filled from Pulumi secrets): never as a plain
env value, a command-line argument, a ConfigMap entry or a Helm value."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.guardrails.config import GuardrailConfig
from policies.guardrails.objects import Resource, containers, mapping, pod_spec, sequence

SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEYS?|CREDENTIALS?|PRIVATE_?KEY|ACCESS_?KEY)$", re.IGNORECASE
)
"""Env/ConfigMap key names that hold credentials (matched at the end: `HF_TOKEN`, `apiKey`)."""
CREDENTIAL = re.compile(
    r"hf_[A-Za-z0-9]{30,}"  # Hugging Face user access token
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|sk-[A-Za-z0-9_-]{20,}"  # OpenAI-style API key
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub token
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
"""Values that are credentials whatever their key is called."""
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
FIX = "fix: keep it in a Kubernetes Secret set from a Pulumi secret (pulumi config set --secret)"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, string) for every string inside a nested value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    else:
        for i, item in enumerate(sequence(value)):
            yield from _strings(item, f"{path}[{i}]")


def _env_issues(res: Resource, container: Mapping[str, Any]) -> Iterator[str]:
    where = f"{res.label} container {container.get('name')!r}"
    for env in map(mapping, sequence(container.get("env"))):
        value, name = env.get("value"), str(env.get("name", ""))
        if value not in (None, "") and (SECRET_NAME.search(name) or CREDENTIAL.search(str(value))):
            yield f"{where} sets env {name} to a plain value; {FIX} and use env.valueFrom.secretKeyRef"
    for path, text in _strings(
        [*sequence(container.get("command")), *sequence(container.get("args"))], "args"
    ):
        if CREDENTIAL.search(text):
            yield f"{where} passes a credential on its command line ({path}); {FIX} and read it from the env"


def _config_map_issues(res: Resource) -> Iterator[str]:
    for key, value in mapping(res.props.get("data")).items():
        if value not in (None, "") and (SECRET_NAME.search(str(key)) or CREDENTIAL.search(str(value))):
            yield f"{res.label} holds a credential in data.{key}; {FIX}"


def _helm_issues(res: Resource) -> Iterator[str]:
    for path, text in _strings(res.props.get("values"), "values"):
        if CREDENTIAL.search(text):
            yield f"{res.label} has a credential in {path}; {FIX} and point the chart at it (existingSecret)"


def check_plain_secrets(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """No credential in a container's env values or arguments, a ConfigMap, or Helm values."""
    if res.type == CONFIG_MAP:
        yield from _config_map_issues(res)
    elif res.type == HELM_RELEASE:
        yield from _helm_issues(res)
    for container in containers(pod_spec(res) or {}):
        yield from _env_issues(res, container)
