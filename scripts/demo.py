"""One whole login against the fake OpenRouter, step by step, as a browser and an MCP client.

Run it through ``scripts/demo``. It starts the fake OpenRouter and the service (embedded
store) on free loopback ports, waits until both answer, then plays both sides of a login:

    1 register      the MCP client registers itself (POST /register)
    2 consent       the person's browser opens the consent page (GET /authorize)
    3 approve       the person approves there (POST /authorize) and is sent to OpenRouter
    4 openrouter    the person approves at (fake) OpenRouter with a $5 budget
    5 callback      OpenRouter sends the browser back (GET /callback) to the client
    6 token         the client redeems its code and the PKCE verifier (POST /token)
    7 me            the key is checked (GET /me) and its description printed

The browser steps share one cookie jar, as a browser would: the callback completes only
in the browser that approved on the consent page. The client's steps use another client
without cookies. The first step that fails stops the demo with one line naming it and a
non-zero exit; both servers and the temporary directory are removed whatever happens.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import functools
import hashlib
import html
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

REPO = Path(__file__).resolve().parent.parent
REDIRECT_URI = "http://127.0.0.1:5555/cb"  # the client's; the demo never opens it
BUDGET = "5"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
# Settings the demo decides itself: the embedded store, its own issuer, no metrics port
# (a running service may hold the default one).
OWN_SETTINGS = ("ETCD_", "SECRET", "PREVIOUS_SECRETS", "ISSUER_URL", "OPENROUTER_BASE_URL")


class StepFailed(Exception):
    """A step did not get the answer a working service gives."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


