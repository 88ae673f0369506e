"""The etcd settings a production cluster needs: mutual TLS and user authentication."""

from __future__ import annotations

import secrets
import ssl
import subprocess
from collections.abc import Iterator

import pytest

from openrouter_oauth.settings import EtcdSettings, SettingsError, load_settings
from openrouter_oauth.store import StoreUnavailable
from openrouter_oauth.store.etcd import EtcdStore
from tests.certs import CertificateAuthority
from tests.harness import EtcdServer, EtcdTls, etcd_binary


@pytest.fixture(scope="module")
def authority(tmp_path_factory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_etcd(authority) -> Iterator[tuple[EtcdServer, CertificateAuthority]]:
    server_cert = authority.issue("etcd", ip="127.0.0.1")
    client = authority.issue("service", client=True)
    context = ssl.create_default_context(cafile=str(authority.ca))
    context.load_cert_chain(client.cert, client.key)
    server = EtcdServer(EtcdTls(authority.ca, server_cert.cert, server_cert.key, context)).start()
    yield server, authority
    server.destroy()


async def round_trip(store: EtcdStore) -> None:
    key = "k/" + secrets.token_hex(8)
    try:
        assert await store.create(key, b"v", 60)
        assert await store.take(key) == b"v"
    finally:
        await store.close()


async def test_mutual_tls_through_the_settings(tls_etcd):
    server, authority = tls_etcd
    client = authority.issue("service-2", client=True)
    settings = load_settings(
        {
            "ETCD_ENDPOINTS": server.endpoint,
            "SECRET": "s" * 40,
            "ETCD_CA_FILE": str(authority.ca),
            "ETCD_CERT_FILE": str(client.cert),
            "ETCD_KEY_FILE": str(client.key),
        },
        port=1,
    )
    assert settings.etcd is not None and settings.etcd.tls
    await round_trip(EtcdStore(settings.etcd))


async def test_tls_without_a_client_certificate_is_refused(tls_etcd):
    server, authority = tls_etcd
    store = EtcdStore(
        EtcdSettings(endpoints=(server.endpoint,), ca_file=authority.ca, timeout_seconds=1)
    )
    with pytest.raises(StoreUnavailable):
        await round_trip(store)


async def test_tls_with_an_unknown_ca_is_refused(tls_etcd, tmp_path):
    server, _ = tls_etcd
    stranger = CertificateAuthority(tmp_path)
    client = stranger.issue("service", client=True)
    store = EtcdStore(
        EtcdSettings(
            endpoints=(server.endpoint,),
            ca_file=stranger.ca,
            cert_file=client.cert,
            key_file=client.key,
            timeout_seconds=1,
        )
    )
    with pytest.raises(StoreUnavailable):
        await round_trip(store)


@pytest.fixture(scope="module")
def auth_etcd() -> Iterator[EtcdServer]:
    server = EtcdServer().start()
    etcdctl = [etcd_binary("etcdctl"), "--endpoints", server.endpoint]
    for command in (["user", "add", "root:root-password-1"], ["auth", "enable"]):
        subprocess.run([*etcdctl, *command], check=True, capture_output=True, timeout=30)
    yield server
    server.destroy()


async def test_user_and_password_through_the_settings(auth_etcd):
    settings = load_settings(
        {
            "ETCD_ENDPOINTS": auth_etcd.endpoint,
            "SECRET": "s" * 40,
            "ETCD_USERNAME": "root",
            "ETCD_PASSWORD": "root-password-1",
        },
        port=1,
    )
    await round_trip(EtcdStore(settings.etcd))


@pytest.mark.parametrize(("username", "password"), [(None, None), ("root", "wrong-password")])
async def test_missing_or_wrong_credentials_are_refused(auth_etcd, username, password):
    store = EtcdStore(
        EtcdSettings(
            endpoints=(auth_etcd.endpoint,), username=username, password=password, timeout_seconds=1
        )
    )
    with pytest.raises(StoreUnavailable):
        await round_trip(store)


def test_credentials_never_show_in_settings_errors():
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "ETCD_ENDPOINTS": "http://127.0.0.1:2379",
                "SECRET": "s" * 40,
                "ETCD_PASSWORD": "hunter2-secret",
            },
            port=1,
        )
    assert "hunter2" not in str(caught.value)
