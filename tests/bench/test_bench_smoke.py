"""The benchmark stays runnable: a tiny run completes every flow and writes a full report.

Speed is never asserted here (that is what the benchmark itself reports, as ratios);
this only proves the harness, the floor and the fast fake still work.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness import REPO


def test_a_small_benchmark_run_completes_every_flow(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--workers",
            "1",
            "--flows",
            "20",
            "--warmup",
            "5",
            "--concurrency",
            "4",
            "--checks",
            "200",
            "--check-concurrency",
            "8",
            "--max-seconds",
            "60",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    for target in ("floor", "service"):
        assert run[target]["flows"] == 20 and run[target]["errors"] == 0
        assert run[target]["etcd_requests_per_flow"] > 0
        assert run[target]["cpu_seconds_per_flow"] > 0
    assert set(run["service"]["step_latency_ms"]) == {
        "register",
        "authorize",
        "consent",
        "openrouter",
        "callback",
        "token",
        "me",
    }
    assert run["me"]["statuses"]["200"] > 0 and run["me"]["statuses"]["401"] > 0
    # Bound mode: every login ends in the resource server's exchange, and the refreshes,
    # exchanges and introspections all succeed.
    assert run["bound"]["flows"] == 20 and run["bound"]["errors"] == 0
    assert "exchange" in run["bound"]["step_latency_ms"]
    for target in ("refresh", "exchange", "introspect"):
        assert set(run[target]["statuses"]) == {"200"}, run[target]
    # The resource servers: the bare route, and tool calls that got a key every time.
    for target in ("rs_hello", "rs_floor", "rs_tool"):
        assert set(run[target]["statuses"]) == {"200"}, run[target]
    assert {
        "flows_vs_floor",
        "me_vs_hello",
        "bound_login_cpu_vs_key_login",
        "refresh_vs_hello",
        "exchange_vs_hello",
        "introspect_vs_hello",
        "cached_introspection_exchange_vs_bare_route",
        "cached_introspection_exchange_vs_bare_route_cpu",
        "cached_introspection_exchange_vs_sdk_floor",
        "cached_introspection_exchange_vs_sdk_floor_cpu",
    } <= set(run["ratios"])
    assert run["ratios"]["cached_introspection_exchange_vs_bare_route"] > 0
    assert run["rs_tool"]["cpu_us_per_request"] > 0
    assert "flows/s" in result.stdout and "bound mode" in result.stdout
    assert "cached introspection + exchange / bare route" in result.stdout
    assert "cached introspection + exchange / SDK floor" in result.stdout


def test_component_benchmark_runs():
    result = subprocess.run(
        [sys.executable, "-m", "bench.components"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "joserfc" in result.stdout and "aiohttp" in result.stdout
