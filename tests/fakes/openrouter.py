"""A fake OpenRouter: a real HTTP server following OpenRouter's PKCE contract (see docs/design.md).

- ``GET /auth`` shows an approval page (a form with a credit limit, Approve and
  Deny); approving redirects to ``callback_url`` with ``code`` (and ``state`` if
  one was sent); denying redirects with ``error=access_denied`` and no state.
- ``POST /api/v1/auth/keys`` exchanges a code once, within 10 minutes, after a
  PKCE check (S256 or plain); errors are ``{"error": {"code": N, "message": …}}``.
- ``GET /api/v1/key`` (and the older ``/api/v1/auth/key``) describes a key.
- ``POST /api/v1/chat/completions`` answers an OpenAI-style completion whose text
  echoes the last message, for a known key only; ``completions`` records who called.

Tests steer it through :meth:`FakeOpenRouter.fail_next` (faults) and
``clock`` (time travel). Run it alone with ``python -m tests.fakes.openrouter``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CODE_LIFETIME = 600


@dataclass
class _Code:
    challenge: str
    method: str
    label: str
    limit: float | None
    created: float


@dataclass
class _Key:
    label: str
    limit: float | None
    usage: float = 0.0
    user_id: str = field(default_factory=lambda: "user_" + secrets.token_hex(6))


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _callback_allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, body: dict[str, Any]) -> Answer:
    return Answer(status, json.dumps(body).encode())


def _page(status: int, heading: str, body: str) -> Answer:
    """A page that says, in its title and heading, whose it is: no one should mistake it for
    OpenRouter's."""
    heading = html.escape(f"fake OpenRouter: {heading}")
    page = f"<!doctype html><title>{heading}</title><h1>{heading}</h1>{body}"
    return Answer(status, page.encode(), "text/html; charset=utf-8")


def _error(status: int, message: str) -> Answer:
    return _json(status, {"error": {"code": status, "message": message}})


