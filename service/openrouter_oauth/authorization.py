"""The steps of a login that touch storage and OpenRouter, between the routes and the I/O.

Routes parse a request, call one method here and render what it returns; the
pure rules live in :mod:`.flow`, the stored layouts in :mod:`.records`.

Every step that can answer "retry" (the store or OpenRouter did not answer) is
safe to retry, because a write that timed out may still have been applied:

- a decision is created once per ticket; resubmitting the same choice replays it
  (same OpenRouter link, same verifier), another choice is "already answered";
- a callback records which OpenRouter code completed it; a reload with that code
  replays the same redirect (same code of ours), any other code is refused;
- ``/token`` claims the code for one exchange at a time; a retry after a transient
  failure takes over, a retry after success is ``invalid_grant``. OpenRouter's own
  codes are single-use, so no path can yield a second key.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from . import flow, paths, pkce
from .clients import Client, ClientResolver
from .cookies import cookie_hash
from .errors import (
    PASSED_ON_UPSTREAM,
    AccessDenied,
    AlreadyAnswered,
    ApprovalExpired,
    InvalidGrant,
    InvalidRequest,
    NotFromThisBrowser,
    SignInLinkExpired,
    StartedInAnotherBrowser,
    TemporarilyUnavailable,
    UnknownChoice,
)
from .grants import Grants
from .limits import MAX_TICKET_LENGTH
from .metrics import AUTHORIZATIONS, CODES_REDEEMED
from .records import (
    CODE,
    COMPLETION,
    DECISION,
    REDEEMED,
    REDEEMING,
    Completion,
    ConsentTicket,
    Decision,
    PendingCode,
    fingerprint,
)
from .resources import ResourceServer, resolve_resource
from .sealing import Sealer, SealError
from .settings import Settings
from .state import StateStore
from .store import StoreUnavailable
from .upstream import OpenRouter, UpstreamRejected, UpstreamUnavailable

CONSENT_PURPOSE = "consent"
# A redemption claim outlives the exchange it guards (the upstream deadline) by this much.
_CLAIM_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class Consent:
    """What the consent page shows, and the sealed ticket its form carries."""

    client: Client
    request: flow.AuthorizationRequest
    ticket: str
    resource_server: ResourceServer | None = None  # bound mode: who will use the key


@dataclass(frozen=True)
class Redirect:
    """Where the browser goes next; ``error`` marks an OAuth error sent to the client."""

    url: str
    error: str | None = None


class AuthorizationService:
    def __init__(
        self,
        *,
        settings: Settings,
        sealer: Sealer,
        state: StateStore,
        clients: ClientResolver,
        upstream: OpenRouter,
        grants: Grants | None = None,
    ) -> None:
        self._settings = settings
        self._sealer = sealer
        self._state = state
        self._clients = clients
        self._upstream = upstream
        self._grants = grants  # bound mode: redemptions start grants instead of giving keys

    # -- consent ---------------------------------------------------------------

    async def show_consent(self, params: flow.Params, csrf_cookie: str) -> Consent:
        """Validate the request; raise OAuthError (shown as a page, never redirected)."""
        client = await self._clients.resolve(flow.param(params, "client_id") or "")
        redirect_uri = flow.redirect_uri_for(client, params)
        request = flow.authorization_request(client, redirect_uri, params)
        server = None
        if self._grants is not None:
            # RFC 8707: the tokens will be for this declared server, named as declared.
            server = resolve_resource(self._settings.resource_servers, request.resource)
            request = replace(request, resource=server.resource)
        ticket = ConsentTicket(request, secrets.token_urlsafe(32), cookie_hash(csrf_cookie))
        sealed = self._sealer.seal(
            CONSENT_PURPOSE, ticket.to_record(), ttl=self._settings.state_ttl_seconds
        )
        if len(sealed) > MAX_TICKET_LENGTH:  # the approval could not carry it back
            raise InvalidRequest(
                f"the request is too long to be approved; shorten {flow.longest_field(request)}"
            )
        AUTHORIZATIONS.labels("started").inc()
        return Consent(client, request, sealed, server)

    def open_ticket(self, sealed: str, csrf_cookie: str) -> tuple[ConsentTicket, int]:
        """The ticket and its expiry, if it is ours, fresh, and posted from its own page."""
        try:
            claims = self._sealer.open_claims(CONSENT_PURPOSE, sealed)
            ticket = ConsentTicket.from_record(claims["d"])
        except (SealError, KeyError, TypeError):
            raise ApprovalExpired() from None
        csrf = cookie_hash(csrf_cookie)
        if not csrf or not flow.same(csrf, ticket.csrf):
            raise NotFromThisBrowser()
        return ticket, claims["exp"]

    async def decide(
        self, ticket: ConsentTicket, expires: int, action: str | None, browser_cookie: str
    ) -> Redirect:
        """Record the person's answer once; the same answer again replays it."""
        if action == "approve":
            browser, verifier = cookie_hash(browser_cookie), pkce.new_verifier()
            decision = Decision("approve", ticket.request, browser, verifier)
        elif action == "deny":
            decision = Decision("deny", ticket.request)
        else:
            raise UnknownChoice()
        lifetime = max(1.0, expires - time.time())
        if await self._state.create(DECISION, ticket.handle, decision.to_record(), ttl=lifetime):
            AUTHORIZATIONS.labels("approved" if action == "approve" else "denied").inc()
        else:
            decision = await self._replayable(ticket, action)
        return self._after(decision, ticket.handle)

    async def _replayable(self, ticket: ConsentTicket, action: str) -> Decision:
        """The decision already recorded, if this is a resubmission of the same answer."""
        found = await self._state.get(DECISION, ticket.handle)
        if found is None:
            raise ApprovalExpired()
        decision = Decision.from_record(found.data)
        done = decision.action == "approve" and await self._state.get(COMPLETION, ticket.handle)
        if decision.action != action or done:
            raise AlreadyAnswered()
        return decision

    def _after(self, decision: Decision, handle: str) -> Redirect:
        request = decision.request
        if decision.action == "deny":
            denied = AccessDenied("the person denied the request")
            url = flow.error_redirect(
                self._settings.issuer_url, request.redirect_uri, request.state, denied
            )
            return Redirect(url, denied.error)
        callback = self._settings.url(paths.CALLBACK) + "?" + urlencode({"session": handle})
        return Redirect(
            self._upstream.authorization_url(
                callback_url=callback,
                code_challenge=pkce.s256(decision.upstream_verifier),
                key_label=request.client_name,
            )
        )

    # -- callback --------------------------------------------------------------

    async def complete(self, params: flow.Params, browser_cookie: str) -> Redirect:
        """OpenRouter's answer: our code for the client, once, in the approving browser."""
        handle = flow.lenient_param(params, "session") or ""
        found = await self._state.get(DECISION, handle) if handle else None
        decision = Decision.from_record(found.data) if found else None
        if decision is None or decision.action != "approve":
            raise SignInLinkExpired()
        if not _same_browser(decision.browser, cookie_hash(browser_cookie)):
            # Spend the approval: a forwarded link must leave nothing anyone can complete.
            await self._state.create(COMPLETION, handle, Completion("", "").to_record())
            raise StartedInAnotherBrowser()
        request = decision.request
        upstream_code = flow.lenient_param(params, "code")
        if not upstream_code:
            return self._upstream_refusal(request, flow.lenient_param(params, "error"))
        code, first = await self._completion_code(handle, upstream_code)
        pending = PendingCode(request, upstream_code, decision.upstream_verifier)
        await self._state.create(CODE, code, pending.to_record())  # exists on a replay: fine
        if first:
            AUTHORIZATIONS.labels("completed").inc()
        return Redirect(
            flow.client_redirect(
                self._settings.issuer_url, request.redirect_uri, request.state, code=code
            )
        )

    async def _completion_code(self, handle: str, upstream_code: str) -> tuple[str, bool]:
        """Our code for this callback: new, or the one a reload of the same callback got.

        The completion (a full state lifetime from now) outlives the decision, which a
        replay needs, so no replay can recreate a pending code after its guard is gone.
        """
        completion = Completion(fingerprint(upstream_code), secrets.token_urlsafe(32))
        if await self._state.create(COMPLETION, handle, completion.to_record()):
            return completion.code, True
        found = await self._state.get(COMPLETION, handle)
        earlier = Completion.from_record(found.data) if found else None
        if (
            earlier is None
            or not earlier.code
            or not flow.same(earlier.upstream, completion.upstream)
        ):
            raise SignInLinkExpired()
        return earlier.code, False

    def _upstream_refusal(self, request: flow.AuthorizationRequest, error: str | None) -> Redirect:
        kind = PASSED_ON_UPSTREAM.get(error or "", AccessDenied)
        refused = kind("the request was not approved at OpenRouter")
        url = flow.error_redirect(
            self._settings.issuer_url, request.redirect_uri, request.state, refused
        )
        return Redirect(url, refused.error)

    # -- token -----------------------------------------------------------------

    async def redeem(self, token: flow.TokenRequest) -> dict[str, object]:
        """Exchange our code for the OpenRouter key, exactly once; in bound mode, for the
        grant holding it (a retry whose first answer was lost gets that grant again)."""
        await self._clients.resolve(token.client_id)
        found = await self._state.get(CODE, token.code)
        if found is None:
            raise InvalidGrant("the code is invalid, expired or already used")
        pending = PendingCode.from_record(found.data)
        flow.check_redemption(token, pending.request)
        if self._grants is not None:
            flow.check_token_resource(token, pending.request)
            resumed = await self._grants.resume(token.code)
            if resumed is not None:
                return resumed
        await self._claim(token.code, found.remaining())
        try:
            issued = await self._upstream.exchange(pending.upstream_code, pending.upstream_verifier)
        except UpstreamRejected:
            await self._mark_redeemed(token.code, found.remaining())
            raise InvalidGrant("OpenRouter refused the authorization; start again") from None
        except UpstreamUnavailable:
            await self._release(token.code)
            raise
        answer = flow.token_response(issued.key)
        if self._grants is not None:
            # Before the mark: if the store fails here, the retry finds the grant or the claim.
            request = pending.request
            answer = await self._grants.start(
                token.code, issued.key, request.client_id, request.resource or ""
            )
        await self._mark_redeemed(token.code, found.remaining())
        CODES_REDEEMED.inc()
        return answer

    async def _mark_redeemed(self, code: str, lifetime: float) -> None:
        """Best effort: without the mark, retries still fail, once the claim lapses, at
        OpenRouter (its code is spent); the key in hand must reach the client regardless."""
        with contextlib.suppress(StoreUnavailable):
            await self._state.create(REDEEMED, code, {}, ttl=max(1.0, lifetime))

    async def _release(self, code: str) -> None:
        """After a transient failure the next retry may exchange at once (else: at lapse)."""
        with contextlib.suppress(StoreUnavailable):
            await self._state.take(REDEEMING, code)

    async def _claim(self, code: str, lifetime: float) -> None:
        """Be the one request exchanging this code; others learn whether to retry."""
        ttl = min(lifetime, self._settings.upstream_timeout_seconds + _CLAIM_MARGIN_SECONDS)
        if await self._state.create(REDEEMING, code, {}, ttl=max(1.0, ttl)):
            return
        if await self._state.get(REDEEMED, code) is not None:
            raise InvalidGrant("the code is invalid, expired or already used")
        raise TemporarilyUnavailable("this code is being redeemed; retry shortly")


def _same_browser(recorded: str, presented: str) -> bool:
    return bool(recorded) and bool(presented) and flow.same(recorded, presented)
