"""The few Kubernetes API calls the operator makes, with the credentials kopf logged in with.

kopf ships no general-purpose client; this one speaks JSON over httpx (already a
dependency of the service) and understands exactly the verbs the RBAC grants.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import kopf

from .spec import GROUP, PLURAL, VERSION


class KubeError(Exception):
    """The API answered with an unexpected error; kopf retries the handler."""


def _pem(data: str | bytes) -> str:
    """PEM text from a kubeconfig's ``*-data`` field as kopf hands it over.

    kopf's kubeconfig login passes ``certificate-authority-data``, ``client-certificate-data``
    and ``client-key-data`` through unchanged: base64 of the PEM, as a ``str``. Other login
    handlers may give bytes, or PEM already; kopf's own client accepts all of these, so do we.
    """
    text = data.decode("ascii") if isinstance(data, bytes) else data
    if text.lstrip().startswith("-----BEGIN "):
        return text
    return base64.b64decode(text).decode("ascii")


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    context = ssl.create_default_context(
        cafile=info.ca_path, cadata=_pem(info.ca_data) if info.ca_data else None
    )
    if info.certificate_path or info.certificate_data:
        # ssl loads a client certificate only from files: write the embedded ones to a
        # private folder just long enough to load them (the key must not stay on disk).
        with tempfile.TemporaryDirectory(prefix="kube-") as folder:
            cert, key = info.certificate_path, info.private_key_path
            if info.certificate_data:
                cert = _private_file(Path(folder, "cert.pem"), _pem(info.certificate_data))
            if info.private_key_data:
                key = _private_file(Path(folder, "key.pem"), _pem(info.private_key_data))
            context.load_cert_chain(cert, key)
    return context


def _private_file(path: Path, text: str) -> str:
    path.touch(mode=0o600)
    path.write_text(text)
    return str(path)


class Kube:
    def __init__(self, info: kopf.ConnectionInfo) -> None:
        headers = {"Accept": "application/json"}
        if info.token:
            headers["Authorization"] = f"Bearer {info.token}"
        auth = (info.username, info.password) if info.username and info.password else None
        self._http = httpx.AsyncClient(
            base_url=info.server,
            headers=headers,
            auth=auth,
            verify=_ssl_context(info),
            timeout=10,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> dict[str, Any] | None:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise KubeError(f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            raise KubeError(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json() if response.content else {}

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        return await self._call("GET", path, missing_ok=True)

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return await self._call("POST", path, json=body)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return await self._call(
            "PATCH", path, json=body, headers={"Content-Type": "application/merge-patch+json"}
        )

    async def delete(self, path: str) -> None:
        """Delete the object; one already gone is fine."""
        await self._call("DELETE", path, missing_ok=True)


def _segment(name: str) -> str:
    """One path segment: quoted, so a name can never add a segment (``/``).

    Quoting leaves ``.`` and ``..`` as they are, and HTTP clients resolve them (``a/../b``
    is ``b``): those are refused here even though the names were checked when parsed.
    """
    if name in ("", ".", ".."):
        raise KubeError(f"{name!r} cannot be an object name in an API path")
    return quote(name, safe="")


def secrets_path(namespace: str, name: str = "") -> str:
    path = f"/api/v1/namespaces/{_segment(namespace)}/secrets"
    return f"{path}/{_segment(name)}" if name else path


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{_segment(namespace)}/deployments/{_segment(name)}"


def provider_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{_segment(namespace)}/{PLURAL}/{_segment(name)}"
