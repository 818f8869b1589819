"""Read a `Pulumi.<stack>.yaml` the way the Pulumi CLI hands it to a program: every value as
text (structured values as JSON), `secure:` values as secrets. No decryption happens here:
secret values become placeholders, so a render never sees a real credential.

Account-specific values the shipped stack files leave out on purpose (each deployer sets them
with `pulumi config set --path`: the API endpoint's allowed CIDRs, the admin principals) get
offline stand-ins here when missing, so `llm-stack render` and the tests run the whole program.
The stand-ins cannot reach a real account: account 000000000000 does not exist, and
198.18.0.0/15 (RFC 2544) is never routed on the internet.

The shipped stack files carry no `secure:` values either: a ciphertext is bound to the key of
the one stack that encrypted it (passphrase + `encryptionsalt`, a KMS key, or Pulumi Cloud's
per-stack key; pulumi/pulumi#757, #2730: "failed to decrypt encrypted configuration value ...
refusing to proceed"), so a shipped one could only stop every user's `pulumi up`. Each deployer
sets them with `pulumi config set --secret`; offline, the secrets every shipped stack needs get
placeholders."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.config.load import PREFIX
from infra.config.stack import SecretRef
from infra.errors import RenderError

STACKS = ("dev", "staging", "prod")
"""The environments this project ships a `Pulumi.<stack>.yaml` for."""
CLUSTER_KEY = f"{PREFIX}cluster"
OFFLINE_STANDINS: dict[str, Any] = {
    "adminPrincipalArns": ["arn:aws:iam::000000000000:role/offline-render-admin"],
    "publicAccessCidrs": ["198.18.0.0/15"],
}
"""Stand-ins for the account-specific `cluster.eks` keys, used only in offline runs when unset."""
OFFLINE_SECRETS = (f"{PREFIX}hfToken", f"{PREFIX}routerApiKeys")
"""Secrets every shipped stack needs (the weights' token; prod's and staging's API keys), given
placeholders in offline runs when unset."""


@dataclass(frozen=True, kw_only=True)
class StackFile:
    """A stack's config as the Pulumi runtime sees it."""

    config: dict[str, str]
    """Every key (`llm-stack:cluster`, `aws:region`) to its text value."""
    secret_keys: tuple[str, ...]
    """Keys whose values are secrets (placeholders here)."""
    standins: tuple[str, ...] = ()
    """`cluster.eks` keys and secrets that were unset and got an offline stand-in."""


def placeholder(key: str) -> str:
    """The stand-in value of a secret key in offline runs."""
    return f"placeholder-secret-for-{key.replace(':', '-')}"


def config_text(value: Any) -> str:
    """A config value as the CLI passes it: strings as they are, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def parse_stack_yaml(document: Mapping[str, Any]) -> StackFile:
    """The runtime view of a parsed `Pulumi.<stack>.yaml` document (pure)."""
    entries = dict(document.get("config") or {})
    standins: tuple[str, ...] = ()
    if isinstance(entries.get(CLUSTER_KEY), Mapping):
        entries[CLUSTER_KEY], standins = with_offline_standins(entries[CLUSTER_KEY])
    config: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in sorted(entries.items()):
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            config[key] = placeholder(key)
            secrets.append(key)
        else:
            config[key] = config_text(value)
    unset = tuple(key for key in OFFLINE_SECRETS if key not in config)
    config |= {key: placeholder(key) for key in unset}
    return StackFile(config=config, secret_keys=tuple(secrets) + unset,
                     standins=standins + tuple(f"{key} (pulumi config set --secret)" for key in unset))


def with_offline_standins(cluster: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The `llm-stack:cluster` section with the account-specific `eks` keys that are unset filled
    with `OFFLINE_STANDINS`, and the keys filled."""
    eks = cluster.get("eks")
    if not isinstance(eks, Mapping):
        return dict(cluster), ()
    needed = [k for k in OFFLINE_STANDINS
              if k not in eks and (k != "publicAccessCidrs" or eks.get("endpointPublicAccess", True))]
    filled = dict(eks) | {k: OFFLINE_STANDINS[k] for k in needed}
    return dict(cluster) | {"eks": filled}, tuple(f"cluster.eks.{k}" for k in needed)


def raw_project_config(stack: StackFile) -> dict[str, Any]:
    """The `llm-stack:` keys as `parse_stack_config` takes them (secrets as `SecretRef`)."""
    from infra.config.load import decode_value

    return {
        key.removeprefix(PREFIX): SecretRef(key=key.removeprefix(PREFIX)) if key in stack.secret_keys
        else decode_value(text)
        for key, text in stack.config.items() if key.startswith(PREFIX)
    }


def stack_path(root: Path, stack: str) -> Path:
    """`root/Pulumi.<stack>.yaml`, or a `RenderError` naming the stacks that exist."""
    files = root.glob("Pulumi.*.yaml")
    available = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in files)
    path = root / f"Pulumi.{stack}.yaml"
    if stack not in available:
        raise RenderError(f"unknown stack {stack!r}: expected one of {', '.join(available) or '(none)'} "
                          f"(a Pulumi.<stack>.yaml in {root})")
    return path


def read_stack_file(root: Path, stack: str) -> StackFile:
    """Load `root/Pulumi.<stack>.yaml`."""
    path = stack_path(root, stack)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise RenderError(f"cannot read {path}: {err}") from err
    if not isinstance(document, Mapping):
        raise RenderError(f"{path} must be a mapping with a 'config' section")
    return parse_stack_yaml(document)
