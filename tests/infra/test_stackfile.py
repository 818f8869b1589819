"""Reading Pulumi.<stack>.yaml as the runtime sees it: text values, secure values as placeholders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from infra.errors import RenderError
from infra.stackfile import OFFLINE_SECRETS, parse_stack_yaml, placeholder, read_stack_file

ROOT = Path(__file__).resolve().parents[2]


def test_secure_values_become_placeholders_and_secret_keys():
    """`secure:` values never reach the program: they are placeholders, listed as secret keys."""
    stack = parse_stack_yaml({"config": {"llm-stack:hfToken": {"secure": "v1:abc"},
                                         "llm-stack:router": {"replicas": 2}, "aws:region": "us-east-1"}})
    assert stack.secret_keys == ("llm-stack:hfToken", "llm-stack:routerApiKeys")  # the second a stand-in
    assert stack.config["llm-stack:hfToken"] == placeholder("llm-stack:hfToken")
    assert "v1:abc" not in json.dumps(stack.config)
    assert json.loads(stack.config["llm-stack:router"]) == {"replicas": 2}
    assert stack.config["aws:region"] == "us-east-1"


def test_unknown_stack_lists_the_stacks():
    """An unknown stack name fails listing the stacks that exist."""
    with pytest.raises(RenderError, match="expected one of dev, prod, staging"):
        read_stack_file(ROOT, "qa")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_carry_no_ciphertext_and_render_with_placeholders(stack):
    """No shipped stack file holds a `secure:` value (no user could decrypt one) or a plain
    token; offline, the needed secrets are placeholders, secret, and listed as stand-ins."""
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    entries = yaml.safe_load(text)["config"].values()
    assert len(entries) > 10 and not [v for v in entries if isinstance(v, dict) and "secure" in v]
    assert "hf_" not in text
    loaded = read_stack_file(ROOT, stack)
    assert set(OFFLINE_SECRETS) <= set(loaded.secret_keys)
    assert all(loaded.config[key] == placeholder(key) for key in OFFLINE_SECRETS)
    assert [s for s in loaded.standins if "--secret" in s] == [f"{k} (pulumi config set --secret)"
                                                                for k in OFFLINE_SECRETS]


def test_a_set_secret_is_not_replaced_by_a_placeholder():
    """A secret the stack file sets (secure, or plain and later refused) keeps its own entry."""
    stack = parse_stack_yaml({"config": {"llm-stack:hfToken": "hf_plain",
                                         "llm-stack:routerApiKeys": {"secure": "v1:x"}}})
    assert stack.config["llm-stack:hfToken"] == "hf_plain" and "llm-stack:hfToken" not in stack.secret_keys
    assert stack.secret_keys == ("llm-stack:routerApiKeys",) and not stack.standins


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_pin_each_model_to_a_commit(stack):
    """Every model of a shipped stack names a 40-hex commit of its hub repository, not a branch
    such as `main`, which moves under a running deployment (a restarted pod loads other weights)."""
    from infra.config import parse_stack_config
    from infra.stackfile import raw_project_config

    config = parse_stack_config(raw_project_config(read_stack_file(ROOT, stack)))
    assert config.models
    for name, model in config.models.items():
        assert re.fullmatch(r"[0-9a-f]{40}", model.revision), (name, model.revision)
