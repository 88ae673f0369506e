"""etcd through aetcd (asyncio gRPC).

- ``create`` is one transaction: put under a lease if the key's version is 0.
- ``replace`` is one transaction: put under a lease if the key's value is the old one.
- ``take`` is one DeleteRange with ``prev_kv``: etcd applies it atomically, so of
  concurrent takers exactly one gets the value back (no get-then-delete race).
- Leases are shared by records created within :data:`LEASE_SHARE_SECONDS` of
  each other; each lease outlives every record attached to it, whose own expiry
  is enforced when the record is opened.

Failover between members. The client talks to one member at a time over its own
channel. When a call to it fails with a deadline or "unavailable", the call raises
:class:`StoreUnavailable` and the client moves on to the next member, so later calls
succeed within about one ``ETCD_TIMEOUT_SECONDS`` of a member dying *or hanging*. A
hung member (paused, overloaded, cut off) keeps its TCP connection open, and gRPC's
own machinery did not leave it, measured with a 20 s SIGSTOP: with pick_first every
call failed for the whole pause, also with keepalive pings every 1 s or 5 s (etcd's
``--grpc-keepalive-min-time``) and a 1 s ping timeout; round_robin, with or without
those pings, kept sending a third of the calls into the hung member.
Each process starts on a random member, so replicas spread their load. A DNS name is
resolved here, not by gRPC, so one name resolving to all members fails over the same
way; it is resolved again on every move, so membership changes are picked up.

Nothing is retried by the store, on purpose. A call that timed out may still have
been applied (the member may have committed it just before it stopped answering):

- ``take`` must never be retried: if the first DeleteRange was applied, a retry on
  another member finds nothing and returns None, and the record is lost — the caller
  would report "already used" for a code that was never handed out.
- ``create`` could not apply twice (it is conditional on version 0), but a retry
  after an applied first attempt would answer False, "already exists", for the
  caller's own write. So it is not retried either.

The caller sees StoreUnavailable and decides: answering "try again" is only sound
where its own step is safe to repeat.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions
import grpc

from ..settings import EtcdSettings, is_ip_address
from .base import StoreUnavailable

LEASE_SHARE_SECONDS = 10
# gRPC's default reconnect backoff grows to 120 s, which would keep the service failing
# long after etcd is back; retry the connection at least every second instead.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 5_000),
)

_FAILURES = (aetcd.exceptions.ClientError, grpc.RpcError, asyncio.TimeoutError, OSError)
# Failures that say "this member is not answering", as opposed to a refused request.
_MEMBER_FAULTS = (
    aetcd.exceptions.ConnectionTimeoutError,
    aetcd.exceptions.ConnectionFailedError,
    asyncio.TimeoutError,
    OSError,
)
_MEMBER_CODES = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)

T = TypeVar("T")


def _address(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Client(aetcd.Client):
    """aetcd's client on one member at a time, moving to the next when that one fails.

    aetcd's own connect knows neither TLS nor several members.
    """

    def __init__(self, settings: EtcdSettings) -> None:
        super().__init__(
            username=settings.username, password=settings.password, timeout=settings.timeout_seconds
        )
        self._endpoints = [_host_port(e) for e in settings.endpoints]
        self._credentials = _credentials(settings) if settings.tls else None
        self._connect_lock = asyncio.Lock()
        self._members: list[_Member] = []
        self._member: _Member | None = None
        self._closing: set[asyncio.Task[None]] = set()
        #: Counts channels opened, so that of many calls failing on one channel only
        #: the first moves the client on (the others would skip healthy members).
        self.generation = 0

    @property
    def member(self) -> str | None:
        """The member in use, as ``host:port``."""
        return self._member.address if self._member else None

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        async with self._connect_lock:
            if self._connected.is_set():
                return
            if self._member is None:
                self._member = await self._next_member(None)
            try:
                await self._open(self._member)
            except Exception:
                # e.g. a hung member timing out the login: try the next one next time.
                await self._move_on()
                raise

    async def _open(self, member: _Member) -> None:
        self.generation += 1
        options = (*CHANNEL_OPTIONS, *member.options)
        if self._credentials is None:
            self.channel = aetcd.rpc.insecure_channel(member.target, options)
        else:
            self.channel = aetcd.rpc.secure_channel(member.target, self._credentials, options)
        if self._username is not None:
            auth = aetcd.rpc.AuthStub(self.channel)
            request = aetcd.rpc.AuthenticateRequest(name=self._username, password=self._password)
            response = await auth.Authenticate(request, timeout=self._timeout)
            self.metadata = (("token", response.token),)
        self.kvstub = aetcd.rpc.KVStub(self.channel)
        self.leasestub = aetcd.rpc.LeaseStub(self.channel)
        self.maintenancestub = aetcd.rpc.MaintenanceStub(self.channel)
        self._connected.set()

    async def failover(self, generation: int) -> None:
        """Leave the member a call on channel ``generation`` failed on, unless already left."""
        async with self._connect_lock:
            if generation == self.generation and self.channel is not None:
                await self._move_on()

    async def _move_on(self) -> None:
        channel = self.channel
        self._init_channel_attrs()
        self._connected.clear()
        if channel is not None:
            # Calls still in flight there may yet succeed; give them their deadline.
            task = asyncio.create_task(channel.close(grace=self._timeout))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._member = await self._next_member(self._member)

    async def _next_member(self, current: _Member | None) -> _Member:
        """The member after ``current``, from the endpoints resolved afresh."""
        try:
            # A resolver that does not answer must not hold calls past their deadline.
            members = await asyncio.wait_for(_resolve(self._endpoints), self._timeout)
        except OSError:  # TimeoutError included
            members = self._members  # DNS hiccup: keep going round the members we knew
        if not members:
            raise OSError("no etcd endpoint resolved to an address")
        self._members = members
        if current is None or current not in members:
            return members[secrets.randbelow(len(members))]  # spreads replicas
        return members[(members.index(current) + 1) % len(members)]

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self._init_channel_attrs()
        self._connected.clear()


@dataclass(frozen=True)
class _Member:
    """One member's address; ``name`` is the DNS name it was resolved from, if any."""

    address: str
    name: str | None = None

    @property
    def target(self) -> str:
        # An explicit scheme keeps gRPC from resolving the address again.
        return ("ipv6:" if self.address.startswith("[") else "ipv4:") + self.address

    @property
    def options(self) -> tuple[tuple[str, str], ...]:
        # TLS checks the certificate against the name that was configured, not the IP.
        return (("grpc.ssl_target_name_override", self.name),) if self.name else ()


