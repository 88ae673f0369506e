import pytest

from openrouter_oauth.settings import SettingsError, load_settings
from tests.certs import CertificateAuthority

ETCD = {"ETCD_ENDPOINTS": "http://127.0.0.1:2379", "SECRET": "s" * 40}


def test_defaults_run_on_a_laptop():
    settings = load_settings({}, port=8123)
    assert settings.issuer_url == "http://127.0.0.1:8123"
    assert settings.secret_generated and len(settings.secret) >= 32
    assert settings.etcd is None
    assert settings.openrouter_base_url == "https://openrouter.ai"
    assert settings.state_ttl_seconds == 600


def test_etcd_settings():
    settings = load_settings(
        {**ETCD, "PREVIOUS_SECRETS": f"{'p' * 40}, {'q' * 40}", "ETCD_PREFIX": "/mine/"}, port=1
    )
    assert settings.etcd.endpoints == ("http://127.0.0.1:2379",)
    assert settings.etcd.prefix == "/mine/"
    assert settings.previous_secrets == ("p" * 40, "q" * 40)
    assert not settings.secret_generated


def test_https_issuer_and_ipv6_loopback():
    assert (
        load_settings({"ISSUER_URL": "https://auth.example.com/or"}, port=1).issuer_url
        == "https://auth.example.com/or"
    )
    assert load_settings({"ISSUER_URL": "http://[::1]:8000"}, port=1).issuer_url


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"ISSUER_URL": "auth.example.com"}, "ISSUER_URL"),
        ({"ISSUER_URL": "https://a.example?x=1"}, "ISSUER_URL"),
        ({"PREVIOUS_SECRETS": "short"}, "PREVIOUS_SECRETS"),
        ({**ETCD, "ETCD_PREFIX": "noslash"}, "ETCD_PREFIX"),
        ({**ETCD, "ETCD_ENDPOINTS": "http://a:1,https://b:2"}, "ETCD_ENDPOINTS"),
        # Several endpoints must be addresses: one name may resolve to all members instead.
        ({**ETCD, "ETCD_ENDPOINTS": "http://a.example:2379,http://b.example:2379"}, "IP"),
        ({**ETCD, "ETCD_ENDPOINTS": "http://10.0.0.1:2379,http://etcd:2379"}, "IP"),
        ({**ETCD, "ETCD_ENDPOINTS": "http://127.0.0.1:99999"}, "ETCD_ENDPOINTS"),
        ({**ETCD, "ETCD_ENDPOINTS": "http://[::1:2379"}, "ETCD_ENDPOINTS"),
        ({**ETCD, "ETCD_ENDPOINTS": "http://127.0.0.1:2379/v3"}, "ETCD_ENDPOINTS"),
        ({**ETCD, "ETCD_ENDPOINTS": "http://root:pw@127.0.0.1:2379"}, "ETCD_ENDPOINTS"),
        ({"ISSUER_URL": "http://[::1"}, "ISSUER_URL"),
        ({"ISSUER_URL": "http://127.0.0.1:99999"}, "ISSUER_URL"),
        ({"ISSUER_URL": "http://127.0.0.1:port"}, "ISSUER_URL"),
        ({"OPENROUTER_BASE_URL": "http://[zz"}, "OPENROUTER_BASE_URL"),
        ({"METRICS_PORT": "9464.5"}, "METRICS_PORT"),
        ({"STATE_TTL_SECONDS": "90.5"}, "STATE_TTL_SECONDS"),
        ({"SERVICE_DOCUMENTATION_URL": "docs.example/readme"}, "SERVICE_DOCUMENTATION_URL"),
        ({**ETCD, "ETCD_USERNAME": "u"}, "ETCD_USERNAME"),
        ({**ETCD, "ETCD_TIMEOUT_SECONDS": "0"}, "ETCD_TIMEOUT_SECONDS"),
        ({"UPSTREAM_TIMEOUT_SECONDS": "x"}, "UPSTREAM_TIMEOUT_SECONDS"),
        ({"CLIENT_ID_METADATA_DOCUMENTS": "maybe"}, "CLIENT_ID_METADATA_DOCUMENTS"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT"),
        ({"MAX_CONNECTIONS": "0"}, "MAX_CONNECTIONS"),
        ({"REQUEST_DEADLINE_SECONDS": "0"}, "REQUEST_DEADLINE_SECONDS"),
        ({"KEEP_ALIVE_SECONDS": "16"}, "KEEP_ALIVE_SECONDS"),
        (
            {
                "RESOURCE_SERVERS": '[{"id": "a", "secret": "' + "s" * 32 + '", '
                '"resource": "https://mcp.example:99999/mcp"}]'
            },
            "RESOURCE_SERVERS",
        ),
        ({"MAX_CONNECTIONS": "10", "MAX_CONNECTIONS_PER_ADDRESS": "11"}, "MAX_CONNECTIONS_PER"),
        ({"ISSUER_URL": "https://auth.example.com@127.0.0.1"}, "ISSUER_URL"),
        ({"ISSUER_URL": "https://user:pw@auth.example.com"}, "ISSUER_URL"),
        ({"RATE_LIMITS": "me=lots"}, "RATE_LIMITS"),
        ({"SECRET_FILE": "/nonexistent/secret"}, "SECRET_FILE"),
        ({"SECRET": "s" * 40, "SECRET_FILE": "/etc/hostname"}, "SECRET_FILE"),
        (
            {"ISSUER_URL": "https://auth.example", "METADATA_DOCUMENTS_ALLOW_LOOPBACK": "true"},
            "METADATA_DOCUMENTS_ALLOW_LOOPBACK",
        ),
    ],
)
def test_each_bad_value_names_its_variable(env, name):
    with pytest.raises(SettingsError) as caught:
        load_settings(env, port=1)
    assert name in str(caught.value) and "\n" not in str(caught.value)


