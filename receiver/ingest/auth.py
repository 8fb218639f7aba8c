"""Bearer-token authentication for both OTLP front ends.

Tokens never live in the TOML file: they come from ``auth.tokens_file`` and/or the
environment variable ``OTEL_RECEIVER_AUTH_TOKENS``. Both hold entries of the form ``TOKEN`` or
``TENANT:TOKEN`` (one per line in the file, ``#`` comments allowed; comma or whitespace
separated in the variable). Several tokens may be valid at once, which is how a token is
rotated: add the new one, move the clients, remove the old one (restart, or SIGHUP to re-read).

A client sends ``authorization: Bearer <token>`` (gRPC metadata or HTTP header). The token is
hashed (SHA-256) and compared with every configured token's hash with
``hmac.compare_digest``, without stopping at the first match, so the answer time says nothing
about which token was close or how long it is. A failure is answered ``UNAUTHENTICATED`` / 401
with the same message whatever was wrong (missing header, wrong scheme, unknown token) and
counted in ``otel_receiver_auth_failures_total{transport,reason}``. The gRPC health service
and ``GET /health`` stay open, for load balancers.

A token with a tenant stamps ``tenant.name`` on the resource of every item the client sends
(replacing whatever the client put there, so a tenant cannot pose as another); see
``receiver.ingest.limits``, which does it in the same pass over the request as the input limits.

Exposure rule (checked at start): with no token configured, authentication is off, which is
allowed only when every OTLP port listens on loopback, or clients must present a certificate
signed by ``tls.client_ca_file`` (mTLS), or ``--insecure-allow-unauthenticated`` is given.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from prometheus_client import Counter

from receiver.config import ConfigError, Settings, is_loopback, parse_host_port

log = structlog.get_logger("receiver.ingest.auth")

TOKENS_ENV = "OTEL_RECEIVER_AUTH_TOKENS"
TENANT_ATTRIBUTE = "tenant.name"
MIN_TOKEN_CHARS = 16
# What every rejected client is told, whatever the reason (no hint for guessing).
UNAUTHENTICATED_MESSAGE = "unauthenticated"

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what fits an HTTP header unescaped

AUTH_FAILURES = Counter(
    "otel_receiver_auth_failures_total",
    "OTLP requests refused for missing or invalid credentials",
    ["transport", "reason"],
)


class Unauthenticated(Exception):
    """The request carries no valid token; ``reason`` is for the counter, never the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(UNAUTHENTICATED_MESSAGE)
        self.reason = reason


@dataclass(frozen=True)
class Token:
    digest: bytes  # SHA-256 of the token
    tenant: str  # "" when the entry names no tenant


def _digest(token: str | bytes) -> bytes:
    return hashlib.sha256(
        token.encode("utf-8", "surrogateescape") if isinstance(token, str) else token
    ).digest()


def parse_entry(entry: str, source: str) -> Token:
    """``TOKEN`` or ``TENANT:TOKEN`` (the first colon separates them); raises ConfigError
    naming the source, never the token."""
    tenant, sep, token = entry.partition(":")
    if not sep:
        tenant, token = "", entry
    if sep and not _TENANT.fullmatch(tenant):
        raise ConfigError(
            f"{source}: tenant names are letters, digits, '.', '_' and '-' (an entry is "
            "TOKEN or TENANT:TOKEN)"
        )
    if not _TOKEN.fullmatch(token):
        raise ConfigError(f"{source}: a token is visible ASCII characters without spaces")
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{source}: a token must be at least {MIN_TOKEN_CHARS} characters "
            "(generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return Token(_digest(token), tenant)


def parse_tokens_file(text: str, source: str) -> list[Token]:
    tokens = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            tokens.append(parse_entry(line, f"{source} line {number}"))
    return tokens


def load_tokens(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Token]:
    """Every configured token, from the tokens file and the environment."""
    environ = os.environ if environ is None else environ
    tokens: list[Token] = []
    if settings.auth_tokens_file:
        path = Path(settings.auth_tokens_file).expanduser()
        try:
            text = path.read_text()
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(
                f"auth_tokens_file: cannot read {path}: {exc.strerror or exc}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "tokens_file_readable_by_others",
                file=str(path),
                mode=oct(stat.S_IMODE(mode)),
                hint="chmod 600",
            )
        tokens += parse_tokens_file(text, f"auth_tokens_file {path}")
    for index, entry in enumerate(re.split(r"[\s,]+", environ.get(TOKENS_ENV, "").strip())):
        if entry:
            tokens.append(parse_entry(entry, f"env {TOKENS_ENV} entry {index + 1}"))
    return tokens


def check_exposure(settings: Settings, tokens: list[Token]) -> list[str]:
    """Refuse (ConfigError) to serve unauthenticated clients on a non-loopback address;
    returns warnings worth logging (tokens sent in clear text over the network)."""
    listens = [("grpc_listen", settings.grpc_listen)]
    if settings.http_listen:
        listens.append(("http_listen", settings.http_listen))
    exposed = [
        f"{name}={value}"
        for name, value in listens
        if not is_loopback(parse_host_port(value, name)[0])
    ]
    if not exposed:
        return []
    if not tokens and not settings.tls_client_ca_file:
        if not settings.insecure_allow_unauthenticated:
            raise ConfigError(
                f"{', '.join(exposed)} is not a loopback address and no client authentication "
                f"is configured: set auth_tokens_file or {TOKENS_ENV} (bearer tokens), or "
                "tls_client_ca_file (client certificates), or pass "
                "--insecure-allow-unauthenticated to accept anyone who can reach the port"
            )
        return [f"accepting unauthenticated telemetry on {', '.join(exposed)}"]
    if tokens and not settings.tls_cert_file:
        return [f"bearer tokens travel in clear text on {', '.join(exposed)}: configure TLS"]
    return []


class Authenticator:
    """Checks ``authorization`` values against the configured tokens."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tuple(tokens)

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def replace(self, tokens: list[Token]) -> None:
        """Swap the token set (SIGHUP); requests in flight finish with the old one."""
        self._tokens = tuple(tokens)

    def authenticate(self, authorization: str | None, transport: str) -> str:
        """The tenant of the presented token ("" for none); raises Unauthenticated.

        Always succeeds with "" when no token is configured.
        """
        if not self._tokens:
            return ""
        try:
            return self._check(authorization)
        except Unauthenticated as exc:
            AUTH_FAILURES.labels(transport, exc.reason).inc()
            raise

    def _check(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthenticated("missing")
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthenticated("malformed")
        presented = _digest(credentials.strip())
        tenant: str | None = None
        for token in self._tokens:  # no early exit: same time whichever token matches
            if hmac.compare_digest(presented, token.digest) and tenant is None:
                tenant = token.tenant
        if tenant is None:
            raise Unauthenticated("invalid")
        return tenant
