"""The ``openrouter-oauth`` command."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from . import __version__, logs
from .settings import (
    SETTINGS_HELP,
    Settings,
    SettingsError,
    default_issuer,
    is_loopback_host,
    load_settings,
)

if TYPE_CHECKING:
    from sanic import Sanic

log = logging.getLogger("openrouter_oauth")


def _settings_epilog() -> str:
    width = max(len(name) for name, _, _ in SETTINGS_HELP)
    rows = [
        f"  {name:<{width}}  {meaning} (default: {default})"
        for name, default, meaning in SETTINGS_HELP
    ]
    return "settings (environment variables):\n" + "\n".join(rows)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser, and each command's own."""
    parser = argparse.ArgumentParser(
        prog="openrouter-oauth",
        description="An MCP-compliant OAuth 2.1 authorization server that hands MCP clients "
        "a user-approved, budget-limited OpenRouter API key.",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Not required here: _parse names an unknown flag before a missing command.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the authorization server",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the authorization server. Without ETCD_ENDPOINTS it keeps its "
        "state in memory (one worker only).",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; more than one needs etcd (default: %(default)s)",
    )
    return parser, {"serve": serve}


class ListenError(Exception):
    """An address to listen on is taken or not ours; one line names it."""

    def __init__(self, what: str, exc: OSError) -> None:
        super().__init__(f"cannot listen on {what}: {exc.strerror or exc}")


def check_listenable(host: str, port: int, what: str) -> None:
    """Bind once up front, so a busy port is one line rather than a worker's traceback."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ListenError(what, exc) from None


def _fail(message: str) -> int:
    print(f"openrouter-oauth: error: {message}", file=sys.stderr)
    return 2


def worker_app(settings: Settings) -> Sanic:
    """The app as each worker process builds it (workers are spawned, not forked)."""
    logs.configure()
    from .app import create_app

    return create_app(settings)


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before prometheus_client is imported anywhere, so every worker writes its samples
        # where the main process's /metrics can sum them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="openrouter-oauth-")
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from .protocol import GuardedHttpProtocol

    loader = AppLoader(factory=partial(worker_app, settings))
    app = loader.load()
    app.prepare(
        host=host,
        port=port,
        workers=workers,
        single_process=workers == 1,
        access_log=False,
        motd=False,
        protocol=GuardedHttpProtocol,
    )
    if settings.metrics_port:
        from .metrics import serve_metrics

        try:
            serve_metrics(host, settings.metrics_port)
        except OSError as exc:
            raise ListenError(f"METRICS_PORT {host}:{settings.metrics_port}", exc) from None
    if workers == 1:
        Sanic.serve_single(primary=app)  # no manager process: one process, one event loop
    else:
        Sanic.serve(primary=app, app_loader=loader)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments; an unknown one is named with the usage of the command it was given to.

    argparse alone reports it with the top-level usage, and ``--verbose`` without a
    command as a missing command.
    """
    parser, commands = _parser()
    args, unknown = parser.parse_known_args(argv)
    command = commands.get(args.command or "", parser)
    if unknown:
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error("a command is required: serve")
    return args


def _warn_about_the_issuer(settings: Settings, host: str, port: int) -> None:
    """Listening beyond loopback with the loopback issuer: clients elsewhere would be sent
    to 127.0.0.1 (their own machine) by every URL in the metadata."""
    if not is_loopback_host(host) and settings.issuer_url == default_issuer(port):
        log.warning(
            "--host %s listens beyond this machine, but the issuer is %s, which other "
            "machines cannot reach: set ISSUER_URL to the URL clients use",
            host,
            settings.issuer_url,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logs.configure()
    if not 0 < args.port < 65536:
        return _fail(f"--port must be between 1 and 65535, got {args.port}")
    if args.workers < 1:
        return _fail(f"--workers must be at least 1, got {args.workers}")
    try:
        settings = load_settings(os.environ, port=args.port)
    except SettingsError as exc:
        return _fail(str(exc))
    if settings.metrics_port == args.port:
        return _fail(f"METRICS_PORT must differ from --port ({args.port}): /metrics stays private")
    if settings.etcd is None and args.workers > 1:
        return _fail(
            "--workers > 1 needs ETCD_ENDPOINTS: the embedded store lives in one "
            "process, so other workers could not finish its logins"
        )
    _warn_about_the_issuer(settings, args.host, args.port)
    if settings.secret_generated:
        log.warning(
            "SECRET is not set: using a random one; registered clients and logins "
            "in flight will not survive a restart"
        )
    log.info(
        "issuer %s, store %s", settings.issuer_url, "etcd" if settings.etcd else "embedded memory"
    )
    try:
        check_listenable(args.host, args.port, f"{args.host}:{args.port} (--host/--port)")
        serve(settings, args.host, args.port, args.workers)
    except ListenError as exc:
        return _fail(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
