"""Size limits shared by what we accept and what we mint, so that everything we issue fits
through our own endpoints."""

from __future__ import annotations

# Any single request parameter, including client_id, state and resource.
MAX_PARAM_LENGTH = 2048
# A redirect URI, registered or presented.
MAX_URI_LENGTH = 2000
# A client's display name.
MAX_NAME_LENGTH = 100
MAX_REDIRECT_URIS = 10
# The consent ticket carries a whole validated request (client_id, redirect_uri, state,
# resource: each within the limits above) sealed and base64-encoded, so it has its own.
MAX_TICKET_LENGTH = 16 * 1024
# Our own access and refresh tokens (bound mode) carry the client_id sealed, so they are
# longer than any parameter; /token, /revoke and /introspect accept them up to this.
MAX_TOKEN_LENGTH = 8 * 1024
