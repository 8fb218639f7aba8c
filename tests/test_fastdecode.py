"""The compiled fast path (receiver.ingest._fastdecode) against the Python path.

Its contract: for any bytes, either None (the Python path then decides) or exactly the rows the
Python path gives, with nothing rejected or truncated, the same dict item order, the same shared
objects (one resource dict per resource, the one EMPTY list), and never a crash. Checked on
every real capture, on mutated captures and on generated requests, under several limits.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Exemplar,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from receiver.config import Settings
from receiver.ingest import fastpath
from receiver.ingest.decode import DECODERS, EMPTY
from receiver.ingest.limits import LimitExceeded, Limits

from .capture_files import FIXTURES, signal_of
from .decoder_paths import NOT_BUILT
from .test_fuzz import _request, any_values, mutated_captures, raw, requests, texts

# In CI (which installs a C compiler, .ci/system-packages) a missing extension is a broken
# build: nothing here is skipped, and test_ci_builds_the_extension names the cause.
pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not fastpath.AVAILABLE and not os.environ.get("CI"), reason=NOT_BUILT),
]

CAPTURES = sorted(FIXTURES.glob("*/*.pb"))
# The real captures are older than the default TTL: the window is tested separately.
RECEIVER_LIMITS = Limits.from_settings(Settings(clickhouse_ttl_days=0))
TIGHT_LIMITS = Limits(
    max_items=3,
    max_attributes=4,
    max_key_bytes=12,
    max_value_bytes=24,
    max_depth=2,
    max_events=1,
    max_links=1,
    max_future_skew=60,
    max_age_days=1,
)
LIMITS = [Limits(), RECEIVER_LIMITS, TIGHT_LIMITS]


def compiled(signal: str, body: bytes, tenant: str, limits: Limits) -> dict[str, Any] | None:
    return fastpath.AVAILABLE[signal](body, tenant, limits.compiled_arguments())


def python_rows(signal: str, body: bytes, tenant: str, limits: Limits) -> Any:
    """The Python path's rows, or the exception it raises, or "changed" when limits or
    decode took anything out or cut anything short."""
    try:
        screened = limits.screen(signal, body, tenant)
        decoded = DECODERS[signal](screened.body, screened.request)
    except (DecodeError, LimitExceeded) as error:
        return type(error)
    if screened.rejected or screened.truncated or decoded.rejected:
        return "changed"
    return decoded.rows


def exact(value: Any) -> Any:
    """A value with dict item order, list/tuple types and float bits (NaN, -0.0) made
    comparable."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, dict):
        return ("dict", [(key, exact(item)) for key, item in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [exact(item) for item in value])
    return (type(value).__name__, value)


def sharing(rows: list[Any]) -> list[list[int]]:
    """For each column, which earlier row holds the very same dict or list object (shared
    resource dicts, the one EMPTY list), and which hold EMPTY itself (-1)."""
    columns: list[list[int]] = []
    for column in range(len(rows[0]) if rows else 0):
        seen: dict[int, int] = {}
        marks = []
        for index, row in enumerate(rows):
            value = row[column]
            if value is EMPTY:
                marks.append(-1)
            elif isinstance(value, dict | list):
                marks.append(seen.setdefault(id(value), index))
        columns.append(marks)
    return columns


def assert_same_or_declined(signal: str, body: bytes, tenant: str, limits: Limits) -> bool:
    """True when the fast path answered (and matched), False when it declined."""
    fast = compiled(signal, body, tenant, limits)
    if fast is None:
        return False
    expected = python_rows(signal, body, tenant, limits)
    assert isinstance(expected, dict), f"fast path answered where Python says {expected}"
    assert exact(fast) == exact(expected)  # tables in the same order too
    for table, rows in fast.items():
        assert sharing(rows) == sharing(expected[table])
    return True


@pytest.mark.parametrize("tenant", ["", "acme"])
@pytest.mark.parametrize(
    "path",
    [p for p in CAPTURES if signal_of(p) in fastpath.AVAILABLE],
    ids=lambda p: p.parent.name + "/" + p.name,
)
def test_every_real_capture_is_answered_exactly(path: Path, tenant: str) -> None:
    for limits in (Limits(), RECEIVER_LIMITS):
        assert assert_same_or_declined(signal_of(path), path.read_bytes(), tenant, limits), (
            "the fast path declined a real capture"
        )


def test_the_receiver_uses_the_compiled_decoder_when_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if os.environ.get(fastpath.DECODER_ENV, "").lower() == "python":
        pytest.skip(f"{fastpath.DECODER_ENV}=python turns the compiled decoder off")
    assert "traces" in fastpath.COMPILED
    assert fastpath.decoder_in_use().startswith("compiled")
    answered = []
    decoder = fastpath.COMPILED["traces"]

    def watched(*args: Any) -> Any:
        tables = decoder(*args)
        answered.append(tables is not None)
        return tables

    monkeypatch.setitem(fastpath.COMPILED, "traces", watched)
    body = next(p for p in CAPTURES if signal_of(p) == "traces").read_bytes()
    decoded, size = fastpath.decode_request("traces", body, "", Limits())
    assert answered == [True] and decoded.row_count > 0 and size == len(body)


def test_ci_builds_the_extension() -> None:
    """Outside CI this module is skipped without the extension; in CI this says why it fails."""
    assert fastpath.AVAILABLE, NOT_BUILT


def test_a_built_extension_that_does_not_load_is_noticed() -> None:
    built = list((Path(fastpath.__file__).parent).glob("_fastdecode*.so"))
    assert fastpath.AVAILABLE or not built, f"{built} exists but does not import"


# -- generated requests ----------------------------------------------------------------------

NOW = time.time_ns()
span_ids = st.binary(min_size=8, max_size=8).filter(any)
trace_ids = st.binary(min_size=16, max_size=16).filter(any)
near_now = st.one_of(st.just(0), st.integers(NOW - 10**14, NOW + 10**11))
attributes = st.lists(
    st.one_of(
        st.builds(KeyValue, key=texts, value=any_values),
        st.builds(
            KeyValue,
            key=st.sampled_from(["service.name", "tenant.name", "event.name", "a", "é"]),
            value=st.one_of(
                st.text(max_size=30).map(lambda s: AnyValue(string_value=s)),
                st.sampled_from(["user_prompt", "prompt", ""]).map(
                    lambda s: AnyValue(string_value=s)
                ),
                st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
                st.booleans().map(lambda b: AnyValue(bool_value=b)),
            ),
        ),
    ),
    max_size=6,
)
valid_spans = st.builds(
    Span,
    trace_id=trace_ids,
    span_id=span_ids,
    parent_span_id=st.one_of(st.just(b""), st.just(bytes(8)), span_ids),
    trace_state=st.text(max_size=10),
    name=st.text(max_size=20),
    kind=st.integers(0, 8),
    start_time_unix_nano=near_now,
    end_time_unix_nano=near_now,
    attributes=attributes,
    events=st.lists(
        st.builds(
            Span.Event, time_unix_nano=near_now, name=st.text(max_size=8), attributes=attributes
        ),
        max_size=2,
    ),
    links=st.lists(
        st.builds(Span.Link, trace_id=trace_ids, span_id=span_ids, attributes=attributes),
        max_size=2,
    ),
    status=st.builds(Status, code=st.integers(0, 4), message=st.text(max_size=10)),
)
scopes = st.builds(InstrumentationScope, name=st.text(max_size=8), version=st.text(max_size=4))
valid_traces = st.lists(
    st.builds(
        lambda a, scope, s: ResourceSpans(
            resource={"attributes": a}, scope_spans=[ScopeSpans(scope=scope, spans=s)]
        ),
        attributes,
        st.builds(InstrumentationScope, name=st.text(max_size=8), version=st.text(max_size=4)),
        st.lists(valid_spans, max_size=4),
    ),
    max_size=2,
).map(lambda r: ("traces", _request("traces", r)))

bodies = st.one_of(
    any_values,
    st.sampled_from(["claude_code.user_prompt", "a prompt", "x.user_prompt y"]).map(
        lambda s: AnyValue(string_value=s)
    ),
)
valid_records = st.builds(
    LogRecord,
    time_unix_nano=near_now,
    observed_time_unix_nano=near_now,
    severity_number=st.integers(0, 24),
    severity_text=st.text(max_size=6),
    body=bodies,
    attributes=attributes,
    flags=st.integers(0, 2**32 - 1),
    trace_id=st.one_of(st.just(b""), st.just(bytes(16)), trace_ids),
    span_id=st.one_of(st.just(b""), st.just(bytes(8)), span_ids),
    event_name=st.sampled_from(["", "event src/x.rs:12", "codex.api_request", "é"]),
)
valid_logs = st.lists(
    st.builds(
        lambda a, scope, url, records: ResourceLogs(
            resource={"attributes": a},
            schema_url=url,
            scope_logs=[ScopeLogs(scope=scope, log_records=records, schema_url=url)],
        ),
        attributes,
        scopes,
        st.text(max_size=6),
        st.lists(valid_records, max_size=4),
    ),
    max_size=2,
).map(lambda r: ("logs", _request("logs", r)))
exemplars = st.lists(
    st.builds(
        Exemplar,
        filtered_attributes=attributes,
        time_unix_nano=near_now,
        as_double=st.floats(),
        span_id=st.one_of(st.just(b""), span_ids),
        trace_id=st.one_of(st.just(b""), trace_ids),
    )
    | st.builds(Exemplar, as_int=st.integers(-(2**63), 2**63 - 1)),
    max_size=2,
)
number_points = st.lists(
    st.builds(
        NumberDataPoint,
        attributes=attributes,
        start_time_unix_nano=near_now,
        time_unix_nano=near_now,
        as_double=st.floats(),
        exemplars=exemplars,
        flags=st.integers(0, 2**32 - 1),
    )
    | st.builds(NumberDataPoint, as_int=st.integers(-(2**63), 2**63 - 1), time_unix_nano=near_now),
    max_size=3,
)
histogram_points = st.lists(
    st.builds(
        HistogramDataPoint,
        attributes=attributes,
        start_time_unix_nano=near_now,
        time_unix_nano=near_now,
        count=st.integers(0, 2**64 - 1),
        sum=st.floats(),
        bucket_counts=st.lists(st.integers(0, 2**64 - 1), max_size=4),
        explicit_bounds=st.lists(st.floats(), max_size=3),
        exemplars=exemplars,
        min=st.floats(),
        max=st.floats(),
    ),
    max_size=3,
)
metrics = st.lists(
    st.one_of(
        st.builds(
            Metric, name=st.text(max_size=8), gauge=st.builds(Gauge, data_points=number_points)
        ),
        st.builds(
            Metric,
            name=st.text(max_size=8),
            unit=st.text(max_size=3),
            sum=st.builds(
                Sum,
                data_points=number_points,
                aggregation_temporality=st.integers(0, 2),
                is_monotonic=st.booleans(),
            ),
        ),
        st.builds(
            Metric,
            description=st.text(max_size=8),
            histogram=st.builds(
                Histogram, data_points=histogram_points, aggregation_temporality=st.integers(0, 2)
            ),
        ),
        st.builds(Metric, name=st.text(max_size=8)),  # no data
    ),
    max_size=4,
)
valid_metrics = st.lists(
    st.builds(
        lambda a, scope, url, m: ResourceMetrics(
            resource={"attributes": a},
            schema_url=url,
            scope_metrics=[ScopeMetrics(scope=scope, metrics=m, schema_url=url)],
        ),
        attributes,
        scopes,
        st.text(max_size=6),
        metrics,
    ),
    max_size=2,
).map(lambda r: ("metrics", _request("metrics", r)))
valid_requests = st.one_of(valid_traces, valid_logs, valid_metrics)


@st.composite
def cut_or_flipped(draw: st.DrawFn) -> tuple[str, bytes]:
    signal, body = draw(valid_requests)
    data = bytearray(body)
    if data and draw(st.booleans()):
        index = draw(st.integers(0, len(data) - 1))
        data[index] ^= 1 << draw(st.integers(0, 7))
    else:
        del data[draw(st.integers(0, len(data))) :]
    return signal, bytes(data)


FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(
    case=st.one_of(valid_requests, cut_or_flipped(), mutated_captures(), requests, raw),
    tenant=st.sampled_from(["", "acme"]),
    limits=st.sampled_from(LIMITS),
)
def test_fuzz_the_fast_path_declines_or_matches_python(
    case: tuple[str, bytes], tenant: str, limits: Limits
) -> None:
    signal, body = case
    if signal in fastpath.AVAILABLE:
        assert_same_or_declined(signal, body, tenant, limits)


def test_generated_valid_requests_are_mostly_answered() -> None:
    """The fuzz above would pass with a fast path that always declines: make sure it mostly
    answers ordinary generated requests."""
    answered = []

    @settings(max_examples=100, deadline=None, database=None)
    @given(case=valid_requests)
    def check(case: tuple[str, bytes]) -> None:
        answered.append(assert_same_or_declined(*case, "", Limits()))

    check()
    assert sum(answered) > len(answered) / 2


# -- each limit, about to act, sends the request to the Python path ------------------------


def _kv(key: str, value: AnyValue) -> KeyValue:
    """A KeyValue whose bytes are new to the compiled decoder's pair cache: its key gets a
    random tail, so the cold path is tested first, then the cached one."""
    return KeyValue(key=key + os.urandom(4).hex(), value=value)


def _nested(depth: int, bottom: str = "bottom") -> AnyValue:
    value = AnyValue(string_value=bottom)
    for _ in range(depth):
        value = AnyValue(array_value={"values": [value]})
    return value


def _span(**fields: Any) -> Span:
    base: dict[str, Any] = {
        "trace_id": b"\x01" * 16,
        "span_id": b"\x02" * 8,
        "start_time_unix_nano": NOW,
        "end_time_unix_nano": NOW + 1,
    }
    return Span(**{**base, **fields})


def _traces(*spans: Span, resource: list[KeyValue] = ()) -> bytes:
    return _request(
        "traces",
        [ResourceSpans(resource={"attributes": resource}, scope_spans=[ScopeSpans(spans=spans)])],
    )


DAY_NS = 86_400 * 10**9
OVER_A_LIMIT = {
    "items": (Limits(max_items=1), "traces", _traces(_span(), _span())),
    "attributes": (
        Limits(max_attributes=2),
        "traces",
        _traces(_span(attributes=[_kv(k, AnyValue(int_value=1)) for k in "abc"])),
    ),
    "resource attributes": (
        Limits(max_attributes=1),
        "traces",
        _traces(_span(), resource=[_kv(k, AnyValue(int_value=1)) for k in "ab"]),
    ),
    "key bytes": (
        Limits(max_key_bytes=10),
        "traces",
        _traces(_span(attributes=[_kv("k" * 3, AnyValue(string_value="v"))])),
    ),
    "string value bytes": (
        Limits(max_value_bytes=20),
        "traces",
        _traces(_span(attributes=[_kv("k", AnyValue(string_value="é" * 11))])),
    ),
    "bytes value bytes": (
        Limits(max_value_bytes=20),
        "traces",
        _traces(_span(attributes=[_kv("k", AnyValue(bytes_value=b"x" * 21))])),
    ),
    "nested string bytes": (
        Limits(max_value_bytes=20),
        "traces",
        _traces(_span(attributes=[_kv("k", _nested(1, "y" * 21))])),
    ),
    "nesting depth": (
        Limits(max_depth=2),
        "traces",
        _traces(_span(attributes=[_kv("k", _nested(3))])),
    ),
    "events": (
        Limits(max_events=1),
        "traces",
        _traces(_span(events=[Span.Event(time_unix_nano=NOW)] * 2)),
    ),
    "links": (
        Limits(max_links=1),
        "traces",
        _traces(_span(links=[Span.Link(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)] * 2)),
    ),
    "future": (
        Limits(max_future_skew=60),
        "traces",
        _traces(_span(start_time_unix_nano=NOW + DAY_NS)),
    ),
    "ttl": (
        Limits(max_age_days=1),
        "traces",
        _traces(_span(start_time_unix_nano=NOW - 2 * DAY_NS)),
    ),
    "log body": (
        Limits(max_value_bytes=20),
        "logs",
        _request(
            "logs",
            [
                ResourceLogs(
                    scope_logs=[
                        ScopeLogs(
                            log_records=[
                                LogRecord(time_unix_nano=NOW, body=AnyValue(string_value="b" * 21))
                            ]
                        )
                    ]
                )
            ],
        ),
    ),
    "metric point time": (
        Limits(max_future_skew=60),
        "metrics",
        _request(
            "metrics",
            [
                ResourceMetrics(
                    scope_metrics=[
                        ScopeMetrics(
                            metrics=[
                                Metric(
                                    name="g",
                                    gauge=Gauge(
                                        data_points=[NumberDataPoint(time_unix_nano=NOW + DAY_NS)]
                                    ),
                                )
                            ]
                        )
                    ]
                )
            ],
        ),
    ),
}


@pytest.mark.parametrize("name", list(OVER_A_LIMIT))
def test_a_limit_about_to_act_sends_the_request_to_python(name: str) -> None:
    limits, signal, body = OVER_A_LIMIT[name]
    assert compiled(signal, body, "", limits) is None
    assert compiled(signal, body, "", limits) is None  # again, with its attributes cached
    assert compiled(signal, body, "", Limits()) is not None  # ordinary without the limit
    assert not isinstance(python_rows(signal, body, "", limits), dict)  # the limit acts


def test_the_processors_give_the_same_rows_from_either_decoder() -> None:
    """Redaction and stitching over compiled rows (shared, untracked by the collector) give
    what they give over the Python path's, and leave the decoder's values unchanged."""
    from receiver.processors.redact.engine import Redactor
    from receiver.processors.stitch import stitch

    redactor = Redactor(drop=("user.email",), hash=("session.id",), hash_key=b"k" * 32)
    for path in CAPTURES:
        signal, body = signal_of(path), path.read_bytes()
        fast = fastpath.decode_request(signal, body, "acme", Limits())[0]
        python = DECODERS[signal](Limits().screen(signal, body, "acme").body)
        before = exact(fast.rows)
        kept = {table: list(rows) for table, rows in fast.rows.items()}
        for decoded in (fast, python):
            redactor.process(decoded)
            stitch(decoded)
        assert exact(fast.rows) == exact(python.rows), path
        assert exact(kept) == before, path  # values shared with the cache are untouched
