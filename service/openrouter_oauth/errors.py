"""Every way a request can fail, each carrying how it is shown.

An error knows its HTTP status, its headers, its RFC 6749 JSON body (OAuth errors) and
the page a person sees in a browser: title, message and advice. The HTTP layer has one
handler that renders whichever the request calls for (``routes.responses.failure``),
so routes only raise. As in authlib, the error is the single home of its presentation.
"""

from __future__ import annotations

RESTART_ADVICE = "Go back to the application you were signing in to and start again."
RETRY_ADVICE = "Wait a moment, then go back to the application and try again."
REPORT_ADVICE = "Go back to the application and report this to its developer."


class Failure(Exception):
    """A request that cannot be served, and how a person is told so."""

    status = 400
    title = "Something went wrong"
    advice = RESTART_ADVICE

    @property
    def outcome(self) -> str:
        """The label of this failure in logs and metrics (never a value from the request)."""
        return type(self).__name__

    @property
    def page_status(self) -> int:
        """The status of the page a browser is shown."""
        return self.status

    def message(self) -> str:
        return ""

    def headers(self) -> dict[str, str]:
        """Headers the answer must carry (a challenge, Retry-After)."""
        return {}


class OAuthError(Failure):
    """An error with a standard ``error`` code, a safe description and an HTTP status.

    The description is shown to the client: it never contains a secret, code,
    verifier, key or any other value the request carried. In a browser it is shown
    inside ``page_message``.
    """

    error = "invalid_request"
    title = "This sign-in request is invalid"
    page_message = "The application sent a request this server cannot accept: {}."
    advice = REPORT_ADVICE

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    @property
    def outcome(self) -> str:
        return self.error

    def message(self) -> str:
        return self.page_message.format(self.description)

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Unknown or invalid client_id: 401 makes MCP clients register again."""

    error = "invalid_client"
    status = 401
    title = "This application is not recognised"
    page_status = 400  # a 401 needs a challenge, which a browser cannot answer
    page_message = "The sign-in request names an application this server cannot verify: {}."
    advice = (
        "Go back to the application and sign in again; if it keeps happening, "
        "the application may need to register again."
    )


class UnauthenticatedCaller(InvalidClient):
    """A resource server's credentials are missing or wrong (RFC 6749 §5.2: with a challenge)."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="resource servers"'}


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidTarget(OAuthError):
    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class InvalidRedirectUri(OAuthError):
    error = "invalid_redirect_uri"
    title = "This sign-in request cannot be trusted"
    page_message = "The address to return to after sign-in is not allowed: {}."


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the bearer token is malformed, unknown or revoked; the challenge
    names the resource metadata (RFC 9728), where a client learns how to get another."""

    error = "invalid_token"
    status = 401

    def __init__(self, description: str, resource_metadata: str) -> None:
        super().__init__(description)
        self.resource_metadata = resource_metadata

    def headers(self) -> dict[str, str]:
        challenge = (
            f'Bearer resource_metadata="{self.resource_metadata}", error="{self.error}", '
            f'error_description="{self.description}"'
        )
        return {"WWW-Authenticate": challenge}


class MissingToken(InvalidToken):
    """RFC 6750 §3.1: a request without credentials gets the challenge, and no error code
    in it."""

    error = "unauthorized"

    def __init__(self, resource_metadata: str) -> None:
        super().__init__("a Bearer token is required", resource_metadata)

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer resource_metadata="{self.resource_metadata}"'}


class RateLimited(OAuthError):
    error = "too_many_requests"
    status = 429
    title = "Too many attempts"
    page_message = "This address has started too many sign-ins in a short time."

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many requests from this address; slow down")
        self.retry_after = retry_after
        self.advice = f"Wait {retry_after} seconds, then try again."

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503
    title = "Something went wrong"
    page_message = "{}."
    advice = RETRY_ADVICE


class ServerError(OAuthError):
    error = "server_error"
    status = 500
    title = "Something went wrong"
    page_message = "{}."
    advice = RETRY_ADVICE


class NotFound(OAuthError):
    error = "not_found"
    status = 404


class MethodNotAllowed(InvalidRequest):
    status = 405


class RequestTimeout(InvalidRequest):
    status = 408


class RequestTooLarge(InvalidRequest):
    status = 413


class HeadersTooLarge(InvalidRequest):
    status = 431


# What OpenRouter may send back to our callback, as the same error for our client.
PASSED_ON_UPSTREAM: dict[str, type[OAuthError]] = {
    AccessDenied.error: AccessDenied,
    TemporarilyUnavailable.error: TemporarilyUnavailable,
    ServerError.error: ServerError,
}


class BrowserError(Failure):
    """A failure on a page a person is looking at: shown as a readable page, never redirected."""

    text = ""

    def message(self) -> str:
        return self.text


class ApprovalExpired(BrowserError):
    title = "This approval page has expired"
    text = "The approval page was open too long or was not sent by this server."


class NotFromThisBrowser(BrowserError):
    status = 403
    title = "This approval did not come from your browser"
    text = (
        "The approval was sent without the consent page this server showed you, "
        "so it was refused to protect your account."
    )


class AlreadyAnswered(BrowserError):
    status = 409
    title = "This request was already answered"
    text = "You already approved or denied this sign-in request."
    advice = "If the application did not finish signing you in, go back to it and start again."


class UnknownChoice(BrowserError):
    title = "Unknown choice"
    text = "Please use the Approve or Deny button."


class SignInLinkExpired(BrowserError):
    title = "This sign-in link has expired or was already used"
    text = "Sign-in links from OpenRouter work once, for a few minutes."


class StartedInAnotherBrowser(BrowserError):
    """The callback arrived in a browser other than the one that approved (a forwarded link)."""

    status = 403
    title = "This sign-in was started in another browser"
    text = (
        "The sign-in link you followed was approved in a different browser, so nothing "
        "was handed out here. If someone sent you this link, do not trust it: it could "
        "have given them your OpenRouter key."
    )
    advice = "If you started this sign-in yourself, start it again in this browser."
