"""The service's configuration: read once from the environment, validated, then handed down.

Nothing else in the package reads ``os.environ``. Every bad value raises
:class:`SettingsError` with one line that names the variable.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from .resources import ResourceServer

DEFAULT_OPENROUTER_BASE_URL = "https://openrouter.ai"
DEFAULT_ETCD_PREFIX = "/openrouter-oauth/"
# The project's home (the chart's `home`, kept equal by a test), and its README there.
PROJECT_URL = "https://github.com/openrouter-oauth/openrouter-oauth-provider"
DEFAULT_SERVICE_DOCUMENTATION_URL = f"{PROJECT_URL}#readme"
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """A configuration value is missing or wrong; the message is one line for the operator."""


@dataclass(frozen=True)
class EtcdSettings:
    endpoints: tuple[str, ...]
    prefix: str = DEFAULT_ETCD_PREFIX
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 2.0

    @property
    def tls(self) -> bool:
        return self.endpoints[0].startswith("https://")


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` requests per ``seconds`` from one client address to ``endpoint``."""

    endpoint: str
    count: int
    seconds: float


RATE_LIMITED_ENDPOINTS = ("register", "authorize", "token", "me")
# `me` counts only /me requests that need OpenRouter (a key not in the cache).
DEFAULT_RATE_LIMITS = "register=60/min,authorize=120/min,token=120/min,me=300/min"
# ACCESS_TOKENS: the client gets the OpenRouter key itself, or tokens of ours bound to one
# declared resource server (which alone can exchange them for the key).
OPENROUTER_KEY_TOKENS, BOUND_TOKENS = "openrouter-key", "bound"
_PERIODS = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Settings:
    """Every setting, validated. Defaults live once, in :data:`SETTINGS_HELP`."""

    issuer_url: str
    secret: str = field(repr=False)
    previous_secrets: tuple[str, ...] = field(repr=False)
    secret_generated: bool
    etcd: EtcdSettings | None
    openrouter_base_url: str
    state_ttl_seconds: int
    upstream_timeout_seconds: float
    rate_limits: tuple[RateLimit, ...]
    trusted_proxies: int
    shutdown_timeout_seconds: float
    me_cache_seconds: float
    me_negative_cache_seconds: float
    key_check_concurrency: int
    metadata_documents: bool
    metadata_documents_allow_loopback: bool
    metrics_port: int
    request_deadline_seconds: float
    keep_alive_seconds: float
    max_connections: int
    # Connections one client address may hold per process; 0: no per-address limit.
    max_connections_per_address: int
    # (caller id, secret) pairs allowed to use /introspect; empty: no such endpoint.
    introspection_credentials: tuple[tuple[str, str], ...] = field(repr=False)
    operator_name: str | None
    service_documentation_url: str
    access_tokens: str = OPENROUTER_KEY_TOKENS
    resource_servers: tuple[ResourceServer, ...] = ()
    access_token_seconds: int = 3600
    grant_seconds: int = 30 * 86400

    @property
    def bound(self) -> bool:
        return self.access_tokens == BOUND_TOKENS

    def url(self, path: str) -> str:
        """An absolute URL on this service, built from the configured issuer."""
        return f"{self.issuer_url}{path}"


