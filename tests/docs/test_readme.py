"""Every command in the README, in docs/ and in the chart's README runs as written.

The blocks are read from the documents themselves each run (``tests/docs/readme.py``
describes the markers and lists the documents). Shell blocks marked ``tested: run`` and
``tested: serve`` run in one fresh copy per session: the files git would commit (tracked,
and new files not ignored), copied to a temporary directory, so ``.venv`` is made from
scratch as on a new machine (about half a minute, from PyPI). The copy is removed at the
end. ``untested-here`` blocks must say why, and every test file their reason names as
covering them must exist: nothing is silently dropped, and nothing is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openrouter_oauth.pages import DEMO_URL
from openrouter_oauth.settings import PROJECT_URL
from tests.docs.readme import (
    README,
    SHELL_LANGUAGES,
    Block,
    blocks,
    files_besides_the_install,
    json_blocks,
    only,
    shell_blocks,
)
from tests.docs.test_links import anchors
from tests.harness import REPO
from tests.processes import free_port, wait_until_healthy

KNOWN_MARKERS = {"run", "serve", "ci", "untested-here"}
RUN_TIMEOUT = 600  # seconds: a block may create .venv first (pip, from PyPI)
# Settings a developer's shell may hold that would change what the documents' commands do.
SERVICE_SETTINGS = ("ETCD_", "SECRET", "PREVIOUS_SECRETS", "ISSUER_URL", "OPENROUTER_BASE_URL")
LISTENING = re.compile(r"http://127\.0\.0\.1:(\d+)")


def clean_env() -> dict[str, str]:
    drop = (*SERVICE_SETTINGS, "VIRTUAL_ENV", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def fresh_copy() -> Iterator[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    root = Path(tempfile.mkdtemp(prefix="readme-clone-"))
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    yield root
    shutil.rmtree(root, ignore_errors=True)


# -- the convention holds --------------------------------------------------------------


def test_every_shell_block_is_marked_tested_or_says_why_not():
    unmarked = [b.where for b in shell_blocks() if b.marker not in KNOWN_MARKERS]
    assert not unmarked, "shell blocks without a known marker (see tests/docs/readme.py): " + (
        ", ".join(unmarked)
    )
    reasons = [b for b in shell_blocks() if b.marker == "untested-here" and len(b.argument) < 20]
    assert not reasons, f"untested-here needs a reason: {[b.where for b in reasons]}"


def test_the_extraction_sees_markers_indented_blocks_and_missing_markers():
    text = (
        "<!-- tested: serve http://x/healthz -->\n```sh\nserve\n```\n"
        "- item\n  <!-- untested-here: needs a cluster somewhere -->\n"
        "  ```sh\n  kubectl get\n  ```\n"
        "```sh\nbare\n```\n"
    )
    found = [(b.marker, b.argument, b.code) for b in blocks(text) if b.lang in SHELL_LANGUAGES]
    assert found == [
        ("serve", "http://x/healthz", "serve\n"),
        ("untested-here", "needs a cluster somewhere", "kubectl get\n"),
        ("", "", "bare\n"),
    ]


def test_the_landing_pages_links_lead_into_this_readme():
    """The root page links the docs (by default this README) and the demo's section."""
    project, _, section = DEMO_URL.partition("#")
    assert project == PROJECT_URL and section in anchors(README)


# -- JSON blocks --------------------------------------------------------------------------


@pytest.mark.parametrize("block", json_blocks(), ids=lambda b: b.id)
def test_json_blocks_parse(block: Block):
    json.loads(block.code)


def test_the_mcp_server_metadata_names_the_issuer_the_serve_command_uses():
    served = only("serve")
    issuer = served.argument.removesuffix("/healthz")
    documents = [json.loads(b.code) for b in json_blocks(README)]
    metadata = [d for d in documents if "authorization_servers" in d]
    assert metadata, "the README shows an MCP server's protected-resource metadata"
    for document in metadata:
        assert document["authorization_servers"] == [issuer]
    clients = [d for d in documents if "servers" in d or "mcpServers" in d]
    urls = {s["url"] for d in clients for s in (d.get("servers") or d["mcpServers"]).values()}
    assert urls == {d["resource"] for d in metadata}, "client configs point at that server"


