"""`llm-stack:adapterSources`: where LoRA adapters may come from, and whether their revisions
must be pinned (a guardrail: an adapter is code-like — it changes every answer of its model).

```yaml
llm-stack:adapterSources:
  allowed: [hf://acme-ml/, s3://acme-llm-weights/models/adapters/]
  requirePinned: true   # hf:// sources name a 40-hex commit, never a branch or tag
```

An entry ending in `/` allows everything under it (`hf://acme-ml/`: any repository of that
organisation); any other entry names one repository or key prefix exactly (`hf://acme-ml/sql-lora`
allows that repository at any revision). S3 sources must also lie under the model store's
prefix, which its read-only role may read (`stack_components.lora.check_s3_sources`). A
production stack (`prod`, `production`, `prod-…`; `infra.config.alerting.is_production`) must
set `requirePinned: true` when it serves adapters (`production_pin_error`, run by the program,
which knows the stack's name). An S3 prefix counts as pinned: a copy is fetched once per prefix
(the fetch skips a directory it completed), so a new version needs a new prefix anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.errors import NAMESPACE, ConfigError, require
from stack_components.errors import ArgsError
from stack_components.lora import parse_source

if TYPE_CHECKING:  # stack.py imports this module
    from infra.config.models import ModelConfig
    from infra.config.stack import StackConfig

SCHEMES = ("hf://", "s3://")


@dataclass(frozen=True, kw_only=True)
class AdapterSourcesConfig:
    """`llm-stack:adapterSources`."""

    allowed: tuple[str, ...] = ()
    """Source prefixes adapters may come from (`hf://org/`, `hf://org/repo`, `s3://bucket/prefix/`);
    empty: any (S3 still only under the model store's prefix)."""
    require_pinned: bool = False
    """Every hf:// source names a 40-hex commit (a branch or tag moves under the engines); must be
    true in a production stack serving adapters."""

    def __post_init__(self) -> None:
        for i, entry in enumerate(self.allowed):
            require(isinstance(entry, str) and entry.startswith(SCHEMES) and len(entry) > len("hf://"),
                    f"allowed[{i}]", entry, "must start with hf:// or s3:// and name an organisation, "
                    "repository, bucket or prefix")

    def allows(self, source: str) -> bool:
        """Whether `source` lies under one of `allowed` (always, when `allowed` is empty)."""
        if not self.allowed:
            return True
        return any(source.startswith(e) if e.endswith("/") else
                   source == e or (source.startswith(e) and source[len(e)] in "@/") for e in self.allowed)


def check_adapter_sources(config: StackConfig) -> None:
    """Each adapter (or version) source is allowed, and pinned when `requirePinned` is true."""
    sources = config.adapter_sources
    for name, model in config.models.items():
        for _served, where, source, _rank in model.served_adapters():
            field = f"{NAMESPACE}:models.{name}.{where}.source"
            if not sources.allows(source):
                raise ConfigError(field, source, "must come from one of adapterSources.allowed "
                                  f"({', '.join(sources.allowed)})")
            if sources.require_pinned and not _pinned(source):
                raise ConfigError(field, source, "must pin a 40-hex commit (hf://<org>/<repo>@<commit>): "
                                  "adapterSources.requirePinned is true, and a branch or tag moves "
                                  "under the engines")


def production_pin_error(config: StackConfig, production: bool) -> ConfigError | None:
    """A production stack serving adapters must require pinned sources; None when fine."""
    if not production or config.adapter_sources.require_pinned or not _serves_adapters(config.models):
        return None
    return ConfigError(f"{NAMESPACE}:adapterSources.requirePinned", False,
                       "must be true in a production stack serving LoRA adapters (pin each hf:// source "
                       "to a 40-hex commit)")


def _serves_adapters(models: dict[str, ModelConfig]) -> bool:
    return any(model.adapters for model in models.values())


def _pinned(source: str) -> bool:
    try:
        return parse_source("source", source).pinned
    except ArgsError:
        return True  # malformed: the engine component refuses it under the same key, with the format
