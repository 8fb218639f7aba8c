"""Input limits, and the tenant stamp, applied to every Export request before it is decoded.

This is the one place where hostile input is bounded, for both front ends: the pipeline calls
``Limits.screen`` on the raw request bytes before decoding. Limits (``limits.*`` settings; 0
turns one off):

- ``max_items_per_request`` (spans, log records or data points): the whole request is refused,
  ``RESOURCE_EXHAUSTED`` / 413 (not retryable).
- ``max_attributes`` on a resource, scope, item, event or link: the items concerned are
  rejected (OTLP partial success).
- ``max_attribute_key_bytes``: the item is rejected.
- ``max_attribute_value_bytes`` (string and bytes values, log bodies): the value is truncated
  and ends with ``…[TRUNCATED <n> bytes]``.
- ``max_nesting_depth`` of array / kvlist values (an array of scalars is depth 1): the item
  is rejected.
- ``max_span_events`` / ``max_span_links``: the span is rejected.
- ``max_future_skew`` (seconds) and the table TTL (``clickhouse.ttl_days``): a span, log
  record or data point whose timestamp lies further in the future, or further in the past
  than ClickHouse keeps rows, is rejected. A client with a broken clock would otherwise fill
  one day partition per distinct day (``receiver.delivery.partitions``), or have its rows
  dropped by the TTL right after an OK. A timestamp of 0 (unset) is left to decode.

A resource or scope over a limit rejects every item under it. Each rejection and truncation
is counted (``otel_receiver_items_rejected_total{signal,reason}``,
``otel_receiver_values_truncated_total``); the partial-success message names the limit.

The request is parsed once, here, with decode's wire twin of the schema (attribute lists as
``repeated bytes``, see ``receiver.ingest.decode``), and the parsed request is handed on to decode.
Only attributes whose serialized size could break a length or depth limit (more than
``min(max_attribute_key_bytes, max_attribute_value_bytes, 4 * max_nesting_depth)`` bytes; each
nesting level costs at least 4 bytes) are parsed and looked into, so on typical data the walk
costs little more than counting; setting the three per-value limits to 0 skips it. A request
that breaks no limit and needs no tenant stamp is passed on unchanged (not re-serialized).

Before the first change to a request (a rejection, a truncation, or refusing it whole), its
bytes are judged with the plain schema, so a request protobuf would refuse is refused with
protobuf's error exactly as before limits looked at it, whatever the limits would have done.

Tenants: when the client's token names a tenant, ``tenant.name`` (``receiver.ingest.auth``) is
set on every resource of the request, replacing any value the client sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from receiver.config import Settings
from receiver.ingest.auth import TENANT_ATTRIBUTE
from receiver.ingest.decode import PLAIN_REQUESTS, WIRE_REQUESTS
from receiver.ops.selfmetrics import ITEMS_REJECTED, REQUESTS_REJECTED, VALUES_TRUNCATED

_MAX_REASONS = 5
_INT64_MAX = 2**63 - 1
_DAY_NS = 86_400 * 10**9
_MARKER = "…[TRUNCATED {} bytes]"


class LimitExceeded(Exception):
    """The whole request is over a limit; answered RESOURCE_EXHAUSTED / 413, not retried."""


@dataclass
class Screened:
    """The request to decode (its bytes, and parsed with the wire twin), and what the limits
    took out of it."""

    body: bytes
    request: Any
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    truncated: int = 0

    def reject(self, count: int, reason: str) -> None:
        self.rejected += count
        if reason not in self.reasons and len(self.reasons) < _MAX_REASONS:
            self.reasons.append(reason)

    def merge_into(self, decoded: Any) -> None:
        """Add these rejections to a ``receiver.ingest.decode.Decoded`` (its partial success)."""
        if not self.rejected:
            return
        decoded.rejected += self.rejected
        for reason in self.reasons:
            if reason not in decoded.reasons and len(decoded.reasons) < _MAX_REASONS:
                decoded.reasons.append(reason)


class _Problem(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def truncate_utf8(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary, with a marker."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text, False
    marker_room = len(_MARKER.format(len(raw)).encode())
    keep = max(limit - marker_room, 0)
    head = raw[:keep].decode("utf-8", "ignore")
    marker = _MARKER.format(len(raw) - len(head.encode("utf-8", "surrogatepass")))
    if len(marker.encode()) > limit:
        return raw[:limit].decode("utf-8", "ignore"), True
    return head + marker, True


class Limits:
    """The configured limits; ``screen`` applies them to one request."""

    def __init__(
        self,
        *,
        max_items: int = 0,
        max_attributes: int = 0,
        max_key_bytes: int = 0,
        max_value_bytes: int = 0,
        max_depth: int = 0,
        max_events: int = 0,
        max_links: int = 0,
        max_future_skew: float = 0,
        max_age_days: int = 0,
    ) -> None:
        self.max_items = max_items
        self.max_attributes = max_attributes
        self.max_key_bytes = max_key_bytes
        self.max_value_bytes = max_value_bytes
        self.max_depth = max_depth
        self.max_events = max_events
        self.max_links = max_links
        self.max_future_ns = int(max_future_skew * 1e9)
        self.max_age_days = max_age_days
        gates = [g for g in (max_key_bytes, max_value_bytes, 4 * max_depth) if g]
        # An attribute whose serialized size is at most this cannot break a per-value limit.
        self.gate = min(gates) if gates else None

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(
            max_items=s.limits_max_items_per_request,
            max_attributes=s.limits_max_attributes,
            max_key_bytes=s.limits_max_attribute_key_bytes,
            max_value_bytes=s.limits_max_attribute_value_bytes,
            max_depth=s.limits_max_nesting_depth,
            max_events=s.limits_max_span_events,
            max_links=s.limits_max_span_links,
            max_future_skew=s.limits_max_future_skew,
            max_age_days=s.clickhouse_ttl_days,
        )

    def compiled_arguments(self) -> tuple[int, ...]:
        """These limits as the compiled fast path takes them (``receiver.ingest.fastpath``),
        with this moment's timestamp window (latest, earliest; 0 for none), all within int64
        (clamping changes no decision: timestamps are at most 2**63 - 1)."""
        now = time.time_ns()
        latest = min(now + self.max_future_ns, _INT64_MAX) if self.max_future_ns else 0
        earliest = max(now - self.max_age_days * _DAY_NS, 0) if self.max_age_days else 0
        sizes = (
            self.max_items,
            self.max_attributes,
            self.max_key_bytes,
            self.max_value_bytes,
            self.max_depth,
            self.max_events,
            self.max_links,
        )
        return (*(min(size, _INT64_MAX) for size in sizes), latest, earliest)

    # -- the request ---------------------------------------------------------------------

    def screen(self, signal: str, body: bytes, tenant: str = "") -> Screened:
        """Apply the limits (and the tenant stamp) to one Export request's bytes.

        Raises LimitExceeded for a request over ``max_items_per_request`` and
        ``google.protobuf.message.DecodeError`` for bytes that are not the request.
        """
        try:
            request = WIRE_REQUESTS[signal].FromString(body)
            return self._screen(signal, body, request, tenant)
        except DecodeError:
            PLAIN_REQUESTS[signal].FromString(body)  # protobuf's own error for the request
            raise

    def _screen(self, signal: str, body: bytes, request: Any, tenant: str) -> Screened:
        screened = Screened(body, request)
        walk = _WALKS[signal]
        work = _Screening(self, screened, signal)
        if self.max_items:
            items = sum(walk.count(resource) for resource in walk.resources(request))
            if items > self.max_items:
                work.changing()
                REQUESTS_REJECTED.labels(signal, "items_per_request").inc()
                raise LimitExceeded(
                    f"request holds {items} {walk.noun}s, over the limit of {self.max_items} "
                    "(limits.max_items_per_request); send smaller batches"
                )
        resources = walk.resources(request)
        for r_index in reversed(range(len(resources))):
            resource = resources[r_index]
            try:
                work.attributes(resource.resource.attributes, "resource")
            except _Problem as problem:
                work.drop(walk.count(resource), problem)
                del resources[r_index]
                continue
            if tenant:
                _stamp(resource.resource.attributes, tenant)
            scopes = walk.scopes(resource)
            for s_index in reversed(range(len(scopes))):
                scope = scopes[s_index]
                try:
                    work.attributes(scope.scope.attributes, "scope")
                except _Problem as problem:
                    work.drop(walk.scope_count(scope), problem)
                    del scopes[s_index]
                    continue
                walk.items(work, scope)
        if work.truncated:
            screened.truncated = work.truncated
            VALUES_TRUNCATED.labels(signal).inc(work.truncated)
        if work.modified or tenant:
            screened.body = request.SerializeToString()
        return screened


def _stamp(attributes: Any, tenant: str) -> None:
    """Replace any ``tenant.name`` among the serialized KeyValues ``attributes``. Each is
    parsed whole: a key written twice or out of order must not slip past."""
    for index in reversed(range(len(attributes))):
        if KeyValue.FromString(attributes[index]).key == TENANT_ATTRIBUTE:
            del attributes[index]
    stamp = KeyValue(key=TENANT_ATTRIBUTE, value=AnyValue(string_value=tenant))
    attributes.append(stamp.SerializeToString())


class _Screening:
    """One request's pass: what was changed, truncated and rejected."""

    def __init__(self, limits: Limits, screened: Screened, signal: str) -> None:
        self.limits = limits
        self.screened = screened
        self.signal = signal
        self.modified = False
        self.truncated = 0
        now = time.time_ns()
        self.latest_ns = now + limits.max_future_ns if limits.max_future_ns else 0
        self.earliest_ns = now - limits.max_age_days * _DAY_NS if limits.max_age_days else 0

    def changing(self) -> None:
        """Called before each change: the first time, judge the request's bytes with the
        plain schema (raises DecodeError), so limits never hide a request protobuf refuses."""
        if not self.modified:
            PLAIN_REQUESTS[self.signal].FromString(self.screened.body)
            self.modified = True

    def drop(self, count: int, problem: _Problem) -> None:
        self.changing()
        if count:
            self.screened.reject(count, problem.message)
            ITEMS_REJECTED.labels(self.signal, problem.kind).inc(count)

    def filter(self, items: Any, check: Any) -> None:
        """Remove the items ``check`` finds a problem with, counting each."""
        for index in reversed(range(len(items))):
            try:
                check(items[index])
            except _Problem as problem:
                self.drop(1, problem)
                del items[index]

    # -- attributes and values -----------------------------------------------------------

    def attributes(self, attributes: Any, where: str) -> None:
        """Raise _Problem for a list of serialized KeyValues over a limit; truncate long
        values in place (the KeyValue is re-serialized)."""
        limits = self.limits
        if limits.max_attributes and len(attributes) > limits.max_attributes:
            raise _Problem(
                "attributes",
                f"{where} has {len(attributes)} attributes, over the limit of "
                f"{limits.max_attributes} (limits.max_attributes)",
            )
        gate = limits.gate
        if gate is None:
            return
        raws = attributes[:]  # one list from the protobuf container: faster to scan
        if not raws or max(map(len, raws)) <= gate:
            return
        max_key = limits.max_key_bytes
        for index, raw in enumerate(raws):
            if len(raw) <= gate:
                continue
            kv = KeyValue.FromString(raw)
            if max_key and len(kv.key) * 4 > max_key:
                size = len(kv.key.encode("utf-8", "surrogatepass"))
                if size > max_key:
                    raise _Problem(
                        "key_length",
                        f"{where} attribute key of {size} bytes, over the limit of "
                        f"{max_key} (limits.max_attribute_key_bytes)",
                    )
            if self.value(kv.value, where, 0):
                attributes[index] = kv.SerializeToString()

    def value(self, value: Any, where: str, depth: int) -> bool:
        """Raise _Problem for a value nested too deeply; truncate long strings and bytes in
        place, and say whether anything was."""
        limits = self.limits
        kind = value.WhichOneof("value")
        if kind == "string_value":
            limit = limits.max_value_bytes
            if limit and len(value.string_value) * 4 > limit:
                text, cut = truncate_utf8(value.string_value, limit)
                if cut:
                    self.changing()
                    value.string_value = text
                    self.truncated += 1
                    return True
        elif kind == "bytes_value":
            limit = limits.max_value_bytes
            if limit and len(value.bytes_value) > limit:
                self.changing()
                value.bytes_value = value.bytes_value[:limit]
                self.truncated += 1
                return True
        elif kind in ("array_value", "kvlist_value"):
            depth += 1
            if limits.max_depth and depth > limits.max_depth:
                raise _Problem(
                    "nesting_depth",
                    f"{where} value nested deeper than {limits.max_depth} arrays/kvlists "
                    "(limits.max_nesting_depth)",
                )
            cut = False
            if kind == "array_value":
                for child in value.array_value.values:
                    cut = self.value(child, where, depth) or cut
                return cut
            max_key = limits.max_key_bytes
            for kv in value.kvlist_value.values:
                if max_key and len(kv.key.encode("utf-8", "surrogatepass")) > max_key:
                    raise _Problem(
                        "key_length",
                        f"{where} kvlist key over the limit of {max_key} bytes "
                        "(limits.max_attribute_key_bytes)",
                    )
                cut = self.value(kv.value, where, depth) or cut
            return cut
        return False

    # -- per signal ----------------------------------------------------------------------

    def timestamp(self, ns: int, what: str) -> None:
        """Raise _Problem for a timestamp ClickHouse should not get (see the module doc)."""
        if not ns:
            return
        if self.latest_ns and ns > self.latest_ns:
            raise _Problem(
                "future_timestamp",
                f"{what} lies more than {self.limits.max_future_ns / 1e9:g} s in the future "
                "(limits.max_future_skew); check the client's clock",
            )
        if ns < self.earliest_ns:
            raise _Problem(
                "expired_timestamp",
                f"{what} is older than the table TTL of {self.limits.max_age_days} days "
                "(clickhouse.ttl_days): ClickHouse would drop it",
            )

    def span(self, span: Any) -> None:
        limits = self.limits
        self.timestamp(span.start_time_unix_nano, "span start time")
        events = span.events
        links = span.links
        if limits.max_events and len(events) > limits.max_events:
            raise _Problem(
                "span_events",
                f"span has {len(events)} events, over the limit of {limits.max_events} "
                "(limits.max_span_events)",
            )
        if limits.max_links and len(links) > limits.max_links:
            raise _Problem(
                "span_links",
                f"span has {len(links)} links, over the limit of {limits.max_links} "
                "(limits.max_span_links)",
            )
        self.attributes(span.attributes, "span")
        if events:
            for event in events:
                self.attributes(event.attributes, "span event")
        if links:
            for link in links:
                self.attributes(link.attributes, "span link")

    def log_record(self, record: Any) -> None:
        self.timestamp(record.time_unix_nano or record.observed_time_unix_nano, "log timestamp")
        self.attributes(record.attributes, "log record")
        gate = self.limits.gate
        if gate is not None and record.HasField("body") and record.body.ByteSize() > gate:
            self.value(record.body, "log body", 0)

    def data_point(self, point: Any) -> None:
        self.timestamp(point.time_unix_nano, "data point time")
        self.attributes(point.attributes, "data point")
        for exemplar in getattr(point, "exemplars", ()):
            self.attributes(exemplar.filtered_attributes, "exemplar")


