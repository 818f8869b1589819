"""API-key authentication: `Authorization: Bearer KEY` checked in constant time.

Keys come from a file (one per line, `#` comments and blank lines ignored) and/or an
environment variable holding a comma-separated list; both are read once when the app is
built. Keys are never logged or echoed; a key's identity for rate limiting is its index.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from router.settings import RouterSettings
from router.shell.errors import Unauthorized


class ApiKeys:
    """The accepted keys; empty means authentication is off."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = tuple(k.encode() for k in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None) -> str:
        """The caller's identity (`key-<n>`) for a valid header; raises `Unauthorized`."""
        if not authorization:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
        presented = token.strip().encode("utf-8", "surrogateescape")
        found = -1
        for index, key in enumerate(self._keys):  # compare every key: no early exit on a match
            if hmac.compare_digest(presented, key):
                found = index
        if found < 0:
            raise Unauthorized("invalid API key")
        return f"key-{found}"


def load_keys(settings: RouterSettings, environ: Mapping[str, str]) -> ApiKeys:
    """Read the keys named by the settings (a file, an environment variable, or both)."""
    keys: list[str] = []
    if settings.api_keys_file:
        text = Path(settings.api_keys_file).read_text(encoding="utf-8")
        keys.extend(line.strip() for line in text.splitlines())
    if settings.api_keys_env:
        keys.extend(part.strip() for part in environ.get(settings.api_keys_env, "").split(","))
    return ApiKeys(tuple(k for k in keys if k and not k.startswith("#")))
