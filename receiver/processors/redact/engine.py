"""The redaction engine: the ``Redactor`` processor that applies drop, hash, the detectors
(``receiver.processors.redact.detectors``) and truncate to a request's rows, with its caches
and self-metrics. It never logs a value, and nothing it removed leaves it.

Speed: numbers, hex ids and lower-case words cannot hold a built-in secret and skip all of
this (``str.isalnum``; in ``process``, one C-level search over all of a request's unknown
strings joined, and they are not remembered). Every other string gets one pre-filter regular
expression: each of its
alternatives starts at one anchor character that is rare in telemetry (``k``, ``w``, ``z``,
``x``, ``J``, ``A``, ``B``, ``=``, ``~``, ``:`` after a credential-like word, ...) and checks
the literal around it with fixed-width look-arounds, so ``re`` skips every other character in
C. Only the detectors whose anchors were seen run; each pattern starts with a literal (fast
prefix search), case-insensitive ones run on a lower-cased copy of the same length. Matches
are merged (on overlap the earlier detector in the catalogue names the secret) and the string
is rebuilt once. A string found clean is remembered across requests (a bounded set, emptied
when it holds ``CLEAN_MEMORY_STRINGS`` strings or ``CLEAN_MEMORY_CHARS`` characters), so each
distinct clean string is scanned once while it keeps recurring: telemetry repeats itself
(model names, session ids, tool names, scope names). ``process`` works on a table's columns,
not its rows: the string columns together, the attribute columns together, each reduced by
set operations in C to the distinct values not yet known clean, so a request whose values are
all known costs no Python-level step per row or per attribute. Attribute maps shared by the
rows of one resource are redacted once per request and never mutated: changed maps are new
dicts. Tables
this module does not list (added later, e.g. stitching's) are redacted by value type: every
str, dict and list of them.

Timing (``python -m receiver.processors.redact [--pool N] [capture.pb ...]``, best of 7), on a
2-vCPU VM shared with other jobs, where ``python -m timeit "sum(range(100))"`` takes 0.8-1.1 µs
(about half a laptop's speed). Per distinct string, which is what ``process`` scans once per
request:

- clean hex id / number / lower-case word (skips the pre-filter): 0.7 µs
- clean UUID, 36 chars: 0.8 µs; clean Rust module path, 54 chars: 1.3 µs
- clean 2 KB tool output: 38 µs (the pre-filter's scan, ~20 ns/char; no detector runs)
- clean 240-char command with ``=`` in it (the assignment detectors run): 12 µs
- command with a secret (``curl -H "Authorization: Bearer ghp_..."``, 104 chars): 28 µs
- whole requests, the real captures in ``tests/fixtures/real/main_grpc``: the Codex trace
  request (412 spans, 11.7k strings, 1.6k distinct) 2.1 ms against 9-11 ms to decode it
  (18-23%); Codex metrics 0.7 ms vs 3.0 ms (23%); small Claude requests 0.03-0.16 ms
  (30-50% of their decode time). Issue 16 (column-wise ``process``), on a faster moment of
  the VM (``sum(range(100))`` 0.6 µs), once the clean strings are known: Codex traces
  0.47 ms against 0.79 ms before (decode 1.7 ms), Codex metrics 0.17 against 0.36 ms;
  small Claude requests unchanged (0.02 ms)
- with the VM busier (``sum(range(100))`` 1.8 µs), the same runs took up to twice as long;
  the ratio to decoding then moved between 18% and 100% from run to run
- worst case seen, 80 KB values packed with candidates (``password=`` x 9000, ``-u x:y`` x
  11000): 0.1-0.3 s, linear (see ``test_scanning_stays_linear_on_adversarial_values``)
- after issue 18 (people's passwords; ``--pool 64``: CPU per item over ``otlp-bench``'s
  pool): 2.9-3.3 µs per item, as before it; after issue 16: 1.7-2.0 µs per item (2.8-3.3
  before it, alternating runs); see docs/BENCHMARKS.md

Self-metrics: ``otel_receiver_redactions_total{detector}`` counts secrets replaced, and
``otel_receiver_redaction_rules_total{rule}`` counts values dropped, hashed and truncated
(prometheus-client, default registry). Nothing is logged per request or per item.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import os
import re
import secrets
import sys
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any

import structlog
from prometheus_client import REGISTRY, Counter

from receiver.config import ConfigError, Settings
from receiver.ingest.decode import Decoded
from receiver.processors.redact.detectors import (
    DETECTOR_NAMES,
    DETECTORS,
    SECRET_ATTRIBUTE,
    custom_detector,
    plausible_secret,
    secret_key_word,
    secret_span,
)
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


@dataclass(frozen=True)
class _Plan:
    """A table's redacted columns by kind, as column indexes."""

    texts: tuple[int, ...]  # String columns, decided together
    service: int | None  # ServiceName, redacted by the rule of the key service.name
    maps: tuple[int, ...]  # attribute dicts, decided together
    lists: tuple[tuple[int, str], ...]  # Array(String) and Array(Map) columns, and their kind


