"""Benchmark whole login flows and token checks: the service against a floor and a ceiling.

    .venv/bin/python -m bench.run [--workers 1,2] [--flows 2000] [--concurrency 32]

Starts its own etcd, the fake OpenRouter (its own process) and, for each worker
count, the floor app, the service as it ships (``openrouter-oauth serve``), then the
service with ``ACCESS_TOKENS=bound`` (logins, refreshes, token exchanges,
introspections) and a resource server in front of it (bench/resource_server.py: its
cached introspection and exchange against its own bare route, and against the same
tool call on a floor resource server whose verifier does nothing), all on 127.0.0.1.
Every flow is checked (a flow that ends without a working key is an error). Prints a
table and writes JSON to bench/results/. Bounded by --flows and --max-seconds; every
process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import httpx
from tests.harness import REPO, EtcdServer
from tests.integration.flows import Grant
from tests.processes import free_port, wait_until_healthy

from openrouter_oauth import pkce

TICKET = re.compile(r'name="ticket" value="([^"]+)"')
REDIRECT = "http://127.0.0.1:5555/cb"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# ACCESS_TOKENS=bound: one declared resource server, whose credentials the bench uses for
# the token exchange and introspection a resource server would make.
RESOURCE_SERVER = {"id": "bench-mcp", "secret": "b" * 40, "resource": "http://127.0.0.1:9/mcp"}
BOUND_ENV = {"ACCESS_TOKENS": "bound", "RESOURCE_SERVERS": json.dumps([RESOURCE_SERVER])}
EXCHANGE = {
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
}


# -- processes -----------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def cpu_seconds_exact(pid: int) -> float:
    """CPU time of every thread of ``pid`` to the nanosecond (schedstat), where a few
    thousand fast requests are too few for :func:`cpu_seconds`' clock ticks."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def started(args: list[str], env: dict[str, str], health: str):
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_until_healthy(health, process, timeout=30)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def etcd_requests(endpoint: str) -> float:
    text = httpx.get(f"{endpoint}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("grpc_server_handled_total{")
    )


# -- load ------------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # bound: our access tokens
    refreshes: list[tuple[str, str]] = field(default_factory=list)  # bound: (client, token)
    completed: int = 0


async def timed(results: Results, step: str, request: Any) -> aiohttp.ClientResponse:
    start = time.perf_counter()
    response = await request
    await response.read()
    results.latencies[step].append(time.perf_counter() - start)
    return response


def resource_server_auth() -> dict[str, str]:
    """The resource server's HTTP Basic credentials, as a header."""
    return {
        "Authorization": aiohttp.encode_basic_auth(RESOURCE_SERVER["id"], RESOURCE_SERVER["secret"])
    }


async def one_flow(
    http: aiohttp.ClientSession, base: str, openrouter: str, results: Results, bound: bool
) -> None:
    """register → authorize → consent → OpenRouter → callback → token → /me, checked.
    ``bound``: the token answer is ours, and the resource server's exchange replaces /me."""
    verifier = pkce.new_verifier()
    r = await timed(
        results,
        "register",
        http.post(f"{base}/register", json={"client_name": "bench", "redirect_uris": [REDIRECT]}),
    )
    client_id = (await r.json())["client_id"]
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": pkce.s256(verifier),
            "code_challenge_method": "S256",
            "state": "s",
        }
    )
    r = await timed(results, "authorize", http.get(f"{base}/authorize?{query}"))
    ticket = TICKET.search(await r.text()).group(1)
    cookies = {k: v.value for k, v in r.cookies.items()}
    r = await timed(
        results,
        "consent",
        http.post(
            f"{base}/authorize",
            data={"ticket": ticket, "action": "approve"},
            cookies=cookies,
            allow_redirects=False,
        ),
    )
    auth = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    # The callback checks the browser: the cookies the consent page set, and any newer.
    browser = {**cookies, **{k: v.value for k, v in r.cookies.items()}}
    r = await timed(
        results,
        "openrouter",
        http.post(
            f"{openrouter}/auth/approve",
            data={
                "callback_url": auth["callback_url"],
                "code_challenge": auth["code_challenge"],
                "method": "S256",
                "key_label": auth["key_label"],
                "decision": "approve",
            },
            allow_redirects=False,
        ),
    )
    r = await timed(
        results,
        "callback",
        http.get(r.headers["Location"], cookies=browser, allow_redirects=False),
    )
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    form = Grant(base, client_id, code, verifier, REDIRECT).form()
    r = await timed(results, "token", http.post(f"{base}/token", data=form))
    answer = await r.json()
    key = answer["access_token"]
    if bound:
        await exchanged(http, base, key, results)
        results.refreshes.append((client_id, answer["refresh_token"]))
    else:
        r = await timed(
            results, "me", http.get(f"{base}/me", headers={"Authorization": f"Bearer {key}"})
        )
        if r.status != 200 or (await r.json())["id"] != key[-7:]:
            raise AssertionError(f"/me answered {r.status}")
    results.keys.append(key)
    results.completed += 1


