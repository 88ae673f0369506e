"""The production shape under fire, full length: every fault while logins run.

    .venv/bin/python -m bench.faults [--clients 8] [--scale 1] [--only quorum,reload]

Starts the shape of tests/production.py (3 etcd members, 3 replicas of which one has
2 workers, nginx terminating TLS, the fake OpenRouter), then for each fault runs
the load of tests/faults/load.py for ``before`` seconds, injects the fault, holds it,
restores the part, keeps loading for ``after`` seconds and lets every flow finish.
Besides the faults of the CI test it measures the old one-phase secret rotation,
to show why the operator rotates in two. Prints a Markdown table and writes JSON
to bench/results/. Everything runs on 127.0.0.1; every process is stopped at the end.

Columns: flows started / completed / completed after retrying a step / failed;
seconds from the fault to the first completed flow that started after it, and to
the first of the flows from which on every flow completed without a retry
("steady"); p50/p99 of whole-flow latency for flows in flight at any moment of the
fault, and for flows started after it was over; invariant violations (see
tests/faults/test_faults.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
from pathlib import Path
from typing import Any

from tests.faults.load import figures
from tests.faults.scenarios import BENCH_ONLY, FAULTS, Fault, Timing, under_fault
from tests.production import Shape, production

RESULTS = Path(__file__).resolve().parent / "results"
BEFORE, AFTER = 10.0, 20.0
HOLD = {  # seconds; a pause far longer than ETCD_TIMEOUT_SECONDS (2 s)
    "etcd leader SIGKILL": 10.0,
    "etcd member SIGSTOP": 15.0,
    "etcd quorum lost": 5.0,
    "replica SIGKILL": 10.0,
    "secret rotation, two phases": 3.0,  # between two replicas' restarts
    "secret rotation, one phase (old)": 3.0,
    "nginx reload": 5.0,
}
ORDER: dict[str, Fault] = {**FAULTS, **BENCH_ONLY}
ORDER = {name: ORDER[name] for name in HOLD}  # one-phase right after two-phase


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    chosen = [n for n in ORDER if not args.only or any(o in n for o in args.only.split(","))]
    rows = []
    with production() as shape:
        for name in chosen:
            rows.append(run_one(shape, name, args))
            print(_line(rows[-1]), flush=True)
    return rows


def run_one(shape: Shape, name: str, args: argparse.Namespace) -> dict[str, Any]:
    timing = Timing(BEFORE * args.scale, HOLD[name] * args.scale, AFTER * args.scale)
    run = asyncio.run(under_fault(shape, name, ORDER[name], timing, args.clients))
    return {**figures(run), "timing": vars(timing)}


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _pair(a: float | None, b: float | None) -> str:
    return "—" if a is None else f"{a:.0f} / {b:.0f}"


HEADER = (
    "| fault | started | completed | retried | failed | first ok (s) | steady (s) "
    "| p50 / p99 during (ms) | p50 / p99 after (ms) | violations |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _line(row: dict[str, Any]) -> str:
    return (
        f"| {row['fault']} | {row['started']} | {row['completed']} | {row['retried']} "
        f"| {row['failed']} | {_s(row['first_s'])} | {_s(row['steady_s'])} "
        f"| {_pair(row['p50_during_ms'], row['p99_during_ms'])} "
        f"| {_pair(row['p50_after_ms'], row['p99_after_ms'])} | {len(row['violations'])} |"
    )


def details(rows: list[dict[str, Any]]) -> str:
    """What each fault was, what was retried, and every failure and violation."""
    lines = []
    for row in rows:
        lines.append(f"- {row['fault']}: {row['note']} (held {row['held_s']:.1f} s)")
        if row["retried_answers"]:
            lines.append(f"  retried: {row['retried_answers']}")
        if row["failures"]:
            lines.append(f"  failures: {row['failures']}")
        lines.extend(f"  violation: {v}" for v in row["violations"][:10])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="simulated people at once")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every duration")
    parser.add_argument("--only", default="", help="comma-separated parts of fault names")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 0.1 <= args.scale <= 4:
        parser.error("--clients 1..64, --scale 0.1..4 (the machine is shared)")
    started = datetime.datetime.now(datetime.UTC)
    print(HEADER, flush=True)
    rows = run_all(args)
    print("\n" + details(rows))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"faults-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps({"started": started.isoformat(), "args": vars(args), "rows": rows}, indent=1)
    )
    print(f"\n{path}")


if __name__ == "__main__":
    main()
