"""API-key authentication: `Authorization: Bearer KEY` checked in constant time.

Keys come from a file (one per line, `#` comments and blank lines ignored) and/or an
environment variable holding a comma-separated list; both are read once when the app is
built. Keys are never logged or echoed; a key's identity (rate limiting, the hold queue's
fairness) is its index. A key may carry its hold-queue priority class after it:
`KEY class=high` (one of the settings' `queue.classes`; the default class otherwise).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from router.settings import RouterSettings, SettingsError
from router.shell.errors import Unauthorized


class ApiKeys:
    """The accepted keys; empty means authentication is off."""

    def __init__(self, keys: tuple[str, ...], classes: tuple[str | None, ...] = ()) -> None:
        self._keys = tuple(k.encode() for k in keys)
        self._classes = {f"key-{i}": c for i, c in enumerate(classes) if c is not None}

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

    def priority_class(self, identity: str) -> str | None:
        """The class a key was given (`KEY class=NAME`), None when it has none."""
        return self._classes.get(identity)


def load_keys(settings: RouterSettings, environ: Mapping[str, str]) -> ApiKeys:
    """Read the keys named by the settings (a file, an environment variable, or both)."""
    keys: list[str] = []
    if settings.api_keys_file:
        text = Path(settings.api_keys_file).read_text(encoding="utf-8")
        keys.extend(line.strip() for line in text.splitlines())
    if settings.api_keys_env:
        keys.extend(part.strip() for part in environ.get(settings.api_keys_env, "").split(","))
    entries = [_entry(k, settings) for k in keys if k and not k.startswith("#")]
    return ApiKeys(tuple(k for k, _ in entries), tuple(c for _, c in entries))


def _entry(line: str, settings: RouterSettings) -> tuple[str, str | None]:
    """A key and its optional class from `KEY` or `KEY class=NAME` (the key is never echoed)."""
    key, _, rest = line.partition(" ")
    rest = rest.strip()
    if not rest:
        return key, None
    name, _, value = rest.partition("=")
    allowed = settings.queue.classes
    if name.strip() != "class" or value.strip() not in allowed:
        raise SettingsError("api_keys_file", f"<a key> {rest}",
                            f"lines must be 'KEY' or 'KEY class=NAME' with NAME one of {', '.join(allowed)}")
    return key, value.strip()
