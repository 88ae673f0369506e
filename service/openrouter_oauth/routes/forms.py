"""Form bodies read strictly.

Sanic's own form parser logs a malformed body (invalid UTF-8, a multipart body without
its boundary) as a server error with a traceback and hands the route an empty form. A
bad body is the caller's fault: here it is answered with ``invalid_request``, logged as
one line at info like every other refused request.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from sanic import Request

from ..errors import InvalidRequest

FORM = "application/x-www-form-urlencoded"


def is_form(request: Request) -> bool:
    return request.content_type.split(";")[0].strip().lower() == FORM


def form_params(request: Request) -> dict[str, list[str]]:
    """The parameters of an ``application/x-www-form-urlencoded`` body; empty for any
    other kind of body."""
    if not is_form(request):
        return {}
    try:
        text = (request.body or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the form body is not valid UTF-8") from None
    return parse_qs(text)
