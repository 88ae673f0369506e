"""The commands the README names behave as it says when things go wrong.

The README's own blocks run in ``test_readme.py``; this covers what a happy run cannot
show: the demo failing loudly at the broken step and cleaning up on a signal, the fake's
busy-port message, what ``scripts/test --partial`` leaves out (and that it installs
nothing), and ``bench.run --help``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.fakes.openrouter import FakeOpenRouter
from tests.harness import REPO, Service
from tests.processes import free_port

PORT_IN_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def as_in_a_terminal() -> None:
    """Ctrl-C acts as in a terminal, even when this suite runs as a background job (whose
    children inherit SIGINT ignored, and then Python never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def demo_module() -> ModuleType:
    """scripts/demo.py, imported by path (scripts/ is not a package)."""
    name = "scripts_demo"
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# -- scripts/demo ---------------------------------------------------------------------


def test_the_demo_names_the_step_that_failed_and_stops_the_fake():
    """A service that cannot start (a bad setting in the environment) stops the demo at once."""
    result = subprocess.run(
        [str(REPO / "scripts" / "demo")],
        env={**os.environ, "STATE_TTL_SECONDS": "5"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("demo: FAILED at step start service: exited with 2:")
    assert "STATE_TTL_SECONDS" in lines[0] and "Traceback" not in result.stderr
    fake_port = int(PORT_IN_LINE.search(result.stdout)[1])
    assert not listening(fake_port), "the fake OpenRouter was left running"


def test_a_failure_in_the_middle_names_its_step(service: Service, fake: FakeOpenRouter):
    """OpenRouter failing the code exchange makes /token answer 503: the step is `token`."""
    demo = demo_module()
    fake.fail_next("/api/v1/auth/keys", 500)
    with pytest.raises(demo.StepFailed) as failed:
        demo.run_login(service.url)
    assert failed.value.step == "token"
    assert "answered 503, expected 200" in failed.value.reason


def test_a_signal_mid_run_stops_both_servers():
    process = subprocess.Popen(
        [str(REPO / "scripts" / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # "fake OpenRouter on …": the service is starting now
    process.send_signal(signal.SIGTERM)
    rest, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors
    assert "interrupted; servers stopped" in errors
    ports = [int(p) for p in PORT_IN_LINE.findall(first + rest)]
    assert ports, first
    assert not [port for port in ports if listening(port)]


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_servers_do_not_outlive_a_killed_demo():
    """SIGKILL runs no handler: the servers are told by the kernel (PR_SET_PDEATHSIG)."""
    process = subprocess.Popen([str(REPO / "scripts" / "demo")], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(PORT_IN_LINE.search(process.stdout.readline())[1])
    process.kill()
    process.wait(10)
    process.stdout.close()
    deadline = time.monotonic() + 10
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listening(port), "the fake OpenRouter outlived the demo"


# -- the fake OpenRouter's command line ---------------------------------------------------


def test_the_fake_on_a_busy_port_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tests.fakes.openrouter", "--port", str(port)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"fake OpenRouter: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_the_fake_stops_on_ctrl_c_without_a_traceback():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openrouter", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_in_a_terminal,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"fake OpenRouter on http://127.0.0.1:{port}"
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=15)
        assert process.returncode == 0 and errors == ""
    finally:
        if process.poll() is None:  # it did not stop: leave nothing running
            process.kill()
            process.communicate()


# -- scripts/test --partial ---------------------------------------------------------------

LEFT_OUT = (
    "tests/e2e/test_browser.py",
    "tests/container",
    "tests/e2e/test_conformance.py",
    "tests/kube",
    "tests/node",
    "tests/faults",
)


def shims(directory: Path, log: Path) -> dict[str, str]:
    """apt-get, npm, go and sudo that only record that they were called."""
    directory.mkdir()
    for name in ("apt-get", "npm", "go", "sudo"):
        shim = directory / name
        shim.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexit 1\n')
        shim.chmod(0o755)
    return {**os.environ, "PATH": f"{directory}{os.pathsep}{os.environ['PATH']}"}


def test_the_partial_suite_says_what_it_leaves_out_and_installs_nothing(tmp_path: Path):
    called = tmp_path / "called.log"
    result = subprocess.run(
        [str(REPO / "scripts" / "test"), "--partial", "--collect-only", "-q"],
        cwd=REPO,
        env=shims(tmp_path / "bin", called),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert not called.exists(), f"--partial ran {called.read_text()}"
    banner = "scripts/test: PARTIAL run: these tests are NOT run"
    assert result.stdout.count(banner) == 2, "said at the start and at the end"
    for path in LEFT_OUT:
        assert (REPO / path).exists(), f"{path} is named but does not exist"
        assert f"  {path}  (needs " in result.stdout
    collected = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    every = {str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")}
    expected = {f for f in every if not f.startswith(LEFT_OUT)}
    assert collected == expected, "only the named tests are left out"


# -- bench.run --help ---------------------------------------------------------------------


def test_bench_help_describes_every_flag_with_its_default():
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    options = result.stdout.split("options:")[1]
    entries = re.split(r"\n  (?=--)", options)[1:]  # one per flag, -h excluded
    flags = [entry.split()[0] for entry in entries]
    assert len(flags) == 9, flags
    for entry in entries:
        assert "default" in entry, f"no default in: {entry}"
