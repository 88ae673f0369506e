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

_FILES = resources.files(__package__) / "templates"
STYLE = (_FILES / "style.css").read_text("utf-8")
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
_CONSENT = Template((_FILES / "consent.html").read_text("utf-8"))
_ERROR = Template((_FILES / "error.html").read_text("utf-8"))

RESTART_ADVICE = "Go back to the application you were signing in to and start again."


def consent_page(
    *, client_name: str, client_identity: str, redirect_uri: str, ticket: str, action: str
) -> str:
    e = html.escape
    return _CONSENT.substitute(
        style=STYLE,
        client_name=e(client_name),
        client_identity=e(client_identity),
        redirect_uri=e(redirect_uri),
        ticket=e(ticket),
        action=e(action),
    )


def error_page(title: str, message: str, advice: str = RESTART_ADVICE) -> str:
    e = html.escape
    return _ERROR.substitute(style=STYLE, title=e(title), message=e(message), advice=e(advice))
