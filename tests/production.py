"""The production shape on one machine, from real parts, with the faults a test injects.

- **etcd**: three members as one cluster (:class:`tests.cluster.EtcdCluster`), every
  replica given all three endpoints.
- **Replicas**: three ``openrouter-oauth serve`` processes (the third with
  ``--workers 2``) sharing the cluster and ``SECRET``, ``TRUSTED_PROXIES=1``.
- **Ingress**: nginx (its own prefix and config) terminating TLS with a certificate
  from a test CA made here, round-robin to the replicas, appending the client's
  address to ``X-Forwarded-For``. ``ISSUER_URL`` is nginx's https address.
- **OpenRouter**: the fake, recording every code exchange (the ledger the
  invariants are checked against).

What the ingress does when a replica fails follows ingress-nginx's defaults:
``proxy_next_upstream error timeout`` (nginx's own default, written out) moves a
request to the next replica when connecting fails, and also when a GET fails after
it was sent; a POST that was already sent is never sent again (nginx treats it as
non-idempotent), so its client gets 502. At most 3 tries (ingress-nginx's
``proxy-next-upstream-tries``). ``max_fails=0``: a failed replica is not taken out
of the rotation for a while (ingress-nginx's balancer does not do it either, and
nginx's own ``max_fails=1 fail_timeout=10s`` marks every replica down during a
rolling restart faster than 10 s a replica, answering "no live upstreams" 502s
although two replicas are up). Connections to the replicas are kept alive, as an
ingress does; nginx closes idle ones after 60 s, before Sanic's 120 s. The connect
timeout is ingress-nginx's 5 s; read and send timeouts stay at 60 s.

Use :func:`production`: every process it starts is stopped whatever happens.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.certs import CertificateAuthority, Issued
from tests.cluster import EtcdCluster
from tests.fakes.openrouter import FakeOpenRouter
from tests.harness import Service, service_env
from tests.processes import free_port, wait_until_healthy

REPLICA_WORKERS = (1, 1, 2)
ETCD_TIMEOUT_SECONDS = 2.0  # the default: what production runs with
# Registration is limited per address per process to 5 an hour here (60 a minute by
# default). Load flows each come from a fresh loopback address (a different person
# each), so they never reach it; the rate-limit test does, and with an hour-long
# window no token refills during a test, so the number of 201s is exact.
RATE_LIMITS = "register=5/h,authorize=120/min,token=120/min,me=300/min"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


# -- the fake OpenRouter, keeping a ledger ----------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One code exchange OpenRouter answered: the code presented and what came of it."""

    code: str
    status: int
    key: str | None
    label: str
    at: float


