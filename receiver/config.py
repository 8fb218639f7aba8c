"""Receiver settings: one typed object fed by defaults, a TOML file, the environment and flags.

Precedence is flag > environment (``OTEL_RECEIVER_<NAME>``) > file > default. Every setting is
declared once, in ``Settings``; its TOML location comes from the field metadata and its
environment variable from its name, so the three sources can never drift apart. Validation
happens once, at start, and names the bad setting and where its value came from.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from receiver.query.alert_rules import AlertRule, parse_rules
from receiver.store.codex_prices import DEFAULT_PRICES, CodexPrice, parse_prices

ENV_PREFIX = "OTEL_RECEIVER_"
DEFAULT_CONFIG_FILE = Path("config/receiver.toml")


_BOOLS = {"1": True, "true": True, "yes": True, "on": True}
_BOOLS.update({"0": False, "false": False, "no": False, "off": False, "": False})


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting and its source."""


def _setting(default: Any, toml: str, help: str) -> Any:
    metadata = {"toml": toml, "help": help}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "agent-otel-receiver")


@dataclass(frozen=True)
class Settings:
    """Every receiver setting, with its TOML path and meaning."""

    data_dir: str = _setting(
        _default_data_dir(), "data_dir", "directory for the embedded ClickHouse and the spool"
    )
    log_level: str = _setting("info", "log_level", "debug, info, warning or error")
    grpc_listen: str = _setting("127.0.0.1:4317", "grpc.listen", "OTLP/gRPC listen address")
    grpc_max_receive_bytes: int = _setting(
        16 * 1024 * 1024, "grpc.max_receive_bytes", "largest accepted gRPC message, in bytes"
    )
    http_listen: str = _setting(
        "127.0.0.1:4318", "http.listen", "OTLP/HTTP listen address; empty disables it"
    )
    http_max_receive_bytes: int = _setting(
        16 * 1024 * 1024, "http.max_receive_bytes", "largest accepted HTTP body after gunzip"
    )
    clickhouse_url: str = _setting(
        "", "clickhouse.url", "ClickHouse HTTP URL; empty starts the embedded ClickHouse"
    )
    clickhouse_database: str = _setting("otel", "clickhouse.database", "database for all tables")
    clickhouse_ttl_days: int = _setting(30, "clickhouse.ttl_days", "row TTL in days; 0 keeps rows")
    embedded_listen_host: str = _setting(
        "127.0.0.1", "embedded.listen_host", "embedded ClickHouse listen address"
    )
    embedded_http_port: int = _setting(8123, "embedded.http_port", "embedded ClickHouse HTTP port")
    embedded_tcp_port: int = _setting(9000, "embedded.tcp_port", "embedded ClickHouse native port")
    # 50,000: at high rates ClickHouse then gets about one insert per table per second instead of
    # several 10,000-row parts to merge (docs/BENCHMARKS.md, round 3: ~30 % less server CPU).
    batch_max_rows: int = _setting(50_000, "batch.max_rows", "rows per table that trigger a flush")
    batch_max_delay: float = _setting(1.0, "batch.max_delay", "seconds a row may wait for a flush")
    batch_idle_rows: int = _setting(
        10_000,
        "batch.idle_rows",
        "rows waiting (all tables) that flush as soon as no rows came for batch.idle_delay; 0: off",
    )
    batch_idle_delay: float = _setting(
        0.05, "batch.idle_delay", "seconds without new rows that flush a batch of batch.idle_rows"
    )
    batch_max_queue_bytes: int = _setting(
        256 * 1024 * 1024,
        "batch.max_queue_bytes",
        "request bytes waiting for storage before new requests are refused (retryable)",
    )
    spool_max_bytes: int = _setting(
        1024**3, "spool.max_bytes", "on-disk spool cap in bytes (<data_dir>/spool)"
    )
    delivery_ack_timeout: float = _setting(
        5.0,
        "delivery.ack_timeout",
        "seconds a request waits for ClickHouse before it is answered from the fsynced spool",
    )
    delivery_max_attempts: int = _setting(
        30,
        "delivery.max_attempts",
        "failed attempts (ClickHouse answering) before a spooled batch becomes a dead letter",
    )
    deadletter_max_bytes: int = _setting(
        256 * 1024**2,
        "deadletter.max_bytes",
        "dead-letter directory cap in bytes (<data_dir>/spool/dead); past it refused rows drop",
    )
    shutdown_timeout: float = _setting(
        10.0, "shutdown_timeout", "seconds a graceful shutdown may take"
    )
    redaction_drop: tuple[str, ...] = _setting(
        (), "redaction.drop", "attribute key globs removed before storage"
    )
    redaction_hash: tuple[str, ...] = _setting(
        ("user.email", "user.account_uuid"),
        "redaction.hash",
        "attribute key globs whose values are replaced by a keyed hash",
    )
    redaction_hash_key_file: str = _setting(
        "", "redaction.hash_key_file", "file holding the hash key (else env or data dir)"
    )
    redaction_truncate_bytes: int = _setting(
        64 * 1024, "redaction.truncate_bytes", "longest stored value, in bytes; 0 disables"
    )
    redaction_disabled_detectors: tuple[str, ...] = _setting(
        (), "redaction.disabled_detectors", "secret detectors turned off, by name"
    )
    redaction_custom_detectors: dict[str, str] = _setting(
        {}, "redaction.custom_detectors", "extra detectors: name = regular expression"
    )
    # Security and operations. Secrets (bearer tokens, the ClickHouse password) are never
    # settings: they come from files named here or from the environment (README "Security").
    auth_tokens_file: str = _setting(
        "",
        "auth.tokens_file",
        "bearer tokens file: TOKEN or TENANT:TOKEN per line (also $OTEL_RECEIVER_AUTH_TOKENS)",
    )
    insecure_allow_unauthenticated: bool = _setting(
        False,
        "auth.insecure_allow_unauthenticated",
        "accept clients without a token or certificate on a non-loopback address",
    )
    tls_cert_file: str = _setting(
        "", "tls.cert_file", "PEM certificate (chain) for TLS on both OTLP ports; empty: no TLS"
    )
    tls_key_file: str = _setting("", "tls.key_file", "PEM private key of tls.cert_file")
    tls_client_ca_file: str = _setting(
        "", "tls.client_ca_file", "PEM CA bundle: clients must present a certificate it signed"
    )
    clickhouse_user: str = _setting(
        "", "clickhouse.user", "ClickHouse user; empty: the URL's, else default"
    )
    clickhouse_password_file: str = _setting(
        "",
        "clickhouse.password_file",
        "ClickHouse password file (or $OTEL_RECEIVER_CLICKHOUSE_PASSWORD)",
    )
    clickhouse_ca_file: str = _setting(
        "", "clickhouse.ca_file", "PEM CA bundle to verify an https ClickHouse; empty: system CAs"
    )
    clickhouse_cluster: str = _setting(
        "", "clickhouse.cluster", "cluster: DDL ON CLUSTER, Replicated* engines, Distributed tables"
    )
    limits_max_items_per_request: int = _setting(
        100_000, "limits.max_items_per_request", "spans, log records or points per request"
    )
    limits_max_attributes: int = _setting(
        256, "limits.max_attributes", "attributes per resource, scope, item, event or link"
    )
    limits_max_attribute_key_bytes: int = _setting(
        1024, "limits.max_attribute_key_bytes", "longest attribute key, in bytes"
    )
    limits_max_attribute_value_bytes: int = _setting(
        1024 * 1024,
        "limits.max_attribute_value_bytes",
        "longer string or bytes values (and log bodies) are truncated",
    )
    limits_max_nesting_depth: int = _setting(
        16, "limits.max_nesting_depth", "deepest array/kvlist nesting in a value"
    )
    limits_max_span_events: int = _setting(1024, "limits.max_span_events", "events per span")
    limits_max_span_links: int = _setting(1024, "limits.max_span_links", "links per span")
    limits_max_future_skew: float = _setting(
        86_400.0,
        "limits.max_future_skew",
        "seconds an item's timestamp may lie in the future; later items are rejected",
    )
    limits_max_inflight_bytes: int = _setting(
        64 * 1024 * 1024,
        "limits.max_inflight_bytes",
        "request bytes (after decompression) worked on at once, a received request counting 4 x "
        "(its rows); more wait, then get a retry",
    )
    limits_max_inflight_requests: int = _setting(
        1024,
        "limits.max_inflight_requests",
        "requests worked on at once (until answered); more wait, then get a retry",
    )
    metrics_listen: str = _setting(
        "127.0.0.1:9464", "metrics.listen", "Prometheus /metrics address; empty disables it"
    )
    alerts: tuple[AlertRule, ...] = _setting(
        (), "alerts", "alert rules: [[alerts]] tables (env: a JSON list or a TOML/JSON file)"
    )
    codex_prices: dict[str, CodexPrice] = _setting(
        DEFAULT_PRICES,
        "codex_prices",
        "Codex USD per 1M tokens by model, over the shipped defaults (env: JSON or a file)",
    )
    ui_listen: str = _setting(
        "127.0.0.1:4319", "ui.listen", "web UI address (serve and ui); empty disables it"
    )

    @property
    def clickhouse_data_dir(self) -> Path:
        return Path(self.data_dir) / "clickhouse"

    @property
    def spool_dir(self) -> Path:
        return Path(self.data_dir) / "spool"

    @property
    def dead_letter_dir(self) -> Path:
        return self.spool_dir / "dead"

    @property
    def uses_embedded_clickhouse(self) -> bool:
        return not self.clickhouse_url


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


