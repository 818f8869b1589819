"""The router's pure core: which engine takes a request, and why.

Plain synchronous code over plain values: no I/O, no awaits, no clock reads, no locks, and
nothing from `router.shell` (tests/test_layers.py walks the imports). The prompt's
blocks and their hashes (`prompt`), the bounded prefix index (`prefix_index`), the TTFT cost
model (`cost`), the live engine set (`engines`), the policy Protocol and its values (`base`),
and one module per policy behind a kind-tag registry (`policies/`).
"""