def _column_plans() -> dict[str, _Plan]:
    """Per table in ``REDACTED_COLUMNS``: which columns hold what."""
    plans = {}
    for table, kinds in REDACTED_COLUMNS.items():
        columns = TABLE_COLUMNS[table]
        unknown = set(kinds) - set(columns)
        assert not unknown, f"{table}: no such columns {unknown}"
        of_kind = {
            kind: tuple(columns.index(n) for n, k in kinds.items() if k == kind)
            for kind in (TEXT, SERVICE, MAP)
        }
        plans[table] = _Plan(
            texts=of_kind[TEXT],
            service=of_kind[SERVICE][0] if of_kind[SERVICE] else None,
            maps=of_kind[MAP],
            lists=tuple((columns.index(n), k) for n, k in kinds.items() if k in (TEXTS, MAPS)),
        )
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


_UPPER_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


_SEPARATOR = "\x00"
_NOT_CHEAP = re.compile(r"[^0-9a-z\x00]")  # what numbers, hex ids and lower-case words lack


def _not_cheap(joined: str) -> Iterator[str]:
    """The strings of ``joined`` (separated by ``_SEPARATOR``) holding a character other than
    0-9 and a-z; the search skips the others in C."""
    search, find, rfind = _NOT_CHEAP.search, joined.find, joined.rfind
    position = 0
    while (found := search(joined, position)) is not None:
        start = rfind(_SEPARATOR, 0, found.start()) + 1
        end = find(_SEPARATOR, found.end())
        if end < 0:
            end = len(joined)
        yield joined[start:end]
        position = end + 1


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
            return _read_key(path)
        except OSError as exc:
            raise ConfigError(
                f"redaction_hash_key_file: cannot read {path}: {exc.strerror}"
            ) from None
    return _generated_key(Path(settings.data_dir) / HASH_KEY_FILE_NAME)


def _read_key(path: Path) -> bytes:
    """The key ``path`` holds, without surrounding white space; an empty file is an error."""
    key = path.read_bytes().strip()
    if not key:
        raise ConfigError(f"redaction_hash_key_file: {path} is empty")
    return key


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
        return _read_key(path)
    except OSError as exc:
        raise ConfigError(
            f"redaction_hash_key_file: no key set and cannot create {path}: {exc.strerror}"
        ) from None


# ---------------------------------------------------------------------------------------------
# The redactor.

_PLAIN, _DROP, _HASH = "plain", "drop", "hash"  # key rules; any other rule is a credential word
_KEY_CACHE_LIMIT = 10_000
# Clean strings remembered across requests: at most this many, of this many characters in
# all (a few MB); longer strings are not remembered (a rare huge one would evict the rest).
CLEAN_MEMORY_STRINGS = 50_000
CLEAN_MEMORY_CHARS = 2_000_000
_CLEAN_MEMORY_MAX_STRING = 16_384


