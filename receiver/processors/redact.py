"""Redaction: scrub secrets from a request's decoded rows before anything is batched or stored.

``Redactor.process`` is a pipeline processor (see ``receiver.ingest.pipeline``): it rewrites the
rows of one decoded request in place, so nothing it removes ever reaches the memory queues,
the spool or ClickHouse. Every stored string is covered (``REDACTED_COLUMNS``): resource,
scope, span, event, link, log, metric-point and exemplar attributes, log bodies, span and event
names, status messages, names and URLs. Ids, enums and numbers are not (``UNREDACTED_COLUMNS``).

Per attribute, in order:

1. ``drop`` (key globs): the attribute is removed.
2. ``hash`` (key globs): the value becomes ``HMAC-SHA256(key, value)`` as 16 lower-case hex
   characters (the first 64 bits), so equal values still join and count. The key comes from
   ``OTEL_RECEIVER_REDACTION_HASH_KEY``, else the ``redaction.hash_key_file`` file, else a
   key generated once into ``<data_dir>/redaction.key`` (mode 0600) and reused.
3. detectors: a value under a credential-like key (``db.password``,
   ``http.request.header.authorization``) is replaced whole (``secret_attribute``); every other
   string is searched by the detector catalogue (``DETECTORS``) and each secret replaced by
   ``[REDACTED:<detector>]``. Context detectors keep the context: ``password=[REDACTED:...]``,
   ``postgres://app:[REDACTED:connection_string]@db``.
4. ``truncate``: a value longer than ``redaction.truncate_bytes`` UTF-8 bytes is cut on a
   character boundary and ends with ``…[TRUNCATED <n> bytes]`` (n bytes removed); the result,
   marker included, fits the limit. Only the first limit + 16 KiB characters are scanned: the
   rest is cut anyway.

Speed: numbers, hex ids and lower-case words cannot hold a built-in secret and skip all of
this (``str.isalnum``). Every other string gets one pre-filter regular expression: each of its
alternatives starts at one anchor character that is rare in telemetry (``k``, ``w``, ``z``,
``x``, ``J``, ``A``, ``B``, ``=``, ``~``, ``:`` after a credential-like word, ...) and checks
the literal around it with fixed-width look-arounds, so ``re`` skips every other character in
C. Only the detectors whose anchors were seen run; each pattern starts with a literal (fast
prefix search), case-insensitive ones run on a lower-cased copy of the same length. Matches
are merged (on overlap the earlier detector in the catalogue names the secret) and the string
is rebuilt once. A string found clean is remembered across requests (a bounded set, emptied
when it holds ``CLEAN_MEMORY_STRINGS`` strings or ``CLEAN_MEMORY_CHARS`` characters), so each
distinct clean string is scanned once while it keeps recurring: telemetry repeats itself
(model names, session ids, tool names, scope names). Attribute maps shared by the rows of one
resource are redacted once per request and never mutated: changed maps are new dicts. Tables
this module does not list (added later, e.g. stitching's) are redacted by value type: every
str, dict and list of them.

Timing (``python -m receiver.processors.redact [capture.pb ...]``, best of 7), on a 2-vCPU VM shared
with other jobs, where ``python -m timeit "sum(range(100))"`` takes 0.8-1.1 µs (about half a
laptop's speed). Per distinct string, which is what ``process`` scans once per request:

- clean hex id / number / lower-case word (skips the pre-filter): 0.7 µs
- clean UUID, 36 chars: 0.8 µs; clean Rust module path, 54 chars: 1.3 µs
- clean 2 KB tool output: 38 µs (the pre-filter's scan, ~20 ns/char; no detector runs)
- clean 240-char command with ``=`` in it (the assignment detectors run): 12 µs
- command with a secret (``curl -H "Authorization: Bearer ghp_..."``, 104 chars): 28 µs
- whole requests, the real captures in ``tests/fixtures/real/main_grpc``: the Codex trace
  request (412 spans, 11.7k strings, 1.6k distinct) 2.1 ms against 9-11 ms to decode it
  (18-23%); Codex metrics 0.7 ms vs 3.0 ms (23%); small Claude requests 0.03-0.16 ms
  (30-50% of their decode time)
- with the VM busier (``sum(range(100))`` 1.8 µs), the same runs took up to twice as long;
  the ratio to decoding then moved between 18% and 100% from run to run
- worst case seen, 80 KB values packed with candidates (``password=`` x 9000, ``-u x:y`` x
  11000): 0.1-0.3 s, linear (see ``test_scanning_stays_linear_on_adversarial_values``)

Self-metrics: ``otel_receiver_redactions_total{detector}`` counts secrets replaced, and
``otel_receiver_redaction_rules_total{rule}`` counts values dropped, hashed and truncated
(prometheus-client, default registry). Nothing is logged per request or per item.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import os
import re
import secrets
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import REGISTRY, Counter

from receiver.config import ConfigError, Settings
from receiver.ingest.decode import Decoded
from receiver.store.tables import (
    LOGS,
    METRICS_EXPONENTIAL_HISTOGRAM,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
    METRICS_SUM,
    METRICS_SUMMARY,
    TABLE_COLUMNS,
    TRACES,
)

log = structlog.get_logger("receiver.processors.redact")

HASH_KEY_ENV = "OTEL_RECEIVER_REDACTION_HASH_KEY"
HASH_KEY_FILE_NAME = "redaction.key"
HASH_HEX_CHARS = 16
SCAN_SLACK_CHARS = 16 * 1024
RULES = ("drop", "hash", "truncate")

# ---------------------------------------------------------------------------------------------
# Which columns hold stored strings, and of what shape.

TEXT = "text"  # a String column
TEXTS = "texts"  # an Array(String) column
MAP = "map"  # a Map(String, String) column (dict)
MAPS = "maps"  # an Array(Map(String, String)) column (list of dicts)
SERVICE = "service"  # ServiceName: the value of the resource attribute service.name

_METRIC_STRINGS = {
    "ResourceAttributes": MAP,
    "ResourceSchemaUrl": TEXT,
    "ScopeName": TEXT,
    "ScopeVersion": TEXT,
    "ScopeAttributes": MAP,
    "ScopeSchemaUrl": TEXT,
    "ServiceName": SERVICE,
    "MetricName": TEXT,
    "MetricDescription": TEXT,
    "MetricUnit": TEXT,
    "Attributes": MAP,
}
_EXEMPLAR_STRINGS = {"Exemplars.FilteredAttributes": MAPS}

REDACTED_COLUMNS: dict[str, dict[str, str]] = {
    TRACES: {
        "SpanName": TEXT,
        "ServiceName": SERVICE,
        "ResourceAttributes": MAP,
        "ScopeName": TEXT,
        "ScopeVersion": TEXT,
        "SpanAttributes": MAP,
        "StatusMessage": TEXT,
        "Events.Name": TEXTS,
        "Events.Attributes": MAPS,
        "Links.Attributes": MAPS,
    },
    LOGS: {
        "SeverityText": TEXT,
        "ServiceName": SERVICE,
        "Body": TEXT,
        "ResourceSchemaUrl": TEXT,
        "ResourceAttributes": MAP,
        "ScopeSchemaUrl": TEXT,
        "ScopeName": TEXT,
        "ScopeVersion": TEXT,
        "ScopeAttributes": MAP,
        "LogAttributes": MAP,
        "EventName": TEXT,
    },
    METRICS_GAUGE: {**_METRIC_STRINGS, **_EXEMPLAR_STRINGS},
    METRICS_SUM: {**_METRIC_STRINGS, **_EXEMPLAR_STRINGS},
    METRICS_HISTOGRAM: {**_METRIC_STRINGS, **_EXEMPLAR_STRINGS},
    METRICS_EXPONENTIAL_HISTOGRAM: {**_METRIC_STRINGS, **_EXEMPLAR_STRINGS},
    METRICS_SUMMARY: dict(_METRIC_STRINGS),
}

# Columns deliberately left alone: ids (hex), enums the decoder writes, W3C trace state, numbers.
UNREDACTED_COLUMNS = frozenset(
    {
        "Timestamp",
        "TraceId",
        "SpanId",
        "ParentSpanId",
        "TraceState",
        "SpanKind",
        "Duration",
        "StatusCode",
        "Events.Timestamp",
        "Links.TraceId",
        "Links.SpanId",
        "Links.TraceState",
        "TraceFlags",
        "SeverityNumber",
        "ScopeDroppedAttrCount",
        "StartTimeUnix",
        "TimeUnix",
        "Value",
        "Flags",
        "Exemplars.TimeUnix",
        "Exemplars.Value",
        "Exemplars.SpanId",
        "Exemplars.TraceId",
        "AggregationTemporality",
        "IsMonotonic",
        "Count",
        "Sum",
        "BucketCounts",
        "ExplicitBounds",
        "Min",
        "Max",
        "Scale",
        "ZeroCount",
        "PositiveOffset",
        "PositiveBucketCounts",
        "NegativeOffset",
        "NegativeBucketCounts",
        "ValueAtQuantiles.Quantile",
        "ValueAtQuantiles.Value",
    }
)


def _column_plans() -> dict[str, tuple[tuple[int, str], ...]]:
    """(column index, kind) per table, for the tables in ``REDACTED_COLUMNS``."""
    plans = {}
    for table, kinds in REDACTED_COLUMNS.items():
        columns = TABLE_COLUMNS[table]
        unknown = set(kinds) - set(columns)
        assert not unknown, f"{table}: no such columns {unknown}"
        plans[table] = tuple((columns.index(name), kind) for name, kind in kinds.items())
    return plans


# ---------------------------------------------------------------------------------------------
# Self-metrics.

REDACTIONS = Counter(
    "otel_receiver_redactions",
    "Secrets replaced by [REDACTED:<detector>], by detector",
    ["detector"],
)
RULE_APPLICATIONS = Counter(
    "otel_receiver_redaction_rules",
    "Values dropped, hashed or truncated by the redaction rules",
    ["rule"],
)


def detector_count(name: str) -> float:
    """How many secrets ``name`` has replaced in this process (for tests and diagnostics)."""
    value = REGISTRY.get_sample_value("otel_receiver_redactions_total", {"detector": name})
    return value or 0.0


def rule_count(rule: str) -> float:
    """How many values ``rule`` (drop, hash, truncate) has changed in this process."""
    value = REGISTRY.get_sample_value("otel_receiver_redaction_rules_total", {"rule": rule})
    return value or 0.0


# ---------------------------------------------------------------------------------------------
# Value checks shared by the context detectors.

_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "auth")
# values that stand where a secret would but are not one: types, states, placeholders
_BORING_WORDS = """
    true false null none nil undefined yes no on off required optional string str bytes int
    integer number boolean bool any object secret password passwd token key redacted hidden
    masked empty expired invalid missing present absent set unset provided omitted n/a na
    changeit changeme example sample dummy test value values
    await lambda self this cls not yield new function return
