"""A production stack whose alerts reach no receiver warns, naming the commands that set one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from infra.config import parse_stack_config
from infra.config.alerting import is_production, no_receiver_warning
from infra.config.services import ReceiverConfig
from infra.stackfile import raw_project_config, read_stack_file

ROOT = Path(__file__).resolve().parents[2]


def _config(stack: str):
    return parse_stack_config(raw_project_config(read_stack_file(ROOT, stack)))


@pytest.mark.parametrize(("name", "production"), [("prod", True), ("production", True), ("prod-eu", True),
                                                  ("dev", False), ("staging", False), ("product", False)])
def test_production_is_told_by_the_stack_name(name, production):
    """prod, production and their suffixed variants; not a name that merely starts with 'prod'."""
    assert is_production(name) is production


def test_prod_without_receivers_warns_with_the_commands():
    """The shipped prod file sets no receiver: the warning says so and how to set one."""
    config = _config("prod")
    assert not config.monitoring.receivers and config.monitoring.enabled
    warning = no_receiver_warning(config, "prod")
    assert warning is not None
    assert "null receiver" in warning
    assert "pulumi config set -s prod --path 'llm-stack:monitoring.receivers.oncall.kind' pagerduty" \
        in warning
    assert "--secret llm-stack:alertReceiverSecrets" in warning


def test_no_warning_with_a_receiver_off_production_or_without_monitoring():
    """A receiver set, a dev stack, or monitoring off: nothing to warn about."""
    config = _config("prod")
    paged = dataclasses.replace(config.monitoring, receivers={"oncall": ReceiverConfig(kind="pagerduty")})
    assert no_receiver_warning(dataclasses.replace(config, monitoring=paged), "prod") is None
    assert no_receiver_warning(config, "dev") is None
    off = dataclasses.replace(config.monitoring, enabled=False)
    assert no_receiver_warning(dataclasses.replace(config, monitoring=off), "prod") is None


def test_render_logs_the_warning_for_prod_only(rendered):
    """`llm-stack render --stack prod` (the program under the mocks) logs it; dev and staging do not."""
    logs = {env: (path.parent / f"{env}.stderr").read_text() for env, path in rendered.items()}
    assert "pages no one" in logs["prod"]
    assert all("pages no one" not in text for env, text in logs.items() if env != "prod")
    assert len(logs) == 3
