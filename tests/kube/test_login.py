"""From `kubectl apply` of a provider to a working issuer and a whole login."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx

from openrouter_oauth_operator.spec import config_secret_name
from tests.fakes.openrouter import FakeOpenRouter
from tests.harness import EtcdServer, Service, service_env
from tests.integration.flows import logged_in
from tests.kube.conftest import DEPLOYMENT, Operator, operated
from tests.kube.controlplane import Cli
from tests.processes import free_port


async def test_applied_provider_serves_a_login(
    admin: Cli,
    installed: str,
    start_operator: Callable[..., Operator],
    etcd: EtcdServer,
    fake: FakeOpenRouter,
    http: httpx.AsyncClient,
) -> None:
    namespace = installed
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    operated(admin, start_operator, namespace, "openrouter-oauth", issuer)

    # Exactly what the pods would get through envFrom, read back through the API.
    secret = admin.get(namespace, "secret", config_secret_name(DEPLOYMENT))
    assert secret is not None
    written = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(written) == {"ISSUER_URL", "SECRET", "PREVIOUS_SECRETS"}
    env = service_env(openrouter=fake.base_url, port=port, etcd=etcd.endpoint, **written)
    env["ETCD_PREFIX"] = f"/{namespace}/"
    service = Service(env, port).start()
    try:
        metadata = (await http.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
        assert metadata["issuer"] == issuer
        await logged_in(http, issuer)
    finally:
        service.stop()
