"""Simulated people and MCP clients running whole logins through the ingress, and the
ledger that says whether anything was lost or doubled.

Each flow is a different person: a fresh loopback source address (so per-address
rate limits see distinct clients, as they would in production), a fresh cookie jar
(the browser) and a fresh registration. A flow runs register → authorize → consent
approve → OpenRouter approve → callback → /token → /me over https through nginx,
trusting the test CA, and checks every answer. One resource server meanwhile
re-checks keys the flows obtained at /me.

With ``ACCESS_TOKENS=bound`` (a :class:`Bound` given to the load) a flow logs in with
the declared ``resource``, refreshes once, and the resource server exchanges the
access token for the key (with its own credentials at /token); the ledger then holds
each flow to the key OpenRouter minted for its login. The resource server's re-checks
are exchanges too.

A retryable answer (503, nginx's 502/504, a dropped connection) makes the client
retry that same step with the same input, with backoff, for at most
:data:`RETRY_SECONDS`, as a real client (or a person pressing reload) would. Any other
unexpected answer ends the flow as failed; a request not answered within
:data:`REQUEST_TIMEOUT` ends it as hung.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import random
import re
import ssl
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from openrouter_oauth import pkce
from openrouter_oauth.resources import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT
from tests.harness import authorize_url, form_fields, query_of
from tests.production import Exchange, Logged

REDIRECT = "http://127.0.0.1:5555/cb"
REQUEST_TIMEOUT = 20.0  # longer than any deadline the service has (etcd 2 s a call, upstream 10 s)
RETRY_SECONDS = 40.0  # how long a client keeps retrying one step
RETRYABLE = frozenset({502, 503, 504})
REPLAY_EVERY = 4  # every 4th flow presents its code again after completing: must be refused
CHECK_INTERVAL = 0.5  # the resource server's /me checks (2/s stays under me=300/min)
RESOURCE_SERVER = "127.0.0.4"
# Bound mode: a key OpenRouter issued this close to a replica's SIGKILL may have died
# before the grant holding it was stored (milliseconds; the margin is for a busy machine).
STORE_WINDOW = 0.25
REPLICA_KILL = "replica SIGKILL"  # the fault (tests/faults/scenarios.py) that can do that
_HEADING = re.compile(r"<h1>(.*?)</h1>|<title>(.*?)</title>", re.S)


class Addresses:
    """Fresh loopback source addresses, never repeated in a process (one per person)."""

    def __init__(self, first: str = "127.16.0.1") -> None:
        self._next = int(ipaddress.IPv4Address(first))

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while True:
            address = ipaddress.IPv4Address(self._next)
            self._next += 1
            if address.packed[-1] not in (0, 255):
                return str(address)


ADDRESSES = Addresses()


@dataclass(frozen=True)
class Attempt:
    step: str
    started: float
    seconds: float
    status: int | None  # None: no answer (see error)
    error: str = ""


@dataclass
class Flow:
    """One login (or one resource-server check) and everything that happened to it."""

    name: str
    address: str
    started: float
    ended: float = 0.0
    outcome: str = "running"  # completed, failed, hung, unfinished
    step: str = ""  # where it failed
    answer: str = ""  # what it got there
    retries: int = 0
    key: str = ""  # the access token: the OpenRouter key, or in bound mode ours
    exchanged: str = ""  # bound mode: the key the resource server got for ``key``
    # /token attempts whose answer never reached the client (dropped connection, nginx's
    # 502/504, timeout): the one way a key can be issued for a flow that never got it.
    lost_token_answers: int = 0
    replay: str = ""  # "", "refused" or "redeemed again"
    refresh_spent: bool = False  # bound: a refresh applied whose answer was lost (see refresh)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def openrouter_key(self) -> str:
        return self.exchanged or self.key

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def trail(self) -> str:
        """Every attempt, e.g. ``consent 502, consent 409``: how the flow got where it did."""
        return ", ".join(f"{a.step} {a.status or a.error}" for a in self.attempts)


class StepFailed(Exception):
    def __init__(self, step: str, answer: str, hung: bool = False) -> None:
        super().__init__(f"{step}: {answer}")
        self.step, self.answer, self.hung = step, answer, hung


def describe(response: httpx.Response) -> str:
    """Status and the answer's own words: an OAuth error, a page's heading, nginx's title."""
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
            return f"{response.status_code} {body.get('error')}: {body.get('error_description')}"
        except ValueError:
            pass
    found = _HEADING.search(response.text)
    text = (found.group(1) or found.group(2)) if found else response.text[:80]
    return f"{response.status_code} {text.strip()}"


