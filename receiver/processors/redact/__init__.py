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

The package: ``detectors`` (the catalogue and the value checks, pure functions) and
``engine`` (the ``Redactor`` processor: rules, caches, metrics); ``python -m
receiver.processors.redact [capture.pb ...]`` times it (``__main__``).
"""

from receiver.processors.redact.detectors import (
    DETECTOR_NAMES,
    DETECTORS,
    SECRET_ATTRIBUTE,
    Detector,
    custom_detector,
    plausible_secret,
    secret_key_word,
    secret_span,
)
from receiver.processors.redact.engine import (
    CLEAN_MEMORY_CHARS,
    CLEAN_MEMORY_STRINGS,
    HASH_HEX_CHARS,
    HASH_KEY_ENV,
    HASH_KEY_FILE_NAME,
    REDACTED_COLUMNS,
    REDACTIONS,
    RULE_APPLICATIONS,
    RULES,
    SCAN_SLACK_CHARS,
    UNREDACTED_COLUMNS,
    Redactor,
    detector_count,
    load_hash_key,
    rule_count,
)

__all__ = [
    "CLEAN_MEMORY_CHARS",
    "CLEAN_MEMORY_STRINGS",
    "DETECTORS",
    "DETECTOR_NAMES",
    "HASH_HEX_CHARS",
    "HASH_KEY_ENV",
    "HASH_KEY_FILE_NAME",
    "REDACTED_COLUMNS",
    "REDACTIONS",
    "RULES",
    "RULE_APPLICATIONS",
    "SCAN_SLACK_CHARS",
    "SECRET_ATTRIBUTE",
    "UNREDACTED_COLUMNS",
    "Detector",
    "Redactor",
    "custom_detector",
    "detector_count",
    "load_hash_key",
    "plausible_secret",
    "rule_count",
    "secret_key_word",
    "secret_span",
]
