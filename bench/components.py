"""Component costs behind the design choices, measured side by side in one run.

    .venv/bin/python -m bench.components

- sealing: compact JWE dir+A256GCM seal+open of a typical record, jwcrypto vs joserfc;
- upstream client: sequential POST+GET round trips to the fake OpenRouter, httpx vs aiohttp.
Reported as operations per second and as a ratio to the first of each pair.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Callable

import aiohttp
import httpx
from joserfc import jwe as jose_jwe
from joserfc.jwk import OctKey
from jwcrypto import jwe, jwk
from tests.harness import REPO

from bench.run import free_port, started

RECORD = {
    "request": {
        "client_id": "mcp_" + "x" * 300,
        "client_name": "Claude",
        "redirect_uri": "http://127.0.0.1:33418/callback",
        "code_challenge": "c" * 43,
        "state": "s" * 43,
        "scope": "openrouter",
        "resource": "https://mcp.example.com",
    },
    "upstream_verifier": "v" * 43,
}


def rate(fn: Callable[[], object], seconds: float = 2.0) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            fn()
        count += 100
    return count / (time.perf_counter() - start)


def sealing() -> dict[str, float]:
    raw = secrets.token_bytes(32)
    payload = json.dumps({"p": "code", "exp": 2_000_000_000, "d": RECORD}).encode()
    header = {"alg": "dir", "enc": "A256GCM", "kid": "k1"}
    key = jwk.JWK(kty="oct", k=jwk.base64url_encode(raw))

    def with_jwcrypto() -> None:
        token = jwe.JWE(payload, protected=header)
        token.add_recipient(key)
        opened = jwe.JWE()
        opened.deserialize(token.serialize(compact=True), key=key)

    oct_key = OctKey.import_key(raw)

    def with_joserfc() -> None:
        sealed = jose_jwe.encrypt_compact(header, payload, oct_key)
        jose_jwe.decrypt_compact(sealed, oct_key)

    return {"jwcrypto": rate(with_jwcrypto), "joserfc": rate(with_joserfc)}


async def clients(base: str, rounds: int = 3000) -> dict[str, float]:
    body = {"code": "nope", "code_verifier": "v" * 43, "code_challenge_method": "S256"}
    headers = {"Authorization": "Bearer sk-or-v1-unknown"}
    results = {}
    async with httpx.AsyncClient(base_url=base) as http:
        start = time.perf_counter()
        for _ in range(rounds):
            (await http.post("/api/v1/auth/keys", json=body)).json()
            (await http.get("/api/v1/key", headers=headers)).json()
        results["httpx"] = rounds / (time.perf_counter() - start)
    async with aiohttp.ClientSession(base_url=base) as session:
        start = time.perf_counter()
        for _ in range(rounds):
            async with session.post("/api/v1/auth/keys", json=body) as r:
                await r.json()
            async with session.get("/api/v1/key", headers=headers) as r:
                await r.json()
        results["aiohttp"] = rounds / (time.perf_counter() - start)
    return results


def main() -> None:
    seal = sealing()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with started(
        [sys.executable, "-m", "bench.fake_openrouter", "--port", str(port)],
        {**os.environ, "PYTHONPATH": str(REPO)},
        f"{base}/",
    ):
        upstream = asyncio.run(clients(base))
    print(
        f"JWE seal+open/s:  jwcrypto {seal['jwcrypto']:.0f}  joserfc {seal['joserfc']:.0f}  "
        f"({seal['joserfc'] / seal['jwcrypto']:.2f}x)"
    )
    print(
        f"upstream POST+GET round trips/s:  httpx {upstream['httpx']:.0f}  "
        f"aiohttp {upstream['aiohttp']:.0f}  ({upstream['aiohttp'] / upstream['httpx']:.2f}x)"
    )


if __name__ == "__main__":
    main()