def _backoff(attempt: int) -> float:
    return min(0.2 * 2**attempt, 2.0) * random.uniform(0.8, 1.2)


async def step(
    flow: Flow,
    name: str,
    send: Callable[[], Awaitable[httpx.Response]],
    ok: Callable[[httpx.Response], bool],
) -> httpx.Response:
    """Send one step until ``ok`` holds, retrying only retryable answers."""
    deadline = time.monotonic() + RETRY_SECONDS
    for attempt in itertools.count():
        started = time.monotonic()
        try:
            response = await send()
        except httpx.TimeoutException:
            flow.attempts.append(
                Attempt(name, started, time.monotonic() - started, None, "timeout")
            )
            flow.lost_token_answers += name == "token"
            raise StepFailed(name, f"no answer within {REQUEST_TIMEOUT:g} s", hung=True) from None
        except httpx.TransportError as exc:
            answer = type(exc).__name__
            flow.attempts.append(Attempt(name, started, time.monotonic() - started, None, answer))
            flow.lost_token_answers += name == "token"
        else:
            flow.attempts.append(
                Attempt(name, started, time.monotonic() - started, response.status_code)
            )
            if ok(response):
                return response
            answer = describe(response)
            if response.status_code not in RETRYABLE:
                raise StepFailed(name, answer)
            # 502/504 come from nginx: the replica's answer, if any, never arrived.
            flow.lost_token_answers += name == "token" and response.status_code != 503
        pause = _backoff(attempt)
        if time.monotonic() + pause > deadline:
            raise StepFailed(name, f"still {answer} after {attempt + 1} attempts")
        flow.retries += 1
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")


def _location(response: httpx.Response) -> str:
    return response.headers.get("location", "")


@dataclass(frozen=True)
class Bound:
    """``ACCESS_TOKENS=bound``: the one declared resource server the flows log in for."""

    resource: str
    client_id: str
    secret: str

    def settings(self) -> dict[str, str]:
        declared = {"id": self.client_id, "secret": self.secret, "resource": self.resource}
        return {"ACCESS_TOKENS": "bound", "RESOURCE_SERVERS": json.dumps([declared])}


