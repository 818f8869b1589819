"""Entry point the Pulumi CLI runs for `--policy-pack policies/guardrails` (with the project's
`.venv` active, so `policies` imports). Starting `PolicyPack` serves the analyzer and blocks."""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.guardrails.pack import PACK_NAME, pulumi_policies

PolicyPack(name=PACK_NAME, policies=pulumi_policies(), enforcement_level=EnforcementLevel.MANDATORY)
