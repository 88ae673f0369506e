"""/authorize: show our consent page, and act on the person's decision.

GET shows the consent page, whose form carries a sealed ticket bound to a
SameSite=Strict cookie (see :mod:`..cookies`); an invalid request raises, and is shown
as a page, never redirected; POST records the decision (see :mod:`..authorization`).
Until the person has decided, no error is redirected anywhere: anyone can name
any redirect URI, so an automatic redirect would be an open redirector.
"""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from .. import cookies, flow, pages, paths
from ..limits import MAX_TICKET_LENGTH
from ..resources import ResourceServer
from .forms import form_params
from .responses import browser_redirect, page

bp = Blueprint("authorize")


def _named(server: ResourceServer | None) -> tuple[str, str] | None:
    return (server.id, server.resource) if server is not None else None


@bp.get(paths.AUTHORIZE)
async def authorize(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    params = dict(request.get_args(keep_blank_values=True))
    request.ctx.client_id = flow.lenient_param(params, "client_id")
    cookie = cookies.read(request, cookies.CSRF) or cookies.new_value()
    consent = await ctx.authorization.show_consent(params, cookie)
    response = page(
        pages.consent_page(
            client_name=consent.client.name,
            client_identity=consent.client.identity,
            redirect_uri=consent.request.redirect_uri,
            ticket=consent.ticket,
            action=paths.AUTHORIZE,
            openrouter=ctx.settings.openrouter_base_url,
            operator=ctx.settings.operator_name,
            resource_server=_named(consent.resource_server),
        ),
        form_targets=(ctx.settings.openrouter_base_url, consent.request.redirect_uri),
    )
    cookies.put(request, response, cookies.CSRF, cookie)
    # Set before the decision, so a resubmitted approval (its first answer lost) is still
    # made by the browser the callback will check.
    browser = cookies.read(request, cookies.BROWSER) or cookies.new_value()
    cookies.put(request, response, cookies.BROWSER, browser)
    return response


@bp.post(paths.AUTHORIZE)
async def decide(request: Request) -> HTTPResponse:
    service = request.app.ctx.authorization
    form = form_params(request)
    raw_ticket = flow.lenient_param(form, "ticket", max_length=MAX_TICKET_LENGTH) or ""
    ticket, expires = service.open_ticket(raw_ticket, cookies.read(request, cookies.CSRF))
    request.ctx.client_id = ticket.request.client_id
    browser = cookies.read(request, cookies.BROWSER)
    minted = "" if browser else cookies.new_value()  # a browser that dropped it
    action = flow.lenient_param(form, "action")
    redirect = await service.decide(ticket, expires, action, browser or minted)
    request.ctx.outcome = redirect.error
    response = browser_redirect(redirect.url)
    if minted:
        cookies.put(request, response, cookies.BROWSER, minted)
    return response