# The settings that also have a command-line flag (``receiver.cli`` gives each command the
# ones it uses); the others come from the environment or the config file only.
COMMAND_LINE_SETTINGS = frozenset(
    {
        "grpc_listen",
        "http_listen",
        "metrics_listen",
        "ui_listen",
        "clickhouse_url",
        "clickhouse_database",
        "data_dir",
        "embedded_http_port",
        "embedded_tcp_port",
        "log_level",
        "insecure_allow_unauthenticated",
    }
)


def how_to_set(name: str) -> str:
    """Where a user changes setting ``name``: its flag (if it has one), variable and TOML key."""
    toml = FIELDS[name].metadata["toml"]
    flag = f"--{name.replace('_', '-')}, " if name in COMMAND_LINE_SETTINGS else ""
    return f"{flag}{env_name(name)} or {toml} in the config file"


def _coerce(name: str, raw: Any, source: str) -> Any:
    """Turn a raw value from a file, env var or flag into the field's type.

    Lists come from TOML arrays or comma-separated env values; tables from TOML tables or a
    JSON object in the environment.
    """
    kind = FIELDS[name].type
    if name in _STRUCTURED:
        try:
            return _STRUCTURED[name](_json_or_file(raw, name) if isinstance(raw, str) else raw)
        except ValueError as exc:
            raise ConfigError(f"{exc} ({source})") from None
    try:
        if kind == "tuple[str, ...]":
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError
            return tuple(i.strip() for i in items if i.strip())
        if kind == "dict[str, str]":
            table = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(table, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in table.items()
            ):
                raise ValueError
            return dict(table)
        if kind == "bool":
            if isinstance(raw, str) and raw.strip().lower() in _BOOLS:
                return _BOOLS[raw.strip().lower()]
            if not isinstance(raw, bool):
                raise ValueError
            return raw
        if kind == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if not isinstance(raw, str):
            raise ValueError
        return raw
    except (TypeError, ValueError):
        raise ConfigError(f"{name} ({source}): expected {kind}, got {raw!r}") from None


