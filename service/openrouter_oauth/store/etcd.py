"""etcd through aetcd (asyncio gRPC).

- ``create`` is one transaction: put under a lease if the key's version is 0.
- ``take`` is one DeleteRange with ``prev_kv``: etcd applies it atomically, so of
  concurrent takers exactly one gets the value back (no get-then-delete race).
- Leases are shared by records created within :data:`LEASE_SHARE_SECONDS` of
  each other; each lease outlives every record attached to it, whose own expiry
  is enforced when the record is opened.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions
import grpc

from ..settings import EtcdSettings
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


def grpc_target(endpoints: tuple[str, ...]) -> str:
    """One gRPC target for the endpoints.

    Several endpoints become a static address list (gRPC balances and fails over
    between them); one endpoint may be a DNS name, which gRPC re-resolves, so a
    Kubernetes Service in front of an etcd cluster works too.
    """
    hosts = [(urlsplit(e).hostname or "", urlsplit(e).port) for e in endpoints]
    if len(hosts) == 1:
        host, port = hosts[0]
        return f"dns:///{host}:{port}" if not _is_ip(host) else _address(host, port)
    if not all(_is_ip(h) for h, _ in hosts):
        raise ValueError(
            "several ETCD_ENDPOINTS must be IP addresses; "
            "use one DNS name that resolves to all members instead"
        )
    scheme = "ipv6" if ":" in hosts[0][0] else "ipv4"
    return f"{scheme}:" + ",".join(_address(h, p) for h, p in hosts)


def _is_ip(host: str) -> bool:
    return host.replace(".", "").isdigit() or ":" in host


def _address(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Client(aetcd.Client):
    """aetcd's client with TLS and a multi-address target, which its own connect lacks."""

    def __init__(self, settings: EtcdSettings) -> None:
        super().__init__(
            username=settings.username, password=settings.password, timeout=settings.timeout_seconds
        )
        self._target = grpc_target(settings.endpoints)
        self._credentials = _credentials(settings) if settings.tls else None
        self._connect_lock = asyncio.Lock()

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        async with self._connect_lock:
            if self._connected.is_set():
                return
            if self._credentials is None:
                self.channel = aetcd.rpc.insecure_channel(self._target, CHANNEL_OPTIONS)
            else:
                self.channel = aetcd.rpc.secure_channel(
                    self._target, self._credentials, CHANNEL_OPTIONS
                )
            if self._username is not None:
                auth = aetcd.rpc.AuthStub(self.channel)
                request = aetcd.rpc.AuthenticateRequest(
                    name=self._username, password=self._password
                )
                response = await auth.Authenticate(request, timeout=self._timeout)
                self.metadata = (("token", response.token),)
            self.kvstub = aetcd.rpc.KVStub(self.channel)
            self.leasestub = aetcd.rpc.LeaseStub(self.channel)
            self.maintenancestub = aetcd.rpc.MaintenanceStub(self.channel)
            self._connected.set()

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        self._init_channel_attrs()
        self._connected.clear()


def _credentials(settings: EtcdSettings) -> grpc.ChannelCredentials:
    def read(path: object) -> bytes | None:
        return path.read_bytes() if path is not None else None  # type: ignore[attr-defined]

    return grpc.ssl_channel_credentials(
        root_certificates=read(settings.ca_file),
        private_key=read(settings.key_file),
        certificate_chain=read(settings.cert_file),
    )


class EtcdStore:
    def __init__(self, settings: EtcdSettings) -> None:
        self._client = _Client(settings)
        self._prefix = settings.prefix.encode()
        self._leases: dict[int, tuple[float, int]] = {}

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode()

    async def _lease(self, ttl: int) -> int:
        now = time.monotonic()
        cached = self._leases.get(ttl)
        if cached is not None and cached[0] > now:
            return cached[1]
        lease = await self._client.lease(ttl + LEASE_SHARE_SECONDS)
        self._leases[ttl] = (now + LEASE_SHARE_SECONDS, lease.id)
        return lease.id

    async def create(self, key: str, value: bytes, ttl: int) -> bool:
        full = self._key(key)
        try:
            try:
                return await self._put_if_absent(full, value, await self._lease(ttl))
            except aetcd.exceptions.ClientError as exc:
                if "lease not found" not in str(exc):
                    raise
                # The shared lease is gone (revoked, or etcd restored from a snapshot).
                self._leases.pop(ttl, None)
                return await self._put_if_absent(full, value, await self._lease(ttl))
        except _FAILURES as exc:
            raise await self._unavailable(exc) from None

    async def _put_if_absent(self, full: bytes, value: bytes, lease: int) -> bool:
        tx = self._client.transactions
        succeeded, _ = await self._client.transaction(
            compare=[tx.version(full) == 0],
            success=[tx.put(full, value, lease=lease)],
            failure=[],
        )
        return bool(succeeded)

    async def take(self, key: str) -> bytes | None:
        try:
            deleted = await self._client.delete(self._key(key), prev_kv=True)
        except _FAILURES as exc:
            raise await self._unavailable(exc) from None
        if deleted is None or deleted.prev_kv is None:
            return None
        return deleted.prev_kv.value

    async def ping(self) -> None:
        try:
            await self._client.get(self._prefix + b"ping")
        except _FAILURES as exc:
            raise await self._unavailable(exc) from None

    async def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        # etcd's auth tokens expire; dropping the connection makes the next call log in again.
        if isinstance(exc, aetcd.exceptions.UnauthenticatedError):
            await self._client.close()
        return StoreUnavailable(type(exc).__name__)

    async def close(self) -> None:
        await self._client.close()
