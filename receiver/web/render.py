"""Rendering: one Jinja ``Environment`` with autoescaping always on (every stored value is
text, whatever it contains), the filters the templates share, and the JSON encoding of view
data. Nothing here marks a value as safe HTML."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_json(data: Any) -> str:
    return json.dumps(_finite(data), default=json_default, ensure_ascii=False)


def when(value: Any) -> str:
    """A UTC time to the second (milliseconds when ``precise``)."""
    if isinstance(value, datetime):
        if value.year <= 1970:
            return ""
        return _utc(value).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def clock(value: Any) -> str:
    if isinstance(value, datetime):
        return _utc(value).strftime("%H:%M:%S.%f")[:-3]
    return "" if value is None else str(value)


def duration(seconds: Any) -> str:
    """``0.4 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds is None:
        return ""
    s = float(seconds)
    if s < 0.001:
        return "0 s" if s <= 0 else f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def number(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{int(value):,}"


def usd(value: Any) -> str:
    if not value:
        return ""
    v = float(value)
    return f"${v:,.4f}" if v < 100 else f"${v:,.2f}"


def short(value: Any, keep: int = 8) -> str:
    """An id shortened for a table cell (the full id stays in the link and its title)."""
    text = "" if value is None else str(value)
    return text if len(text) <= keep + 1 else text[:keep] + "…"


def cell(value: Any) -> str:
    """Any report value as text."""
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, float):
        return number(value)
    return "" if value is None else str(value)


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("receiver.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        clock=clock,
        duration=duration,
        number=number,
        usd=usd,
        short=short,
        cell=cell,
        path=lambda v: quote(str(v), safe=""),
    )
    return env