"""
_BORING = frozenset(_BORING_WORDS.split())
_VAR_REF = re.compile(r"[$%{<(]|#\{|\[REDACTED")  # $X ${X} %X% {x} {{ x }} #{x} <x> (..)
_MASK = re.compile(r"[*xX•.…_#-]+")
_NUMERIC = re.compile(r"[0-9][0-9.,_]*")
_DOTTED_IDENT = re.compile(r"[A-Za-z_]\w{0,24}(?:\.[A-Za-z_]\w{0,24})+")  # not hvs.<90 chars>
_CALL = re.compile(r"[A-Za-z_][\w.]*[(\[]")
_IDENT = re.compile(r"[A-Za-z_][\w.-]*")
_SNAKE_WORDS = re.compile(r"[a-z]+(?:_[a-z]+)+")  # "send_message": an identifier, not a secret
_WORD = re.compile(r"[A-Za-z_]+")
_PATH = re.compile(r"(?:~|\.{1,2})?/[\w.@-]+/")


def plausible_secret(value: str, word: str = "", unquoted: bool = False) -> bool:
    """Whether a value found in a secret's place could be the secret, not a placeholder,
    variable reference, type, count or code: ``${TOKEN}``, ``<token>``, ``****``, ``str``,
    ``4096`` (for ``token``/``key``), ``args.password``, ``get_token()``, ``/run/secrets/db``."""
    value = value.strip()
    if len(value) < 3 or _VAR_REF.match(value) or _MASK.fullmatch(value):
        return False
    lowered = value.lower()
    if lowered in _BORING or lowered.strip("'\"") in _BORING:
        return False
    if word in ("token", "key") and _NUMERIC.fullmatch(value):
        return False
    if _PATH.match(value) or _CALL.match(value):
        return False
    if _IDENT.fullmatch(value) and any(w in lowered for w in _SECRET_WORDS):
        return False  # password=password, token=YOUR_TOKEN, api_key=api_key
    if _SNAKE_WORDS.fullmatch(value):
        return False
    # self.password, settings.SECRET_KEY: code, not a value
    return not (unquoted and _DOTTED_IDENT.fullmatch(value))


# ---------------------------------------------------------------------------------------------
# The detector catalogue.

# (match, the original text) -> keep it? A check may also return the span to replace.
Check = Callable[[re.Match[str], str], bool | tuple[int, int]]


@dataclass(frozen=True)
class Detector:
    """One pattern of a named secret detector (a detector may have several entries).

    ``pattern`` is written to start with a literal, so ``re`` finds candidates with its fast
    prefix search; the whole match is replaced, or only its ``secret`` group when it has one
    (or the first of ``s1``..``s5`` that matched). ``lower`` patterns are written in lower case
    and run on a lower-cased copy of the value of the same length (case-insensitive without
    ``re.IGNORECASE``, which is slow); their spans apply to the original. ``check`` may veto a
    match. ``gates`` are pre-filter fragments: one rare anchor character (or a class of them)
    followed by fixed-width look-arounds; the pattern runs on a value only where one of its
    gates matched (custom detectors have none and always run).
    """

    name: str
    pattern: re.Pattern[str]
    gates: tuple[str, ...]
    check: Check | None = None
    lower: bool = False


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags | re.VERBOSE)


_SECRET_GROUPS = ("secret", "s1", "s2", "s3", "s4", "s5")


def secret_span(m: re.Match[str]) -> tuple[int, int]:
    """The part of a match that is the secret: its ``secret`` group (or the first of ``s1``..
    ``s5`` that matched), else the whole match."""
    for group in _SECRET_GROUPS:
        if group in m.re.groupindex and m.start(group) != -1:
            return m.span(group)
    return m.span()


def _secret_text(m: re.Match[str]) -> str:
    start, end = secret_span(m)
    return m.string[start:end]


def _mixed(text: str) -> bool:
    return (
        any(c.isdigit() for c in text)
        and any(c.isupper() for c in text)
        and any(c.islower() for c in text)
    )


def _mixed_case(text: str) -> bool:
    return any(c.isupper() for c in text) and any(c.islower() for c in text)


def _not_placeholder(m: re.Match[str], original: str = "") -> bool:
    return plausible_secret(_secret_text(m))


def _boundary(m: re.Match[str], chars: str = "_-") -> bool:
    """The match does not start in the middle of a word."""
    before = m.string[m.start() - 1 : m.start()]
    return not (before.isalnum() or (before and before in chars))


def _pem_b64_check(m: re.Match[str], original: str = "") -> bool:
    chunk = m.group(0)[:64]
    try:
        return b"PRIVATE KEY" in base64.b64decode(chunk[: len(chunk) // 4 * 4])
    except (binascii.Error, ValueError):
        return False


_DB_SCHEMES = re.compile(
    r"""(?:jdbc:)?(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql
    |sqlserver|clickhouse|cockroachdb|couchdb|neo4j(?:\+s)?|bolt|oracle|db2|snowflake)""",
    re.IGNORECASE | re.VERBOSE,
)
_SCHEME_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.:-]{0,40}\Z")


def _scheme(m: re.Match[str]) -> str:
    found = _SCHEME_BEFORE.search(m.string, max(0, m.start() - 41), m.start())
    return found.group(0) if found else ""


def _url_password_ok(m: re.Match[str], original: str = "") -> bool:
    password = m.group("secret")
    if password.isdigit() and len(password) <= 5:
        return False  # host:port@..., not a password
    return bool(_scheme(m)) and plausible_secret(password)


def _db_url_check(m: re.Match[str], original: str = "") -> bool:
    return bool(_DB_SCHEMES.fullmatch(_scheme(m))) and _url_password_ok(m)


_ADO_CONTEXT = re.compile(
    r"(?:server|data\s+source|host|user\s+id|uid|database|initial\s+catalog|address|addr)\s*="
)


def _ado_check(m: re.Match[str], original: str = "") -> bool:
    around = m.string[max(0, m.start() - 500) : m.end() + 500]
    return (
        _boundary(m) and ";" in around and bool(_ADO_CONTEXT.search(around)) and _not_placeholder(m)
    )


_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "bot", "apikey", "sso-key", "key"})


def _authorization_check(m: re.Match[str], original: str = "") -> bool:
    secret = m.group("secret")
    if secret in _AUTH_SCHEMES or not plausible_secret(secret):
        return False
    if m.group("scheme"):
        return True
    return len(secret) >= 16 and any(c.isdigit() for c in secret)


def _bearer_check(m: re.Match[str], original: str = "") -> bool:
    secret = m.group("secret")
    return _boundary(m, "") and any(c.isdigit() for c in secret) and plausible_secret(secret)


def _command_before(m: re.Match[str], window: int = 500) -> str:
    """The shell command the match is in, up to the match (at most ``window`` characters)."""
    start = m.start()
    floor = max(0, start - window)
    cut = max(m.string.rfind(sep, floor, start) for sep in ("\n", ";", "&&", "|"))
    return m.string[max(cut + 1, floor) : start]


_HTTP_CLIENT = re.compile(r"\b(?:curl|wget|http|https|xh|httpie)\b")
_MYSQL_CLIENT = re.compile(r"\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b")


def _curl_user_check(m: re.Match[str], original: str = "") -> bool:
    user, password = m.group("user"), m.group("secret")
    if not _boundary(m) or (user.isdigit() and password.isdigit()):
        return False
    return bool(_HTTP_CLIENT.search(_command_before(m))) and plausible_secret(password)


def _mysql_check(m: re.Match[str], original: str = "") -> bool:
    return (
        _boundary(m)
        and bool(_MYSQL_CLIENT.search(_command_before(m)))
        and plausible_secret(_secret_text(m))
    )


_REGISTRY_LOGIN = re.compile(
    r"\b(?:docker|podman|nerdctl|buildah|skopeo|oras|crane|helm(?:\s+registry)?)\s[^|;&\n]*\blogin\b"
)


def _registry_login_check(m: re.Match[str], original: str = "") -> bool:
    return bool(_REGISTRY_LOGIN.search(_command_before(m))) and _not_placeholder(m)


_NETRC_ENTRY = re.compile(r"\bmachine\s+\S+\s+login\s+\S+\s+\Z")


def _netrc_check(m: re.Match[str], original: str = "") -> bool:
    before = m.string[max(0, m.start() - 300) : m.start()]
    return bool(_NETRC_ENTRY.search(before)) and _not_placeholder(m)


_PAGINATION = re.compile(r"(?i)(?:next|page|continuation|resume|sync|cursor)[_-]?\Z")
_FLAG_TOKEN = re.compile(r"(?:\A|[\s\"'])--?[A-Za-z0-9][\w.-]*\Z")
_KEY_PREFIX = re.compile(
    r"(?:api|access|secret|private|auth|signing|encryption|master|client|account)[_-]?\Z"
)


_NEXT_ASSIGNMENT = re.compile(r"[&,;][ \t]*[A-Za-z_][\w.-]*=")
_TRAILING = ",;)}].:"


def _looks_random(value: str) -> bool:
    return len(value) >= 16 or (
        len(value) >= 8 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    )


def _assignment_check(m: re.Match[str], original: str) -> bool | tuple[int, int]:
    """Vetoes what only looks like ``<credential word>=<value>``, else returns the value's
    span, trimmed; runs on lower-case text and reads the original where case matters."""
    word = m.group("word")
    start = m.start("word")
    before = m.string[max(0, start - 40) : start]
    last = before[-1:]
    if word == "key":
        if not _KEY_PREFIX.search(before):
            return False  # key=, sort_key=, ssh key: not credential words
    elif word in ("pass", "auth") and last.isalpha():
        return False  # bypass=, compass:, oauth:
    elif word == "pwd" and last not in ("_", ".", "-"):
        return False  # PWD=/home/dev is the working directory
    kind = word if word in ("token", "key") else "pass"
    if word == "token" and _PAGINATION.search(before):
        return False  # next_token, pageToken: pagination cursors
    for group in ("s1", "s2", "s3", "s4", "s5"):
        if m.start(group) != -1:
            break
    value_start, value_end = m.span(group)
    value = original[value_start:value_end]
    if group in ("s2", "s4"):  # unquoted: a=b&c=d, host=x,password=y,port=5, x: y},
        cut = _NEXT_ASSIGNMENT.search(value)
        value = (value[: cut.start()] if cut else value).rstrip(_TRAILING)
        value_end = value_start + len(value)
    if group == "s4" and original[value_end : value_end + 1] not in _TRAILING:
        # `word: value more words` is prose unless the value looks random (`x: y,` is not)
        rest = original[value_end : original.find("\n", value_end) % (len(original) + 1)]
        if rest.strip(_TRAILING + " \t\r\"'\\") and not _looks_random(value):
            return False
    between = original[m.end("word") : value_start]
    if group == "s2" and " =" in between and _WORD.fullmatch(value):
        return False  # code: `auth = auth_from_url`, `TOKEN = CHAR ^ CTL`
    if group == "s4" and ((value[:1].isupper() and _WORD.fullmatch(value)) or "[" in value):
        return False  # a type: `auth: AuthType`, `token: Optional[str]`
    # --password VALUE counts only inside a command-line flag, and not --secret id=x,src=y
    if group == "s5" and (not _FLAG_TOKEN.search(before + word) or "=" in value):
        return False
    if group in ("s4", "s5") and value.isalpha() and value.islower() and len(value) < 16:
        return False  # prose: "refresh token: rotated", "--password prompt"
    if not plausible_secret(value, kind, unquoted=group in ("s2", "s4", "s5")):
        return False
    return value_start, value_end


# A value after `=` (shell, env, query string, ini), after `:` (JSON, YAML, headers), quoted or
# not, or after a command-line flag. Quoted values end at the quote (or a backslash: JSON escapes).
# `\u0026` and friends: Go-style JSON (log bodies from kvlists) escapes < > & inside strings
_U = r"""\\u[0-9a-fA-F]{4}"""
_QVAL = rf"""(?:[^\s"'\\]|{_U})(?:[^"'\\\r\n]|{_U}){{0,1000}}"""
# unquoted: up to whitespace or a quote; the check trims punctuation and a following key=
_EQVAL = rf"""(?:[^\s"'\\&;,)}}\]=<>|`]|{_U})(?:[^\s"'\\|`]|{_U}){{0,1000}}"""
_COLVAL = rf"""(?:[^\s"'\\,;}}\]\[{{<>|`]|{_U})(?:[^\s"'\\|`]|{_U}){{0,1000}}"""
_CLIVAL = rf"""(?:[^\s"'\\<>|`$-]|{_U})(?:[^\s"'\\]|{_U}){{0,1000}}"""
_TOKEN = rf"""(?:[^\s'"\\]|{_U})"""  # one character of an unquoted value
_ASSIGNED = rf"""
    (?:
        \\?["']?[ \t]*(?:=>|:=|=)(?!=)[ \t]*
            (?:\\?["'](?P<s1>{_QVAL}) | (?P<s2>{_EQVAL}))
      | \\?["']?[ \t]*:(?![:/=])[ \t]*
            (?:\\?["'](?P<s3>{_QVAL}) | (?P<s4>{_COLVAL}))
      | [ \t]+(?P<s5>{_CLIVAL})
    )"""


def _assignment(words: str) -> re.Pattern[str]:
    """``<word><separator><value>`` in lower case: the word is a literal prefix, so ``re``
    searches fast; what comes before the word (``DB_``, ``api_``) is looked at by the check."""
    return _rx(f"(?P<word>{words}){_ASSIGNED}")


# Gate fragments (see Detector). Anchors are characters that are rare in telemetry, which is
# mostly hex ids, numbers, snake_case names and paths: not a-f, digits, _ . / or common letters.
_G_PEM = "B(?<=-----B)(?=EGIN)"
_G_URL = ":(?=//)"
_G_PASSWORD = "[wW](?<=[pP][aA][sS][sS][wW])"  # password, passwd
_G_PWD = "[wW](?<=[pP][wW])(?=[dD])"
_G_TOKEN = "[kK](?<=[tT][oO][kK])(?=[eE][nN])"
_G_KEY = "[kK](?=[eE][yY])"
_G_LONG_FLAG = (
    "-(?<=--)(?=[A-Za-z0-9-]{0,40}(?:[pP][aA][sS][sS]|[sS][eE][cC][rR][eE][tT]|[wW][dD])[ \\t=])"
)
# `=` anywhere, or `:` right after a key ending like a credential word (password, passphrase,
# pass, pwd, secret, token, key), possibly quoted: `secret: x`, `"pass": "x"`, `\"pass\":`.
_G_ASSIGN = (
    "=",
    ":(?<=[dDeEsStTnNyY]:)(?![:/])",
    ":(?<=[dDeEsStTnNyY][\"']:)(?![:/])",
    ":(?<=[dDeEsStTnNyY][\"'] :)(?![:/])",
    ":(?<=[dDeEsStTnNyY] :)(?![:/])",
    ':(?<=[dDeEsStTnNyY]\\\\":)(?![:/])',
)
_G_SECRET_WORD = (*_G_ASSIGN, _G_LONG_FLAG)

_URL_USERINFO = _rx(
    rf"""://(?P<user>[^\s:/?\#@'"\\]{{0,256}}):(?P<secret>(?:[^\s/?\#'"\\]|{_U}){{1,256}})@"""
)
_PEM_HEAD = r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----"

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "gcp_private_key",
        _rx(r"""private_key\\?["'][ \t]*:[ \t]*\\?["'](?P<secret>-----BEGIN[^"']{0,20000})"""),
        (_G_PEM,),
    ),
    Detector(
        "private_key",
        _rx(
            rf"""{_PEM_HEAD}(?:(?!-----).){{0,20000}}
            -----END[A-Z0-9 ]{{0,40}}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----""",
            re.DOTALL,
        ),
        (_G_PEM,),
    ),
    Detector(  # no END line: a truncated or one-line key; take the base64 and headers after it
        "private_key",
        _rx(
            rf"""{_PEM_HEAD}
            (?:[A-Za-z0-9+/=\r\n]|\\[rn]|(?:Proc-Type|DEK-Info|Comment):[^\r\n\\]{{0,200}})
            {{40,20000}}"""
        ),
        (_G_PEM,),
    ),
    Detector(  # base64 of a PEM private key (kubeconfig client-key-data, Kubernetes secrets)
        "private_key",
        _rx(r"""LS0tLS1CRUdJTi(?<![A-Za-z0-9+/]LS0tLS1CRUdJTi)[A-Za-z0-9+/]{20,20000}+={0,2}"""),
        ("L(?=S0tLS1CRUdJTi)",),
        check=_pem_b64_check,
    ),
    Detector(
        "anthropic_key",
        _rx(r"""sk-ant-(?<![A-Za-z0-9_-]sk-ant-)[A-Za-z0-9_-]{20,300}+"""),
        ("k(?<=sk)(?=-ant-)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "openai_key",
        _rx(r"""sk-(?<![A-Za-z0-9_-]sk-)(?!ant-)[A-Za-z0-9_-]{32,300}+"""),
        ("k(?<=sk)(?=-)",),
        check=lambda m, _: _boundary(m) and _mixed(m.group(0)[3:]),
    ),
    Detector(
        "google_api_key",
        _rx(r"""AIza(?<![A-Za-z0-9_-]AIza)[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"""),
        ("A(?=Iza)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "stripe_key",
        _rx(
            r"""[sr]k_(?:live|test)_(?<![A-Za-z0-9].._live_)(?<![A-Za-z0-9].._test_)[0-9A-Za-z]{10,247}+"""
        ),
        ("k(?<=[sr]k)(?=_live_|_test_)",),
        check=lambda m, _: _boundary(m, ""),
    ),
    Detector(
        "stripe_key",
        _rx(r"""whsec_[0-9A-Za-z+/=]{20,100}"""),
        ("w(?=hsec_)",),
    ),
    Detector(
        "slack_token",
        _rx(r"""x(?:ox[abposre]|app)-(?<![A-Za-z0-9]x...-)[0-9A-Za-z-]{10,250}+"""),
        ("x(?=ox[abposre]-|app-)",),
        check=lambda m, _: _boundary(m, ""),
    ),
    Detector(
        "slack_webhook",
        _rx(
            r"""https://hooks\.slack\.com/
            (?P<secret>(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{8,300})"""
        ),
        (_G_URL,),
    ),
    Detector(
        "github_token",
        _rx(r"""gh[pousr]_(?<![A-Za-z0-9_]gh._)[A-Za-z0-9]{36,251}+"""),
        ("g(?=h[pousr]_)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "github_token",
        _rx(r"""github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{22,244}+"""),
        ("g(?=ithub_pat_)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "gitlab_token",
        _rx(r"""gl(?:pat|dt|rt|ptt|cbt|ft|soat|oas)-[0-9A-Za-z_-]{20,100}+"""),
        ("g(?=l(?:pat|dt|rt|ptt|cbt|ft|soat|oas)-)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "npm_token",
        _rx(r"""npm_(?<![A-Za-z0-9_]npm_)[A-Za-z0-9]{36}(?![A-Za-z0-9])"""),
        ("m(?<=npm)(?=_)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "pypi_token",
        _rx(r"""pypi-Ag(?<![A-Za-z0-9_-]pypi-Ag)[A-Za-z0-9_-]{50,500}+"""),
        ("y(?<=py)(?=pi-Ag)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "huggingface_token",
        _rx(r"""hf_(?<![A-Za-z0-9_]hf_)[A-Za-z0-9]{34,40}+(?![A-Za-z0-9])"""),
        ("h(?=f_)",),
        check=lambda m, _: _boundary(m) and _mixed_case(m.group(0)[3:]),
    ),
    Detector(
        "aws_access_key_id",
        _rx(r"""A(?:KIA|SIA|BIA|CCA)(?<![A-Za-z0-9]A...)[A-Z0-9]{16}(?![A-Za-z0-9])"""),
        ("A(?=KIA|SIA|BIA|CCA)",),
        check=lambda m, _: _boundary(m, ""),
    ),
    Detector(  # aws_secret_access_key=, AWS_SECRET_ACCESS_KEY=, "SecretAccessKey": (lower case)
        "aws_secret_key",
        _rx(
            r"""secret_?(?:access_?)?key\\?["']?[ \t]*(?:=>|[:=])?[ \t]*\\?["']?
            (?P<secret>[a-z0-9/+]{40})(?![a-z0-9/+=])"""
        ),
        (*_G_ASSIGN, _G_KEY),
        lower=True,
    ),
    Detector(
        "azure_storage_key",
        _rx(
            r"""key=(?:(?<=accountkey=)|(?<=sharedaccesskey=))
            (?P<secret>[a-z0-9+/]{20,200}={0,2})"""
        ),
        ("=",),
        lower=True,
    ),
    Detector(  # AZURE_CLIENT_SECRET=, ARM_CLIENT_SECRET=, azure.client-secret: (lower case)
        "azure_client_secret",
        _rx(
            rf"""client[_.-]secret\\?["']?[ \t]*[:=][ \t]*\\?["']?
            (?P<secret>{_TOKEN}{{8,200}})"""
        ),
        _G_ASSIGN,
        check=lambda m, _: (
            bool(re.search(r"(?:azure|arm)[_.-]?\Z", m.string[max(0, m.start() - 6) : m.start()]))
            and _not_placeholder(m)
        ),
        lower=True,
    ),
    Detector(  # the client secret format itself: 3 chars, a digit, Q~, 31-34 chars
        "azure_client_secret",
        _rx(r"""(?<![\w~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![\w~.-])"""),
        ("~(?<=[0-9]Q~)",),
    ),
    Detector(
        "azure_client_secret",
        _rx(
            rf"""az[ \t]+login\b[^\n]{{0,500}}?[ \t](?:-p|--password)(?:[ \t]+|=)
            \\?["']?(?P<secret>{_TOKEN}{{4,256}})"""
        ),
        ("z(?<=az)(?=[ \t]+login)",),
        check=lambda m, _: _boundary(m) and _not_placeholder(m),
    ),
    Detector(
        "signed_url",
        _rx(
            r"""[?&](?:sig|x-amz-signature|x-amz-security-token|x-goog-signature)=
            (?P<secret>[^&\s"'\#\\]{16,4096})"""
        ),
        ("=",),
        lower=True,
    ),
    Detector(
        "jwt",
        _rx(
            r"""eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,4096}+\.eyJ[A-Za-z0-9_-]{8,8192}+
            \.[A-Za-z0-9_-]{0,4096}+"""
        ),
        ("J(?<=eyJ)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector("connection_string", _URL_USERINFO, (_G_URL,), check=_db_url_check),
    Detector(  # ADO.NET / ODBC: Server=db;User Id=app;Password=...;
        "connection_string",
        _rx(
            r"""p(?:assword|wd)[ \t]*=[ \t]*(?P<secret>[^;"'\r\n]{1,256}?)[ \t]*(?=;|$|["'\r\n])"""
        ),
        (_G_PASSWORD, _G_PWD),
        check=_ado_check,
        lower=True,
    ),
    Detector("url_credentials", _URL_USERINFO, (_G_URL,), check=_url_password_ok),
    Detector(
        "authorization_header",
        _rx(
            r"""authorization\\?["']?[ \t]*[:=][ \t]*\\?["']?
            (?:(?P<scheme>bearer|basic|token|bot|apikey|sso-key|key)[ \t]+)?
            (?P<secret>[a-z0-9._~+/=:-]{8,4096})"""
        ),
        ("[zZ](?<=[oO][rR][iI][zZ])(?=[aA][tT][iI][oO][nN])",),
        check=_authorization_check,
        lower=True,
    ),
    Detector(
        "authorization_header",
        _rx(r"""bearer[ \t]+(?P<secret>[a-z0-9._~+/-]{16,4096}=*)"""),
        ("B(?=earer|EARER)", "[zZ](?<=[oO][rR][iI][zZ])(?=[aA][tT][iI][oO][nN])"),
        check=_bearer_check,
        lower=True,
    ),
    Detector(  # curl -u user:password, wget --user=... (the command must be an HTTP client)
        "cli_password",
        _rx(
            rf"""-(?:u|-user)(?:[ \t]+|=)\\?["']?
            (?P<user>[^\s:'"\\]{{1,256}}):(?P<secret>{_TOKEN}{{1,256}})"""
        ),
        ("-(?<=[ \t]-)(?=u[ \t=\"'])", "-(?=-user[ \t=])"),
        check=_curl_user_check,
    ),
    Detector(  # mysql -pSECRET, mysql -p'SECRET'
        "cli_password",
        _rx(
            rf"""-p(?:\\?["'](?P<s1>(?:[^"'\\\r\n]|{_U}){{1,256}})
            |(?P<s2>(?:[^\s'"\\-]|{_U}){_TOKEN}{{0,255}}))"""
        ),
        ("[qQ](?<=[mM][yY][sS][qQ])(?=[lL])", "m(?=ariadb)"),
        check=_mysql_check,
    ),
    Detector(  # docker login -u user -p SECRET (and podman, helm registry, ...)
        "cli_password",
        _rx(rf"""-p[ \t]+\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        ("g(?<=log)(?=in)",),
        check=lambda m, _: _boundary(m) and _registry_login_check(m),
    ),
    Detector(
        "cli_password",
        _rx(rf"""sshpass[ \t]+-p[ \t]*\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        ("h(?<=ssh)(?=pass)",),
        check=_not_placeholder,
    ),
    Detector(
        "secret_assignment",
        _assignment("pass(?:word|wd|phrase)?"),
        (_G_PASSWORD, *_G_SECRET_WORD),
        check=_assignment_check,
        lower=True,
    ),
    Detector(
        "secret_assignment",
        _assignment("pwd"),
        (_G_PWD,),
        check=_assignment_check,
        lower=True,
    ),
    Detector(
        "secret_assignment",
        _assignment("secret"),
        _G_SECRET_WORD,
        check=_assignment_check,
        lower=True,
    ),
    Detector(
        "secret_assignment",
        _assignment("token"),
        (_G_TOKEN,),
        check=_assignment_check,
        lower=True,
    ),
    Detector(  # docker config.json "auth": "<base64 user:token>", basic_auth=
        "secret_assignment",
        _assignment("auth"),
        ("[hH](?<=[aA][uU][tT][hH])(?=\\\\?[\"']?[ \t]*[:=])",),
        check=_assignment_check,
        lower=True,
    ),
    Detector(  # .netrc: machine HOST login USER password SECRET
        "secret_assignment",
        _rx(rf"""password[ \t]+(?P<secret>{_TOKEN}{{1,256}})"""),
        (_G_PASSWORD,),
        check=_netrc_check,
        lower=True,
    ),
    Detector(  # api_key, access-key, apikey, private_key, ... (the check reads the prefix)
        "secret_assignment",
        _assignment("key"),
        (_G_KEY,),
        check=_assignment_check,
        lower=True,
    ),
)

SECRET_ATTRIBUTE = "secret_attribute"
DETECTOR_NAMES = (*dict.fromkeys(d.name for d in DETECTORS), SECRET_ATTRIBUTE)

# Attribute keys whose whole value is a credential (the key's last word decides).
_SECRET_KEY = re.compile(
    r"""(?i)(?:password|passwd|passphrase|(?<![a-z])pass|(?<![a-z])pwd|secret|token
    |(?:api|access|secret|private|auth|signing|encryption|master|client|account)[_-]?key
    |apikey|authorization|cookie)\Z""",
    re.VERBOSE,
)


def secret_key_word(key: str) -> str | None:
    """The credential word a key ends with (``db.password`` -> ``password``), or None."""
    found = _SECRET_KEY.search(key)
    if not found:
        return None
    word = found.group(0).lower()
    if word.endswith("token") and _PAGINATION.search(key[: found.start()]):
        return None
    return "token" if word.endswith("token") else "key" if word.endswith("key") else word


_CUSTOM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def custom_detector(name: str, pattern: str) -> Detector:
    """A user detector: every match of ``pattern`` (or of its ``secret`` group) is replaced."""
    setting = f"redaction_custom_detectors.{name}"
    if not _CUSTOM_NAME.fullmatch(name):
        raise ConfigError(f"{setting}: a detector name is letters, digits, _ . - (max 64)")
    if name in DETECTOR_NAMES:
        raise ConfigError(f"{setting}: {name!r} is a built-in detector; pick another name")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{setting}: invalid regular expression: {exc}") from None
    if compiled.search("") is not None:
        raise ConfigError(f"{setting}: the regular expression matches the empty string")
    return Detector(name, compiled, ())


_UPPER_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    """Lower case with the same length (``str.lower`` may lengthen some characters)."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(_UPPER_TO_LOWER)


def _split_gate(fragment: str) -> tuple[str, str]:
    """``"[pP](?=ass)"`` -> (``"pP"``, ``"(?=ass)"``); ``"J(?<=eyJ)"`` -> (``"J"``, ...)."""
    if fragment.startswith("["):
        end = fragment.index("]")
        return fragment[1:end], fragment[end + 1 :]
    return fragment[0], fragment[1:]


# ---------------------------------------------------------------------------------------------
# The hash key.


def load_hash_key(settings: Settings, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key: ``$OTEL_RECEIVER_REDACTION_HASH_KEY``, else the ``hash_key_file`` file,
    else ``<data_dir>/redaction.key``, generated (32 random bytes, hex, mode 0600) if absent."""
    environ = os.environ if environ is None else environ
    if environ.get(HASH_KEY_ENV):
        return environ[HASH_KEY_ENV].encode()
    if settings.redaction_hash_key_file:
        path = Path(settings.redaction_hash_key_file)
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(
                f"redaction_hash_key_file: cannot read {path}: {exc.strerror}"
            ) from None
        if not key:
            raise ConfigError(f"redaction_hash_key_file: {path} is empty")
        return key
    return _generated_key(Path(settings.data_dir) / HASH_KEY_FILE_NAME)


def _generated_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temporary, path)  # atomic, and never replaces a key another process made
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"redaction_hash_key_file: no key set and cannot create {path}: {exc.strerror}"
        ) from None
    if not key:
        raise ConfigError(f"redaction_hash_key_file: {path} is empty")
    return key


# ---------------------------------------------------------------------------------------------
# The redactor.

_PLAIN, _DROP, _HASH = "plain", "drop", "hash"  # key rules; any other rule is a credential word
_KEY_CACHE_LIMIT = 10_000
# Clean strings remembered across requests: at most this many, of this many characters in
# all (a few MB); longer strings are not remembered (a rare huge one would evict the rest).
CLEAN_MEMORY_STRINGS = 50_000
CLEAN_MEMORY_CHARS = 2_000_000
_CLEAN_MEMORY_MAX_STRING = 16_384


def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


class Redactor:
    """Applies the drop, hash, detector and truncate rules to a request's decoded rows."""

    def __init__(
        self,
        *,
        drop: tuple[str, ...] = (),
        hash: tuple[str, ...] = (),
        hash_key: bytes = b"",
        truncate_bytes: int = 64 * 1024,
        disabled_detectors: tuple[str, ...] = (),
        custom_detectors: Mapping[str, str] | None = None,
    ) -> None:
        unknown = sorted(set(disabled_detectors) - set(DETECTOR_NAMES))
        if unknown:
            raise ConfigError(
                f"redaction_disabled_detectors: unknown detector(s) {', '.join(unknown)}; "
                f"known: {', '.join(DETECTOR_NAMES)}"
            )
        if hash and not hash_key:
            raise ConfigError("redaction_hash: hash rules need a hash key")
        custom = [custom_detector(n, p) for n, p in (custom_detectors or {}).items()]
        disabled = set(disabled_detectors)
        # custom detectors first: a user's own format wins over the generic context detectors
        self.detectors = tuple(custom) + tuple(d for d in DETECTORS if d.name not in disabled)
        self._always = frozenset(i for i, d in enumerate(self.detectors) if not d.gates)
        self._secret_attribute = SECRET_ATTRIBUTE not in disabled
        self._drop = _globs(drop)
        self._hash = _globs(hash)
        self._hash_key = hash_key
        self._limit = truncate_bytes
        self._fits = truncate_bytes // 4  # a string this long always fits in the limit
        self._scan_chars = truncate_bytes + SCAN_SLACK_CHARS if truncate_bytes else 0
        self._key_rules: dict[str, Any] = {}
        self._clean: set[str] = set()  # strings ``_text`` left unchanged, across requests
        self._clean_chars = 0
        self._plans = _column_plans()
        self._gate, self._gate_detectors = self._build_gate()
        for name in (d.name for d in self.detectors):
            REDACTIONS.labels(detector=name)
        REDACTIONS.labels(detector=SECRET_ATTRIBUTE)
        for rule in RULES:
            RULE_APPLICATIONS.labels(rule=rule)

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> Redactor:
        """The redactor the settings describe; raises ConfigError naming a bad setting."""
        key = load_hash_key(settings, environ) if settings.redaction_hash else b""
        redactor = cls(
            drop=settings.redaction_drop,
            hash=settings.redaction_hash,
            hash_key=key,
            truncate_bytes=settings.redaction_truncate_bytes,
            disabled_detectors=settings.redaction_disabled_detectors,
            custom_detectors=settings.redaction_custom_detectors,
        )
        log.info(
            "redaction_configured",
            detectors=[d.name for d in redactor.detectors]
            + ([SECRET_ATTRIBUTE] if redactor._secret_attribute else []),
            drop=list(settings.redaction_drop),
            hash=list(settings.redaction_hash),
            truncate_bytes=settings.redaction_truncate_bytes,
        )
        return redactor

    def _build_gate(self) -> tuple[re.Pattern[str] | None, dict[str, frozenset[int]]]:
        """One pre-filter for all detectors: a top-level alternation whose branches each start
        with one literal anchor character, so ``re`` skips other characters in C, then that
        anchor's fragments, each ending in an empty named group that says which one matched."""
        by_fragment: dict[str, set[int]] = {}
        for index, detector in enumerate(self.detectors):
            for fragment in detector.gates:
                by_fragment.setdefault(fragment, set()).add(index)
        if not by_fragment:
            return None, {}
        by_anchor: dict[str, list[str]] = {}
        groups: dict[str, frozenset[int]] = {}
        for number, (fragment, indexes) in enumerate(by_fragment.items()):
            anchors, condition = _split_gate(fragment)
            for anchor in anchors:
                name = f"g{number}_{ord(anchor)}"
                groups[name] = frozenset(indexes)
                by_anchor.setdefault(anchor, []).append(f"{condition}(?P<{name}>)")
        branches = (f"{re.escape(a)}(?:{'|'.join(c)})" for a, c in by_anchor.items())
        return re.compile("|".join(branches)), groups

    # -- strings ------------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """``text`` with every detected secret replaced, then truncated (counts metrics)."""
        tally: Tally[str] = Tally()
        out = self._text(text, tally)
        self._publish(tally)
        return out

    def _text(self, text: str, tally: Tally[str]) -> str:
        """Detect, then truncate; returns ``text`` itself when nothing changed."""
        if not text:
            return text
        tail_bytes = 0
        if self._scan_chars and len(text) > self._scan_chars:
            tail_bytes = len(text[self._scan_chars :].encode("utf-8", "surrogatepass"))
            text = text[: self._scan_chars]
        # numbers, hex ids and lower-case words: no built-in detector can match (they need an
        # upper-case letter, a separator or punctuation), and str methods are cheaper than re
        if self._always or not (text.isalnum() and (text.islower() or text.isdigit())):
            gate = self._gate
            first = gate.search(text) if gate is not None else None
            if first is not None or self._always:
                text = self._detect(text, first, tally)
        if len(text) <= self._fits and not tail_bytes:
            return text
        return self._truncate(text, tail_bytes, tally)

    def _detect(self, text: str, first: re.Match[str] | None, tally: Tally[str]) -> str:
        run = set(self._always)
        if first is not None:
            groups = self._gate_detectors
            run.update(groups[first.lastgroup])  # type: ignore[index]
            for found in self._gate.finditer(text, first.end()):  # type: ignore[union-attr]
                run.update(groups[found.lastgroup])  # type: ignore[index]
        lowered: str | None = None
        spans: list[tuple[int, int, int]] = []
        for index in sorted(run):
            detector = self.detectors[index]
            subject = text
            if detector.lower:
                if lowered is None:
                    lowered = _ascii_lower(text)
                subject = lowered
            check = detector.check
            for m in detector.pattern.finditer(subject):
                verdict = True if check is None else check(m, text)
                if verdict is False:
                    continue
                start, end = secret_span(m) if verdict is True else verdict
                if start < end:
                    spans.append((start, end, index))
        if not spans:
            return text
        return self._replace(text, spans, tally)

    def _replace(self, text: str, spans: list[tuple[int, int, int]], tally: Tally[str]) -> str:
        """Rebuild ``text`` with overlapping spans merged; the earliest detector names each."""
        spans.sort()
        pieces: list[str] = []
        position = 0
        start, end, index = spans[0]
        for s, e, i in spans[1:]:
            if s < end:
                end = max(end, e)
                index = min(index, i)
                continue
            name = self.detectors[index].name
            pieces += (text[position:start], f"[REDACTED:{name}]")
            tally[name] += 1
            position = end
            start, end, index = s, e, i
        name = self.detectors[index].name
        pieces += (text[position:start], f"[REDACTED:{name}]", text[end:])
        tally[name] += 1
        return "".join(pieces)

    def _truncate(self, text: str, tail_bytes: int, tally: Tally[str]) -> str:
        limit = self._limit
        if not limit:
            return text
        encoded = text.encode("utf-8", "surrogatepass")
        total = len(encoded) + tail_bytes
        if total <= limit:
            return text
        reserve = len(f"…[TRUNCATED {total} bytes]".encode())
        kept = encoded[: max(limit - reserve, 0)].decode("utf-8", "ignore")
        removed = total - len(kept.encode("utf-8", "surrogatepass"))
        tally["rule:truncate"] += 1
        return f"{kept}…[TRUNCATED {removed} bytes]"

    # -- attributes ---------------------------------------------------------------------------

    def _key_rule(self, key: str) -> Any:
        """What happens to an attribute by its key: _DROP, _HASH, a credential word (the whole
        value is a secret), or _PLAIN (scan the value). Cached; keys are few."""
        if self._drop is not None and self._drop.match(key):
            rule: Any = _DROP
        elif self._hash is not None and self._hash.match(key):
            rule = _HASH
        else:
            word = secret_key_word(key) if self._secret_attribute else None
            rule = word if word is not None else _PLAIN
        if len(self._key_rules) >= _KEY_CACHE_LIMIT:
            self._key_rules.clear()
        self._key_rules[key] = rule
        return rule

    def hash_value(self, value: str) -> str:
        """The keyed hash stored in place of a hashed attribute's value."""
        digest = hmac.new(self._hash_key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return digest.hexdigest()[:HASH_HEX_CHARS]

    def redact_attributes(self, attributes: dict[str, str]) -> dict[str, str]:
        """The attributes as stored: the same dict if nothing changed, else a new one."""
        tally: Tally[str] = Tally()
        out = self._map(attributes, tally)
        self._publish(tally)
        return out

    def _remember_clean(self, value: str) -> None:
        size = len(value)
        if size > _CLEAN_MEMORY_MAX_STRING:
            return
        if (
            self._clean_chars + size > CLEAN_MEMORY_CHARS
            or len(self._clean) >= CLEAN_MEMORY_STRINGS
        ):
            self._clean.clear()
            self._clean_chars = 0
        self._clean.add(value)
        self._clean_chars += size

    def _map(self, attributes: dict[str, str], tally: Tally[str]) -> dict[str, str]:
        """The hot loop: one dict lookup for the key's rule, one set lookup for a value already
        found clean."""
        key_rules = self._key_rules
        clean = self._clean
        out: dict[str, str] | None = None
        for key, value in attributes.items():
            rule = key_rules.get(key)
            if rule is None:
                rule = self._key_rule(key)
            if rule is _PLAIN:
                if value in clean:
                    new: str | None = value
                else:
                    new = self._text(value, tally)
                    if new is value:
                        self._remember_clean(value)
            else:
                new = self._ruled(rule, value, tally)
            if new is value:
                if out is not None:
                    out[key] = value
                continue
            if out is None:
                out = {}
                for k, v in attributes.items():
                    if k == key:
                        break
                    out[k] = v
            if new is not None:
                out[key] = new
        return attributes if out is None else out

    def _ruled(self, rule: Any, value: str, tally: Tally[str]) -> str | None:
        if rule is _DROP:
            tally["rule:drop"] += 1
            return None
        if not value:
            return value
        if rule is _HASH:
            tally["rule:hash"] += 1
            return self.hash_value(value)
        if plausible_secret(value, rule):
            tally[SECRET_ATTRIBUTE] += 1
            return f"[REDACTED:{SECRET_ATTRIBUTE}]"
        return self._text(value, tally)

    # -- rows ---------------------------------------------------------------------------------

    def process(self, decoded: Decoded) -> None:
        """Redact every stored string of a request's rows, in place (a pipeline processor).

        Rows are replaced by new tuples when something changed; attribute dicts are never
        mutated (decode shares one dict between the rows of a resource), and each distinct
        dict is redacted once per request.
        """
        tally: Tally[str] = Tally()
        maps: dict[int, tuple[dict[str, str], dict[str, str]]] = {}
        clean = self._clean

        def redact_text(value: str) -> str:
            if value in clean:
                return value
            new = self._text(value, tally)
            if new is value:
                self._remember_clean(value)
            return new

        def redact_map(attributes: dict[str, str]) -> dict[str, str]:
            cached = maps.get(id(attributes))
            if cached is None:
                # keep the original alive so its id cannot be reused within this request
                cached = (attributes, self._map(attributes, tally))
                maps[id(attributes)] = cached
            return cached[1]

        for table, rows in decoded.rows.items():
            plan = self._plans.get(table)
            if plan is None:  # a table added later: redact every string, map and list by type
                for row_index, row in enumerate(rows):
                    new_row = self._each(
                        list(row), lambda v: self._by_type(v, redact_text, redact_map)
                    )
                    if any(a is not b for a, b in zip(new_row, row, strict=True)):
                        rows[row_index] = tuple(new_row)
                continue
            for row_index, row in enumerate(rows):
                changed: list[Any] | None = None
                for column, kind in plan:
                    value = row[column]
                    if kind is MAP:
                        new = redact_map(value)
                    elif kind is TEXT:
                        new = redact_text(value)
                    elif kind is MAPS:
                        new = self._each(value, redact_map) if value else value
                    elif kind is TEXTS:
                        new = self._each(value, redact_text) if value else value
                    else:  # SERVICE: the column mirrors the resource attribute service.name
                        new = self._service_name(value, tally, redact_text)
                    if new is not value:
                        if changed is None:
                            changed = list(row)
                        changed[column] = new
                if changed is not None:
                    rows[row_index] = tuple(changed)
        if tally:
            self._publish(tally)

    def _service_name(self, value: str, tally: Tally[str], text: Callable[[str], str]) -> str:
        if not value:
            return value
        rule = self._key_rules.get("service.name") or self._key_rule("service.name")
        if rule is _PLAIN:
            return text(value)
        # the attribute itself is counted when its map is redacted
        return self._ruled(rule, value, Tally()) or ""

    @classmethod
    def _by_type(
        cls, value: Any, text: Callable[[str], str], attributes: Callable[[Any], Any]
    ) -> Any:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, dict):
            return attributes(value)
        if isinstance(value, list | tuple) and value:
            out = cls._each(list(value), lambda v: cls._by_type(v, text, attributes))
            if all(a is b for a, b in zip(out, value, strict=True)):
                return value
            return tuple(out) if isinstance(value, tuple) else out
        return value

    @staticmethod
    def _each(values: list[Any], redact: Callable[[Any], Any]) -> list[Any]:
        out = None
        for i, value in enumerate(values):
            new = redact(value)
            if new is not value:
                if out is None:
                    out = list(values)
                out[i] = new
        return values if out is None else out

    @staticmethod
    def _publish(tally: Tally[str]) -> None:
        for name, count in tally.items():
            if name.startswith("rule:"):
                RULE_APPLICATIONS.labels(rule=name[5:]).inc(count)
            else:
                REDACTIONS.labels(detector=name).inc(count)


def _benchmark() -> (
    None
):  # pragma: no cover - ``python -m receiver.processors.redact [capture.pb ...]``
    """Per-value cost of the scan (what ``process`` pays for each distinct string), and, for
    OTLP request files given as arguments, ``process`` against decoding. Best of 7 runs."""
    import sys
    import time
    import timeit

    from receiver.ingest.decode import DECODERS

    redactor = Redactor(hash=("user.email",), hash_key=b"k", truncate_bytes=64 * 1024)
    tally: Tally[str] = Tally()
    samples = {
        "clean id (hex)": "bfdb0cfdf65c3f9762702b17894f61f6f82d56ad5d7db55bf2c403d08fd16bec",
        "clean uuid": "b08ba7ad-8bff-4a48-8d31-9ae659a67575",
        "clean name": "codex_app_server::request_processors::thread_processor",
        "clean command": (
            "cd /home/dev/realcap/work && git log --oneline -n 20 -- src/receiver/redact.py "
            "&& pytest tests/test_redact.py -q -k 'not e2e' --maxfail=1 2>&1 | tail -n 40 && "
            "ruff check . && ruff format --check . && echo done; ls -la build/ dist/ || true"
        ),
        "clean 2 KB output": "test_decode.py::test_span_fields PASSED  [ 12%]\n" * 42,
        "secret command": (
            'curl -sS -H "Authorization: Bearer ghp_R2d9xKq7Lm4Np8Zt3Vw6Yb1Cf5Hj0Ga2Ue7S" '
            "https://api.github.com/user"
        ),
    }
    for label, value in samples.items():
        n = 2000
        best = min(timeit.repeat(lambda v=value: redactor._text(v, tally), number=n, repeat=7))
        print(f"{label:20} {len(value):5} chars  {best / n * 1e6:7.2f} µs")
    for name in sys.argv[1:]:
        body = open(name, "rb").read()  # noqa: SIM115
        decode = DECODERS[name.rsplit("_", 1)[1].split(".")[0]]
        times: dict[str, list[float]] = {"decode": [], "redact": []}
        for _ in range(7):
            decoded = [decode(body) for _ in range(5)]
            start = time.perf_counter()
            for _ in range(5):
                decode(body)
            times["decode"].append((time.perf_counter() - start) / 5)
            start = time.perf_counter()
            for d in decoded:
                redactor.process(d)
            times["redact"].append((time.perf_counter() - start) / 5)
        d, r = min(times["decode"]), min(times["redact"])
        print(f"{name}: decode {d * 1e3:.2f} ms, redact {r * 1e3:.2f} ms ({r / d:.0%})")


if __name__ == "__main__":  # pragma: no cover
    _benchmark()
