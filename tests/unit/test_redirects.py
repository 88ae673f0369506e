import pytest

from openrouter_oauth.errors import InvalidRedirectUri
from openrouter_oauth.redirects import matches, parse_redirect_uri, with_params


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb",
        "http://127.0.0.1:8080/cb",
        "http://localhost/cb",
        "http://[::1]:9/cb",
        "cursor://anysphere.cursor-retrieval/oauth/cb",
        "vscode://vscode.github-authentication/did-authenticate",
        "com.example.app:/oauth",
        "https://app.example/cb?tenant=1",
    ],
)
def test_allowed(uri):
    parse_redirect_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "\tjavascript:alert(1)",
        "java\nscript:x",
        "data:text/html,x",
        "vbscript:x",
        "file:///etc/passwd",
        "http://app.example/cb",
        "https://app.example/cb#x",
        "https://u:p@app.example/cb",
        "https:///nohost",
        "//app/cb",
        "https://app.example/c b",
        "https://app.example:99999/cb",
        "https://app.example\\@evil/",
    ],
)
def test_refused(uri):
    with pytest.raises(InvalidRedirectUri):
        parse_redirect_uri(uri)


def test_loopback_matches_any_port_but_nothing_else():
    assert matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb")
    assert matches("http://localhost:3000/cb", "http://localhost:4000/cb")
    assert not matches("http://127.0.0.1/cb", "http://127.0.0.1:5/other")
    assert not matches("http://127.0.0.1/cb", "http://localhost:5/cb")
    assert not matches("https://app.example/cb", "https://app.example:444/cb")
    assert not matches("https://app.example/cb", "https://app.example/cb/")


def test_with_params_keeps_an_existing_query():
    assert (
        with_params("https://a.example/cb?x=1", {"code": "c d"})
        == "https://a.example/cb?x=1&code=c+d"
    )
    assert with_params("cursor://cb", {"code": "c"}) == "cursor://cb?code=c"