# name, default, meaning: the single source for `--help` and the table in docs/operations.md.
SETTINGS_HELP: tuple[tuple[str, str, str], ...] = (
    (
        "ISSUER_URL",
        "http://127.0.0.1:<port>",
        "public base URL, no trailing slash; https unless the host is loopback",
    ),
    (
        "SECRET",
        "random (embedded store only)",
        f"state-encryption secret, at least {MIN_SECRET_LENGTH} characters; required with etcd",
    ),
    ("SECRET_FILE", "none", "a file holding SECRET (instead of the environment variable)"),
    ("PREVIOUS_SECRETS", "empty", "comma-separated older secrets still accepted for reading"),
    ("PREVIOUS_SECRETS_FILE", "none", "a file holding PREVIOUS_SECRETS"),
    ("ETCD_ENDPOINTS", "unset: embedded store", "comma-separated http(s)://host:port of etcd"),
    ("ETCD_PREFIX", DEFAULT_ETCD_PREFIX, "key prefix, so several providers can share one etcd"),
    ("ETCD_CA_FILE", "system roots", "CA bundle for https etcd endpoints"),
    ("ETCD_CERT_FILE", "none", "client certificate for etcd mutual TLS (with ETCD_KEY_FILE)"),
    ("ETCD_KEY_FILE", "none", "client private key for etcd mutual TLS"),
    ("ETCD_USERNAME", "none", "etcd user (with ETCD_PASSWORD)"),
    ("ETCD_PASSWORD", "none", "etcd password"),
    ("ETCD_TIMEOUT_SECONDS", "2", "deadline of each etcd call"),
    ("OPENROUTER_BASE_URL", DEFAULT_OPENROUTER_BASE_URL, "OpenRouter, for /auth and /api/v1"),
    ("STATE_TTL_SECONDS", "600", "lifetime of pending authorizations and codes (60-600)"),
    ("UPSTREAM_TIMEOUT_SECONDS", "10", "deadline of each call to OpenRouter"),
    (
        "RATE_LIMITS",
        DEFAULT_RATE_LIMITS,
        "per client address, endpoint=N/s|min|h, comma-separated; 'off' disables",
    ),
    (
        "TRUSTED_PROXIES",
        "0",
        "proxies in front (ingress) whose X-Forwarded-For names the client address",
    ),
    ("SHUTDOWN_TIMEOUT_SECONDS", "10", "on SIGTERM, how long in-flight requests may finish"),
    (
        "ME_CACHE_SECONDS",
        "10",
        "how long /me and /introspect reuse a key check (a revoked key stays valid that "
        "long); 0 disables",
    ),
    ("ME_NEGATIVE_CACHE_SECONDS", "2", "how long /me remembers a rejected key"),
    (
        "KEY_CHECK_CONCURRENCY",
        "32",
        "key checks sent to OpenRouter at once, per process; more wait briefly, then get 503",
    ),
    (
        "CLIENT_ID_METADATA_DOCUMENTS",
        "on",
        "accept https URLs as client_id (fetched documents; needs egress to client hosts): on|off",
    ),
    (
        "METADATA_DOCUMENTS_ALLOW_LOOPBACK",
        "false",
        "development only, with a loopback ISSUER_URL: client_id URLs on loopback, http or https",
    ),
    (
        "METRICS_PORT",
        "0",
        "port that alone serves /metrics (the chart sets 9464); 0: no metrics, so that "
        "several servers run side by side on one machine",
    ),
    (
        "REQUEST_DEADLINE_SECONDS",
        "15",
        "total time a client has to send a request's head and body",
    ),
    (
        "KEEP_ALIVE_SECONDS",
        "5",
        "how long an idle keep-alive connection stays open; at most REQUEST_DEADLINE_SECONDS "
        "(the default is lowered to it)",
    ),
    ("MAX_CONNECTIONS", "1000", "open connections per process; more are closed at once"),
    (
        "MAX_CONNECTIONS_PER_ADDRESS",
        "a tenth of MAX_CONNECTIONS; none with TRUSTED_PROXIES",
        "open connections one client address (an IPv6 /64) may hold per process; 0: no limit",
    ),
    (
        "INTROSPECTION_CREDENTIALS",
        "empty: no /introspect",
        f"comma-separated id:secret pairs (secrets at least {MIN_SECRET_LENGTH} characters) "
        "that may call /introspect",
    ),
    ("INTROSPECTION_CREDENTIALS_FILE", "none", "a file holding INTROSPECTION_CREDENTIALS"),
    (
        "OPERATOR_NAME",
        "none",
        "who runs this server, shown on the consent and landing pages (at most 100 characters)",
    ),
    (
        "SERVICE_DOCUMENTATION_URL",
        DEFAULT_SERVICE_DOCUMENTATION_URL,
        "the docs for developers: service_documentation in the metadata, linked from /",
    ),
    (
        "ACCESS_TOKENS",
        OPENROUTER_KEY_TOKENS,
        f"{OPENROUTER_KEY_TOKENS}: the client gets the key; {BOUND_TOKENS}: it gets tokens "
        "bound to one RESOURCE_SERVERS entry, which alone exchanges them for the key",
    ),
    (
        "RESOURCE_SERVERS",
        "empty",
        'JSON array of {"id", "secret", "resource"}, one per MCP server; required in bound mode '
        f"(secrets at least {MIN_SECRET_LENGTH} characters; resource https, or http on loopback)",
    ),
    ("RESOURCE_SERVERS_FILE", "none", "a file holding RESOURCE_SERVERS"),
    ("ACCESS_TOKEN_SECONDS", "3600", "bound mode: lifetime of an access token (at least 1)"),
    (
        "GRANT_SECONDS",
        "2592000",
        "bound mode: absolute life of one login (30 days); refreshing never extends it",
    ),
)


