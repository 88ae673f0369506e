"""``openrouter-oauth-operator``: run the operator for one namespace."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import kopf

from .config import ConfigError, load_config
from .handlers import build_registry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="openrouter-oauth-operator",
        description="Reconcile OAuthProvider resources into the OpenRouter OAuth service's "
        "configuration (issuer, state secret, rotation) in one namespace.",
        epilog="settings (environment variables): WATCH_NAMESPACE (default: default), "
        "DEFAULT_DEPLOYMENT (default: openrouter-oauth), RESYNC_SECONDS (default: 30)",
    )
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint to serve (default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    args = parser.parse_args(argv)
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"openrouter-oauth-operator: error: {exc}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kopf.run(
        registry=build_registry(config),
        namespaces=[config.namespace],
        standalone=True,
        liveness_endpoint=args.liveness,
        memo=kopf.Memo(config=config),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
