"""The fake OpenRouter's contract served by Sanic, so the benchmark's upstream answers fast.

The tests serve the same contract from a threaded stdlib server (with fault
injection); at benchmark rates that server, not the service, would be measured.
"""

from __future__ import annotations

import argparse

from sanic import HTTPResponse, Request, Sanic, raw
from tests.fakes.openrouter import OpenRouterContract


def create_app() -> Sanic:
    app = Sanic("fake_openrouter")
    app.config.ACCESS_LOG = False
    contract = OpenRouterContract()

    @app.route("/", methods=["GET", "POST"], name="root")
    @app.route("/<path:path>", methods=["GET", "POST"])
    async def answer(request: Request, path: str = "") -> HTTPResponse:
        reply = contract.handle(
            request.method,
            request.path,
            request.query_string,
            request.headers.get("authorization", ""),
            request.body,
        )
        return raw(
            reply.body, status=reply.status, content_type=reply.content_type, headers=reply.headers
        )

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake OpenRouter with Sanic.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app()
    app.prepare(host="127.0.0.1", port=args.port, motd=False, access_log=False, single_process=True)
    Sanic.serve_single(primary=app)


if __name__ == "__main__":
    main()