_NOTHING_KNOWN: Mapping[str, tuple[str, Tally[str]]] = MappingProxyType({})


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
        # a number, hex id or lower-case word up to this long is clean as it is (0: none is,
        # because custom detectors without a pre-filter run on every string)
        self._cheap_max = 0 if self._always else (self._fits if truncate_bytes else sys.maxsize)
        self._key_rules: dict[str, Any] = {}
        self._plain_keys: set[str] = set()  # the keys whose rule is _PLAIN
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
            self._plain_keys.clear()
        self._key_rules[key] = rule
        if rule is _PLAIN:
            self._plain_keys.add(key)
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

    def _map(
        self,
        attributes: dict[str, str],
        tally: Tally[str],
        known: Mapping[str, tuple[str, Tally[str]]] = _NOTHING_KNOWN,
    ) -> dict[str, str]:
        """One dict, key by key: the key's rule, then the value (unless already found clean,
        or already scanned in this request: ``known``)."""
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
                elif (scanned := known.get(value)) is not None:
                    new = scanned[0]
                    tally.update(scanned[1])
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
        dict is redacted once per request. A table's string columns are decided together, and
        so are its attribute columns: the distinct values not known clean are found by set
        operations in C, without a Python-level step per row, and only those are scanned.
        """
        tally: Tally[str] = Tally()
        maps: dict[int, tuple[dict[str, str], dict[str, str]]] = {}
        known: dict[str, tuple[str, Tally[str]]] = {}  # strings scanned that change
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
                cached = (attributes, self._map(attributes, tally, known))
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
            replaced: list[tuple[int, int, Any]] = []  # (column, row, new value)
            texts = plan.texts
            if plan.service is not None:
                rule = self._key_rules.get("service.name") or self._key_rule("service.name")
                if rule is _PLAIN:
                    texts += (plan.service,)
                else:
                    replaced += self._service_column(rows, plan.service, rule)
            if texts:
                replaced += self._text_columns(rows, texts, tally)
            if plan.maps:
                replaced += self._map_columns(rows, plan.maps, redact_map, known)
            for column, kind in plan.lists:
                values = list(map(itemgetter(column), rows))
                if any(values):  # nearly always the shared empty list
                    each = redact_map if kind is MAPS else redact_text
                    replaced += (
                        (column, i, new)
                        for i, value in enumerate(values)
                        if value and (new := self._each(value, each)) is not value
                    )
            changed: dict[int, list[Any]] = {}
            for column, row_index, new in replaced:
                row = changed.get(row_index)
                if row is None:
                    row = changed[row_index] = list(rows[row_index])
                row[column] = new
            for row_index, row in changed.items():
                rows[row_index] = tuple(row)
        if tally:
            self._publish(tally)

    def _map_columns(
        self,
        rows: list[tuple[Any, ...]],
        columns: tuple[int, ...],
        redact_map: Callable[[dict[str, str]], dict[str, str]],
        known: dict[str, tuple[str, Tally[str]]],
    ) -> list[tuple[int, int, dict[str, str]]]:
        """(column, row, new dict) for the attribute dicts that redaction changes.

        Dicts whose keys all scan their value (``_PLAIN``) change only if one of their values
        does: the distinct values not known clean are found by set operations and decided
        each once (``_unknown``); only dicts holding a value that changes, or a key with a
        rule (drop, hash, credential word), go through ``_map``."""
        plain = self._plain_keys
        # the same dict (a resource's, shared by its rows) once
        distinct = {id(v): v for v in chain(*[map(itemgetter(c), rows) for c in columns])}
        dicts: Any = distinct.values()
        ruled: list[dict[str, str]] = []
        if not plain.issuperset(chain.from_iterable(dicts)):
            key_rules = self._key_rules
            for key in set(chain.from_iterable(dicts)).difference(plain):
                if key not in key_rules:
                    self._key_rule(key)
            ruled_keys = {k for k, rule in key_rules.items() if rule is not _PLAIN}
            ruled = [d for d in dicts if not ruled_keys.isdisjoint(d)]
            if ruled:
                dicts = [d for d in dicts if ruled_keys.isdisjoint(d)]
        unknown = set(chain.from_iterable(map(dict.values, dicts))).difference(self._clean)
        if unknown and (changing := self._unknown(unknown)):
            known.update(changing)
            ruled += (d for d in dicts if not changing.keys().isdisjoint(d.values()))
        new_maps = {}
        for attributes in ruled:
            new = redact_map(attributes)
            if new is not attributes:
                new_maps[id(attributes)] = new
        if not new_maps:
            return []
        return [
            (column, i, new_maps[id(v)])
            for column in columns
            for i, v in enumerate(map(itemgetter(column), rows))
            if id(v) in new_maps
        ]

    def _text_columns(
        self, rows: list[tuple[Any, ...]], columns: tuple[int, ...], tally: Tally[str]
    ) -> list[tuple[int, int, str]]:
        """(column, row, new string) for the strings that redaction changes; each distinct
        string not known clean is scanned once, counted once per cell holding it."""
        cells = set().union(*[map(itemgetter(c), rows) for c in columns])
        unknown = cells.difference(self._clean)
        if not unknown or not (found := self._unknown(unknown)):
            return []
        return self._replaced(rows, columns, found, tally)

    def _unknown(self, values: set[str]) -> dict[str, tuple[str, Tally[str]]]:
        """Scan strings not known clean: {value: (redacted, its counts)} for those that
        change. Numbers, hex ids and lower-case ASCII words that fit the limit are clean as
        they are (``_text``'s first test): they are told apart in C, by one search over all
        of them joined, and not remembered (they rarely recur: counts, durations, ids). The
        other clean strings are remembered."""
        scan: Iterable[str] = values
        if self._cheap_max and max(map(len, values)) <= self._cheap_max:
            joined = _SEPARATOR.join(values)
            if joined.count(_SEPARATOR) == len(values) - 1:  # no value holds the separator
                scan = _not_cheap(joined)
        found: dict[str, tuple[str, Tally[str]]] = {}
        for value in scan:
            counts: Tally[str] = Tally()
            new = self._text(value, counts)
            if new is value:
                self._remember_clean(value)
            else:
                found[value] = (new, counts)
        return found

    def _service_column(
        self, rows: list[tuple[Any, ...]], column: int, rule: Any
    ) -> list[tuple[int, int, str]]:
        """ServiceName mirrors the resource attribute service.name, under a rule (drop, hash,
        credential word); the attribute itself is counted when its map is redacted."""
        found = {}
        for value in set(map(itemgetter(column), rows)):
            if value and (new := self._ruled(rule, value, Tally()) or "") != value:
                found[value] = (new, Tally[str]())
        return self._replaced(rows, (column,), found, Tally())

    @staticmethod
    def _replaced(
        rows: list[tuple[Any, ...]],
        columns: tuple[int, ...],
        found: dict[str, tuple[str, Tally[str]]],
        tally: Tally[str],
    ) -> list[tuple[int, int, str]]:
        out = []
        for column in columns:
            for i, value in enumerate(map(itemgetter(column), rows)):
                hit = found.get(value)
                if hit is not None:
                    out.append((column, i, hit[0]))
                    tally.update(hit[1])
        return out

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
