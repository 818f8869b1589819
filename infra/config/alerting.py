"""Whether a stack's alerts reach anyone: a production stack (its Pulumi stack name `prod`,
`production`, or either followed by `-`/`_`/`.` and more) with monitoring on and no
`monitoring.receivers` routes every alert to Alertmanager's `null` receiver (see
`stack_components.monitoring.helm.alertmanager_config`), which pages no one. Pure: the program
passes the stack name in and logs what comes back."""

from __future__ import annotations

import re

from infra.config.stack import StackConfig
from infra.errors import NAMESPACE

_PRODUCTION = re.compile(r"prod(uction)?([-_.].*)?")


def is_production(stack: str) -> bool:
    """A stack named `prod`, `production`, `prod-eu`, `production_2`, ..."""
    return _PRODUCTION.fullmatch(stack) is not None


def no_receiver_warning(config: StackConfig, stack: str) -> str | None:
    """The warning for a production stack whose alerts reach no receiver, with the commands that
    set one; None otherwise."""
    if not (is_production(stack) and config.monitoring.enabled and not config.monitoring.receivers):
        return None
    return (
        f"stack '{stack}': {NAMESPACE}:monitoring.receivers is empty, so every alert goes to "
        "Alertmanager's null receiver and pages no one. Set a receiver (kind pagerduty, slack or "
        "webhook) and its key, e.g.: "
        f"pulumi config set -s {stack} --path '{NAMESPACE}:monitoring.receivers.oncall.kind' pagerduty && "
        f"pulumi config set -s {stack} --secret {NAMESPACE}:alertReceiverSecrets "
        "'{\"oncall\": \"<PagerDuty Events v2 routing key>\"}'")