# The defaults as an operator would write them; the parsers read them from here.
DEFAULTS = {name: default for name, default, _ in SETTINGS_HELP}


def default_issuer(port: int) -> str:
    """The issuer of a local run on ``port``, when ISSUER_URL is not set."""
    return f"http://127.0.0.1:{port}"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_ip_address(host: str) -> bool:
    """Whether ``host`` (as ``urlsplit`` gives it: no brackets) is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_issuer_url(name: str, value: str) -> str:
    """The issuer rule, shared with the operator: absolute, no trailing slash, query or
    fragment, https unless the host is loopback."""
    return _base_url(name, value, require_https=True)


def check_secret(name: str, value: str) -> str:
    """The secret rule, shared with the operator: long enough, and no comma (secrets are
    listed comma-separated in PREVIOUS_SECRETS once rotated)."""
    if len(value) < MIN_SECRET_LENGTH or "," in value:
        raise SettingsError(
            f"{name} must be at least {MIN_SECRET_LENGTH} characters long and contain no comma"
        )
    return value


def _url_parts(name: str, value: str) -> SplitResult:
    """``urlsplit``, with a malformed host or port refused here rather than where it is used."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port that is not a number, or out of range, raises only when read
    except ValueError:
        raise SettingsError(f"{name} has a malformed host or port: {value!r}") from None
    return parts


def _absolute_url(name: str, value: str) -> SplitResult:
    parts = _url_parts(name, value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return parts


def _base_url(name: str, value: str, *, require_https: bool) -> str:
    parts = _absolute_url(name, value)
    if parts.username is not None or parts.password is not None:
        raise SettingsError(f"{name} must not contain a user name or password")
    if parts.query or parts.fragment or value.endswith("/"):
        raise SettingsError(f"{name} must have no trailing slash, query or fragment: {value!r}")
    if require_https and parts.scheme != "https" and not is_loopback_host(parts.hostname):
        raise SettingsError(f"{name} must use https unless its host is loopback: {value!r}")
    return value


def _number(env: Mapping[str, str], name: str, low: float, high: float) -> float:
    raw = env.get(name, "").strip() or DEFAULTS[name]
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, low: int, high: int) -> int:
    """A count or a port: ``1.5`` is refused rather than quietly read as 1."""
    value = _number(env, name, low, high)
    if not value.is_integer():
        raise SettingsError(f"{name} must be a whole number, got {env.get(name, '').strip()!r}")
    return int(value)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name, "").strip() or DEFAULTS[name]).lower()
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def _from_env_or_file(env: Mapping[str, str], name: str, *, optional: bool = False) -> str:
    """A value given directly or as ``NAME_FILE`` (a mounted secret), not both.

    An ``optional`` file may be absent: a Secret mounted as a volume leaves out the keys
    it does not have.
    """
    value, path = env.get(name, ""), env.get(f"{name}_FILE", "").strip()
    if not path:
        return value
    if value:
        raise SettingsError(f"set {name} or {name}_FILE, not both")
    if optional and not Path(path).exists():
        return ""
    try:
        return Path(path).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise SettingsError(f"{name}_FILE names no readable UTF-8 file: {path!r}") from None


def _existing_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise SettingsError(f"{name} names no readable file: {raw!r}")
    return path


