"""The guardrail policy pack (`pulumi preview --policy-pack policies/guardrails`).

Policies are plain functions over `Resource` values (`registry.GUARDRAILS`); `pack.py` adapts
them to pulumi-policy, `offline.py` runs them on `llm-stack render`'s output with no CLI."""
