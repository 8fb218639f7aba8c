"""OTLP AnyValue to the strings the collector's ClickHouse exporter stores.

The exporter writes every attribute value and log body with pdata's ``Value.AsString()``:
strings as they are, ints in decimal, doubles like a JavaScript number (``2``, ``1.5``,
``1e-7``, ``1e+21``), booleans ``true``/``false``, bytes as standard base64, arrays and
kvlists as Go ``encoding/json`` would write them (keys sorted, ``<>&`` escaped). Queries
written against collector-fed tables depend on these exact spellings, so we match them.

Deliberate difference: pdata writes NaN and infinities as ``json: unsupported value: NaN``
(its JSON encoder's error text); we write ``NaN``, ``Inf`` and ``-Inf``, and ``null``
inside JSON.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
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
