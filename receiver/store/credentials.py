"""ClickHouse credentials: where they come from, and the embedded server's own password.

A configured ClickHouse (``clickhouse.url``) gets its user from ``clickhouse.user`` (else the
URL's, else ``default``) and its password from the environment variable
``OTEL_RECEIVER_CLICKHOUSE_PASSWORD`` or the file ``clickhouse.password_file`` (first line),
else the URL's; never from the TOML file. ``clickhouse.ca_file`` verifies an https server
against a private CA. Passwords are never logged: ``safe_url`` strips them from URLs that are.

The embedded ClickHouse gets a random password, generated once into ``<its data dir>/password``
(mode 0600) and reused, for the user ``otel`` (full rights, loopback only). Every client the
project starts (the receiver, ``schema apply``, the CLI's queries, the tests) reads it from
there. clickhouse-local itself always runs its start-up queries as ``default`` without a
password, so ``default`` must stay passwordless: it is limited to loopback and may do nothing
but ``SYSTEM START/STOP LISTEN`` (it can read or write no table).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from receiver.config import ConfigError, Settings

PASSWORD_ENV = "OTEL_RECEIVER_CLICKHOUSE_PASSWORD"
EMBEDDED_USER = "otel"
EMBEDDED_PASSWORD_FILE = "password"
USERS_FILE = "users.xml"


@dataclass(frozen=True)
class Credentials:
    """User, password and CA bundle for a ClickHouse client (the password is never shown)."""

    username: str = ""
    password: str | None = field(default=None, repr=False)
    ca_file: str = ""

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``clickhouse_connect.get_client``."""
        kwargs: dict[str, Any] = {}
        if self.username:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password
        if self.ca_file:
            kwargs["ca_cert"] = self.ca_file
            kwargs["verify"] = True
        return kwargs

    def http_headers(self) -> dict[str, str]:
        """Headers that authenticate a plain HTTP request to ClickHouse."""
        headers = {}
        if self.username:
            headers["X-ClickHouse-User"] = self.username
        if self.password is not None:
            headers["X-ClickHouse-Key"] = self.password
        return headers

    def dsn(self, url: str) -> str:
        """``url`` with these credentials in it (for tools that take one URL)."""
        parts = urlsplit(url)
        user = quote(self.username or "default", safe="")
        secret = f":{quote(self.password, safe='')}" if self.password else ""
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{user}{secret}@{host}"))


def safe_url(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def read_secret(path: str | Path, setting: str) -> str:
    """The first line of a secret file; raises ConfigError naming the setting."""
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    return lines[0].strip() if lines else ""


def clickhouse_credentials(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> Credentials:
    """The credentials for the configured ClickHouse URL (empty fields: the URL's own)."""
    environ = os.environ if environ is None else environ
    password: str | None = None
    if environ.get(PASSWORD_ENV):
        password = environ[PASSWORD_ENV]
    elif settings.clickhouse_password_file:
        password = read_secret(settings.clickhouse_password_file, "clickhouse_password_file")
    return Credentials(settings.clickhouse_user, password, settings.clickhouse_ca_file)


# -- the embedded ClickHouse ------------------------------------------------------------------


def embedded_password(data_dir: Path) -> str:
    """The embedded server's password: read from ``<data_dir>/password``, or generated there
    once (mode 0600, created exclusively so two starts cannot race)."""
    path = Path(data_dir) / EMBEDDED_PASSWORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_secret(path, "embedded ClickHouse password file")
    password = secrets.token_urlsafe(24)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
        out.flush()
        os.fsync(out.fileno())
    return password


def embedded_credentials(data_dir: Path) -> Credentials:
    return Credentials(EMBEDDED_USER, embedded_password(data_dir))


def users_xml(password: str) -> str:
    """The embedded server's users: ``otel`` with the password, and the restricted
    ``default`` that clickhouse-local's own session needs."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f"""<clickhouse>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <users>
    <!-- clickhouse-local's own session (start listening, keep-alive): no table access -->
    <default>
      <no_password/>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <grants><query>GRANT SYSTEM LISTEN ON *.*</query></grants>
    </default>
    <{EMBEDDED_USER}>
      <password_sha256_hex>{digest}</password_sha256_hex>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </{EMBEDDED_USER}>
  </users>
</clickhouse>
"""


def write_users_file(run_dir: Path, password: str) -> Path:
    """Write ``users.xml`` (mode 0600) for the embedded server's config to name."""
    path = Path(run_dir) / USERS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(users_xml(password))
    os.chmod(path, 0o600)
    return path
