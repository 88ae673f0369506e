"""A three-member etcd cluster on loopback, with the faults a test needs to inject.

Members bootstrap together from a static ``--initial-cluster``. Each member can be
killed (SIGKILL), paused (SIGSTOP: its sockets stay open and accept connections but
nothing answers, like a hung host), resumed, and restarted on its own data dir.

With ``shared_port=True`` the members listen on 127.0.0.1, 127.0.0.2 and 127.0.0.3
on one client port, so a single name resolving to those three addresses reaches all
of them — the "one DNS name" shape of ``ETCD_ENDPOINTS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.harness import etcd_binary, etcd_command
from tests.processes import free_port, spawn_quiet, terminate, wait_until_healthy

if TYPE_CHECKING:
    from openrouter_oauth.store import Store

SIZE = 3
WORKERS = 4  # concurrent callers in the load


def free_port_on_all(hosts: list[str]) -> int:
    """A port that is free on every one of ``hosts`` (members sharing one client port)."""
    for _ in range(50):
        port = free_port()
        try:
            for host in hosts:
                with socket.socket() as sock:
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {hosts}")


@dataclass
class Member:
    name: str
    host: str
    client_port: int
    peer_port: int
    data_dir: str
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class EtcdCluster:
    """Three etcd members as one cluster; always call :meth:`destroy` (or use :func:`cluster`)."""

    shared_port: bool = False
    extra_args: tuple[str, ...] = ()
    members: list[Member] = field(default_factory=list)

    def __post_init__(self) -> None:
        hosts = [f"127.0.0.{i + 1}" if self.shared_port else "127.0.0.1" for i in range(SIZE)]
        shared = free_port_on_all(hosts) if self.shared_port else None
        self.members = [
            Member(
                name=f"m{i}",
                host=host,
                client_port=shared or free_port(),
                peer_port=free_port(),
                data_dir=tempfile.mkdtemp(prefix=f"etcd-cluster-m{i}-"),
            )
            for i, host in enumerate(hosts)
        ]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start(self) -> EtcdCluster:
        # All members must be up before any reports healthy: /health needs a leader.
        for member in self.members:
            self._spawn(member)
        for member in self.members:
            wait_until_healthy(f"{member.endpoint}/health", member.process)
        return self

    def _spawn(self, member: Member) -> None:
        command = etcd_command(
            member.name, member.data_dir, member.endpoint, member.peer_url, self.initial_cluster
        )
        new = ("--initial-cluster-state", "new", "--initial-cluster-token", "test")
        member.process = spawn_quiet([*command, *new, *self.extra_args])
        member.paused = False

    # -- faults ---------------------------------------------------------------

    def kill(self, index: int) -> None:
        member = self.members[index]
        if member.running:
            assert member.process is not None
            member.process.send_signal(signal.SIGKILL)
            member.process.wait(10)
        member.paused = False

    def pause(self, index: int) -> None:
        member = self.members[index]
        assert member.process is not None and member.running
        member.process.send_signal(signal.SIGSTOP)
        member.paused = True

    def resume(self, index: int) -> None:
        member = self.members[index]
        if member.process is not None and member.paused:
            member.process.send_signal(signal.SIGCONT)
        member.paused = False

    def restart(self, index: int, wait: bool = True) -> None:
        """Start a killed member again on its own data dir (it rejoins; flags for a new
        cluster are ignored once the data dir holds one)."""
        member = self.members[index]
        self.kill(index)
        self._spawn(member)
        if wait:
            wait_until_healthy(f"{member.endpoint}/health", member.process)

    # -- inspection -----------------------------------------------------------

    def status(self) -> list[dict]:
        """``etcdctl endpoint status`` of the members that are running and not paused."""
        live = [m.endpoint for m in self.members if m.running and not m.paused]
        if not live:
            return []
        output = subprocess.run(
            [
                etcd_binary("etcdctl"),
                "--endpoints",
                ",".join(live),
                "--command-timeout",
                "2s",
                "endpoint",
                "status",
                "-w",
                "json",
            ],
            capture_output=True,
            check=False,
            timeout=10,
            env={**os.environ, "ETCDCTL_API": "3"},
        ).stdout
        return json.loads(output or b"[]")

    def etcdctl(self, *command: str) -> None:
        live = [m.endpoint for m in self.members if m.running and not m.paused]
        subprocess.run(
            [etcd_binary("etcdctl"), "--endpoints", ",".join(live), *command],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def leader(self, within: float = 10.0) -> int:
        """Index of the current leader, waiting for an election if there is none."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for entry in self.status():
                status = entry["Status"]
                if status["leader"] and status["leader"] == status["header"]["member_id"]:
                    return self.endpoints.index(entry["Endpoint"])
            time.sleep(0.1)
        raise RuntimeError(f"no etcd leader within {within}s")

    def destroy(self) -> None:
        for index, member in enumerate(self.members):
            self.resume(index)  # a stopped process cannot act on SIGTERM
            if member.running:
                assert member.process is not None
                terminate(member.process, 10)
            shutil.rmtree(member.data_dir, ignore_errors=True)