def _etcd(env: Mapping[str, str]) -> EtcdSettings | None:
    raw = env.get("ETCD_ENDPOINTS", "").strip()
    if not raw:
        return None
    endpoints = tuple(e.strip() for e in raw.split(",") if e.strip())
    hosts = [_etcd_endpoint(endpoint) for endpoint in endpoints]
    if len({urlsplit(e).scheme for e in endpoints}) > 1:
        raise SettingsError("ETCD_ENDPOINTS must all use http or all use https")
    if len(hosts) > 1 and not all(is_ip_address(host) for host in hosts):
        raise SettingsError(
            "ETCD_ENDPOINTS with several endpoints must list IP addresses; "
            f"give one DNS name that resolves to all members instead, got {raw!r}"
        )
    prefix = env.get("ETCD_PREFIX", DEFAULT_ETCD_PREFIX)
    if not prefix.startswith("/") or not prefix.endswith("/"):
        raise SettingsError(f"ETCD_PREFIX must start and end with '/', got {prefix!r}")
    cert = _pem_file(env, "ETCD_CERT_FILE", x509.load_pem_x509_certificates, "certificate")
    key = _pem_file(env, "ETCD_KEY_FILE", _unencrypted_key, "unencrypted private key")
    if (cert is None) != (key is None):
        raise SettingsError("ETCD_CERT_FILE and ETCD_KEY_FILE must be set together")
    username, password = env.get("ETCD_USERNAME") or None, env.get("ETCD_PASSWORD") or None
    if (username is None) != (password is None):
        raise SettingsError("ETCD_USERNAME and ETCD_PASSWORD must be set together")
    return EtcdSettings(
        endpoints=endpoints,
        prefix=prefix,
        ca_file=_pem_file(env, "ETCD_CA_FILE", x509.load_pem_x509_certificates, "certificate"),
        cert_file=cert,
        key_file=key,
        username=username,
        password=password,
        timeout_seconds=_number(env, "ETCD_TIMEOUT_SECONDS", 0.1, 60),
    )


def _pem_file(
    env: Mapping[str, str], name: str, load: Callable[[bytes], object], what: str
) -> Path | None:
    """A file that ``load`` reads; otherwise gRPC would take it and fail only when connecting,
    which looks like etcd not answering."""
    path = _existing_file(env, name)
    if path is not None:
        try:
            load(path.read_bytes())
        except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
            raise SettingsError(f"{name} holds no PEM {what}: {str(path)!r}") from None
    return path


def _unencrypted_key(data: bytes) -> object:
    return serialization.load_pem_private_key(data, password=None)


def _etcd_endpoint(endpoint: str) -> str:
    """One entry of ETCD_ENDPOINTS, ``http(s)://host:port`` and nothing else; its host."""
    parts = _url_parts("ETCD_ENDPOINTS", endpoint)
    extra = parts.username is not None or parts.path.strip("/") or parts.query or parts.fragment
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port or extra:
        raise SettingsError(
            f"ETCD_ENDPOINTS entries must look like http://host:port, got {endpoint!r}"
        )
    return parts.hostname


def _rate_limits(env: Mapping[str, str]) -> tuple[RateLimit, ...]:
    raw = env.get("RATE_LIMITS", "").strip() or DEFAULT_RATE_LIMITS
    if raw.lower() == "off":
        return ()
    limits: dict[str, RateLimit] = {}
    for rule in raw.split(","):
        endpoint, _, rate = rule.strip().partition("=")
        count, _, period = rate.partition("/")
        if (
            endpoint not in RATE_LIMITED_ENDPOINTS
            or not count.isdigit()
            or int(count) < 1
            or period not in _PERIODS
        ):
            raise SettingsError(
                f"RATE_LIMITS entries must look like token=120/min with an endpoint among "
                f"{', '.join(RATE_LIMITED_ENDPOINTS)}, or be 'off'; got {rule.strip()!r}"
            )
        limits[endpoint] = RateLimit(endpoint, int(count), _PERIODS[period])
    return tuple(limits.values())


