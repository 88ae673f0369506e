"""The example MCP server (examples/mcp_server.py) as its own process, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.harness import REPO, free_port, wait_until_healthy

EXAMPLE = REPO / "examples" / "mcp_server.py"


@dataclass
class ExampleServer:
    """``python examples/mcp_server.py``, configured only through its environment."""

    issuer: str
    openrouter: str
    client_id: str
    client_secret: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/oauth-protected-resource/mcp"

    def start(self) -> ExampleServer:
        self.port = self.port or free_port()
        env = {
            **os.environ,
            "ISSUER_URL": self.issuer,
            "INTROSPECTION_CLIENT_ID": self.client_id,
            "INTROSPECTION_CLIENT_SECRET": self.client_secret,
            "OPENROUTER_BASE_URL": self.openrouter,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path = Path(tempfile.mkstemp(prefix="example-mcp-", suffix=".log")[1])
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(EXAMPLE)],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until_healthy(self.metadata_url, self.process)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"example server did not start:\n{self.log()}") from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def unwrapped_log(self) -> str:
        """The log without whitespace: the SDK's console logging wraps long values."""
        return "".join(self.log().split())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
