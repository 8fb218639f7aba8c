"""OTLP AnyValue to the strings the collector's ClickHouse exporter stores.

The exporter writes every attribute value and log body with pdata's ``Value.AsString()``:
strings as they are, ints in decimal, doubles like a JavaScript number (``2``, ``1.5``,
``1e-7``, ``1e+21``), booleans ``true``/``false``, bytes as standard base64, arrays and
kvlists as Go ``encoding/json`` would write them (keys sorted, ``<>&`` escaped). Queries
written against collector-fed tables depend on these exact spellings, so we match them.

Deliberate difference: pdata writes NaN and infinities as ``json: unsupported value: NaN``
(its JSON encoder's error text); we write ``NaN``, ``Inf`` and ``-Inf``, and ``null``
inside JSON.

Speed: the decoder hands attribute lists over as the serialized bytes of each ``KeyValue``
(``wire_attributes``), not as protobuf objects: touching a KeyValue and its AnyValue from
Python costs about 1 µs, the attribute work that dominated decoding. Telemetry repeats itself
(the same keys, most values: ``span.type``, ``session.id``, ``code.filepath`` ...), so the
(key, string) pair of each distinct serialized KeyValue is computed once and kept in a small,
bounded cache (about 86% hits on the Claude Code + Codex mix); a pair is a pure function of
those bytes, so a hit can never differ from a fresh conversion.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def format_double(value: float) -> str:
    """A double as Go's JSON encoder writes it (ES6 number-to-string rules)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, exponent = repr(value).split("e")
        return f"{mantissa}e{exponent[0]}{int(exponent[1:])}"
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def any_value_to_str(value: AnyValue) -> str:
    """The exporter's column string for one AnyValue (attribute value or log body)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return format_double(value.double_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return ""
    return _to_json(_to_raw(value))


def attributes_to_map(attributes: Iterable[KeyValue]) -> dict[str, str]:
    """A repeated KeyValue as the exporter's Map(String, String): keys sorted (so equal sets
    are equal maps in ClickHouse, for GROUP BY and the ``cityHash64(Attributes)`` sort key),
    a repeated key keeping its last value."""
    return dict(sorted({kv.key: any_value_to_str(kv.value) for kv in attributes}.items()))


# (key, string) per serialized KeyValue. Bounded: emptied when full (it refills with what
# repeats within seconds); only short KeyValues are kept, so it stays a few MB at most.
_PAIRS: dict[bytes, tuple[str, str]] = {}
PAIRS_MAX_ENTRIES = 32_768
PAIRS_MAX_BYTES = 256
# Message nesting (AnyValue, ArrayValue, KeyValueList, KeyValue levels) up to which a KeyValue
# parsed on its own is accepted exactly when the whole request would be: protobuf's parser
# refuses more than 100 levels, and a KeyValue sits at most 8 levels down in an Export request
# (an exemplar's). Deeper values are for the caller to check against the whole request.
MAX_STANDALONE_DEPTH = 80


class NestingTooDeep(Exception):
    """A KeyValue nests arrays/kvlists so deeply that only a parse of the whole request can
    say whether protobuf accepts it."""


_local = threading.local()


@contextlib.contextmanager
def deep_values_verified() -> Iterator[None]:
    """Within this block (this thread), deep values are taken as they are: the caller has
    checked the whole request with the plain schema."""
    _local.deep_ok = True
    try:
        yield
    finally:
        _local.deep_ok = False


def wire_pair(raw: bytes) -> tuple[str, str]:
    """(key, exporter string) of one serialized KeyValue.

    Raises ``google.protobuf.message.DecodeError`` for bytes that are not a KeyValue, and
    NestingTooDeep (see MAX_STANDALONE_DEPTH).
    """
    pair = _scalar_pair(raw)
    if pair is not None:
        if len(_PAIRS) >= PAIRS_MAX_ENTRIES:
            _PAIRS.clear()
        _PAIRS[raw] = pair
        return pair
    kv = KeyValue.FromString(raw)
    value = kv.value
    kind = value.WhichOneof("value")
    if kind == "string_value":
        pair = (kv.key, value.string_value)
    else:
        if (kind == "array_value" or kind == "kvlist_value") and 1 + _depth(
            value
        ) > MAX_STANDALONE_DEPTH:
            if not getattr(_local, "deep_ok", False):
                raise NestingTooDeep(kv.key)
            return (kv.key, any_value_to_str(value))  # not cached: judged per request
        pair = (kv.key, any_value_to_str(value))
    if len(raw) <= PAIRS_MAX_BYTES:
        if len(_PAIRS) >= PAIRS_MAX_ENTRIES:
            _PAIRS.clear()
        _PAIRS[raw] = pair
    return pair


_DOUBLE = struct.Struct("<d")


def _scalar_pair(raw: bytes) -> tuple[str, str] | None:
    """The pair of a KeyValue written the way every SDK writes one (the key, then an AnyValue
    holding one string, non-negative int, bool or double; every length under 128 bytes), read
    without protobuf; None for any other layout, which protobuf then reads.

    Strict UTF-8 decoding accepts exactly what protobuf's validation accepts; anything it
    refuses goes to protobuf, which raises its own error.
    """
    n = len(raw)
    if n < 4 or raw[0] != 0x0A:  # field 1 (key), length-delimited
        return None
    v = 2 + raw[1]  # the value's tag, if the key's length fits one byte
    if (
        raw[1] >= 0x80
        or v + 2 > n
        or raw[v] != 0x12
        or raw[v + 1] >= 0x80
        or v + 2 + raw[v + 1] != n
    ):
        return None
    try:
        key = raw[2:v].decode()
    except UnicodeDecodeError:
        return None
    a = v + 2  # the AnyValue's first byte
    if a == n:
        return key, ""  # an empty AnyValue
    tag = raw[a]
    if tag == 0x0A:  # string_value
        if a + 2 > n or raw[a + 1] >= 0x80 or a + 2 + raw[a + 1] != n:
            return None
        try:
            return key, raw[a + 2 :].decode()
        except UnicodeDecodeError:
            return None
    if tag == 0x18:  # int_value: a varint of at most 9 bytes (0 <= value < 2**63)
        if not 1 <= n - a - 1 <= 9 or raw[n - 1] >= 0x80:
            return None
        value = 0
        shift = 0
        for byte in raw[a + 1 : n - 1]:
            if byte < 0x80:
                return None  # the varint ends before the KeyValue does
            value |= (byte & 0x7F) << shift
            shift += 7
        return key, str(value | raw[n - 1] << shift)
    if tag == 0x10 and a + 2 == n and raw[a + 1] < 0x80:  # bool_value
        return key, "true" if raw[a + 1] else "false"
    if tag == 0x21 and a + 9 == n:  # double_value
        return key, format_double(_DOUBLE.unpack_from(raw, a + 1)[0])
    return None


def wire_attributes(raws: Sequence[bytes]) -> dict[str, str]:
    """``attributes_to_map`` for serialized KeyValues (a repeated KeyValue field read as
    ``repeated bytes``): the same dict, keys sorted, a repeated key keeping its last value.

    Raises like ``wire_pair``.
    """
    raws = raws[:]  # one list from the protobuf container: faster than iterating it
    if not raws:
        return {}
    get = _PAIRS.get
    pairs = [get(raw) or wire_pair(raw) for raw in raws]
    pairs.sort()  # by key; a tie (a repeated key) is settled below
    attributes = dict(pairs)
    if len(attributes) != len(pairs):  # a repeated key: the last one in the request wins
        attributes = dict(sorted(dict(get(raw) or wire_pair(raw) for raw in raws).items()))
    return attributes


def _depth(value: Any) -> int:
    """Levels of message nesting in the AnyValue ``value`` (itself included)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return 2 + max((_depth(v) for v in value.array_value.values), default=0)
    if kind == "kvlist_value":
        return 3 + max((_depth(kv.value) for kv in value.kvlist_value.values), default=0)
    return 1


class _JsonDouble(float):
    """A double that must be written with Go's number formatting inside JSON."""


def _to_raw(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return _JsonDouble(value.double_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [_to_raw(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _to_raw(kv.value) for kv in value.kvlist_value.values}
    return None


def _to_json(raw: Any) -> str:
    if isinstance(raw, _JsonDouble):
        return "null" if math.isnan(raw) or math.isinf(raw) else format_double(raw)
    if isinstance(raw, dict):
        items = (f"{_to_json(k)}:{_to_json(raw[k])}" for k in sorted(raw))
        return "{" + ",".join(items) + "}"
    if isinstance(raw, list):
        return "[" + ",".join(_to_json(v) for v in raw) + "]"
    return json.dumps(raw, ensure_ascii=False).translate(_JSON_ESCAPES)