async def exchanged(http: aiohttp.ClientSession, base: str, token: str, results: Results) -> None:
    """What the resource server does with a bound token: the key, by token exchange."""
    form = {**EXCHANGE, "subject_token": token}
    r = await timed(
        results, "exchange", http.post(f"{base}/token", data=form, headers=resource_server_auth())
    )
    if r.status != 200 or not (await r.json())["access_token"].startswith("sk-or-"):
        raise AssertionError(f"the exchange answered {r.status}")


async def run_flows(
    base: str, openrouter: str, flows: int, concurrency: int, max_seconds: float, bound: bool
) -> tuple[Results, float]:
    results = Results()
    todo = iter(range(flows))
    deadline = time.monotonic() + max_seconds

    async def client(http: aiohttp.ClientSession) -> None:
        for _ in todo:
            if time.monotonic() > deadline:
                return
            try:
                await one_flow(http, base, openrouter, results, bound)
            except Exception as exc:  # a failed flow is an error to report, not a crash
                results.errors.append(f"{type(exc).__name__}: {exc}"[:200])

    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return results, time.perf_counter() - start


async def run_gets(
    url: str, requests_kw: list[dict[str, Any]], requests: int, concurrency: int
) -> tuple[list[float], dict[int, int], float]:
    """``requests`` calls of ``url``, round the keyword sets (a ``data`` set makes a POST)."""
    latencies: list[float] = []
    statuses: dict[int, int] = defaultdict(int)
    todo = iter(range(requests))

    async def client(http: aiohttp.ClientSession) -> None:
        for i in todo:
            kw = requests_kw[i % len(requests_kw)]
            start = time.perf_counter()
            async with http.request("POST" if "data" in kw else "GET", url, **kw) as response:
                await response.read()
                statuses[response.status] += 1
            latencies.append(time.perf_counter() - start)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return latencies, dict(statuses), time.perf_counter() - start


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    q = statistics.quantiles(values, n=100)
    return {"p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000}


# -- one target --------------------------------------------------------------------


def measure_flows(
    name: str,
    process: subprocess.Popen[bytes],
    base: str,
    etcd: str,
    openrouter: str,
    args: argparse.Namespace,
    bound: bool = False,
) -> tuple[dict[str, Any], Results]:
    warm = (base, openrouter, args.warmup, args.concurrency, args.max_seconds, bound)
    asyncio.run(run_flows(*warm))
    pids = process_tree(process.pid)
    cpu0, etcd0 = cpu_seconds(pids), etcd_requests(etcd)
    results, elapsed = asyncio.run(
        run_flows(base, openrouter, args.flows, args.concurrency, args.max_seconds, bound)
    )
    cpu1, etcd1 = cpu_seconds(pids), etcd_requests(etcd)
    done = max(results.completed, 1)
    return {
        "target": name,
        "flows": results.completed,
        "errors": len(results.errors),
        "error_samples": results.errors[:5],
        "flows_per_second": results.completed / elapsed,
        "cpu_seconds_per_flow": (cpu1 - cpu0) / done,
        "etcd_requests_per_flow": (etcd1 - etcd0) / done,
        "step_latency_ms": {step: percentiles(v) for step, v in results.latencies.items()},
        "peak_rss_mib": {str(pid): round(peak_rss_mib(pid), 1) for pid in pids},
    }, results


def measure_gets(
    name: str, url: str, requests_kw: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    asyncio.run(run_gets(url, requests_kw, min(args.checks, 2000), args.check_concurrency))
    latencies, statuses, elapsed = asyncio.run(
        run_gets(url, requests_kw, args.checks, args.check_concurrency)
    )
    return gets_report(name, latencies, statuses, elapsed)


def gets_report(
    name: str, latencies: list[float], statuses: dict[int, int], elapsed: float
) -> dict[str, Any]:
    return {
        "target": name,
        "requests": len(latencies),
        "statuses": statuses,
        "requests_per_second": len(latencies) / elapsed,
        **percentiles(latencies),
    }


def measure_in_turns(
    targets: dict[str, tuple[str, list[dict[str, Any]], subprocess.Popen[bytes]]],
    args: argparse.Namespace,
) -> dict[str, dict[str, Any]]:
    """Like :func:`measure_gets` for several targets (URL, requests, the server that
    answers them), measured in turns A B C C B A (each turn half the checks), so other
    work on the machine weighs on all alike; also each server's CPU per request, which
    that other work hardly changes."""
    for url, requests_kw, _ in targets.values():
        asyncio.run(run_gets(url, requests_kw, min(args.checks, 2000), args.check_concurrency))
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    elapsed: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    for name in [*targets, *reversed(targets)]:
        url, requests_kw, server = targets[name]
        cpu[name] -= cpu_seconds_exact(server.pid)
        turn = asyncio.run(run_gets(url, requests_kw, args.checks // 2, args.check_concurrency))
        cpu[name] += cpu_seconds_exact(server.pid)
        latencies[name].extend(turn[0])
        for status, count in turn[1].items():
            statuses[name][status] += count
        elapsed[name] += turn[2]
    return {
        name: {
            **gets_report(name, latencies[name], dict(statuses[name]), elapsed[name]),
            "cpu_us_per_request": cpu[name] / max(1, len(latencies[name])) * 1e6,
        }
        for name in targets
    }


def bench_workers(
    workers: int, etcd: EtcdServer, openrouter: str, args: argparse.Namespace
) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ISSUER_URL": base,
        "OPENROUTER_BASE_URL": openrouter,
        "ETCD_ENDPOINTS": etcd.endpoint,
        "SECRET": secrets.token_urlsafe(32),
        "RATE_LIMITS": "off",
        "METRICS_PORT": str(free_port()),
        "ETCD_PREFIX": f"/bench{port}/",
        "PYTHONPATH": str(REPO),
    }
    report: dict[str, Any] = {"workers": workers}
    floor_cmd = [
        sys.executable,
        "-m",
        "bench.floor",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with started(floor_cmd, env, f"{base}/hello") as floor:
        report["floor"], _ = measure_flows("floor", floor, base, etcd.endpoint, openrouter, args)
        report["hello"] = measure_gets("hello", f"{base}/hello", [{}], args)
    service_cmd = [
        sys.executable,
        "-m",
        "openrouter_oauth.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with started(service_cmd, env, f"{base}/healthz") as service:
        report["service"], results = measure_flows(
            "service", service, base, etcd.endpoint, openrouter, args
        )
        valid = [{"headers": {"Authorization": f"Bearer {k}"}} for k in results.keys[:200]]
        invalid = [
            {"headers": {"Authorization": f"Bearer sk-or-v1-{secrets.token_hex(32)}"}}
            for _ in range(max(1, len(valid) // 9))
        ]
        report["me"] = measure_gets("me", f"{base}/me", valid + invalid, args)
        if args.soak:
            report["soak"] = soak(service, base, openrouter, args)
    with started(service_cmd, {**env, **BOUND_ENV}, f"{base}/healthz") as service:
        report.update(bench_bound(service, base, etcd.endpoint, openrouter, args))
    for name in ("floor", "service", "bound"):
        if not report[name]["flows"]:
            raise SystemExit(f"{name}: no flow completed: {report[name]['error_samples']}")
    hello = report["hello"]["requests_per_second"]
    report["ratios"] = {
        "flows_vs_floor": report["service"]["flows_per_second"]
        / report["floor"]["flows_per_second"],
        "me_vs_hello": report["me"]["requests_per_second"] / hello,
        "bound_login_cpu_vs_key_login": report["bound"]["cpu_seconds_per_flow"]
        / report["service"]["cpu_seconds_per_flow"],
        "refresh_vs_hello": report["refresh"]["requests_per_second"] / hello,
        "exchange_vs_hello": report["exchange"]["requests_per_second"] / hello,
        "introspect_vs_hello": report["introspect"]["requests_per_second"] / hello,
        "cached_introspection_exchange_vs_bare_route": report["rs_tool"]["requests_per_second"]
        / report["rs_hello"]["requests_per_second"],
        # The same, as requests per CPU second of the resource server: steadier on a
        # machine shared with other work.
        "cached_introspection_exchange_vs_bare_route_cpu": report["rs_hello"]["cpu_us_per_request"]
        / report["rs_tool"]["cpu_us_per_request"],
        # Against the same tool call through the SDK's stack with a verifier doing
        # nothing: what the verifier's caches cost, the SDK's own share taken out.
        "cached_introspection_exchange_vs_sdk_floor": report["rs_tool"]["requests_per_second"]
        / report["rs_floor"]["requests_per_second"],
        "cached_introspection_exchange_vs_sdk_floor_cpu": report["rs_floor"]["cpu_us_per_request"]
        / report["rs_tool"]["cpu_us_per_request"],
    }
    return report


def bench_bound(
    service: subprocess.Popen[bytes],
    base: str,
    etcd: str,
    openrouter: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """ACCESS_TOKENS=bound: login flows (ending in the resource server's exchange), then
    refreshes, repeated exchanges of the same tokens and introspections (uncached: the
    authorization server reads the grant on every call, so revocation is immediate), then
    the resource server's tool calls with those tokens (its caches) against its bare route."""
    report, results = measure_flows("bound", service, base, etcd, openrouter, args, bound=True)
    tokens = results.keys[:200]
    headers = resource_server_auth()
    report["refresh"] = measure_refreshes(base, results.refreshes, args)
    report["exchange"] = measure_gets(
        "exchange",
        f"{base}/token",
        [{"data": {**EXCHANGE, "subject_token": t}, "headers": headers} for t in tokens],
        args,
    )
    report["introspect"] = measure_gets(
        "introspect",
        f"{base}/introspect",
        [{"data": {"token": t}, "headers": headers} for t in tokens],
        args,
    )
    report.update(measure_resource_server(base, tokens, args))
    moved = ("refresh", "exchange", "introspect", "rs_hello", "rs_floor", "rs_tool")
    return {"bound": report, **{k: report.pop(k) for k in moved}}


def measure_resource_server(
    issuer: str, tokens: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """The same load as ``/me`` against ``/hello``, on a resource server: its bare route,
    a tool call per bound token (cached introspection + cached exchange), and the same
    tool call on the floor's resource server (the SDK's stack, a verifier doing nothing)."""
    ports = {"rs": free_port(), "rs_floor": free_port()}
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    bearers = [{"headers": {"Authorization": f"Bearer {t}"}} for t in tokens]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with ExitStack() as stack:
        running = {
            name: stack.enter_context(
                started(
                    resource_server_command(issuer, port, floor=name == "rs_floor"),
                    env,
                    f"{bases[name]}/hello",
                )
            )
            for name, port in ports.items()
        }
        targets = {
            "rs_hello": (f"{bases['rs']}/hello", [{}], running["rs"]),
            "rs_floor": (f"{bases['rs_floor']}/tool", bearers, running["rs_floor"]),
            "rs_tool": (f"{bases['rs']}/tool", bearers, running["rs"]),
        }
        return measure_in_turns(targets, args)


def resource_server_command(issuer: str, port: int, *, floor: bool) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "bench.resource_server",
        "--port",
        str(port),
        "--issuer",
        issuer,
        "--resource",
        RESOURCE_SERVER["resource"],
        "--client-id",
        RESOURCE_SERVER["id"],
        "--client-secret",
        RESOURCE_SERVER["secret"],
    ]
    return [*command, "--floor"] if floor else command


def measure_refreshes(
    base: str, grants: list[tuple[str, str]], args: argparse.Namespace
) -> dict[str, Any]:
    """Each simulated client refreshes its own grant again and again (rotation: the next
    refresh uses the token the last one returned)."""
    latencies: list[float] = []
    statuses: dict[int, int] = defaultdict(int)
    chains = grants[: args.check_concurrency]
    rounds = max(1, args.checks // 10 // max(1, len(chains)))

    async def chain(http: aiohttp.ClientSession, client_id: str, token: str) -> None:
        for _ in range(rounds):
            form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": token}
            start = time.perf_counter()
            async with http.post(f"{base}/token", data=form) as response:
                body = await response.json()
                statuses[response.status] += 1
            latencies.append(time.perf_counter() - start)
            if response.status != 200:
                return
            token = body["refresh_token"]

    async def run() -> float:
        async with aiohttp.ClientSession() as http:
            start = time.perf_counter()
            await asyncio.gather(*(chain(http, c, t) for c, t in chains))
            return time.perf_counter() - start

    elapsed = asyncio.run(run())
    return {
        "target": "refresh",
        "requests": len(latencies),
        "statuses": dict(statuses),
        "requests_per_second": len(latencies) / elapsed,
        **percentiles(latencies),
    }


def soak(
    service: subprocess.Popen[bytes], base: str, openrouter: str, args: argparse.Namespace
) -> dict[str, Any]:
    """RSS of every service process after each block of flows (flat means no leak)."""
    samples = []
    done = 0
    for target in args.soak:
        results, _ = asyncio.run(
            run_flows(
                base, openrouter, target - done, args.concurrency, args.max_seconds * 10, False
            )
        )
        done = target
        samples.append(
            {
                "flows": done,
                "errors": len(results.errors),
                "rss_mib": {str(p): round(rss_mib(p), 1) for p in process_tree(service.pid)},
            }
        )
    return {"samples": samples}


# -- report ------------------------------------------------------------------------

# Token-check rows of the table: report key → label (ratios against /hello, except the
# resource server's tool call, which is against the resource server's own bare route).
CHECK_ROWS = {
    "hello": "hello",
    "me": "me",
    "refresh": "refresh",
    "exchange": "exchange (uncached)",
    "introspect": "introspect (uncached)",
    "rs_hello": "rs bare route",
    "rs_floor": "rs tool (SDK floor)",
    "rs_tool": "rs tool (cached)",
}


def table(reports: list[dict[str, Any]]) -> str:
    lines = [
        f"{'workers':>7} {'target':>8} {'flows/s':>9} {'errors':>6} {'cpu ms/flow':>11} "
        f"{'etcd req/flow':>13} {'ratio':>6}"
    ]
    for report in reports:
        for name in ("floor", "service"):
            r = report[name]
            ratio = report["ratios"]["flows_vs_floor"] if name == "service" else 1.0
            lines.append(
                f"{report['workers']:>7} {name:>8} {r['flows_per_second']:>9.1f} "
                f"{r['errors']:>6} {r['cpu_seconds_per_flow'] * 1000:>11.2f} "
                f"{r['etcd_requests_per_flow']:>13.2f} {ratio:>6.2f}"
            )
    lines.append("")
    lines.append(
        f"{'workers':>7} {'target':>21} {'req/s':>9} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'ratio':>6}"
    )
    for report in reports:
        for name, label in CHECK_ROWS.items():
            r = report[name]
            ratio = report["ratios"].get(f"{name}_vs_hello", 1.0)
            if name in ("rs_floor", "rs_tool"):
                ratio = r["requests_per_second"] / report["rs_hello"]["requests_per_second"]
            lines.append(
                f"{report['workers']:>7} {label:>21} {r['requests_per_second']:>9.0f} "
                f"{r['p50']:>7.2f} {r['p95']:>7.2f} {r['p99']:>7.2f} {ratio:>6.2f}"
            )
    if len(reports) > 1:
        one, two = reports[0]["service"], reports[-1]["service"]
        lines.append("")
        lines.append(
            f"scaling {reports[-1]['workers']} vs {reports[0]['workers']} workers: "
            f"{two['flows_per_second'] / one['flows_per_second']:.2f}x flows/s"
        )
    for report in reports:
        lines.append(
            f"{report['workers']} worker(s), bound mode: {report['bound']['flows_per_second']:.1f} "
            f"logins/s, {report['bound']['cpu_seconds_per_flow'] * 1000:.2f} cpu ms/login = "
            f"{report['ratios']['bound_login_cpu_vs_key_login']:.2f}x an openrouter-key login"
        )
    lines.append(
        "(uncached: the authorization server reads the grant on every call, so revocation "
        "is immediate; cached: the resource server's verifier, against its own bare route; "
        "SDK floor: the SDK's auth stack with a verifier doing nothing)"
    )
    for report in reports:
        ratios = report["ratios"]
        cpu = {k: report[k]["cpu_us_per_request"] for k in ("rs_hello", "rs_floor", "rs_tool")}
        lines.append(
            f"{report['workers']} worker(s), cached introspection + exchange / bare route: "
            f"{ratios['cached_introspection_exchange_vs_bare_route']:.2f}x req/s, "
            f"{ratios['cached_introspection_exchange_vs_bare_route_cpu']:.2f}x req per "
            f"CPU second ({cpu['rs_hello']:.0f} vs {cpu['rs_tool']:.0f} us)"
        )
        lines.append(
            f"{report['workers']} worker(s), cached introspection + exchange / SDK floor: "
            f"{ratios['cached_introspection_exchange_vs_sdk_floor']:.2f}x req/s, "
            f"{ratios['cached_introspection_exchange_vs_sdk_floor_cpu']:.2f}x req per "
            f"CPU second ({cpu['rs_floor']:.0f} vs {cpu['rs_tool']:.0f} us)"
        )
    lines.append("")
    lines.append(
        "service step latency (ms, last run): "
        + ", ".join(
            f"{step} p50 {v['p50']:.1f}/p95 {v['p95']:.1f}/p99 {v['p99']:.1f}"
            for step, v in reports[-1]["service"]["step_latency_ms"].items()
        )
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated worker counts, one run each (default 1,2)"
    )
    parser.add_argument(
        "--flows",
        type=int,
        default=2000,
        help="measured login flows per target and worker count (default 2000)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="unmeasured flows before each measured run (default 200)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="simulated clients running flows at once (default 32)",
    )
    parser.add_argument(
        "--checks",
        type=int,
        default=20000,
        help="token checks (/me and the bare /hello) per run (default 20000)",
    )
    parser.add_argument(
        "--check-concurrency",
        type=int,
        default=64,
        help="token checks in flight at once (default 64)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=120,
        help="cap on each measured run in seconds; the soak gets 10 times it (default 120)",
    )
    parser.add_argument(
        "--soak",
        type=lambda s: [int(x) for x in s.split(",")],
        default=None,
        help="after the runs, total flows at which to sample the service's RSS, e.g. "
        "10000,50000 (default: no soak)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output file (default: bench/results/bench-<unix time>.json)",
    )
    args = parser.parse_args()
    etcd = EtcdServer().start()
    fake_port = free_port()
    openrouter = f"http://127.0.0.1:{fake_port}"
    fake_cmd = [sys.executable, "-m", "bench.fake_openrouter", "--port", str(fake_port)]
    try:
        with started(fake_cmd, {**os.environ, "PYTHONPATH": str(REPO)}, f"{openrouter}/") as fake:
            reports = [
                bench_workers(int(w), etcd, openrouter, args) for w in args.workers.split(",")
            ]
            fake_rss = peak_rss_mib(fake.pid)
        etcd_rss = peak_rss_mib(etcd.process.pid) if etcd.process else 0.0
    finally:
        etcd.destroy()
    output = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "cpus": os.cpu_count(),
        "runs": reports,
        "peak_rss_mib": {"fake_openrouter": fake_rss, "etcd": etcd_rss},
    }
    out = args.out or REPO / "bench" / "results" / f"bench-{int(time.time())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(output, indent=2))
    print(table(reports))
    print(f"\nJSON: {out}")
    return 1 if any(r[t]["errors"] for r in reports for t in ("floor", "service")) else 0


if __name__ == "__main__":
    sys.exit(main())
