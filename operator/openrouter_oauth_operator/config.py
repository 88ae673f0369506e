"""The operator's own settings, read once from the environment at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .spec import MAX_DEPLOYMENT_NAME, is_object_name


class ConfigError(ValueError):
    """A bad setting; the message is one line naming the variable."""


@dataclass(frozen=True)
class OperatorConfig:
    default_deployment: str = "openrouter-oauth"
    resync_seconds: float = 30.0
    namespace: str = "default"


def load_config(env: Mapping[str, str]) -> OperatorConfig:
    raw = env.get("RESYNC_SECONDS", "30")
    try:
        resync = float(raw)
    except ValueError:
        raise ConfigError(f"RESYNC_SECONDS must be a number, got {raw!r}") from None
    if not 1 <= resync <= 3600:
        raise ConfigError(f"RESYNC_SECONDS must be between 1 and 3600, got {raw!r}")
    deployment = env.get("DEFAULT_DEPLOYMENT", "openrouter-oauth")
    if not is_object_name(deployment, MAX_DEPLOYMENT_NAME):
        raise ConfigError(
            f"DEFAULT_DEPLOYMENT must be a Deployment name (DNS-1123 subdomain of at most "
            f"{MAX_DEPLOYMENT_NAME} characters), got {deployment[:80]!r}"
        )
    return OperatorConfig(
        default_deployment=deployment,
        resync_seconds=resync,
        namespace=env.get("WATCH_NAMESPACE") or "default",
    )
