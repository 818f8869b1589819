"""Routing policies: one module each, chosen by `kind` through `registry.build_policy`."""