def test_secrets_never_appear_in_repr():
    settings = load_settings(
        {**ETCD, "ETCD_USERNAME": "u", "ETCD_PASSWORD": "hunter2-pass"}, port=1
    )
    assert "s" * 40 not in repr(settings) and "hunter2" not in repr(settings)


def test_secrets_can_come_from_mounted_files(tmp_path):
    """A Secret mounted as a volume: the values need not sit in the environment; a key the
    Secret lacks (PREVIOUS_SECRETS) is simply absent."""
    (tmp_path / "SECRET").write_text("f" * 40 + "\n")
    (tmp_path / "PREVIOUS_SECRETS").write_text(f"{'p' * 40},{'q' * 40}\n")
    env = {**ETCD, "SECRET": "", "SECRET_FILE": str(tmp_path / "SECRET")}
    settings = load_settings(
        {**env, "PREVIOUS_SECRETS_FILE": str(tmp_path / "PREVIOUS_SECRETS")}, port=1
    )
    assert settings.secret == "f" * 40
    assert settings.previous_secrets == ("p" * 40, "q" * 40)
    missing = load_settings({**env, "PREVIOUS_SECRETS_FILE": str(tmp_path / "absent")}, port=1)
    assert missing.previous_secrets == ()


def test_security_settings_defaults_and_switches():
    settings = load_settings({}, port=1)
    assert settings.metadata_documents and not settings.metadata_documents_allow_loopback
    assert settings.metrics_port == 0  # a second local server needs no other setting
    assert {limit.endpoint for limit in settings.rate_limits} >= {"me", "token"}
    off = load_settings(
        {"CLIENT_ID_METADATA_DOCUMENTS": "off", "METADATA_DOCUMENTS_ALLOW_LOOPBACK": "true"},
        port=1,
    )
    assert not off.metadata_documents and off.metadata_documents_allow_loopback


def test_introspection_credentials():
    secret = "i" * 32
    settings = load_settings({"INTROSPECTION_CREDENTIALS": f"a:{secret}, b:{secret}x"}, port=1)
    assert settings.introspection_credentials == (("a", secret), ("b", secret + "x"))
    assert secret not in repr(settings)
    for bad in ("a", f"a:{'s' * 31}", f"a:{secret},a:{secret}", f":{secret}"):
        with pytest.raises(SettingsError, match="INTROSPECTION_CREDENTIALS"):
            load_settings({"INTROSPECTION_CREDENTIALS": bad}, port=1)


def test_connection_share_per_address():
    """A tenth of MAX_CONNECTIONS by default; none behind a proxy, whose address every
    connection has (the proxy bounds its clients); or exactly what is set."""
    assert load_settings({}, port=1).max_connections_per_address == 100
    assert load_settings({"MAX_CONNECTIONS": "5"}, port=1).max_connections_per_address == 1
    assert load_settings({"TRUSTED_PROXIES": "1"}, port=1).max_connections_per_address == 0
    both = {"TRUSTED_PROXIES": "1", "MAX_CONNECTIONS_PER_ADDRESS": "7"}
    assert load_settings(both, port=1).max_connections_per_address == 7
    assert load_settings({}, port=1).keep_alive_seconds == 5


def test_several_etcd_endpoints_are_addresses_or_one_name():
    for endpoints in (
        "http://10.0.0.1:2379,http://10.0.0.2:2379",
        "https://[fd00::1]:2379,https://[fd00::2]:2379",
        "http://etcd.ns.svc:2379",
    ):
        settings = load_settings({**ETCD, "ETCD_ENDPOINTS": endpoints}, port=1)
        assert ",".join(settings.etcd.endpoints) == endpoints


def test_service_documentation_defaults_to_this_projects_readme():
    assert load_settings({}, port=1).service_documentation_url == (
        "https://github.com/openrouter-oauth/openrouter-oauth-provider#readme"
    )
    mine = load_settings({"SERVICE_DOCUMENTATION_URL": "https://docs.example/oauth"}, port=1)
    assert mine.service_documentation_url == "https://docs.example/oauth"


def test_etcd_tls_files_must_hold_what_their_name_says(tmp_path):
    """Else gRPC takes them and fails only when connecting, like an etcd that is down."""
    authority = CertificateAuthority(tmp_path)
    client = authority.issue("client", client=True)
    tls = {
        **ETCD,
        "ETCD_ENDPOINTS": "https://127.0.0.1:2379",
        "ETCD_CA_FILE": str(authority.ca),
        "ETCD_CERT_FILE": str(client.cert),
        "ETCD_KEY_FILE": str(client.key),
    }
    assert load_settings(tls, port=1).etcd.key_file == client.key
    (tmp_path / "junk").write_text("not PEM")
    for name, wrong in (
        ("ETCD_CA_FILE", tmp_path / "junk"),
        ("ETCD_CERT_FILE", client.key),
        ("ETCD_KEY_FILE", client.cert),
    ):
        with pytest.raises(SettingsError, match=f"^{name} holds no PEM") as caught:
            load_settings({**tls, name: str(wrong)}, port=1)
        assert "PRIVATE KEY" not in str(caught.value)
