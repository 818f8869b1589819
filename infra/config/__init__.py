"""The typed, validated stack configuration (`llm-stack:` keys of `Pulumi.<stack>.yaml`).

`parse_stack_config(raw)` is pure; `load_stack_config()` reads the running Pulumi stack's
config once. Every invalid value raises `infra.errors.ConfigError` before any resource exists.
"""

from infra.config.load import load_stack_config, parse_stack_config
from infra.config.stack import SECRET_KEYS, SecretRef, StackConfig

__all__ = ["SECRET_KEYS", "SecretRef", "StackConfig", "load_stack_config", "parse_stack_config"]
