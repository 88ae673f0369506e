"""The whole operator in-process against kmock's Kubernetes emulator (a real HTTP server)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kopf
import pytest
import yaml

from openrouter_oauth_operator.config import OperatorConfig
from openrouter_oauth_operator.handlers import build_registry
from openrouter_oauth_operator.objects import STATE_SECRET_LABEL
from openrouter_oauth_operator.spec import GROUP, PLURAL, VERSION
from tests.harness import REPO

CRD = yaml.safe_load((REPO / "helm/openrouter-oauth/crds/oauthproviders.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
NS = "default"
PROVIDERS = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"


def provider(name: str, **spec: Any) -> dict[str, Any]:
    """An OAuthProvider, validated against the CRD's schema like the API server would."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OAuthProvider",
        # An API server assigns resourceVersion, generation and uid; the emulator does
        # not, and kopf's patches test the resourceVersion.
        "metadata": {
            "name": name,
            "namespace": NS,
            "resourceVersion": "1",
            "generation": 1,
            "uid": str(uuid.uuid4()),
        },
        "spec": {"issuerURL": "https://auth.example.com", **spec},
    }
    jsonschema.validate(body, SCHEMA)
    return body


def opaque_secret(name: str, *, marked: bool = True, **data: str) -> dict[str, Any]:
    """A Secret; ``marked``: labelled for use in ``spec.secretRef``, as the README says."""
    labels = {STATE_SECRET_LABEL: "true"} if marked else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def deployment(name: str = "openrouter-oauth") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "annotations": {}, "generation": 1},
        "spec": {"replicas": 3, "template": {"metadata": {"annotations": {}}, "spec": {}}},
    }


def rollout(generation: int, updated: int, old: int = 0, available: int | None = None) -> dict:
    """A Deployment's metadata and status as its controller would report them.

    The emulator runs no controller and does not bump ``generation`` on a patch,
    so a test plays the controller: ``old`` pods of the previous ReplicaSet left.
    """
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": generation,
            "replicas": updated + old,
            "updatedReplicas": updated,
            "availableReplicas": updated if available is None else available,
        },
    }


class Cluster:
    """The test's view of the emulated API."""

    def __init__(self, http: httpx.AsyncClient, kmock: Any) -> None:
        self.http = http
        self.kmock = kmock

    async def get(self, path: str) -> dict[str, Any] | None:
        response = await self.http.get(path)
        return response.json() if response.status_code == 200 else None

    async def create(self, path: str, body: dict[str, Any]) -> None:
        (await self.http.post(path, json=body)).raise_for_status()

    async def patch(self, path: str, body: dict[str, Any]) -> None:
        response = await self.http.patch(
            path, json=body, headers={"Content-Type": "application/merge-patch+json"}
        )
        response.raise_for_status()

    async def delete(self, path: str) -> None:
        (await self.http.delete(path)).raise_for_status()

    async def events(self) -> list[dict[str, Any]]:
        listing = await self.get(f"/api/v1/namespaces/{NS}/events")
        return listing["items"] if listing else []

    def posted_events(self) -> list[dict[str, Any]]:
        """Every Event the operator posted, in order.

        The emulator stores only the first Event per name, and kopf's Events all share
        a generateName, so they are read from the requests it received.
        """
        return [
            request.data
            for request in list(self.kmock)
            if request.method == "POST" and request.url.path.endswith("/events")
        ]


@pytest.fixture
async def cluster(kmock, tmp_path: Path, monkeypatch) -> AsyncIterator[Cluster]:
    info = kmock.ResourceInfo
    kmock.resources[f"{GROUP}/{VERSION}/{PLURAL}"] = info(
        kind="OAuthProvider",
        singular="oauthprovider",
        namespaced=True,
        subresources={"status"},
        verbs={"get", "list", "watch", "patch", "create", "delete"},
    )
    kmock.resources["v1/secrets"] = info(kind="Secret", namespaced=True)
    kmock.resources["apps/v1/deployments"] = info(kind="Deployment", namespaced=True)
    kmock.resources["v1/events"] = info(kind="Event", namespaced=True)
    kmock.resources["v1/namespaces"] = info(kind="Namespace", namespaced=False)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
                "users": [{"name": "kmock", "user": {"token": "test-token"}}],
                "contexts": [
                    {
                        "name": "kmock",
                        "context": {"cluster": "kmock", "user": "kmock", "namespace": NS},
                    }
                ],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kmock[f"PATCH {DEPLOYMENTS}/openrouter-oauth"] << bump_generation(kmock)
    async with httpx.AsyncClient(base_url=str(kmock.url).rstrip("/")) as http:
        yield Cluster(http, kmock)


def bump_generation(kmock: Any) -> Callable[[Any], dict[str, Any]]:
    """Play the API server: a change to a Deployment's spec increments its generation.

    The emulator has already applied the patch when this runs; the status stays as
    it was (observedGeneration behind) until the test, playing the controller, says
    how the rollout is going.
    """

    def react(request: Any) -> dict[str, Any]:
        obj = kmock.objects["apps/v1/deployments", NS, request.url.path.rsplit("/", 1)[-1]]
        if "spec" in (request.data or {}):
            generation = (obj.get("metadata") or {}).get("generation") or 0
            obj.patch({"metadata": {"generation": generation + 1}})
        return obj.raw

    return react


@contextlib.asynccontextmanager
async def running_operator(resync_seconds: float = 1) -> AsyncIterator[None]:
    """The whole operator as a task; leaving the block stops it like a SIGTERM would."""
    config = OperatorConfig(resync_seconds=resync_seconds, namespace=NS)
    registry = build_registry(config)

    @kopf.on.startup(registry=registry)
    async def quick(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.watching.reconnect_backoff = 0.1
        settings.queueing.idle_timeout = 1
        settings.queueing.exit_timeout = 1

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=registry,
            namespaces=[NS],
            standalone=True,
            stop_flag=stop,
            ready_flag=ready,
            memo=kopf.Memo(config=config),
        )
    )
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):  # how a stopped operator ends
            await asyncio.wait_for(task, 15)


@pytest.fixture
async def operator(cluster: Cluster) -> AsyncIterator[None]:
    async with running_operator():
        yield
