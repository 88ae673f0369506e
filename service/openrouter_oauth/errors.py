"""OAuth errors (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2) as plain values.

The HTTP layer decides how each one reaches the user: JSON for API calls, a
redirect to a validated client, or a readable page in the browser.
"""

from __future__ import annotations

RESTART_ADVICE = "Go back to the application you were signing in to and start again."


class OAuthError(Exception):
    """An error with a standard ``error`` code, a safe description and an HTTP status.

    The description is shown to the client: it never contains a secret, code,
    verifier, key or any other value the request carried.
    """

    error = "invalid_request"
    status = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}

    def headers(self) -> dict[str, str]:
        """Headers the answer must carry (a challenge, for instance)."""
        return {}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Unknown or invalid client_id: 401 makes MCP clients register again."""

    error = "invalid_client"
    status = 401


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


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the bearer token is malformed, unknown or revoked."""

    error = "invalid_token"
    status = 401

    def challenge(self, resource_metadata: str) -> str:
        """The ``WWW-Authenticate`` value that goes with this error (RFC 6750 §3, RFC 9728)."""
        return (
            f'Bearer resource_metadata="{resource_metadata}", error="{self.error}", '
            f'error_description="{self.description}"'
        )


class RateLimited(OAuthError):
    error = "too_many_requests"
    status = 429


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503


class ServerError(OAuthError):
    error = "server_error"
    status = 500


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


class BrowserError(Exception):
    """A failure on a page a person is looking at: shown as a readable page, never redirected."""

    status = 400
    title = "Something went wrong"
    message = ""
    advice = RESTART_ADVICE


class ApprovalExpired(BrowserError):
    title = "This approval page has expired"
    message = "The approval page was open too long or was not sent by this server."


class NotFromThisBrowser(BrowserError):
    status = 403
    title = "This approval did not come from your browser"
    message = (
        "The approval was sent without the consent page this server showed you, "
        "so it was refused to protect your account."
    )


class AlreadyAnswered(BrowserError):
    status = 409
    title = "This request was already answered"
    message = "You already approved or denied this sign-in request."
    advice = "If the application did not finish signing you in, go back to it and start again."


class UnknownChoice(BrowserError):
    title = "Unknown choice"
    message = "Please use the Approve or Deny button."


class SignInLinkExpired(BrowserError):
    title = "This sign-in link has expired or was already used"
    message = "Sign-in links from OpenRouter work once, for a few minutes."


class StartedInAnotherBrowser(BrowserError):
    """The callback arrived in a browser other than the one that approved (a forwarded link)."""

    status = 403
    title = "This sign-in was started in another browser"
    message = (
        "The sign-in link you followed was approved in a different browser, so nothing "
        "was handed out here. If someone sent you this link, do not trust it: it could "
        "have given them your OpenRouter key."
    )
    advice = "If you started this sign-in yourself, start it again in this browser."