def test_the_example_mcp_server_serves_the_metadata_the_readme_shows():
    """examples/mcp_server.py, with its defaults' public URL, against the README's JSON."""
    shown_blocks = (b.code for b in json_blocks(README))
    (shown,) = [d for d in map(json.loads, shown_blocks) if "resource" in d]
    port = free_port()
    env = {
        **clean_env(),
        "PORT": str(port),
        "PUBLIC_URL": shown["resource"].removesuffix("/mcp"),  # the README's, on a free port
        "ISSUER_URL": shown["authorization_servers"][0],
        "INTROSPECTION_CLIENT_ID": "readme",
        "INTROSPECTION_CLIENT_SECRET": "s" * 32,
    }
    process = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "mcp_server.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(f"{base}/.well-known/oauth-protected-resource/mcp", process)
        served = httpx.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
        assert {k: served[k] for k in shown} == shown
        refused = httpx.post(f"{base}/mcp", json={})
        assert refused.status_code == 401
        metadata_url = f"{shown['resource'].removesuffix('/mcp')}"
        metadata_url += "/.well-known/oauth-protected-resource/mcp"
        assert f'resource_metadata="{metadata_url}"' in refused.headers["www-authenticate"]
    finally:
        process.terminate()
        process.wait(10)


# -- shell blocks -------------------------------------------------------------------------


def shell_params(*, tested: bool) -> list[object]:
    return [
        pytest.param(block, id=block.id)
        for block in shell_blocks()
        if (block.marker != "untested-here") == tested
    ]


_COVERED_BY = re.compile(r"tests/[\w/.]+")


@pytest.mark.parametrize("block", shell_params(tested=False))
def test_blocks_not_run_here_say_what_covers_them(block: Block):
    """A block this test does not run names its reason, and the tests it names exist."""
    reason = block.argument.strip()
    assert len(reason) > 20, f"{block.where}: say why this block is not run here"
    for path in _COVERED_BY.findall(reason):
        target = REPO / path.rstrip(".")
        assert target.exists(), f"{block.where}: {path} does not exist"


@pytest.mark.parametrize("block", shell_params(tested=True))
def test_documented_shell_block(block: Block, fresh_copy: Path):
    if block.marker == "run":
        run_block(block, fresh_copy)
    elif block.marker == "serve":
        serve_block(block, fresh_copy)
    elif block.marker == "ci":
        ci_block(block)
    else:
        pytest.fail(f"{block.where}: unknown marker {block.marker!r}")


def run_block(block: Block, root: Path) -> None:
    before = files_besides_the_install(root)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.where} failed:\n{output}"
    assert files_besides_the_install(root) == before, f"{block.where} left files behind"
    still = [port for port in map(int, LISTENING.findall(output)) if listening(port)]
    assert not still, f"still listening after the command ended: {still}"


def as_in_a_terminal() -> None:
    """SIGINT as in a terminal, even when this suite runs as a background job (whose
    children inherit it ignored, and bash cannot undo that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def machine_wide_lock(name: str) -> Iterator[None]:
    """Serialise with other checkouts' test runs on this machine: the port is fixed."""
    with open(Path(tempfile.gettempdir()) / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def serve_block(block: Block, root: Path) -> None:
    url = block.argument
    port = int(LISTENING.search(url)[1])
    log = root / ".." / f"{root.name}-serve.log"  # outside the copy, so it stays unchanged
    with machine_wide_lock(f"openrouter-oauth-readme-port-{port}"), log.open("wb") as out:
        assert not listening(port), f"port {port} is taken; the README's serve command needs it"
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=root,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the whole group, as in a terminal
            preexec_fn=as_in_a_terminal,
        )
        try:
            wait_for(url, process, log)
            issuer = url.rsplit("/", 1)[0]
            metadata = httpx.get(f"{issuer}/.well-known/oauth-authorization-server").json()
            assert metadata["issuer"] == issuer, "the README says which issuer this serves"
            page = httpx.get(f"{issuer}/", headers={"Accept": "text/html"})
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert f"issuer {issuer}, store embedded memory" in log.read_text()
            os.killpg(process.pid, signal.SIGINT)  # "Stop it with Ctrl-C"
            process.wait(20)
            assert not listening(port), "still listening after Ctrl-C"
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            log.unlink(missing_ok=True)


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"the serve command exited with {process.returncode}:\n{output}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {RUN_TIMEOUT} s")


def ci_block(block: Block) -> None:
    """The test command is what CI runs: .ci/run execs exactly this command."""
    command = block.code.strip()
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert f"exec {command}" in ci_lines, f".ci/run does not exec {command!r}"