class RecordingOpenRouter(FakeOpenRouter):
    """The fake OpenRouter, also recording every exchange with its outcome and key label."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[Exchange] = []
        self._ledger_lock = threading.Lock()

    def _exchange(self, body: Any) -> tuple[int, dict[str, Any]]:
        status, answer = super()._exchange(body)
        key = answer.get("key") if status == 200 else None
        label = self.keys[key].label if key else ""
        code = str(body.get("code", "")) if isinstance(body, dict) else ""
        with self._ledger_lock:
            self.exchanges.append(Exchange(code, status, key, label, time.monotonic()))
        return status, answer

    def exchanges_since(self, since: float) -> list[Exchange]:
        with self._ledger_lock:
            return [e for e in self.exchanges if e.at >= since]


# -- the ingress -------------------------------------------------------------------

NGINX_CONF = """\
worker_processes 2;  # "auto" on this 2-core machine, as ingress-nginx runs it
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    # One line a request: every attempt's upstream status ("502, 200" when nginx moved
    # a request on), so a 500 from a replica is seen even if a retry hid it.
    log_format ingress '$msec $remote_addr "$request_method $uri" $status '
                       '"$upstream_status" "$upstream_addr"';
    access_log {dir}/access.log ingress;
    upstream replicas {{
{servers}
        keepalive 32;  # idle connections kept per nginx worker
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 5s;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Logged:
    """One line of nginx's access log."""

    status: int
    upstream_statuses: tuple[int, ...]
    method: str
    path: str
    client: str
    at: float


@dataclass
class Ingress:
    """nginx as its own process: its own prefix, config, pid file and logs."""

    folder: Path
    upstreams: list[int]
    cert: Issued
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def _command(self) -> list[str]:
        return [NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")]

    def write_config(self) -> None:
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.folder / "tmp" / name).mkdir(parents=True, exist_ok=True)
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=0;" for port in self.upstreams
        )
        (self.folder / "nginx.conf").write_text(
            NGINX_CONF.format(
                dir=self.folder,
                servers=servers,
                port=self.port,
                cert=self.cert.cert,
                key=self.cert.key,
            )
        )

    def start(self, context: ssl.SSLContext) -> Ingress:
        if not Path(NGINX).exists():
            raise RuntimeError("no nginx: apt-get install nginx-light (scripts/test does)")
        self.write_config()
        self.process = subprocess.Popen(
            [*self._command, "-e", str(self.folder / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until_healthy(f"{self.url}/healthz", self.process, verify=context)
        return self

    def reload(self) -> None:
        """``nginx -s reload``: new workers take new connections, old ones finish theirs."""
        subprocess.run(
            [*self._command, "-e", str(self.folder / "error.log"), "-s", "reload"],
            check=True,
            capture_output=True,
            timeout=10,
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log(self) -> list[Logged]:
        path = self.folder / "access.log"
        return (
            [_parse(line) for line in path.read_text().splitlines() if line]
            if path.exists()
            else []
        )


def _parse(line: str) -> Logged:
    # 1700000000.123 127.0.0.2 "POST /token" 200 "502, 200" "127.0.0.1:1, 127.0.0.1:2"
    at, client, rest = line.split(" ", 2)
    request, rest = rest[1:].split('" ', 1)
    method, path = request.split(" ", 1)
    status, upstream = rest.split(" ", 1)
    codes = upstream.split('"')[1].replace(":", ",").split(",")
    upstream_statuses = tuple(int(c) for c in (c.strip() for c in codes) if c.isdigit())
    return Logged(int(status), upstream_statuses, method, path, client, float(at))


# -- the whole shape ----------------------------------------------------------------


@dataclass
class Shape:
    """Everything running; faults are methods. Build it with :func:`production`."""

    folder: Path
    cluster: EtcdCluster
    fake: RecordingOpenRouter
    ca: CertificateAuthority
    context: ssl.SSLContext
    ingress_cert: Issued
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    previous: str = ""
    prefix: str = field(default_factory=lambda: f"/production-{secrets.token_hex(4)}/")
    replicas: list[Service] = field(default_factory=list)
    ingress: Ingress | None = None
    _logs: list[Path] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        assert self.ingress is not None
        return self.ingress.url

    def replica_env(self, port: int, secret: str, previous: str) -> dict[str, str]:
        return service_env(
            openrouter=self.fake.base_url,
            port=port,
            etcd=",".join(self.cluster.endpoints),
            SECRET=secret,
            PREVIOUS_SECRETS=previous,
            ISSUER_URL=self.issuer,
            TRUSTED_PROXIES="1",
            RATE_LIMITS=RATE_LIMITS,
            ETCD_PREFIX=self.prefix,
            ETCD_TIMEOUT_SECONDS=f"{ETCD_TIMEOUT_SECONDS:g}",
        )

    def start_replicas(self) -> None:
        ports = [free_port() for _ in REPLICA_WORKERS]
        self.ingress = Ingress(self.folder / "nginx", ports, self.ingress_cert)
        self.ingress.folder.mkdir()
        self.replicas = [
            Service(self.replica_env(port, self.secret, self.previous), port, workers)
            for port, workers in zip(ports, REPLICA_WORKERS, strict=True)
        ]
        with ThreadPoolExecutor(len(self.replicas)) as pool:  # each takes ~2 s to import
            list(pool.map(self._start, self.replicas))

    def _start(self, replica: Service) -> None:
        try:
            replica.start()
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its log ends: {replica.log()[-600:]}") from None
        finally:
            if replica.log_path is not None:
                self._logs.append(replica.log_path)

    # -- faults on replicas and the ingress ----------------------------------------

    def kill_replica(self, index: int) -> None:
        """SIGKILL the replica's whole process group, as a node or container dies."""
        self.replicas[index].stop(signal.SIGKILL)

    def start_replica(self, index: int) -> None:
        self._start(self.replicas[index])

    def restart_replica(self, index: int, *, secret: str, previous: str) -> None:
        """A rolling-update step: stop gracefully, then start with new settings."""
        replica = self.replicas[index]
        _terminate(replica)
        replica.env = self.replica_env(replica.port, secret, previous)
        self._start(replica)

    def reload_ingress(self) -> None:
        assert self.ingress is not None
        self.ingress.reload()

    # -- faults on etcd ----------------------------------------------------------------

    def busiest_member(self) -> int:
        """The member holding the most client connections (replicas talk to one member
        each), a follower on a tie: pausing it hits the most replicas."""
        leader = self.cluster.leader()
        counts = _connections_to({m.client_port for m in self.cluster.members})
        return max(
            range(len(self.cluster.members)),
            key=lambda i: (counts.get(self.cluster.members[i].client_port, 0), i != leader),
        )

    def ingress_log(self) -> list[Logged]:
        return self.ingress.log() if self.ingress is not None else []

    def service_log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self._logs if p.exists())

    def destroy(self, keep_logs: bool = False) -> None:
        for replica in self.replicas:
            replica.stop(signal.SIGKILL)
        if self.ingress is not None:
            self.ingress.stop()
        if not keep_logs:
            for path in self._logs:
                path.unlink(missing_ok=True)


def _terminate(replica: Service, grace: float = 30.0) -> None:
    """SIGTERM to the main process only, as Kubernetes signals a container's PID 1 (its
    workers hear it from the main process); SIGKILL to what is left after ``grace``."""
    process = replica.process
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers that outlived their main process
    process.wait(5)
    replica.process = None


def _connections_to(ports: set[int]) -> dict[int, int]:
    """Established TCP connections by remote port, from /proc/net/tcp and tcp6 (gRPC
    connects through IPv4-mapped IPv6 sockets, listed only in the latter)."""
    counts: dict[int, int] = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            port = int(remote.split(":")[1], 16)
            if state == "01" and port in ports:
                counts[port] = counts.get(port, 0) + 1
    return counts


def client_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@contextmanager
def production() -> Iterator[Shape]:
    """The whole shape, started; every process stopped and every file removed after."""
    folder = Path(tempfile.mkdtemp(prefix="production-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        cluster = EtcdCluster()
        stack.callback(cluster.destroy)
        fake = RecordingOpenRouter()
        fake.start()
        stack.callback(fake.stop)
        cluster.start()
        ca = CertificateAuthority(folder)
        shape = Shape(
            folder=folder,
            cluster=cluster,
            fake=fake,
            ca=ca,
            context=client_context(ca.ca),
            ingress_cert=ca.issue("ingress", ip="127.0.0.1"),
        )
        stack.callback(shape.destroy)
        shape.start_replicas()
        assert shape.ingress is not None
        shape.ingress.start(shape.context)
        yield shape


if __name__ == "__main__":
    # python -m tests.production [SECONDS]: start the shape, say where it is, keep it up
    # for SECONDS (default 600) or until Ctrl-C, then tear everything down.
    import sys

    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    with production() as running:
        print(f"issuer {running.issuer}, CA {running.ca.ca}", flush=True)
        print(f"etcd {','.join(running.cluster.endpoints)}", flush=True)
        with suppress(KeyboardInterrupt):
            time.sleep(seconds)
