"""Sanic's HTTP protocol with two limits against slow clients.

Sanic's request timeout restarts on every byte received, so a client dripping a
byte every few seconds holds its connection for ever. Here the request head and
body (and, on a new connection, the wait for the first byte) must arrive within
one total deadline, and each process holds at most ``MAX_CONNECTIONS`` open
connections; more are closed as soon as they are accepted.
"""

from __future__ import annotations

import asyncio
from time import monotonic

from sanic.exceptions import RequestTimeout
from sanic.http.constants import Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from .metrics import CONNECTIONS_REFUSED


class GuardedHttpProtocol(HttpProtocol):
    __slots__ = ("_awaiting_first_byte", "_request_started")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._request_started = monotonic()
        self._awaiting_first_byte = True
        if len(self.connections) >= self.app.ctx.settings.max_connections:
            CONNECTIONS_REFUSED.inc()
            transport.abort()  # type: ignore[attr-defined]
            return
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_first_byte or self._http is None or self._http.stage is Stage.IDLE:
            self._request_started = monotonic()  # a new request begins with this byte
            self._awaiting_first_byte = False
        super().data_received(data)

    def _receiving(self) -> bool:
        http = self._http
        if self._awaiting_first_byte:
            return True
        if http is None:
            return False
        return http.stage is Stage.REQUEST or (
            http.stage is Stage.HANDLER and bool(http.request_body)
        )

    def check_timeouts(self) -> None:
        deadline = self.app.ctx.settings.request_deadline_seconds
        if self._task and self._receiving() and monotonic() - self._request_started > deadline:
            if self._http is not None:
                self._http.exception = RequestTimeout("Request Timeout")
            self._task.cancel("the request did not arrive within the deadline")
            return
        super().check_timeouts()