def load_settings(env: Mapping[str, str], *, port: int) -> Settings:
    """Build the settings from ``env``; ``port`` makes the default issuer for local runs."""
    issuer = check_issuer_url("ISSUER_URL", env.get("ISSUER_URL") or default_issuer(port))
    etcd = _etcd(env)
    raw_secret = _from_env_or_file(env, "SECRET")
    generated = not raw_secret
    if generated:
        if etcd is not None:
            raise SettingsError(
                "SECRET is required when ETCD_ENDPOINTS is set: every replica "
                "must open the state the others wrote"
            )
        raw_secret = secrets.token_urlsafe(32)
    previous = tuple(
        s
        for s in (
            p.strip() for p in _from_env_or_file(env, "PREVIOUS_SECRETS", optional=True).split(",")
        )
        if s
    )
    return Settings(
        issuer_url=issuer,
        secret=check_secret("SECRET", raw_secret),
        previous_secrets=tuple(check_secret("PREVIOUS_SECRETS", s) for s in previous),
        secret_generated=generated,
        etcd=etcd,
        openrouter_base_url=_base_url(
            "OPENROUTER_BASE_URL",
            env.get("OPENROUTER_BASE_URL") or DEFAULT_OPENROUTER_BASE_URL,
            require_https=False,
        ),
        state_ttl_seconds=_integer(env, "STATE_TTL_SECONDS", 60, 600),
        upstream_timeout_seconds=_number(env, "UPSTREAM_TIMEOUT_SECONDS", 0.1, 120),
        rate_limits=_rate_limits(env),
        trusted_proxies=_integer(env, "TRUSTED_PROXIES", 0, 10),
        shutdown_timeout_seconds=_number(env, "SHUTDOWN_TIMEOUT_SECONDS", 0, 300),
        me_cache_seconds=_number(env, "ME_CACHE_SECONDS", 0, 300),
        me_negative_cache_seconds=_number(env, "ME_NEGATIVE_CACHE_SECONDS", 0, 60),
        key_check_concurrency=_integer(env, "KEY_CHECK_CONCURRENCY", 1, 10_000),
        metadata_documents=_flag(env, "CLIENT_ID_METADATA_DOCUMENTS"),
        metadata_documents_allow_loopback=_allow_loopback_documents(env, issuer),
        metrics_port=_integer(env, "METRICS_PORT", 0, 65535),
        **_connection_limits(env),
        introspection_credentials=_introspection_credentials(env),
        operator_name=_operator_name(env),
        service_documentation_url=_documentation_url(env),
        **_token_mode(env),
    )


