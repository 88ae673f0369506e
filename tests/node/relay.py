"""A loopback TCP relay to a Service address, so the issuer URL can be a loopback one.

The service refuses an http issuer URL unless its host is loopback (a real deployment has
https at its ingress). So the tests' issuer is http://127.0.0.1:<port>, and this relays each
connection, bytes unchanged, to the chart's Service (its ClusterIP): which pod answers is
kube-proxy's choice among the ready endpoints, as for any client of the Service.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Relay:
        threading.Thread(target=self._accept, name="relay", daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()  # the client sees the connection refused, as without a relay
            return
        upstream.settimeout(None)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def stop(self) -> None:
        self._closed.set()
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until either side closes; then close both, so the other direction ends too."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()
