"""Reading Pulumi.<stack>.yaml as the runtime sees it: text values, secure values as placeholders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.errors import RenderError
from infra.stackfile import parse_stack_yaml, read_stack_file

ROOT = Path(__file__).resolve().parents[2]


def test_secure_values_become_placeholders_and_secret_keys():
    """`secure:` values never reach the program: they are placeholders, listed as secret keys."""
    stack = parse_stack_yaml({"config": {"llm-stack:hfToken": {"secure": "v1:abc"},
                                         "llm-stack:router": {"replicas": 2}, "aws:region": "us-east-1"}})
    assert stack.secret_keys == ("llm-stack:hfToken",)
    assert "v1:abc" not in json.dumps(stack.config)
    assert json.loads(stack.config["llm-stack:router"]) == {"replicas": 2}
    assert stack.config["aws:region"] == "us-east-1"


def test_unknown_stack_lists_the_stacks():
    """An unknown stack name fails listing the stacks that exist."""
    with pytest.raises(RenderError, match="expected one of dev, prod, staging"):
        read_stack_file(ROOT, "qa")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_secrets_are_all_secure(stack):
    """Every secret key of every shipped stack is a `secure:` value (none in plain text)."""
    loaded = read_stack_file(ROOT, stack)
    assert {"llm-stack:hfToken", "llm-stack:routerApiKeys"} <= set(loaded.secret_keys)
    document = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    assert "hf_" not in document
