"""JSON logs on stdout, one object per line, and the one-line-per-request record.

Nothing that a request carries goes into a log except its method, route name,
status, request id and client id: never a code, verifier, key, ticket, state or
secret (a test greps a whole flow's log for them).

The request line is written directly rather than through :mod:`logging`: it runs
on every request, and the logging machinery (records, caller lookup, handler
locks) was a fifth of the cost of a cached /me check. It has the same shape as
every other line.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import sys
import time
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# Request ids: a random per-process prefix and a counter. Unique, cheap, and not secret.
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def _timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def access(**fields: Any) -> None:
    """Write the one line for a finished request."""
    line = {
        "time": _timestamp(time.time()),
        "level": "info",
        "logger": "openrouter_oauth.access",
        "message": "request",
        **fields,
    }
    sys.stdout.write(json.dumps(line) + "\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("sanic.root", "sanic.error", "sanic.server", "sanic.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One line per outbound call is noise next to our own request line.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID when it is a plain token, else a fresh one."""
    return header if header is not None and _REQUEST_ID.fullmatch(header) else new_request_id()


def loggable_client_id(client_id: str | None) -> str | None:
    """Registered ids are long sealed blobs: log a short, still unique, tail of them."""
    if client_id is None:
        return None
    if client_id.startswith("mcp_") and len(client_id) > 40:
        return f"mcp_…{client_id[-16:]}"
    return client_id[:200]
