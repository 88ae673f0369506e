"""A client's web host on loopback that serves Client ID Metadata Documents, honest or hostile.

Each path is scripted: a document, a gzip bomb, stacked encodings, or a body
dripped a byte at a time. Real sockets, so the service's fetcher cannot tell.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drip_seconds: float = 0.0  # > 0: send one byte, then wait this long, and so on


class DocumentHost:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.hits: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._stopped = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> DocumentHost:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()

    def document(self, path: str, redirect_uris: list[str], **extra: Any) -> str:
        """Serve an honest document at ``path``; return its URL (the client_id)."""
        url = self.base_url + path
        body = {"client_id": url, "client_name": "Doc Client", "redirect_uris": redirect_uris}
        self.scripts[path] = Script(json.dumps({**body, **extra}).encode())
        return url

    def gzip_bomb(self, path: str, decoded_bytes: int, layers: int = 1) -> str:
        body = b"{" + b" " * decoded_bytes + b"}"
        for _ in range(layers):
            body = gzip.compress(body, compresslevel=9)
        encoding = ", ".join(["gzip"] * layers)
        self.scripts[path] = Script(body, {"Content-Encoding": encoding})
        return self.base_url + path

    def drip(self, path: str, seconds_per_byte: float) -> str:
        self.scripts[path] = Script(b'{"client_id": "x"' + b" " * 100 + b"}", {}, seconds_per_byte)
        return self.base_url + path

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                host.hits.append(self.path)
                script = host.scripts.get(self.path)
                if script is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                for name, value in script.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(script.body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the service gave up on us, as it should
                    self._write(script)

            def _write(self, script: Script) -> None:
                if not script.drip_seconds:
                    self.wfile.write(script.body)
                    return
                for byte in script.body:
                    if host._stopped.is_set():
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(script.drip_seconds)

        return Handler
