import pytest

from openrouter_oauth.clients import ClientResolver, issue_client_id
from openrouter_oauth.errors import InvalidClient, InvalidRedirectUri
from openrouter_oauth.sealing import Sealer

ISSUER = "https://auth.example"

SEALER = Sealer("k" * 40, issuer=ISSUER)


async def no_documents(url):
    raise AssertionError("no document fetch expected")


RESOLVER = ClientResolver(SEALER, no_documents)


async def test_registered_client_carries_its_redirect_uris():
    client_id = issue_client_id(SEALER, ["http://127.0.0.1/cb", "cursor://x/cb"], "Cursor")
    client = await RESOLVER.resolve(client_id)
    assert client.name == "Cursor" and client.kind == "registered"
    assert client.check_redirect_uri("http://127.0.0.1:4444/cb")
    assert client.check_redirect_uri("cursor://x/cb")
    with pytest.raises(InvalidRedirectUri):
        client.check_redirect_uri("cursor://x/other")
    with pytest.raises(InvalidRedirectUri, match="required"):
        client.default_redirect_uri()


async def test_registered_client_from_another_server_is_invalid():
    foreign = issue_client_id(Sealer("z" * 40, issuer=ISSUER), ["https://a.example/cb"], "X")
    with pytest.raises(InvalidClient, match="register again"):
        await RESOLVER.resolve(foreign)


async def test_domain_client():
    client = await RESOLVER.resolve("app.example.com")
    assert client.check_redirect_uri("https://app.example.com/cb")
    for bad in (
        "https://evil.example/cb",
        "http://app.example.com/cb",
        "https://sub.app.example.com/cb",
        "https://app.example.com.evil.io/cb",
    ):
        with pytest.raises(InvalidRedirectUri):
            client.check_redirect_uri(bad)


async def test_localhost_domain_allows_only_loopback():
    client = await RESOLVER.resolve("localhost")
    assert client.check_redirect_uri("http://127.0.0.1:3000/cb")
    with pytest.raises(InvalidRedirectUri):
        client.check_redirect_uri("https://app.example/cb")


@pytest.mark.parametrize(
    "client_id",
    [
        "",
        "x" * 5000,
        "Example.com",
        "has space.com",
        "-bad.com",
        "nodot",
        "https://a.example/",
        "http://a.b/c",
    ],
)
async def test_invalid_client_ids(client_id):
    with pytest.raises(InvalidClient):
        await RESOLVER.resolve(client_id)
