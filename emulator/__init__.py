"""Emulated vLLM engines: vLLM's OpenAI-compatible wire format and metric names over a model of
its prefix cache (GPU + LMCache-like CPU tier) and continuous batching, with injectable faults.

Pure model (no I/O, no clock): `cache`, `scheduler`, `timing`, `metrics`, `faults`, `wire`,
`journal`, `config`. Shell: `engine` (step loop on the event loop's clock), `app` (aiohttp
handlers), `server` (one engine on one port), `runner` (N engines: `run_emulators`,
`EmulatorThread`, `EmulatorProcess`), `cli` (`llm-stack emulate`, the one entry) and its body
`serve`. Start here:
`emulator.runner`'s docstring. This package module imports nothing heavy.
"""
