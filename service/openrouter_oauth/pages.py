"""The service's HTML: the consent page and readable error pages.

Templates are read once; every value is HTML-escaped. The stylesheet is inline
and allowed by its hash, so the Content-Security-Policy needs no 'unsafe-inline'.
"""

from __future__ import annotations

import base64
import hashlib
import html
from importlib import resources
from string import Template

from .errors import RESTART_ADVICE
from .settings import PROJECT_URL

# The README's section on scripts/demo (tests/docs checks that the heading exists).
DEMO_URL = f"{PROJECT_URL}#try-a-whole-login-scriptsdemo"

_FILES = resources.files(__package__) / "templates"
STYLE = (_FILES / "style.css").read_text("utf-8")
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
_CONSENT = Template((_FILES / "consent.html").read_text("utf-8"))
_ERROR = Template((_FILES / "error.html").read_text("utf-8"))
_LANDING = Template((_FILES / "landing.html").read_text("utf-8"))


def _operator(name: str | None) -> str:
    if not name:
        return ""
    return f'<p class="note">This sign-in service is run by {html.escape(name)}.</p>'


_KEY_TO_CLIENT = (
    "That key is then handed to this application.",
    "The key goes to exactly this address",
)
_KEY_KEPT = (
    "That key stays with this sign-in service: the application gets tokens that only the "
    "MCP server named below can use, until you revoke them or they expire.",
    "Tokens go to exactly this address",
)


def _resource_row(resource_server: tuple[str, str] | None) -> str:
    if resource_server is None:
        return ""
    name, resource = (html.escape(part) for part in resource_server)
    return f"\n<dt>MCP server that will use the key</dt><dd>{name}: <code>{resource}</code></dd>"


def consent_page(
    *,
    client_name: str,
    client_identity: str,
    redirect_uri: str,
    ticket: str,
    action: str,
    openrouter: str,
    operator: str | None,
    resource_server: tuple[str, str] | None = None,
) -> str:
    """``resource_server`` (bound mode): the id and resource of the MCP server that will
    act with the key, which the person should recognise."""
    e = html.escape
    key_fate, redirect_label = _KEY_TO_CLIENT if resource_server is None else _KEY_KEPT
    return _CONSENT.substitute(
        style=STYLE,
        client_name=e(client_name),
        client_identity=e(client_identity),
        redirect_uri=e(redirect_uri),
        key_fate=key_fate,
        redirect_label=redirect_label,
        resource_row=_resource_row(resource_server),
        ticket=e(ticket),
        action=e(action),
        openrouter=e(openrouter),
        operator=_operator(operator),
    )


def landing_page(
    *,
    issuer: str,
    links: dict[str, str],
    openrouter: str,
    operator: str | None,
    docs: str,
    introspect: bool,
) -> str:
    """The root page for a person who opens the issuer URL in a browser. It recommends
    introspection to resource servers, as the README does."""
    e = html.escape
    introspection = (
        f"Recommended: token introspection at <code>{e(links['introspect'])}</code> "
        "(RFC 7662), with credentials from this server's operator."
        if introspect
        else "Recommended: token introspection (RFC 7662), with credentials from this "
        "server's operator, who lists them in <code>INTROSPECTION_CREDENTIALS</code>; "
        "none are set here yet."
    )
    return _LANDING.substitute(
        style=STYLE,
        issuer=e(issuer),
        as_metadata=e(links["as_metadata"]),
        pr_metadata=e(links["pr_metadata"]),
        openapi=e(links["openapi"]),
        me=e(links["me"]),
        openrouter=e(openrouter),
        operator=_operator(operator),
        docs=e(docs),
        demo=e(DEMO_URL),
        introspection=introspection,
    )


def error_page(title: str, message: str, advice: str = RESTART_ADVICE) -> str:
    e = html.escape
    return _ERROR.substitute(style=STYLE, title=e(title), message=e(message), advice=e(advice))