def say(line: str) -> None:
    print(line, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def expect(step: str, response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        body = " ".join(response.text.split())[:200]
        raise StepFailed(
            step,
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {status}: {body}",
        )
    return response


def form_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- the two servers -----------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def last_line(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def wait_ready(self, health: str, timeout: float) -> None:
        """Poll until ``health`` answers 200; fail at once if the process has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StepFailed(
                    f"start {self.name}",
                    f"exited with {self.process.returncode}: {self.last_line()}",
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + health, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise StepFailed(f"start {self.name}", f"{self.url}{health} not ready after {timeout:g} s")

    def stop(self) -> None:
        """Stop the process and anything it started (its own process group)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def in_child(demo: int) -> None:
    """Runs in the server's process between fork and exec; ``demo`` is the demo's pid."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # held by launch() for the fork
    if sys.platform == "linux":
        # SIGTERM when the demo dies, even by SIGKILL (which no handler sees), so no server
        # outlives it. Elsewhere the demo's own handlers must do.
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != demo:  # the demo died before the line above took effect
        os._exit(1)


def launch(
    name: str, argv: list[str], env: dict[str, str], url: str, workdir: Path, started: list[Server]
) -> Server:
    """Start a server and record it in ``started``, so that every exit path stops it."""
    log = workdir / f"{name.replace(' ', '-')}.log"
    # Stop signals wait until the server is recorded: an interrupt raised inside fork's own
    # bookkeeping is swallowed (the demo would carry on), and one raised before the append
    # would leave the server running.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        with log.open("wb") as out:
            # argv is this Python and fixed arguments, never input from outside.
            process = subprocess.Popen(  # noqa: S603
                argv,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so stop() reaches its children too
                preexec_fn=functools.partial(in_child, os.getpid()),  # no threads here
            )
        server = Server(name, url, process, log)
        started.append(server)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return server


def server_env(openrouter: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
    env.update(
        OPENROUTER_BASE_URL=openrouter,
        ISSUER_URL=f"http://127.0.0.1:{port}",
        METRICS_PORT="0",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",  # leave nothing in the checkout
    )
    return env


@contextlib.contextmanager
def servers(timeout: float) -> Iterator[str]:
    """Run the fake OpenRouter and the service; yield the issuer; stop both, remove logs."""
    started: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="openrouter-oauth-demo-") as workdir:
        try:
            fake_port, port = free_port(), free_port()
            fake_url, issuer = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{port}"
            env = server_env(fake_url, port)
            fake = launch(
                "fake OpenRouter",
                [sys.executable, "-m", "tests.fakes.openrouter", "--port", str(fake_port)],
                env,
                fake_url,
                Path(workdir),
                started,
            )
            fake.wait_ready("/", timeout)
            say(f"  fake OpenRouter on {fake_url}")
            service = launch(
                "service",
                [sys.executable, "-m", "openrouter_oauth.cli", "serve", "--port", str(port)],
                env,
                issuer,
                Path(workdir),
                started,
            )
            service.wait_ready("/healthz", timeout)
            say(f"  service on {issuer} (embedded store)")
            yield issuer
        finally:
            for server in reversed(started):
                server.stop()


# -- the login -----------------------------------------------------------------


@dataclass
class Login:
    """What the steps hand each other."""

    issuer: str
    client_id: str = ""
    verifier: str = ""
    state: str = ""
    consent: httpx.Response | None = None
    next_url: str = ""
    code: str = ""
    key: str = ""


def register(login: Login, client: httpx.Client, browser: httpx.Client) -> str:
    body = {"client_name": "Demo client", "redirect_uris": [REDIRECT_URI]}
    answer = expect("register", client.post(f"{login.issuer}/register", json=body), 201)
    login.client_id = answer.json()["client_id"]
    return f"client_id {login.client_id[:24]}…"


def consent(login: Login, client: httpx.Client, browser: httpx.Client) -> str:
    login.verifier = secrets.token_urlsafe(48)
    login.state = secrets.token_urlsafe(12)
    query = {
        "response_type": "code",
        "client_id": login.client_id,
        "redirect_uri": REDIRECT_URI,
        "state": login.state,
        "code_challenge": s256(login.verifier),
        "code_challenge_method": "S256",
    }
    url = f"{login.issuer}/authorize?{urlencode(query)}"
    login.consent = expect("consent", browser.get(url), 200)
    if "ticket" not in form_fields(login.consent.text):
        raise StepFailed("consent", "the consent page has no form to approve")
    return "consent page shown"


def approve(login: Login, client: httpx.Client, browser: httpx.Client) -> str:
    assert login.consent is not None
    ticket = form_fields(login.consent.text)["ticket"]
    form = {"ticket": ticket, "action": "approve"}
    answer = expect("approve", browser.post(f"{login.issuer}/authorize", data=form), 303)
    login.next_url = answer.headers["location"]
    return f"sent to {login.next_url.split('?')[0]}"


def openrouter(login: Login, client: httpx.Client, browser: httpx.Client) -> str:
    page = expect("openrouter", browser.get(login.next_url), 200)
    fields = {**form_fields(page.text), "decision": "approve", "limit": BUDGET}
    origin = f"{page.url.scheme}://{page.url.netloc.decode()}"
    answer = expect("openrouter", browser.post(f"{origin}/auth/approve", data=fields), 302)
    login.next_url = answer.headers["location"]
    return f"approved with a ${BUDGET} budget; back to {login.next_url.split('?')[0]}"


def callback(login: Login, client: httpx.Client, browser: httpx.Client) -> str:
    answer = expect("callback", browser.get(login.next_url), 302)
    landing = answer.headers["location"]
    params = parse_qs(urlsplit(landing).query)
    if not landing.startswith(REDIRECT_URI + "?") or "code" not in params:
        raise StepFailed("callback", f"redirected to {landing[:120]}, not the client with a code")
    if params.get("state") != [login.state] or params.get("iss") != [login.issuer]:
        raise StepFailed("callback", "state or iss in the redirect do not match")
    login.code = params["code"][0]
    return "the client received a code, its state and iss"


def token(login: Login, client: httpx.Client, browser: httpx.Client) -> str:
    form = {
        "grant_type": "authorization_code",
        "code": login.code,
        "redirect_uri": REDIRECT_URI,
        "client_id": login.client_id,
        "code_verifier": login.verifier,
    }
    answer = expect("token", client.post(f"{login.issuer}/token", data=form), 200)
    login.key = answer.json()["access_token"]
    return f"key {login.key[:12]}…{login.key[-4:]}"


def me(login: Login, client: httpx.Client, browser: httpx.Client) -> str:
    headers = {"Authorization": f"Bearer {login.key}"}
    answer = expect("me", client.get(f"{login.issuer}/me", headers=headers), 200)
    description = answer.json()
    if str(description.get("limit")) not in (BUDGET, f"{BUDGET}.0"):
        raise StepFailed("me", f"the key's limit is {description.get('limit')}, not {BUDGET}")
    return "the key works:\n" + json.dumps(description, indent=2)


Step = Callable[[Login, httpx.Client, httpx.Client], str]
STEPS: list[Step] = [register, consent, approve, openrouter, callback, token, me]


def run_login(issuer: str) -> None:
    """Run every step in order; the first that fails raises StepFailed naming it."""
    login = Login(issuer)
    with httpx.Client(timeout=10) as client, httpx.Client(timeout=10) as browser:
        for number, step in enumerate(STEPS, 1):
            try:
                outcome = step(login, client, browser)
            except httpx.HTTPError as exc:
                raise StepFailed(step.__name__, f"{type(exc).__name__}: {exc}") from exc
            except (KeyError, ValueError) as exc:
                raise StepFailed(step.__name__, f"unexpected answer ({exc!r})") from exc
            say(f"{number}/{len(STEPS)} {step.__name__:<10} {outcome}")


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the servers are stopped on every exit."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="One whole login against the fake OpenRouter (see the module docstring).",
    )
    parser.add_argument(
        "--timeout", type=float, default=60, help="seconds each server may take to start (60)"
    )
    args = parser.parse_args()
    stop_on_signals()
    began = time.monotonic()
    try:
        with servers(args.timeout) as issuer:
            run_login(issuer)
    except StepFailed as failure:
        print(f"demo: FAILED at step {failure.step}: {failure.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted; servers stopped", file=sys.stderr)
        return 130
    say(f"demo: a complete login in {time.monotonic() - began:.1f} s; servers stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