def _connection_limits(env: Mapping[str, str]) -> dict[str, float]:
    """The limits on connections, checked against each other."""
    deadline = _number(env, "REQUEST_DEADLINE_SECONDS", 1, 300)
    keep_alive = _number(env, "KEEP_ALIVE_SECONDS", 0.5, 300)
    if not env.get("KEEP_ALIVE_SECONDS", "").strip():
        keep_alive = min(keep_alive, deadline)
    elif keep_alive > deadline:
        raise SettingsError(
            f"KEEP_ALIVE_SECONDS ({keep_alive:g}) must not exceed "
            f"REQUEST_DEADLINE_SECONDS ({deadline:g})"
        )
    total = _integer(env, "MAX_CONNECTIONS", 1, 1_000_000)
    if env.get("MAX_CONNECTIONS_PER_ADDRESS", "").strip():
        per_address = _integer(env, "MAX_CONNECTIONS_PER_ADDRESS", 0, total)
    elif _integer(env, "TRUSTED_PROXIES", 0, 10):
        per_address = 0  # every connection comes from a proxy: the proxy limits clients
    else:
        per_address = max(1, total // 10)
    return {
        "request_deadline_seconds": deadline,
        "keep_alive_seconds": keep_alive,
        "max_connections": total,
        "max_connections_per_address": per_address,
    }


def _introspection_credentials(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    raw = _from_env_or_file(env, "INTROSPECTION_CREDENTIALS")
    pairs: dict[str, str] = {}
    for entry in (e.strip() for e in raw.split(",") if e.strip()):
        caller, sep, secret = entry.partition(":")
        if not sep or not caller or not caller.isprintable() or caller in pairs:
            raise SettingsError(
                "INTROSPECTION_CREDENTIALS entries must look like id:secret with distinct ids"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"INTROSPECTION_CREDENTIALS secret for {caller!r} must be at least "
                f"{MIN_SECRET_LENGTH} characters long"
            )
        pairs[caller] = secret
    return tuple(pairs.items())


def _documentation_url(env: Mapping[str, str]) -> str:
    name = "SERVICE_DOCUMENTATION_URL"
    value = env.get(name, "").strip() or DEFAULTS[name]
    _absolute_url(name, value)
    return value


def _operator_name(env: Mapping[str, str]) -> str | None:
    name = " ".join(env.get("OPERATOR_NAME", "").split())
    if len(name) > 100 or not name.isprintable():
        raise SettingsError("OPERATOR_NAME must be at most 100 printable characters")
    return name or None


def _allow_loopback_documents(env: Mapping[str, str], issuer: str) -> bool:
    allowed = _flag(env, "METADATA_DOCUMENTS_ALLOW_LOOPBACK")
    if allowed and not is_loopback_host(urlsplit(issuer).hostname or ""):
        raise SettingsError(
            "METADATA_DOCUMENTS_ALLOW_LOOPBACK is for development: it needs a loopback ISSUER_URL"
        )
    return allowed


def _token_mode(env: Mapping[str, str]) -> dict[str, object]:
    """ACCESS_TOKENS and the settings only ``bound`` mode uses."""
    mode = env.get("ACCESS_TOKENS", "").strip() or DEFAULTS["ACCESS_TOKENS"]
    if mode not in (OPENROUTER_KEY_TOKENS, BOUND_TOKENS):
        raise SettingsError(
            f"ACCESS_TOKENS must be {OPENROUTER_KEY_TOKENS} or {BOUND_TOKENS}, got {mode!r}"
        )
    servers = _resource_servers(env)
    if mode == BOUND_TOKENS and not servers:
        raise SettingsError("ACCESS_TOKENS=bound needs RESOURCE_SERVERS (the MCP servers)")
    introspecting = {caller for caller, _ in _introspection_credentials(env)}
    if any(server.id in introspecting for server in servers):
        raise SettingsError("RESOURCE_SERVERS ids must differ from INTROSPECTION_CREDENTIALS ids")
    return {
        "access_tokens": mode,
        "resource_servers": servers,
        "access_token_seconds": int(_number(env, "ACCESS_TOKEN_SECONDS", 1, 86400)),
        "grant_seconds": int(_number(env, "GRANT_SECONDS", 60, 366 * 86400)),
    }


_RESOURCE_SERVERS_SHAPE = (
    'RESOURCE_SERVERS must be a JSON array of {"id", "secret", "resource"} objects'
)


def _resource_servers(env: Mapping[str, str]) -> tuple[ResourceServer, ...]:
    raw = _from_env_or_file(env, "RESOURCE_SERVERS").strip()
    if not raw:
        return ()
    try:
        entries = json.loads(raw)
    except ValueError:
        raise SettingsError(f"{_RESOURCE_SERVERS_SHAPE}; it is not valid JSON") from None
    if not isinstance(entries, list):
        raise SettingsError(_RESOURCE_SERVERS_SHAPE)
    servers = tuple(_resource_server(entry) for entry in entries)
    if len({s.id for s in servers}) != len(servers):
        raise SettingsError("RESOURCE_SERVERS ids must be distinct")
    if len({s.canonical for s in servers}) != len(servers):
        raise SettingsError("RESOURCE_SERVERS resources must be distinct")
    return servers


def _resource_server(entry: object) -> ResourceServer:
    if not isinstance(entry, dict) or set(entry) != {"id", "secret", "resource"}:
        raise SettingsError(_RESOURCE_SERVERS_SHAPE)
    if not all(isinstance(v, str) for v in entry.values()):
        raise SettingsError(f"{_RESOURCE_SERVERS_SHAPE} of strings")
    server_id, secret, resource = entry["id"], entry["secret"], entry["resource"]
    if not server_id or not server_id.isprintable() or ":" in server_id:
        raise SettingsError("RESOURCE_SERVERS ids must be printable, non-empty and without ':'")
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(
            f"RESOURCE_SERVERS secret for {server_id!r} must be at least "
            f"{MIN_SECRET_LENGTH} characters long"
        )
    try:
        parts = urlsplit(resource)
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError:
        raise SettingsError(
            f"RESOURCE_SERVERS resource for {server_id!r} is not a valid URI: {resource!r}"
        ) from None
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback_host(parts.hostname or "")
    )
    if not secure or not parts.hostname or "#" in resource:
        raise SettingsError(
            f"RESOURCE_SERVERS resource for {server_id!r} must be an https URI (http only on "
            f"a loopback host) without a fragment, got {resource!r}"
        )
    return ResourceServer(server_id, secret, resource)
