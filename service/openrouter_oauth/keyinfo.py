"""How a checked key is described: ``/me`` (the original provider's fields and more) and
``/introspect`` (RFC 7662 member names where one exists, OpenRouter's otherwise)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .flow import GRANTED_SCOPE

MAX_KEY_LENGTH = 512


def well_formed_key(key: str) -> bool:
    """Keys are printable ASCII (RFC 6750 b64token); anything else cannot be a key."""
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable() and " " not in key


KEY_INFO_FIELDS = (
    "label",
    "limit",
    "limit_remaining",
    "limit_reset",
    "include_byok_in_limit",
    "usage",
    "usage_daily",
    "usage_weekly",
    "usage_monthly",
    "byok_usage",
    "is_free_tier",
    "is_management_key",
    "creator_user_id",
    "expires_at",
)


def me_response(key: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """The original provider's fields (id, name, username, usage, balance) plus key information."""
    short = key[-7:]
    body: dict[str, Any] = {
        "id": short,
        "name": "OpenRouter User",
        "username": short,
        "usage": info.get("usage"),
        "balance": info.get("limit_remaining"),
    }
    body.update({name: info.get(name) for name in KEY_INFO_FIELDS})
    return body


def _epoch(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def introspection_response(info: Mapping[str, Any]) -> dict[str, Any]:
    """An active key: RFC 7662 members where one exists, OpenRouter's names otherwise."""
    body: dict[str, Any] = {"active": True, "token_type": "Bearer", "scope": GRANTED_SCOPE}
    body.update({name: info.get(name) for name in KEY_INFO_FIELDS})
    if (exp := _epoch(info.get("expires_at"))) is not None:
        body["exp"] = exp
    if isinstance(info.get("creator_user_id"), str):
        body["sub"] = info["creator_user_id"]
    return body


INACTIVE: dict[str, Any] = {"active": False}
