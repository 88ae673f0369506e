"""The floor: the same HTTP requests and etcd operations per flow, without the OAuth.

No validation, no crypto, no sealing, no templates: just the round trips a login
needs (etcd create/get through the same store, OpenRouter exchange and key
check through the same client), so the service's throughput can be read as a
fraction of what the plumbing alone allows. ``/hello`` is the bare-Sanic ceiling.
"""

from __future__ import annotations

import argparse
import os
import secrets
from urllib.parse import urlencode

from sanic import HTTPResponse, Request, Sanic, html, json, redirect, text

from openrouter_oauth import pkce
from openrouter_oauth.settings import EtcdSettings
from openrouter_oauth.store.etcd import EtcdStore
from openrouter_oauth.upstream import OpenRouter

TTL = 600
# One fixed PKCE pair, computed once: the floor does no per-request crypto.
VERIFIER = "v" * 43
CHALLENGE = pkce.s256(VERIFIER)


def create_app() -> Sanic:
    app = Sanic("floor")
    app.config.ACCESS_LOG = False
    issuer = os.environ["ISSUER_URL"]
    openrouter_url = os.environ["OPENROUTER_BASE_URL"]

    @app.before_server_start
    async def start(app: Sanic) -> None:
        app.ctx.store = EtcdStore(
            EtcdSettings(endpoints=(os.environ["ETCD_ENDPOINTS"],), prefix="/floor/")
        )
        app.ctx.upstream = OpenRouter(openrouter_url, timeout=10)

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        await app.ctx.store.close()
        await app.ctx.upstream.aclose()

    @app.get("/hello")
    async def hello(request: Request) -> HTTPResponse:
        return text("hello")

    @app.post("/register")
    async def register(request: Request) -> HTTPResponse:
        return json({"client_id": "floor", **request.json}, status=201)

    @app.get("/authorize")
    async def authorize(request: Request) -> HTTPResponse:
        ticket = secrets.token_urlsafe(32)
        return html(f'<input type="hidden" name="ticket" value="{ticket}">')

    @app.post("/authorize")
    async def decide(request: Request) -> HTTPResponse:
        handle = request.form.get("ticket")
        await request.app.ctx.store.create(f"decision/{handle}", b"x" * 600, TTL)
        callback = f"{issuer}/callback?" + urlencode({"session": handle})
        return redirect(
            request.app.ctx.upstream.authorization_url(
                callback_url=callback, code_challenge=CHALLENGE, key_label="floor"
            ),
            status=303,
        )

    @app.get("/callback")
    async def callback(request: Request) -> HTTPResponse:
        session = request.args.get("session")
        await request.app.ctx.store.get(f"decision/{session}")
        code = secrets.token_urlsafe(32)
        await request.app.ctx.store.create(f"completion/{session}", b"x" * 200, TTL)
        value = f"{request.args.get('code')}|{VERIFIER}".encode()
        await request.app.ctx.store.create(f"code/{code}", value, TTL)
        return redirect(f"http://127.0.0.1:5555/cb?code={code}&state=s&iss={issuer}")

    @app.post("/token")
    async def token(request: Request) -> HTTPResponse:
        code = request.form.get("code")
        value = await request.app.ctx.store.get(f"code/{code}")
        await request.app.ctx.store.create(f"redeeming/{code}", b"x" * 100, TTL)
        upstream_code, verifier = (value or b"|").decode().split("|")
        issued = await request.app.ctx.upstream.exchange(upstream_code, verifier)
        await request.app.ctx.store.create(f"redeemed/{code}", b"x" * 100, TTL)
        return json({"access_token": issued.key, "token_type": "Bearer"})

    @app.get("/me")
    async def me(request: Request) -> HTTPResponse:
        key = request.headers.get("authorization", "")[7:]
        info = await request.app.ctx.upstream.key_info(key)
        return json({"id": key[-7:], **info})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the benchmark floor app.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    from sanic.worker.loader import AppLoader

    loader = AppLoader(factory=create_app)
    app = loader.load()
    app.prepare(
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        motd=False,
        access_log=False,
        single_process=args.workers == 1,
    )
    if args.workers == 1:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