async def login(
    flow: Flow, http: httpx.AsyncClient, issuer: str, openrouter: str, bound: Bound | None
) -> None:
    """One whole login, every answer checked; the key is left in ``flow.key`` (bound: the
    access token there, and the key the resource server exchanged it for in
    ``flow.exchanged``)."""
    verifier = pkce.new_verifier()
    registered = await step(
        flow,
        "register",
        lambda: http.post(
            f"{issuer}/register", json={"client_name": flow.name, "redirect_uris": [REDIRECT]}
        ),
        lambda r: r.status_code == 201,
    )
    client_id = registered.json()["client_id"]
    extra = {"resource": bound.resource} if bound else {}
    url = authorize_url(issuer, client_id, REDIRECT, pkce.s256(verifier), state=flow.name, **extra)
    consent = await step(
        flow,
        "authorize",
        lambda: http.get(url),
        lambda r: r.status_code == 200 and "ticket" in form_fields(r.text),
    )
    ticket = form_fields(consent.text)["ticket"]
    approved = await step(
        flow,
        "consent",
        lambda: http.post(f"{issuer}/authorize", data={"ticket": ticket, "action": "approve"}),
        lambda r: r.status_code == 303 and _location(r).startswith(f"{openrouter}/auth?"),
    )
    auth = {k: v[0] for k, v in parse_qs(urlsplit(_location(approved)).query).items()}
    fields = {
        "callback_url": auth["callback_url"],
        "code_challenge": auth["code_challenge"],
        "method": auth["code_challenge_method"],
        "key_label": auth["key_label"],
        "decision": "approve",
    }
    at_openrouter = await step(
        flow,
        "openrouter",
        lambda: http.post(f"{openrouter}/auth/approve", data=fields),
        lambda r: r.status_code == 302,
    )
    back = await step(
        flow,
        "callback",
        lambda: http.get(_location(at_openrouter)),
        lambda r: r.status_code == 302 and _location(r).startswith(f"{REDIRECT}?"),
    )
    landing = query_of(_location(back))
    if landing.get("state") != [flow.name] or landing.get("iss") != [issuer]:
        raise StepFailed("callback", f"redirect without our state or issuer: {landing}")
    form = {
        "grant_type": "authorization_code",
        "code": landing["code"][0],
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    token = await tokens(flow, http, issuer, "token", form)
    flow.key = token.json()["access_token"]
    if bound:
        await refresh(flow, http, issuer, client_id, token.json()["refresh_token"])
        await exchange(flow, http, issuer, bound, "exchange")
    else:
        await check_key(flow, http, issuer, "me")
    if int(flow.name.rsplit("-", 1)[1]) % REPLAY_EVERY == 0:
        await replay(flow, http, issuer, form)


async def check_key(flow: Flow, http: httpx.AsyncClient, issuer: str, name: str) -> None:
    await step(
        flow,
        name,
        lambda: http.get(f"{issuer}/me", headers={"Authorization": f"Bearer {flow.key}"}),
        lambda r: r.status_code == 200 and r.json().get("id") == flow.key[-7:],
    )


async def refresh(
    flow: Flow, http: httpx.AsyncClient, issuer: str, client_id: str, refresh_token: str
) -> None:
    """Bound mode: one refresh (rotation); the new access token replaces the first.

    A rotation etcd applied whose answer was lost (503, 502, a dropped connection) spent
    the refresh token: the retry hears ``invalid_grant`` and the grant lives on, its
    access token still working ("Retries stay safe" in SECURITY.md). The flow then goes
    on with that access token, as a client does until it expires."""
    form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    try:
        flow.key = (await tokens(flow, http, issuer, "refresh", form)).json()["access_token"]
    except StepFailed as failed:
        lost = any(
            a.step == "refresh" and (a.error or a.status in RETRYABLE) for a in flow.attempts
        )
        if not (lost and not failed.hung and "invalid_grant" in failed.answer):
            raise
        flow.refresh_spent = True


async def tokens(
    flow: Flow, http: httpx.AsyncClient, issuer: str, name: str, form: dict[str, str]
) -> httpx.Response:
    """A /token step (a redemption or a refresh) that must end in a token answer."""
    return await step(
        flow, name, lambda: http.post(f"{issuer}/token", data=form), lambda r: r.status_code == 200
    )


async def exchange(
    flow: Flow, http: httpx.AsyncClient, issuer: str, bound: Bound, name: str
) -> None:
    """Bound mode: what the resource server does with the access token (RFC 8693), with
    its own credentials. A re-check must get the key the first exchange got."""
    form = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": flow.key,
        "subject_token_type": ACCESS_TOKEN_TYPE,
    }
    auth = httpx.BasicAuth(bound.client_id, bound.secret)
    exchanged = await step(
        flow,
        name,
        lambda: http.post(f"{issuer}/token", data=form, auth=auth),
        lambda r: (
            r.status_code == 200
            and r.json().get("access_token", "").startswith("sk-or-")
            and r.json()["access_token"] == (flow.exchanged or r.json()["access_token"])
        ),
    )
    flow.exchanged = exchanged.json()["access_token"]


async def replay(flow: Flow, http: httpx.AsyncClient, issuer: str, form: dict[str, str]) -> None:
    """Present the redeemed code again: any answer but a key is right."""
    again = await step(
        flow,
        "replay",
        lambda: http.post(f"{issuer}/token", data=form),
        lambda r: r.status_code not in RETRYABLE,
    )
    flow.replay = "redeemed again" if again.status_code == 200 else "refused"


# -- the load -----------------------------------------------------------------------


