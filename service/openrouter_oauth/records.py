"""The records a login leaves behind, one frozen dataclass per stored layout.

Each record kind is stored under a hash of its handle (see :mod:`.state`):

- ``ConsentTicket`` is not stored: it travels sealed in the consent form.
- ``Decision`` (kind ``decision``, under the ticket's handle, for the ticket's whole
  life): the person's answer. For an approval it is also the pending authorization
  the callback completes. Created once; a resubmission finds it and replays it.
- ``Completion`` (kind ``completion``, under the same handle): which OpenRouter code
  completed the callback and which code of ours it became, so a reload replays it
  and a second OpenRouter code is refused.
- ``PendingCode`` (kind ``code``, under our code): what ``/token`` needs to redeem it.
- ``Redemption`` (kind ``redeeming``, short-lived; kind ``redeemed`` once done):
  which request is exchanging the code at OpenRouter, so concurrent redemptions
  make one exchange and a retry after a failure can take over.
- ``BoundGrant`` (kind ``grant``, ``bound`` mode only, under the grant id, for the
  grant's whole life): the OpenRouter key and who may use it. The only place the key
  is kept; ending the grant deletes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .flow import AuthorizationRequest


def fingerprint(value: str) -> str:
    """What a record keeps of a code or cookie it must recognise but never hand back."""
    return hashlib.sha256(value.encode()).hexdigest()


DECISION = "decision"
COMPLETION = "completion"
CODE = "code"
REDEEMING = "redeeming"
REDEEMED = "redeemed"
BOUND_GRANT = "grant"

Action = Literal["approve", "deny"]


@dataclass(frozen=True)
class ConsentTicket:
    request: AuthorizationRequest
    handle: str
    csrf: str  # SHA-256 of the SameSite=Strict cookie the consent page set

    def to_record(self) -> dict[str, Any]:
        return {"request": self.request.to_record(), "handle": self.handle, "csrf": self.csrf}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ConsentTicket:
        return cls(
            AuthorizationRequest.from_record(record["request"]),
            str(record["handle"]),
            str(record.get("csrf", "")),
        )


@dataclass(frozen=True)
class Decision:
    action: Action
    request: AuthorizationRequest
    browser: str = ""  # SHA-256 of the SameSite=Lax cookie of the browser that approved
    upstream_verifier: str = ""  # our PKCE verifier towards OpenRouter (approvals)

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "request": self.request.to_record()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Decision:
        return cls(
            action="approve" if record.get("action") == "approve" else "deny",
            request=AuthorizationRequest.from_record(record["request"]),
            browser=str(record.get("browser", "")),
            upstream_verifier=str(record.get("upstream_verifier", "")),
        )


@dataclass(frozen=True)
class Completion:
    upstream: str  # SHA-256 of OpenRouter's code
    code: str  # our code, handed to the client

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Completion:
        return cls(str(record.get("upstream", "")), str(record.get("code", "")))


@dataclass(frozen=True)
class PendingCode:
    request: AuthorizationRequest
    upstream_code: str
    upstream_verifier: str

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "request": self.request.to_record()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PendingCode:
        return cls(
            AuthorizationRequest.from_record(record["request"]),
            str(record["upstream_code"]),
            str(record["upstream_verifier"]),
        )


@dataclass(frozen=True)
class BoundGrant:
    key: str  # the OpenRouter key: never leaves this record except to its resource server
    client_id: str
    audience: str  # the declared resource the tokens are for
    generation: int = 0  # of the one refresh token that may be used next
    rotated: float = 0.0  # when ``generation`` last changed (epoch seconds)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> BoundGrant:
        return cls(
            str(record["key"]),
            str(record["client_id"]),
            str(record["audience"]),
            int(record.get("generation", 0)),
            float(record.get("rotated", 0.0)),
        )