_STRUCTURED = {"alerts": parse_rules, "codex_prices": parse_prices}


def _json_or_file(text: str, key: str) -> Any:
    """An environment value for a structured setting: JSON, or the path of a TOML/JSON file
    holding it (as the TOML config does: ``[[alerts]]``, ``[codex_prices."<model>"]``)."""
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{key}: not valid JSON ({exc})") from None
    path = Path(stripped)
    try:
        content = path.read_text()
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {path} ({exc.strerror or exc})") from None
    try:
        doc = json.loads(content) if path.suffix == ".json" else tomllib.loads(content)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{key}: {path} is not valid TOML or JSON ({exc})") from None
    return doc.get(key, doc) if isinstance(doc, dict) else doc


def _flatten_toml(doc: Mapping[str, Any], path: str) -> dict[str, Any]:
    by_toml = {f.metadata["toml"]: name for name, f in FIELDS.items()}
    values: dict[str, Any] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for key, value in table.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and dotted not in by_toml:
                walk(value, dotted + ".")
            elif dotted in by_toml:
                values[by_toml[dotted]] = _coerce(by_toml[dotted], value, f"{path}: {dotted}")
            else:
                raise ConfigError(f"{path}: unknown setting {dotted!r}")

    walk(doc, "")
    return values


def load_settings(
    config_file: str | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, file, environment and flags, then validate.

    ``config_file`` None means the documented default file, used only if it exists; a file
    named explicitly (flag or ``OTEL_RECEIVER_CONFIG``) must exist.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    explicit = config_file or environ.get(ENV_PREFIX + "CONFIG")
    path = Path(explicit) if explicit else DEFAULT_CONFIG_FILE
    if explicit or path.exists():
        try:
            doc = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        values.update(_flatten_toml(doc, str(path)))
    for name in FIELDS:
        if env_name(name) in environ:
            values[name] = _coerce(name, environ[env_name(name)], f"env {env_name(name)}")
    for name, raw in (flags or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw, f"flag --{name.replace('_', '-')}")
    settings = Settings(**values)
    validate(settings)
    return settings


def parse_host_port(value: str, setting: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6); the port may be 0 (OS-assigned)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{setting}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate(s: Settings) -> None:
    """Raise ConfigError naming the first invalid setting."""
    parse_host_port(s.grpc_listen, "grpc_listen")
    if s.http_listen:
        parse_host_port(s.http_listen, "http_listen")
    for name in ("grpc_max_receive_bytes", "http_max_receive_bytes"):
        if getattr(s, name) < 1024:
            raise ConfigError(f"{name}: must be at least 1024")
    if s.redaction_truncate_bytes < 0:
        raise ConfigError("redaction_truncate_bytes: must be 0 (no limit) or more")
    if s.clickhouse_url:
        url = urlparse(s.clickhouse_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(
                f"clickhouse_url: expected http(s)://HOST[:PORT], got {s.clickhouse_url!r}"
            )
    if not s.clickhouse_database.replace("_", "").isalnum():
        raise ConfigError(
            f"clickhouse_database: letters, digits and _ only, got {s.clickhouse_database!r}"
        )
    if s.clickhouse_ttl_days < 0:
        raise ConfigError("clickhouse_ttl_days: must be 0 (no TTL) or more")
    if not is_loopback(s.embedded_listen_host):
        raise ConfigError(
            "embedded_listen_host: the embedded ClickHouse keeps a passwordless internal user "
            f"and must listen on loopback, got {s.embedded_listen_host!r}"
        )
    for name in ("embedded_http_port", "embedded_tcp_port"):
        if not 0 <= getattr(s, name) <= 65535:
            raise ConfigError(f"{name}: must be a port number 0-65535")
    if s.batch_max_rows < 1:
        raise ConfigError("batch_max_rows: must be at least 1")
    if s.batch_max_queue_bytes < 1024 * 1024:
        raise ConfigError("batch_max_queue_bytes: must be at least 1 MiB")
    if s.spool_max_bytes < 0:
        raise ConfigError("spool_max_bytes: must be 0 (no spool) or more")
    if not 0 < s.shutdown_timeout <= 600:
        raise ConfigError("shutdown_timeout: must be between 0 and 600 seconds")
    if not 0 < s.batch_max_delay <= 60:
        raise ConfigError("batch_max_delay: must be between 0 and 60 seconds")
    if s.batch_idle_rows < 0:
        raise ConfigError("batch_idle_rows: must be 0 (off) or more")
    if not 0 < s.batch_idle_delay <= 60:
        raise ConfigError("batch_idle_delay: must be between 0 and 60 seconds")
    if not 0 < s.delivery_ack_timeout <= 600:
        raise ConfigError("delivery_ack_timeout: must be between 0 and 600 seconds")
    if s.delivery_max_attempts < 1:
        raise ConfigError("delivery_max_attempts: must be at least 1")
    if s.deadletter_max_bytes < 0:
        raise ConfigError("deadletter_max_bytes: must be 0 (keep none) or more")
    if s.limits_max_future_skew < 0:
        raise ConfigError("limits_max_future_skew: must be 0 (no limit) or more seconds")
    _validate_security(s)
    if s.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log_level: expected debug, info, warning or error, got {s.log_level!r}")


def _validate_security(s: Settings) -> None:
    """The settings of README "Security" and "Operations" (files are checked when opened)."""
    if bool(s.tls_cert_file) != bool(s.tls_key_file):
        raise ConfigError("tls_cert_file and tls_key_file: set both or neither")
    if s.tls_client_ca_file and not s.tls_cert_file:
        raise ConfigError("tls_client_ca_file: client certificates need TLS (tls_cert_file)")
    if s.metrics_listen:
        parse_host_port(s.metrics_listen, "metrics_listen")
    if s.ui_listen:
        parse_host_port(s.ui_listen, "ui_listen")
    if s.clickhouse_cluster and not s.clickhouse_cluster.replace("_", "").isalnum():
        raise ConfigError(
            f"clickhouse_cluster: letters, digits and _ only, got {s.clickhouse_cluster!r}"
        )
    for name in (
        "limits_max_items_per_request",
        "limits_max_attributes",
        "limits_max_attribute_key_bytes",
        "limits_max_attribute_value_bytes",
        "limits_max_nesting_depth",
        "limits_max_span_events",
        "limits_max_span_links",
        "limits_max_inflight_bytes",
        "limits_max_inflight_requests",
    ):
        if getattr(s, name) < 0:
            raise ConfigError(f"{name}: must be 0 (no limit) or more")
    budget = s.limits_max_inflight_bytes
    for name in ("grpc_max_receive_bytes", "http_max_receive_bytes"):
        # A gRPC message (and a compressed HTTP body) is charged this much while it is read:
        # a budget this small reads one request at a time (measured: 195 spans/s with a
        # 64 MiB budget and 64 MiB gRPC messages).
        if budget and budget < 2 * getattr(s, name):
            raise ConfigError(
                f"limits_max_inflight_bytes: {budget} is under twice {name} "
                f"({getattr(s, name)}), which would let the receiver read only one such "
                f"request at a time; raise it ({how_to_set('limits_max_inflight_bytes')}) or "
                f"lower {name} ({how_to_set(name)})"
            )
