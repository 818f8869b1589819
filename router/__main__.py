"""`python -m router --config FILE`: the container's entrypoint (settings from a ConfigMap)."""

from __future__ import annotations

import argparse
import os
import sys

from router.settings import SettingsError, build_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router", description="Run the prefix-aware router.")
    parser.add_argument("--config", default=os.environ.get("LLMSTACK_ROUTER_CONFIG"),
                        help="settings file, JSON or YAML (env LLMSTACK_ROUTER_CONFIG)")
    parser.add_argument("--port", type=int, default=None, help="override the settings' port")
    args = parser.parse_args(argv)
    if not args.config:
        parser.error("--config FILE is required (or set LLMSTACK_ROUTER_CONFIG)")
    try:
        settings = build_settings(args.config, port=args.port)
        from router.routing.policies.registry import build_policy

        build_policy(settings.policy)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from router.shell.workers import run, setup_logging

    setup_logging(settings.log_level)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
