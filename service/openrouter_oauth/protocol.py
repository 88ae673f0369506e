"""Sanic's HTTP protocol with limits against slow and greedy clients.

Sanic's request timeout restarts on every byte received, so a client dripping a
byte every few seconds holds its connection for ever. Here the request head and
body (and, on a new connection, the wait for the first byte) must arrive within
one total deadline; an idle keep-alive connection closes after ``KEEP_ALIVE_SECONDS``
(Sanic's own keep-alive timer, set from the settings); and each process holds at most
``MAX_CONNECTIONS`` open connections, at most ``MAX_CONNECTIONS_PER_ADDRESS`` of them
from one client address, so one client cannot take every slot. Connections beyond
either cap are closed as soon as they are accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from time import monotonic

from sanic.exceptions import RequestTimeout
from sanic.http.constants import Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from .metrics import CONNECTIONS_REFUSED


def address_slot(peer: object) -> str | None:
    """The slot a peer counts against: its IPv4 address, or its IPv6 /64 (one host
    usually owns a whole /64); ``None`` for a peer with no IP address (a Unix socket)."""
    if not isinstance(peer, tuple) or not peer:
        return None
    try:
        address = ipaddress.ip_address(str(peer[0]).partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(getattr(address, "ipv4_mapped", None) or address)


class AddressSlots:
    """How many connections each client address holds in this process."""

    def __init__(self, per_address: int) -> None:
        self._limit = per_address
        self._held: Counter[str] = Counter()

    def take(self, slot: str | None) -> bool:
        if slot is None or not self._limit:
            return True
        if self._held[slot] >= self._limit:
            return False
        self._held[slot] += 1
        return True

    def give_back(self, slot: str | None) -> None:
        if slot is None or not self._limit:
            return
        self._held[slot] -= 1
        if self._held[slot] <= 0:
            del self._held[slot]


class GuardedHttpProtocol(HttpProtocol):
    __slots__ = ("_address_slot", "_admitted", "_awaiting_first_byte", "_request_started")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._request_started = monotonic()
        self._awaiting_first_byte = True
        self._admitted = False
        slots: AddressSlots = self.app.ctx.address_slots
        self._address_slot = address_slot(transport.get_extra_info("peername"))
        if len(self.connections) >= self.app.ctx.settings.max_connections or not slots.take(
            self._address_slot
        ):
            CONNECTIONS_REFUSED.inc()
            transport.abort()  # type: ignore[attr-defined]
            return
        self._admitted = True
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:  # refused on arrival: nothing of it was set up
            return
        self._admitted = False
        self.app.ctx.address_slots.give_back(self._address_slot)
        super().connection_lost(exc)

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
