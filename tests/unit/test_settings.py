import pytest

from openrouter_oauth.settings import SettingsError, load_settings

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
        ({**ETCD, "ETCD_USERNAME": "u"}, "ETCD_USERNAME"),
        ({**ETCD, "ETCD_TIMEOUT_SECONDS": "0"}, "ETCD_TIMEOUT_SECONDS"),
        ({"UPSTREAM_TIMEOUT_SECONDS": "x"}, "UPSTREAM_TIMEOUT_SECONDS"),
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
