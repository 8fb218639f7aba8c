"""Who may use the UI: nobody needs to log in on loopback; off loopback the UI asks for one of
the receiver's bearer tokens (``receiver.ingest.auth``: the same tokens file and variable,
compared the same constant-time way) and answers with an HttpOnly, SameSite=Strict cookie
naming a random server-side login that expires. Scripts may send ``Authorization: Bearer``.

Exposure rule, as for ingest (``check_exposure``): a non-loopback ``ui.listen`` without any
token refuses to start unless client certificates are required (``tls.client_ca_file``) or
``--insecure-allow-unauthenticated`` is given.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import quote

from aiohttp import web

from receiver.config import ConfigError, Settings, is_loopback, parse_host_port
from receiver.ingest.auth import TOKENS_ENV, Authenticator, Token, Unauthenticated

COOKIE = "otel_ui_login"
LOGIN_SECONDS = 12 * 3600
OPEN_PATHS = ("/login", "/static/")


def check_ui_exposure(settings: Settings, tokens: list[Token]) -> list[str]:
    """Refuse (ConfigError) an unauthenticated UI off loopback; returns warnings to log."""
    if not settings.ui_listen or is_loopback(parse_host_port(settings.ui_listen, "ui_listen")[0]):
        return []
    where = f"ui_listen={settings.ui_listen}"
    if not tokens and not settings.tls_client_ca_file:
        if not settings.insecure_allow_unauthenticated:
            raise ConfigError(
                f"{where} is not a loopback address and the UI has no login: set "
                f"auth_tokens_file or {TOKENS_ENV} (a token logs in), or tls_client_ca_file "
                "(client certificates), or pass --insecure-allow-unauthenticated to show the "
                "telemetry to anyone who can reach the port"
            )
        return [f"serving the web UI without authentication on {where}"]
    if tokens and not settings.tls_cert_file:
        return [f"UI tokens and login cookies travel in clear text on {where}: configure TLS"]
    return []


class Logins:
    """Logins made with a valid token: random ids kept in memory (a restart logs out)."""

    def __init__(self, authenticator: Authenticator, secure_cookie: bool) -> None:
        self.authenticator = authenticator
        self.secure_cookie = secure_cookie
        self._expiry: dict[str, float] = {}

    @property
    def required(self) -> bool:
        return self.authenticator.enabled

    def login(self, token: str) -> str | None:
        """A new login id for a valid token, else None."""
        try:
            self.authenticator.authenticate(f"Bearer {token}", "ui")
        except Unauthenticated:
            return None
        now = time.monotonic()
        self._expiry = {k: t for k, t in self._expiry.items() if t > now}
        login = secrets.token_urlsafe(32)
        self._expiry[login] = now + LOGIN_SECONDS
        return login

    def logout(self, login: str) -> None:
        self._expiry.pop(login, None)

    def allows(self, request: web.Request) -> bool:
        if not self.required or request.path.startswith(OPEN_PATHS):
            return True
        login = request.cookies.get(COOKIE, "")
        if login and self._expiry.get(login, 0.0) > time.monotonic():
            return True
        header = request.headers.get("Authorization")
        if header:
            try:
                self.authenticator.authenticate(header, "ui")
                return True
            except Unauthenticated:
                return False
        return False

    def set_cookie(self, response: web.StreamResponse, login: str) -> None:
        response.set_cookie(
            COOKIE,
            login,
            max_age=LOGIN_SECONDS,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
        )


def login_redirect(request: web.Request) -> str:
    return "/login?next=" + quote(request.path_qs, safe="")


def safe_next(target: str) -> str:
    """Only a path on this server (never ``//host`` or a scheme): no open redirect."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
