"""The faults, each injected into the running shape while the load runs.

A fault is a blocking function (it waits for processes) run in a thread, so the
load's event loop keeps going. It marks when the fault began and when the part
was back, and says in one line what it did. ``hold`` is how long the fault lasts
(for a rolling restart: the pause between two replicas, as a rollout waits for
readiness).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.faults.load import Load, Run
from tests.processes import wait_until_healthy
from tests.production import Shape

DRAIN_SECONDS = 90.0  # > RETRY_SECONDS + REQUEST_TIMEOUT: a flow still running is stuck


@dataclass
class Marks:
    fault_at: float = 0.0
    restored_at: float = 0.0
    note: str = ""

    def inject(self) -> None:
        self.fault_at = time.monotonic()

    def restore(self, note: str) -> None:
        self.restored_at, self.note = time.monotonic(), note


Fault = Callable[[Shape, float, Marks], None]


def leader_kill(shape: Shape, hold: float, marks: Marks) -> None:
    leader = shape.cluster.leader()
    marks.inject()
    shape.cluster.kill(leader)
    time.sleep(hold)
    shape.cluster.restart(leader)
    marks.restore(f"SIGKILL m{leader} (the leader), restarted after {hold:g} s")


def member_pause(shape: Shape, hold: float, marks: Marks) -> None:
    member = shape.busiest_member()
    role = "the leader" if member == shape.cluster.leader() else "a follower"
    marks.inject()
    shape.cluster.pause(member)
    try:
        time.sleep(hold)
    finally:
        shape.cluster.resume(member)
    marks.restore(f"SIGSTOP m{member} ({role}, the most replicas' member) for {hold:g} s")


def quorum_loss(shape: Shape, hold: float, marks: Marks) -> None:
    # The survivor is the member most replicas talk to: it accepts their calls but,
    # alone, can answer none of them.
    survivor = shape.busiest_member()
    down = [i for i in range(len(shape.cluster.members)) if i != survivor]
    marks.inject()
    for index in down:
        shape.cluster.kill(index)
    time.sleep(hold)
    for index in down:
        shape.cluster.restart(index, wait=False)
    for index in down:  # healthy needs a leader, so both must be started first
        member = shape.cluster.members[index]
        wait_until_healthy(f"{member.endpoint}/health", member.process)
    marks.restore(f"SIGKILL m{down[0]} and m{down[1]} (quorum lost) for {hold:g} s")


def replica_kill(shape: Shape, hold: float, marks: Marks) -> None:
    index = len(shape.replicas) - 1  # the one with two workers
    marks.inject()
    shape.kill_replica(index)
    time.sleep(hold)
    shape.start_replica(index)
    marks.restore(f"SIGKILL replica {index} (2 workers), started again after {hold:g} s")


def _rotate(shape: Shape, hold: float, marks: Marks, phases: list[tuple[str, str]]) -> None:
    """Restart every replica one by one per phase with (SECRET, PREVIOUS_SECRETS)."""
    marks.inject()
    for secret, previous in phases:
        for index in range(len(shape.replicas)):
            shape.restart_replica(index, secret=secret, previous=previous)
            time.sleep(hold)


def rotation(shape: Shape, hold: float, marks: Marks) -> None:
    """The operator's two phases: accept the new secret everywhere, then seal with it."""
    old, new = shape.secret, secrets.token_urlsafe(32)
    _rotate(shape, hold, marks, [(old, new), (new, old)])
    shape.secret, shape.previous = new, old
    marks.restore("two phases: 3 restarts with SECRET=old, then 3 with SECRET=new")


def rotation_one_phase(shape: Shape, hold: float, marks: Marks) -> None:
    """The old order (bench only): replicas seal with the new secret one by one, while
    those not yet restarted cannot open it."""
    old, new = shape.secret, secrets.token_urlsafe(32)
    _rotate(shape, hold, marks, [(new, old)])
    shape.secret, shape.previous = new, old
    marks.restore("one phase: 3 restarts with SECRET=new, PREVIOUS_SECRETS=old")


def ingress_reload(shape: Shape, hold: float, marks: Marks) -> None:
    marks.inject()
    shape.reload_ingress()
    time.sleep(hold)
    marks.restore("nginx -s reload (graceful)")


FAULTS: dict[str, Fault] = {
    "etcd leader SIGKILL": leader_kill,
    "etcd member SIGSTOP": member_pause,
    "etcd quorum lost": quorum_loss,
    "replica SIGKILL": replica_kill,
    "secret rotation, two phases": rotation,
    "nginx reload": ingress_reload,
}
BENCH_ONLY: dict[str, Fault] = {"secret rotation, one phase (old)": rotation_one_phase}


@dataclass(frozen=True)
class Timing:
    before: float  # load before the fault
    hold: float  # the fault's length (rotation: pause between restarts)
    after: float  # load after the part is back


_LABELS = iter(range(1_000_000))


async def under_fault(shape: Shape, fault: str, inject: Fault, timing: Timing, clients: int) -> Run:
    """Run the load, inject the fault after ``timing.before``, keep loading for
    ``timing.after`` once it is restored, then let every flow finish."""
    label = f"{fault.split()[0]}{next(_LABELS)}"
    load = Load(shape.issuer, shape.fake.base_url, shape.context, clients, label)
    wall, started = time.time(), time.monotonic()
    load.start()
    marks = Marks()
    try:
        await asyncio.sleep(timing.before)
        await asyncio.to_thread(inject, shape, timing.hold, marks)
        await asyncio.sleep(timing.after)
    finally:
        await load.drain(DRAIN_SECONDS)
    ended = time.monotonic()
    return Run(
        fault=fault,
        label=label,
        flows=load.flows,
        checks=load.checks,
        started=started,
        fault_at=marks.fault_at,
        restored_at=marks.restored_at,
        ended=ended,
        note=marks.note,
        exchanges=[
            e for e in shape.fake.exchanges_since(started) if e.label.startswith(f"{label}-")
        ],
        logged=[line for line in shape.ingress_log() if line.at >= wall],
    )