def _host_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    return parts.hostname or "", parts.port or 2379


async def _resolve(endpoints: list[tuple[str, int]]) -> list[_Member]:
    """Every address of every endpoint, in order, without duplicates."""
    members: list[_Member] = []
    for host, port in endpoints:
        if is_ip_address(host):
            found = [_Member(_address(host, port))]
        else:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            found = [_Member(_address(str(info[4][0]), port), host) for info in infos]
        members.extend(m for m in found if m not in members)
    return members


def _credentials(settings: EtcdSettings) -> grpc.ChannelCredentials:
    def read(path: object) -> bytes | None:
        return path.read_bytes() if path is not None else None  # type: ignore[attr-defined]

    return grpc.ssl_channel_credentials(
        root_certificates=read(settings.ca_file),
        private_key=read(settings.key_file),
        certificate_chain=read(settings.cert_file),
    )


class EtcdStore:
    """The store in etcd: create-if-absent transactions, atomic takes, shared leases."""

    def __init__(self, settings: EtcdSettings) -> None:
        self._client = _Client(settings)
        self._prefix = settings.prefix.encode()
        self._leases: dict[int, tuple[float, int]] = {}

    @property
    def member(self) -> str | None:
        """The etcd member calls go to now (``host:port``), for diagnostics and tests."""
        return self._client.member

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode()

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one call; on failure move off a member that did not answer, never retry."""
        generation = self._client.generation
        try:
            await self._client.connect()
            generation = self._client.generation
            return await call()
        except _FAILURES as exc:
            # etcd's auth tokens expire; a new channel logs in again on its first call.
            if _member_at_fault(exc) or isinstance(exc, aetcd.exceptions.UnauthenticatedError):
                await self._client.failover(generation)
            raise StoreUnavailable(type(exc).__name__) from None

    async def _lease(self, ttl: int) -> int:
        now = time.monotonic()
        cached = self._leases.get(ttl)
        if cached is not None and cached[0] > now:
            return cached[1]
        lease = await self._client.lease(ttl + LEASE_SHARE_SECONDS)
        self._leases[ttl] = (now + LEASE_SHARE_SECONDS, lease.id)
        return lease.id

    async def create(self, key: str, value: bytes, ttl: int) -> bool:
        return await self._call(lambda: self._create(self._key(key), value, ttl))

    async def _create(self, full: bytes, value: bytes, ttl: int) -> bool:
        tx = self._client.transactions
        return await self._put_if(tx.version(full) == 0, full, value, ttl)

    async def replace(self, key: str, old: bytes, new: bytes, ttl: int) -> bool:
        full = self._key(key)
        tx = self._client.transactions
        return await self._call(lambda: self._put_if(tx.value(full) == old, full, new, ttl))

    async def _put_if(self, compare: object, full: bytes, value: bytes, ttl: int) -> bool:
        try:
            return await self._transaction(compare, full, value, await self._lease(ttl))
        except aetcd.exceptions.ClientError as exc:
            if "lease not found" not in str(exc):
                raise
            # The shared lease is gone (revoked, or etcd restored from a snapshot). The
            # put was refused, not applied, so writing again under a new lease is safe.
            self._leases.pop(ttl, None)
            return await self._transaction(compare, full, value, await self._lease(ttl))

    async def _transaction(self, compare: object, full: bytes, value: bytes, lease: int) -> bool:
        """One put under ``lease``, applied only if ``compare`` holds."""
        tx = self._client.transactions
        succeeded, _ = await self._client.transaction(
            compare=[compare], success=[tx.put(full, value, lease=lease)], failure=[]
        )
        return bool(succeeded)

    async def get(self, key: str) -> bytes | None:
        found = await self._call(lambda: self._client.get(self._key(key)))
        return found.value if found is not None else None

    async def take(self, key: str) -> bytes | None:
        deleted = await self._call(lambda: self._client.delete(self._key(key), prev_kv=True))
        if deleted is None or deleted.prev_kv is None:
            return None
        return deleted.prev_kv.value

    async def ping(self) -> None:
        await self._call(lambda: self._client.get(self._prefix + b"ping"))

    async def close(self) -> None:
        await self._client.close()


def _member_at_fault(exc: BaseException) -> bool:
    if isinstance(exc, _MEMBER_FAULTS):
        return True
    rpc_error = exc if isinstance(exc, grpc.aio.AioRpcError) else exc.__cause__
    return isinstance(rpc_error, grpc.aio.AioRpcError) and rpc_error.code() in _MEMBER_CODES
