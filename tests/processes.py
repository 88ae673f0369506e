"""The processes tests start: a free port for each, waiting until it answers, stopping it.

One home for what the service, the example MCP servers and the etcd members (one, or
three as a cluster) all need; each of those says only what it runs.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx


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


def spawn_quiet(command: list[str]) -> subprocess.Popen[bytes]:
    """A process whose output nobody reads (it is asked how it is, over HTTP)."""
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class LoggedProcess:
    """A process of ours in its own session, its output in a log file; stopped as a group."""

    process: subprocess.Popen[bytes] | None = field(default=None, kw_only=True)
    log_path: Path | None = field(default=None, kw_only=True)

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

    def launch(
        self,
        command: list[str],
        env: Mapping[str, str],
        prefix: str,
        health_url: str,
        cwd: Path | None = None,
    ) -> None:
        """Spawn, and wait until ``health_url`` answers; else stop it and raise with its log."""
        self.spawn(command, env, prefix, cwd)
        try:
            wait_until_healthy(health_url, self.process)
        except RuntimeError as exc:
            output = self.log()
            self.stop()
            raise RuntimeError(f"{exc}; its log:\n{output}") from None

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