class OpenRouterContract:
    """The state and behaviour of OpenRouter's OAuth API, independent of any HTTP server."""

    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.time
        self.codes: dict[str, _Code] = {}
        self.keys: dict[str, _Key] = {}
        self.requests: Counter[str] = Counter()
        self.exchange_bodies: list[dict[str, Any]] = []
        self.auth_queries: list[dict[str, str]] = []
        self.completions: list[tuple[str, dict[str, Any]]] = []  # (key, request body)
        self._lock = threading.Lock()

    def issue_key(self, label: str = "test", limit: float | None = None) -> str:
        key = "sk-or-v1-" + secrets.token_hex(32)
        with self._lock:
            self.keys[key] = _Key(label, limit)
        return key

    def count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    def revoke(self, key: str) -> None:
        with self._lock:
            self.keys.pop(key, None)

    def handle(self, method: str, path: str, query: str, authorization: str, body: bytes) -> Answer:
        """Answer one request as OpenRouter would."""
        self.count(path)
        if path == "/api/v1/auth/keys":
            if method != "POST":
                return _error(405, "Method not allowed")
            try:
                return _json(*self._exchange(json.loads(body)))
            except ValueError:
                return _error(400, "Invalid JSON body")
        if path == "/api/v1/chat/completions":
            if method != "POST":
                return _error(405, "Method not allowed")
            return _json(*self._chat_completion(authorization, body))
        if method == "POST" and path == "/auth/approve":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            return Answer(302, b"", "text/plain", {"Location": self._approve(form)})
        if method != "GET":
            return _error(405, "Method not allowed")
        if path == "/auth":
            return self._auth_page({k: v[0] for k, v in parse_qs(query).items()})
        if path in ("/api/v1/key", "/api/v1/auth/key"):
            return _json(*self._key_info(authorization, legacy=path == "/api/v1/auth/key"))
        if path == "/":
            return Answer(200, b"fake OpenRouter", "text/plain")
        return _error(404, "Not found")

    def _auth_page(self, query: dict[str, str]) -> Answer:
        self.auth_queries.append(query)
        callback = query.get("callback_url", "")
        if not _callback_allowed(callback) or not query.get("code_challenge"):
            return _page(400, "invalid callback_url or code_challenge", "")
        fields = {
            "callback_url": callback,
            "code_challenge": query["code_challenge"],
            "method": query.get("code_challenge_method", "plain"),
            "state": query.get("state", ""),
            "key_label": query.get("key_label", ""),
        }
        hidden = "".join(
            f'<input type="hidden" name="{n}" value="{html.escape(v)}">' for n, v in fields.items()
        )
        form = (
            "<p>This stands in for OpenRouter's approval page, for tests and the demo: no "
            "account, no sign-in, and the key it makes works only here.</p>"
            f'<form method="post" action="/auth/approve">{hidden}'
            f'<label>Credit limit <input name="limit" value=""></label>'
            f'<button name="decision" value="approve">Authorize</button>'
            f'<button name="decision" value="deny">Cancel</button></form>'
        )
        return _page(200, f"authorize {fields['key_label']}", form)

    def _approve(self, form: dict[str, str]) -> str:
        """Create a code and return where the browser goes next."""
        callback = form["callback_url"]
        if form.get("decision") != "approve":
            return callback + ("&" if "?" in callback else "?") + "error=access_denied"
        raw_limit = form.get("limit", "").strip()
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = _Code(
                form["code_challenge"],
                form.get("method") or "plain",
                form.get("key_label", ""),
                float(raw_limit) if raw_limit else None,
                self.clock(),
            )
        params = {"code": code}
        if form.get("state"):
            params["state"] = form["state"]
        return callback + ("&" if "?" in callback else "?") + urlencode(params)

    def _exchange(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            return 400, {"error": {"code": 400, "message": "Invalid JSON body"}}
        method = body.get("code_challenge_method", "plain")
        if method not in ("S256", "plain"):
            return 400, {"error": {"code": 400, "message": "Invalid code_challenge_method"}}
        with self._lock:
            self.exchange_bodies.append(body)
            grant = self.codes.pop(str(body.get("code", "")), None)
        forbidden = {"error": {"code": 403, "message": "Invalid code or code_verifier"}}
        if grant is None or self.clock() - grant.created > CODE_LIFETIME:
            return 403, forbidden
        verifier = str(body.get("code_verifier", ""))
        expected = _s256(verifier) if grant.method == "S256" else verifier
        if method != grant.method or not secrets.compare_digest(expected, grant.challenge):
            return 403, forbidden
        key = self.issue_key(grant.label, grant.limit)
        return 200, {"key": key, "user_id": self.keys[key].user_id}

    def _key_info(self, authorization: str, *, legacy: bool) -> tuple[int, dict[str, Any]]:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key:
            return 401, {"error": {"code": 401, "message": "No auth credentials found"}}
        with self._lock:
            info = self.keys.get(key.strip())
        if info is None:
            return 401, {"error": {"code": 401, "message": "User not found."}}
        remaining = None if info.limit is None else info.limit - info.usage
        if legacy:
            return 200, {
                "data": {
                    "label": info.label,
                    "usage": info.usage,
                    "limit": info.limit,
                    "is_free_tier": False,
                }
            }
        return 200, {
            "data": {
                "label": info.label,
                "limit": info.limit,
                "limit_remaining": remaining,
                "limit_reset": None,
                "include_byok_in_limit": False,
                "usage": info.usage,
                "usage_daily": info.usage,
                "usage_weekly": info.usage,
                "usage_monthly": info.usage,
                "byok_usage": 0,
                "is_free_tier": False,
                "is_management_key": False,
                "creator_user_id": info.user_id,
                "expires_at": None,
                "rate_limit": {"requests": -1, "interval": "10s"},
            }
        }

    def _chat_completion(self, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return 401, {"error": {"code": 401, "message": "No auth credentials found"}}
        with self._lock:
            known = key in self.keys
        if not known:
            return 401, {"error": {"code": 401, "message": "User not found."}}
        try:
            request = json.loads(body)
            messages = request["messages"]
            last = str(messages[-1]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            return 400, {"error": {"code": 400, "message": "Invalid request body"}}
        with self._lock:
            self.completions.append((key, request))
        model = str(request.get("model") or "openrouter/auto")
        words = len(last.split())
        return 200, {
            "id": "gen-" + secrets.token_hex(8),
            "object": "chat.completion",
            "created": int(self.clock()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"echo: {last}"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": words,
                "completion_tokens": words + 1,
                "total_tokens": 2 * words + 1,
            },
        }


class FakeOpenRouter(OpenRouterContract):
    """The contract on a real HTTP server (in a thread), with faults tests can inject."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self._faults: dict[str, list[str | int | float]] = {}
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeOpenRouter:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, path: str, *faults: str | int | float) -> None:
        """Make the next requests to ``path`` fail, one fault each: an HTTP status,
        ``"drop"`` (close without answering), ``"malformed"`` (200 with broken JSON),
        or a number of seconds to stall before answering normally."""
        with self._lock:
            self._faults.setdefault(path, []).extend(faults)

    def faults_left(self, path: str) -> int:
        """How many injected faults for ``path`` no request has met yet."""
        with self._lock:
            return len(self._faults.get(path, []))

    def _take_fault(self, path: str) -> str | int | float | None:
        with self._lock:
            queue = self._faults.get(path)
            return queue.pop(0) if queue else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, answer: Answer) -> None:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = fake._take_fault(parts.path)
                if fault == "drop":
                    fake.count(parts.path)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "malformed":
                    fake.count(parts.path)
                    self._send(Answer(200, b'{"key": "sk-or-'))
                    return
                if isinstance(fault, int):
                    fake.count(parts.path)
                    self._send(_error(fault, "Injected"))
                    return
                if isinstance(fault, float):
                    time.sleep(fault)
                self._send(
                    fake.handle(
                        method, parts.path, parts.query, self.headers.get("Authorization", ""), body
                    )
                )

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fake OpenRouter on loopback.")
    parser.add_argument("--port", type=int, default=9999, help="port on 127.0.0.1 (9999)")
    args = parser.parse_args()
    try:
        fake = FakeOpenRouter(port=args.port)
    except OSError as exc:
        # One line naming the address, like the service's own start-up errors.
        sys.exit(f"fake OpenRouter: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}")
    try:
        print(f"fake OpenRouter on {fake.base_url}", flush=True)
        fake.serve_forever()
    except KeyboardInterrupt:
        # Ctrl-C is how a person stops it: no traceback. Not stop(): its shutdown() waits
        # for a serve loop that may never have started; the socket closes as the process ends.
        pass


if __name__ == "__main__":
    main()