@dataclass
class Load:
    """``clients`` people each running logins back to back until :meth:`stop`."""

    issuer: str
    openrouter: str
    context: ssl.SSLContext
    clients: int
    label: str
    bound: Bound | None = None
    flows: list[Flow] = field(default_factory=list)
    checks: list[Flow] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client()) for _ in range(self.clients)]
        self._tasks.append(asyncio.create_task(self._resource_server()))

    def stop(self) -> None:
        self._stopping.set()

    async def drain(self, seconds: float) -> None:
        """Let flows in progress finish; a flow still running after ``seconds`` is
        unfinished (a violation: every step is bounded well within that)."""
        self.stop()
        _, pending = await asyncio.wait(self._tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for flow in [*self.flows, *self.checks]:
            if flow.outcome == "running":
                flow.outcome, flow.ended = "unfinished", time.monotonic()

    def _new(self, into: list[Flow], address: str) -> Flow:
        flow = Flow(f"{self.label}-{len(into)}", address, time.monotonic())
        into.append(flow)
        return flow

    def _http(self, address: str) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(verify=self.context, local_address=address, retries=0)
        return httpx.AsyncClient(transport=transport, timeout=REQUEST_TIMEOUT)

    async def _client(self) -> None:
        while not self._stopping.is_set():
            flow = self._new(self.flows, next(ADDRESSES))
            async with self._http(flow.address) as http:
                await _finish(flow, login(flow, http, self.issuer, self.openrouter, self.bound))

    async def _resource_server(self) -> None:
        """Re-check keys the flows received, as a resource server does on each use (bound
        mode: exchange a completed flow's access token again, for the same key)."""
        async with self._http(RESOURCE_SERVER) as http:
            while not self._stopping.is_set():
                done = [f for f in self.flows if f.openrouter_key and f.outcome == "completed"]
                if done:
                    check = self._new(self.checks, RESOURCE_SERVER)
                    picked = random.choice(done)
                    check.key, check.exchanged = picked.key, picked.exchanged
                    await _finish(check, self._check(check, http))
                await asyncio.sleep(CHECK_INTERVAL)

    def _check(self, check: Flow, http: httpx.AsyncClient) -> Awaitable[None]:
        if self.bound:
            return exchange(check, http, self.issuer, self.bound, "check")
        return check_key(check, http, self.issuer, "check")


async def _finish(flow: Flow, work: Awaitable[None]) -> None:
    try:
        await work
        flow.outcome = "completed"
    except StepFailed as failed:
        flow.outcome = "hung" if failed.hung else "failed"
        flow.step, flow.answer = failed.step, failed.answer
    except (KeyError, ValueError, IndexError) as exc:  # an answer of the wrong shape
        flow.outcome, flow.answer = "failed", f"{type(exc).__name__}: {exc}"
    flow.ended = time.monotonic()


# -- one run under one fault, and what it shows -----------------------------------------


@dataclass
class Run:
    """A load with one fault in the middle of it, and the ledgers to check it against."""

    fault: str
    label: str
    flows: list[Flow]
    checks: list[Flow]
    started: float
    fault_at: float
    restored_at: float
    ended: float
    note: str
    exchanges: list[Exchange]
    logged: list[Logged]
    bound: bool = False

    def statuses(self) -> Counter[int]:
        return Counter(
            a.status for f in [*self.flows, *self.checks] for a in f.attempts if a.status
        )


def violations(run: Run) -> list[str]:
    """Every broken invariant, one line each; empty when everything held."""
    found: list[str] = []
    for flow in [*run.flows, *run.checks]:
        if flow.outcome != "completed" and not lost_with_its_answer(flow, run):
            found.append(
                f"{flow.name} {flow.outcome} at {flow.step}: {flow.answer} "
                f"(from {flow.address}; {flow.trail()})"
            )
        if flow.replay == "redeemed again":
            found.append(f"{flow.name}: its code was redeemed twice (the replay got a key)")
    if served := run.statuses()[500]:
        found.append(f"{served} answers with status 500")
    if logged := sum(1 for line in run.logged if 500 in line.upstream_statuses):
        found.append(f"{logged} replica answers with status 500 in nginx's log")
    found.extend(_ledger_violations(run))
    return found


def lost_with_its_answer(flow: Flow, run: Run) -> bool:
    """The one failure the default mode accepts: the replica died after OpenRouter issued
    the key and before its answer left, so the key (never stored, by design) died with it,
    and the retry finds OpenRouter's single-use code spent. It shows as a lost /token
    answer, then ``invalid_grant``, with exactly one key issued for the flow (the ledger
    checks that). Bound mode stores the grant before answering, so the retry receives it:
    there, only a key issued in the instant a replica was killed (before that store
    write, see SECURITY.md) is excused."""
    issued = [e for e in run.exchanges if e.key and e.label == flow.name]
    if run.bound and not (
        run.fault == REPLICA_KILL and all(abs(e.at - run.fault_at) < STORE_WINDOW for e in issued)
    ):
        return False
    return (
        flow.step == "token"
        and "invalid_grant" in flow.answer
        and flow.lost_token_answers > 0
        and len(issued) == 1
    )


def _ledger_violations(run: Run) -> list[str]:
    """Compare OpenRouter's ledger with what the clients received.

    A key OpenRouter issued that no client received is excused only for a flow with a
    /token attempt whose answer was lost in transit (nginx's 502/504, a dropped
    connection, a timeout), at most one key per such lost answer.
    """
    found: list[str] = []
    exchanged = Counter(e.code for e in run.exchanges if e.key)
    found.extend(f"an OpenRouter code was exchanged {n} times" for n in exchanged.values() if n > 1)
    flows = {f.name: f for f in run.flows}
    received = {f.openrouter_key for f in run.flows if f.openrouter_key}
    found.extend(
        f"{f.name} was given a key OpenRouter did not mint for its login"
        for f in run.flows
        if f.exchanged and f.exchanged not in minted_for(run, f.name)
    )
    orphans = Counter(e.label for e in run.exchanges if e.key and e.key not in received)
    for name, count in orphans.items():
        flow = flows.get(name)
        lost = flow.lost_token_answers if flow else 0
        if count > lost:
            found.append(
                f"{count} key(s) issued for {name}, which never received one "
                f"({lost} /token answers lost)"
            )
    return found


def minted_for(run: Run, name: str) -> set[str]:
    return {e.key for e in run.exchanges if e.key and e.label == name}


def excused_keys(run: Run) -> int:
    """Keys issued whose /token answer was lost to the fault (see _ledger_violations)."""
    received = {f.openrouter_key for f in run.flows if f.openrouter_key}
    return sum(1 for e in run.exchanges if e.key and e.key not in received)


# -- figures ------------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def figures(run: Run) -> dict[str, Any]:
    """The table's row: counts, recovery times (from the fault) and latencies in ms."""
    flows = run.flows
    completed = [f for f in flows if f.outcome == "completed"]
    after_fault = sorted((f for f in completed if f.started >= run.fault_at), key=lambda f: f.ended)
    # In flight at any moment of the fault: what a person using it then waited.
    during = [
        f.seconds for f in completed if f.started < run.restored_at and f.ended > run.fault_at
    ]
    later = [f.seconds for f in completed if f.started >= run.restored_at]
    return {
        "fault": run.fault,
        "note": run.note,
        "started": len(flows),
        "completed": len(completed),
        "retried": sum(1 for f in completed if f.retries),
        "failed": len(flows) - len(completed),
        "checks": len(run.checks),
        "checks_failed": sum(1 for c in run.checks if c.outcome != "completed"),
        "first_s": after_fault[0].ended - run.fault_at if after_fault else None,
        "steady_s": _steady(run),
        "held_s": run.restored_at - run.fault_at,
        "p50_during_ms": _ms(percentile(during, 50)),
        "p99_during_ms": _ms(percentile(during, 99)),
        "p50_after_ms": _ms(percentile(later, 50)),
        "p99_after_ms": _ms(percentile(later, 99)),
        "statuses": dict(sorted(run.statuses().items())),
        "retried_answers": dict(_retried_answers(run).most_common()),
        "failures": dict(Counter(f"{f.step}: {f.answer}" for f in flows if f.answer)),
        "keys_lost_in_transit": excused_keys(run),
        # Presented again after a claim lapsed (OpenRouter refuses a spent code).
        "codes_presented_again": sum(
            n - 1 for n in Counter(e.code for e in run.exchanges).values() if n > 1
        ),
        "violations": violations(run),
    }


def _steady(run: Run) -> float | None:
    """Seconds from the fault until the first flow of the clean tail completed: the
    tail being every flow from some start time on that completed without a retry."""
    tail: list[Flow] = []
    for flow in sorted(run.flows, key=lambda f: f.started, reverse=True):
        if flow.outcome != "completed" or flow.retries:
            break
        tail.append(flow)
    ends = [f.ended for f in tail if f.started >= run.fault_at]
    return min(ends) - run.fault_at if ends else None


def _retried_answers(run: Run) -> Counter[str]:
    counts: Counter[str] = Counter()
    for flow in [*run.flows, *run.checks]:
        for attempt in flow.attempts:
            if attempt.error or (attempt.status in RETRYABLE):
                counts[f"{attempt.step}: {attempt.error or attempt.status}"] += 1
    return counts


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