class _Walk:
    """Where one signal keeps its resources, scopes and items."""

    noun = "item"

    def resources(self, request: Any) -> Any:
        raise NotImplementedError

    def scopes(self, resource: Any) -> Any:
        raise NotImplementedError

    def scope_count(self, scope: Any) -> int:
        raise NotImplementedError

    def count(self, resource: Any) -> int:
        return sum(self.scope_count(scope) for scope in self.scopes(resource))

    def items(self, work: _Screening, scope: Any) -> None:
        raise NotImplementedError


class _Traces(_Walk):
    noun = "span"

    def resources(self, request: Any) -> Any:
        return request.resource_spans

    def scopes(self, resource: Any) -> Any:
        return resource.scope_spans

    def scope_count(self, scope: Any) -> int:
        return len(scope.spans)

    def items(self, work: _Screening, scope: Any) -> None:
        work.filter(scope.spans, work.span)


class _Logs(_Walk):
    noun = "log record"

    def resources(self, request: Any) -> Any:
        return request.resource_logs

    def scopes(self, resource: Any) -> Any:
        return resource.scope_logs

    def scope_count(self, scope: Any) -> int:
        return len(scope.log_records)

    def items(self, work: _Screening, scope: Any) -> None:
        work.filter(scope.log_records, work.log_record)


def _points(metric: Any) -> Any:
    kind = metric.WhichOneof("data")
    return getattr(metric, kind).data_points if kind else ()


class _Metrics(_Walk):
    noun = "data point"

    def resources(self, request: Any) -> Any:
        return request.resource_metrics

    def scopes(self, resource: Any) -> Any:
        return resource.scope_metrics

    def scope_count(self, scope: Any) -> int:
        return sum(len(_points(metric)) for metric in scope.metrics)

    def items(self, work: _Screening, scope: Any) -> None:
        for metric in scope.metrics:
            points = _points(metric)
            if points:
                work.filter(points, work.data_point)


_WALKS: dict[str, _Walk] = {"traces": _Traces(), "logs": _Logs(), "metrics": _Metrics()}
