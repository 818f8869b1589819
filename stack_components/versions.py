"""The engine image and the vLLM / LMCache versions it ships: the one place they are named.

`lmcache/vllm-openai:<tag>` is LMCache's own image (LMCache repo, docker/Dockerfile, target
`image-release`): a uv venv at /opt/venv holding vLLM's stable release and LMCache from PyPI,
entrypoint `/opt/venv/bin/vllm serve`, no `USER` (it runs as root unless the pod says otherwise).
The Makefile installs exactly `VLLM_VERSION` and `LMCACHE_VERSION` into `.venv-engine`, and the
test suite checks every rendered engine command and LMCache setting with those packages' own code.
"""

from __future__ import annotations

LMCACHE_VERSION = "0.5.6"
"""LMCache release in the engine image (the image tag is `v` + this)."""
VLLM_VERSION = "0.33.0"
"""vLLM release the `lmcache/vllm-openai:v0.5.6` image was built with."""
ENGINE_IMAGE = f"lmcache/vllm-openai:v{LMCACHE_VERSION}"
"""Default engine image: vLLM + LMCache, pinned by tag."""
VENV_BIN = "/opt/venv/bin"
"""Where the image's uv venv puts its console scripts (`vllm`, `lmcache_server`, `python3`)."""
VLLM_COMMAND = (f"{VENV_BIN}/vllm", "serve")
"""The image's own entrypoint; the model and the flags follow it."""


def engine_requirements() -> list[str]:
    """The pip requirements of the engine-check tool venv (the image's versions)."""
    return [f"vllm=={VLLM_VERSION}", f"lmcache=={LMCACHE_VERSION}"]


if __name__ == "__main__":  # `python stack_components/versions.py` prints them for the Makefile
    print(" ".join(engine_requirements()))