@contextmanager
def cluster(shared_port: bool = False, extra_args: tuple[str, ...] = ()) -> Iterator[EtcdCluster]:
    """A started cluster, torn down whatever happens in between."""
    running = EtcdCluster(shared_port=shared_port, extra_args=extra_args)
    try:
        yield running.start()
    finally:
        running.destroy()


# -- load and measurement ------------------------------------------------------


@dataclass
class Load:
    """Workers doing create-then-take in a loop; every call is logged with its timing."""

    store: Store
    calls: list[tuple[float, float, bool]] = field(default_factory=list)
    fault_at: float = 0.0

    async def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        await asyncio.gather(*(self._worker(end) for _ in range(WORKERS)))

    async def _worker(self, end: float) -> None:
        while time.monotonic() < end:
            key = "k/" + secrets.token_hex(8)
            await self._call(self.store.create(key, b"v", 60))
            await self._call(self.store.take(key))

    async def _call(self, call: Awaitable[object]) -> None:
        from openrouter_oauth.store import StoreUnavailable

        started = time.monotonic()
        try:
            await call
            ok = True
        except StoreUnavailable:
            ok = False
            await asyncio.sleep(0.05)  # as a client backing off before its retry
        self.calls.append((started, time.monotonic(), ok))

    @property
    def failures(self) -> int:
        return sum(1 for _, _, ok in self.calls if not ok)

    @property
    def recovery(self) -> float | None:
        """Seconds from the fault to the first success of a call started after it."""
        after = [end for start, end, ok in self.calls if ok and start >= self.fault_at]
        return min(after) - self.fault_at if after else None

    @property
    def slowest(self) -> float:
        return max((end - start for start, end, _ in self.calls), default=0.0)

    def summary(self) -> str:
        recovery = "never" if self.recovery is None else f"{self.recovery:.2f}s"
        return (
            f"{len(self.calls)} calls from {WORKERS} callers, {self.failures} failed, "
            f"first success after the fault: {recovery}, slowest call {self.slowest:.2f}s"
        )


async def under_load(store: Store, inject: Callable[[], None], seconds: float) -> Load:
    """Run the load for ``seconds``, injecting the fault after one second of it."""
    load = Load(store)
    running = asyncio.create_task(load.run(seconds))
    await asyncio.sleep(1)
    load.fault_at = time.monotonic()
    inject()
    await running
    return load


async def measure_pause(seconds: float, timeout: float) -> str:
    """Pause the member an EtcdStore on all three uses, for ``seconds``; describe the calls."""
    from openrouter_oauth.settings import EtcdSettings
    from openrouter_oauth.store.etcd import EtcdStore

    with cluster() as running:
        settings = EtcdSettings(
            tuple(running.endpoints), prefix="/measure/", timeout_seconds=timeout
        )
        store = EtcdStore(settings)
        try:
            await store.ping()
            victim = [m.address for m in running.members].index(store.member or "")
            try:
                load = await under_load(store, lambda: running.pause(victim), seconds + 1)
            finally:
                running.resume(victim)
        finally:
            await store.close()
    return f"pause of {seconds:g}s, ETCD_TIMEOUT_SECONDS={timeout:g}: {load.summary()}"


if __name__ == "__main__":
    # python -m tests.cluster [PAUSE_SECONDS [TIMEOUT_SECONDS]]
    args = [float(a) for a in sys.argv[1:3]]
    pause, timeout = (args + [40.0, 2.0][len(args) :])[:2]
    print(asyncio.run(measure_pause(pause, timeout)))
