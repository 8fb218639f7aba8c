"""Redaction: the detector catalogue against a corpus, the drop/hash/truncate rules, the hash
key, shared attribute maps, custom and disabled detectors, self-metrics, and the processor on
rows decoded from real OTLP protobuf requests."""

from __future__ import annotations

import copy
import re
import stat
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from receiver.config import ConfigError, Settings, load_settings
from receiver.ingest.decode import DECODERS, Decoded, decode_logs, decode_metrics, decode_traces
from receiver.processors.redact import (
    DETECTOR_NAMES,
    HASH_HEX_CHARS,
    HASH_KEY_ENV,
    REDACTED_COLUMNS,
    UNREDACTED_COLUMNS,
    Redactor,
    detector_count,
    load_hash_key,
    rule_count,
)
from receiver.processors.redact import engine as redact_engine
from receiver.store.tables import (
    LOGS,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
    METRICS_SUM,
    METRICS_SUMMARY,
    TABLE_COLUMNS,
    TRACES,
)

from . import redaction_corpus as corpus
from .capture_files import FIXTURES, signal_of

pytestmark = pytest.mark.unit

KEY = b"test-hash-key"


def redactor(**kwargs: Any) -> Redactor:
    kwargs.setdefault("hash", ())
    kwargs.setdefault("hash_key", KEY)
    return Redactor(**kwargs)


def redact(value: str, key: str | None = None, **kwargs: Any) -> str:
    r = redactor(**kwargs)
    return r.redact_attributes({key: value})[key] if key else r.redact_text(value)


# -- the corpus ------------------------------------------------------------------------------------


def test_corpus_is_big_enough_and_covers_every_detector() -> None:
    occurrences = [pair for case in corpus.ALL_SECRET_CASES for pair in case.found]
    people = [pair for case in corpus.PASSWORD_CASES + corpus.ISSUE_18_CASES for pair in case.found]
    assert len(occurrences) >= 300
    assert len(people) >= 100
    assert len(corpus.ALL_CLEAN_VALUES) >= 1000
    assert {kind for kind, _ in occurrences} == set(DETECTOR_NAMES)


SPECIFIED_CASES = corpus.SECRET_CASES + corpus.ISSUE_18_CASES


@pytest.mark.parametrize(
    "case",
    SPECIFIED_CASES,
    ids=[f"{i:02d}-{c.found[0][0]}" for i, c in enumerate(SPECIFIED_CASES)],
)
def test_every_secret_in_the_corpus_is_redacted_by_the_right_detector(
    case: corpus.Case,
) -> None:
    out = redact(case.value, case.key)
    for kind, secret in case.found:
        assert secret not in out, f"{kind}: {secret[:24]}... survived in {out[:300]!r}"
        assert f"[REDACTED:{kind}]" in out, f"expected {kind} in {out[:300]!r}"


def test_corpus_figures_at_least_99_percent_caught_at_most_1_percent_changed() -> None:
    """The two figures the README reports (run with ``-s`` to see them)."""
    r = redactor()
    found = missed = 0
    misses = []
    for case in corpus.ALL_SECRET_CASES:
        out = (
            r.redact_attributes({case.key: case.value})[case.key]
            if case.key
            else r.redact_text(case.value)
        )
        for kind, secret in case.found:
            if secret not in out and f"[REDACTED:{kind}]" in out:
                found += 1
            else:
                missed += 1
                misses.append(case.value)
    clean = corpus.ALL_CLEAN_VALUES
    changed = [(v, r.redact_text(v)) for v in clean if r.redact_text(v) != v]
    print(
        f"\nredaction corpus: {found} of {found + missed} secrets caught "
        f"({found / (found + missed):.1%}); {len(changed)} of {len(clean)} clean values changed "
        f"({len(changed) / len(clean):.1%}); missed: {misses}"
    )
    assert found >= 0.99 * (found + missed), misses
    assert len(changed) <= 0.01 * len(clean), changed


@pytest.mark.parametrize(
    ("template", "detector"),
    corpus.PASSWORD_CONTEXTS,
    ids=[f"{i:02d}-{d}" for i, (_, d) in enumerate(corpus.PASSWORD_CONTEXTS)],
)
@pytest.mark.parametrize("password", ["Monkey#Key2024", "p@ss-Secret-7"])
def test_every_password_context_is_caught_by_its_detector(
    template: str, detector: str, password: str
) -> None:
    """Each way the corpus puts a person's password in telemetry, alone: the corpus figure
    could hide one context going blind."""
    url_password = urllib.parse.quote(password, safe="")
    value = template.format(pw=password, url_pw=url_password)
    out = redact(value)
    secret = url_password if "{url_pw}" in template else password
    assert secret not in out, out
    assert f"[REDACTED:{detector}]" in out, out


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "change_me",
        "CHANGE-ME",
        "<password>",
        "<your password>",
        "${DB_PASSWORD}",
        "$DB_PASSWORD",
        "{{ secrets.DB_PASSWORD }}",
        "****",
        "xxxxxxxx",
        "your-password-here",
        "YOUR_PASSWORD",
        "example",
        "password",
        "secret",
        "Password",
        "api_key",
        "dbPassword",
        "DB_PASSWORD",
        "db-password",
        "sk-ant-xxxxxxxx",
    ],
)
def test_placeholders_are_recognised_by_their_whole_shape(value: str) -> None:
    assert redact(f"password={value}") == f"password={value}"
    assert redact(f'{{"password": "{value}"}}') == f'{{"password": "{value}"}}'


@pytest.mark.parametrize(
    "password",
    [
        "Monkey2024",
        "Turkey!",
        "Keyboard99",
        "Passw0rd99",
        "SuperSecret123",
        "MyToken#1",
        "Author42",
    ],
)
def test_a_password_containing_a_credential_word_is_not_a_placeholder(password: str) -> None:
    for template in ("password={}", "DB_PASS={}", "mysql -u root -p{}", "password: {}"):
        out = redact(template.format(password))
        assert password not in out, out


def test_context_is_kept_around_the_secret() -> None:
    assert redact("postgres://app:Pg-s3cret-77@db:5432/orders") == (
        "postgres://app:[REDACTED:connection_string]@db:5432/orders"
    )
    assert redact('{"password": "Tr0ub4dor&3x", "user": "alice"}') == (
        '{"password": "[REDACTED:secret_assignment]", "user": "alice"}'
    )
    assert redact("export DB_PASSWORD=hunter2hunter2 && ./migrate") == (
        "export DB_PASSWORD=[REDACTED:secret_assignment] && ./migrate"
    )
    assert redact(f"curl -H 'Authorization: Bearer {corpus.GITHUB_PAT}' x") == (
        "curl -H 'Authorization: Bearer [REDACTED:github_token]' x"
    )


def test_real_claude_and_codex_captures_come_through_unchanged() -> None:
    r = redactor(hash=(), drop=())
    total = 0
    for path in sorted(FIXTURES.glob("*/*.pb")):
        decoded = DECODERS[signal_of(path)](path.read_bytes())
        before = copy.deepcopy(decoded.rows)
        r.process(decoded)
        assert decoded.rows == before, path
        total += decoded.row_count
    assert total > 1000


# -- columns ---------------------------------------------------------------------------------------


def test_every_column_is_either_redacted_or_deliberately_not() -> None:
    for table in REDACTED_COLUMNS:
        for column in TABLE_COLUMNS[table]:
            assert (column in REDACTED_COLUMNS[table]) != (column in UNREDACTED_COLUMNS), (
                f"{table}.{column}: classify it in receiver/processors/redact/engine.py"
            )


def test_a_table_redaction_does_not_know_is_redacted_by_value_type() -> None:
    secret = corpus.GITHUB_PAT
    decoded = Decoded(
        rows={"some_derived_table": [("run-1", f"token={secret}", {"k": secret}, [secret], 7)]}
    )
    redactor().process(decoded)
    (row,) = decoded.rows["some_derived_table"]
    assert secret not in repr(row)
    assert row[0] == "run-1" and row[4] == 7


# -- drop, hash, truncate --------------------------------------------------------------------------


def test_drop_globs_remove_keys_and_count() -> None:
    r = redactor(drop=("prompt*", "*.api_response_body"))
    before = rule_count("drop")
    attributes = {
        "prompt": "deploy it",
        "prompt_length": "9",
        "codex.api_response_body": "{...}",
        "model": "gpt-5.4",
    }
    assert r.redact_attributes(attributes) == {"model": "gpt-5.4"}
    assert rule_count("drop") == before + 3
    assert list(attributes) == ["prompt", "prompt_length", "codex.api_response_body", "model"]


def test_hash_globs_replace_values_by_a_keyed_truncated_hmac() -> None:
    r = redactor(hash=("user.email", "user.*_uuid"))
    before = rule_count("hash")
    out = r.redact_attributes(
        {"user.email": "dev@example.com", "user.account_uuid": "a1b2", "user.id": "x"}
    )
    assert re.fullmatch(f"[0-9a-f]{{{HASH_HEX_CHARS}}}", out["user.email"])
    assert out["user.email"] != out["user.account_uuid"]
    assert out["user.id"] == "x"
    assert rule_count("hash") == before + 2
    # equal values hash equally (joins and counts still work); the key matters
    assert r.hash_value("dev@example.com") == out["user.email"]
    assert (
        redactor(hash=("user.email",), hash_key=KEY).hash_value("dev@example.com")
        == (out["user.email"])
    )
    assert (
        redactor(hash=("user.email",), hash_key=b"other").hash_value("dev@example.com")
        != (out["user.email"])
    )


def test_drop_wins_over_hash_and_hash_over_detectors() -> None:
    r = redactor(drop=("secret.*",), hash=("secret.*", "tool_parameters"))
    out = r.redact_attributes({"secret.x": "1", "tool_parameters": f"token={corpus.GITHUB_PAT}"})
    assert list(out) == ["tool_parameters"]
    assert re.fullmatch("[0-9a-f]{16}", out["tool_parameters"])


def test_truncate_counts_utf8_bytes_and_never_splits_a_character() -> None:
    r = redactor(truncate_bytes=1000)
    before = rule_count("truncate")
    assert r.redact_text("a" * 1000) == "a" * 1000
    for unit in ("a", "é", "€", "😀"):
        value = unit * 2000
        out = r.redact_text(value)
        head, marker = out.split("…[TRUNCATED ")
        assert len(out.encode()) <= 1000
        assert set(head) == {unit}  # whole characters only
        removed = int(marker.removesuffix(" bytes]"))
        assert removed == len(value.encode()) - len(head.encode())
    assert rule_count("truncate") == before + 4
    assert redactor(truncate_bytes=0).redact_text("x" * 200_000) == "x" * 200_000


def test_detection_runs_before_truncation_so_no_partial_secret_survives() -> None:
    r = redactor(truncate_bytes=1000)
    secret = corpus.PYPI  # 158 characters
    out = r.redact_text("x" * 900 + " " + secret + " tail")
    assert secret[:20] not in out and "pypi-Ag" not in out
    # values far beyond the limit are cut before scanning: only the kept part is scanned
    huge = f"{corpus.GITHUB_PAT} " + "y" * 5_000_000
    out = r.redact_text(huge)
    assert out.startswith("[REDACTED:github_token] yyy") and len(out.encode()) <= 1000
    redacted_length = len(huge) - len(corpus.GITHUB_PAT) + len("[REDACTED:github_token]")
    assert out.endswith(f"…[TRUNCATED {redacted_length - len(out.split('…')[0])} bytes]")


# -- the hash key ----------------------------------------------------------------------------------


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), **values)


def test_hash_key_from_env_then_file_then_generated(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    s = settings(tmp_path, redaction_hash_key_file=str(key_file))
    assert load_hash_key(s, {HASH_KEY_ENV: "from-env"}) == b"from-env"
    assert load_hash_key(s, {}) == b"from-file"
    generated = load_hash_key(settings(tmp_path), {})
    path = tmp_path / "data" / "redaction.key"
    assert generated == path.read_bytes().strip() and len(generated) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob(".*tmp"))


def test_hash_is_stable_across_restarts_on_the_same_data_dir(tmp_path: Path) -> None:
    s = settings(tmp_path, redaction_hash=("user.email",))
    first = Redactor.from_settings(s, environ={})
    second = Redactor.from_settings(s, environ={})  # a restart: the key file is reused
    other_dir = Redactor.from_settings(settings(tmp_path / "other"), environ={})
    email = {"user.email": "dev@example.com"}
    assert first.redact_attributes(email) == second.redact_attributes(email)
    assert first.redact_attributes(email) != other_dir.redact_attributes(email)
    with_env = Redactor.from_settings(s, environ={HASH_KEY_ENV: "k"})
    assert with_env.redact_attributes(email) == redactor(
        hash=("user.email",), hash_key=b"k"
    ).redact_attributes(email)


def test_hash_key_problems_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="redaction_hash_key_file: cannot read"):
        load_hash_key(settings(tmp_path, redaction_hash_key_file=str(tmp_path / "nope")), {})
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(ConfigError, match=r"redaction_hash_key_file: .* is empty"):
        load_hash_key(settings(tmp_path, redaction_hash_key_file=str(tmp_path / "empty")), {})


def test_no_key_is_generated_without_hash_rules(tmp_path: Path) -> None:
    Redactor.from_settings(settings(tmp_path, redaction_hash=()), environ={})
    assert not (tmp_path / "data" / "redaction.key").exists()


# -- detectors: disabled, custom -------------------------------------------------------------------


def test_a_disabled_detector_is_off() -> None:
    text = f"push with {corpus.GITHUB_PAT} please"
    assert redact(text) == "push with [REDACTED:github_token] please"
    assert redact(text, disabled_detectors=("github_token",)) == text
    value = "hunter2hunter2"
    assert redact(value, key="db.password", disabled_detectors=("secret_attribute",)) == value
    with pytest.raises(ConfigError, match=r"redaction_disabled_detectors: unknown .*github"):
        redactor(disabled_detectors=("github",))


def test_custom_detectors_replace_matches_or_their_secret_group(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        redaction_hash=(),
        redaction_custom_detectors={
            "acme_token": r"acme_[0-9a-f]{32}",
            "ticket_pin": r"pin=(?P<secret>\d{6})",
        },
    )
    r = Redactor.from_settings(s, environ={})
    before = detector_count("acme_token")
    out = r.redact_text(f"deploy --auth acme_{'ab12' * 8} pin=123456 id=42")
    assert out == "deploy --auth [REDACTED:acme_token] pin=[REDACTED:ticket_pin] id=42"
    assert detector_count("acme_token") == before + 1


@pytest.mark.parametrize(
    ("name", "pattern", "message"),
    [
        ("bad", "acme_[0-9", "redaction_custom_detectors.bad: invalid regular expression"),
        ("empty", "x*", "redaction_custom_detectors.empty: .* matches the empty string"),
        ("jwt", "eyJ", "redaction_custom_detectors.jwt: .* built-in"),
        ("no spaces", "x", "redaction_custom_detectors.no spaces: a detector name"),
    ],
)
def test_custom_detectors_are_validated_at_start(
    tmp_path: Path, name: str, pattern: str, message: str
) -> None:
    s = settings(tmp_path, redaction_hash=(), redaction_custom_detectors={name: pattern})
    with pytest.raises(ConfigError, match=message):
        Redactor.from_settings(s, environ={})


def test_the_readme_examples_load_and_work(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Redaction", 1)[1].split("\n## ", 1)[0]
    toml_block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "receiver.toml"
    config.write_text(toml_block)
    s = load_settings(str(config), environ={}, flags={"data_dir": str(tmp_path / "data")})
    r = Redactor.from_settings(s, environ={HASH_KEY_ENV: "k"})
    out = r.redact_attributes({"prompt": "hi", "host.name": "vm", "note": "pin=123456 ok"})
    assert list(out) == ["host.name", "note"] and out["host.name"] != "vm"
    assert out["note"] == "pin=[REDACTED:ticket_pin] ok"
    assert r.redact_text("https://u:hunter2hunter2@h/") == "https://u:hunter2hunter2@h/"
    env = {
        "OTEL_RECEIVER_REDACTION_DROP": "prompt,user_prompt,tool_parameters",
        "OTEL_RECEIVER_REDACTION_CUSTOM_DETECTORS": '{"acme_token": "acme_[0-9a-f]{32}"}',
    }
    s = load_settings(None, environ=env, flags={"data_dir": str(tmp_path / "data")})
    r = Redactor.from_settings(s, environ={HASH_KEY_ENV: "k"})
    assert r.redact_text("x acme_" + "0" * 32) == "x [REDACTED:acme_token]"
    assert r.redact_attributes({"tool_parameters": "{}"}) == {}


# -- the processor on decoded requests -------------------------------------------------------------


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


TRACE_ID = bytes(range(1, 17))
SECRET_RESOURCE = Resource(
    attributes=[
        kv("service.name", "claude-code"),
        kv("user.email", "dev@example.com"),
        kv("deploy.note", f"AWS_SECRET_ACCESS_KEY={corpus.AWS_SECRET}"),
    ]
)


def span(n: int, **fields: Any) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=TRACE_ID,
        span_id=bytes([n] * 8),
        start_time_unix_nano=1_795_323_269_000_000_000,
        end_time_unix_nano=1_795_323_270_000_000_000,
        **fields,
    )


def as_dicts(decoded: Decoded, table: str) -> list[dict[str, Any]]:
    return [dict(zip(TABLE_COLUMNS[table], row, strict=True)) for row in decoded.rows[table]]


def test_traces_every_string_column_is_redacted_and_shared_maps_stay_untouched() -> None:
    body = ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=SECRET_RESOURCE,
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=InstrumentationScope(name="com.anthropic.claude_code.tracing"),
                        spans=[
                            span(
                                1,
                                name=f"GET https://ops:{corpus.URL_PASSWORD}@internal/x",
                                attributes=[
                                    kv("tool_name", "Bash"),
                                    kv(
                                        "tool_parameters",
                                        corpus.bash(f"gh auth {corpus.GITHUB_PAT}"),
                                    ),
                                    kv("db.password", "hunter2hunter2"),
                                ],
                                status=trace_pb2.Status(code=2, message=f"401 for {corpus.JWT}"),
                                events=[
                                    trace_pb2.Span.Event(
                                        name=f"retry api_key={corpus.API_KEY_HEX}",
                                        time_unix_nano=1_795_323_269_500_000_000,
                                        attributes=[kv("exception.message", corpus.OPENAI_LEGACY)],
                                    )
                                ],
                                links=[
                                    trace_pb2.Span.Link(
                                        trace_id=TRACE_ID,
                                        span_id=bytes([9] * 8),
                                        attributes=[kv("note", f"xoxb {corpus.SLACK_BOT}")],
                                    )
                                ],
                            ),
                            span(2, name="claude_code.tool"),
                        ],
                    )
                ],
            )
        ]
    ).SerializeToString()
    decoded = decode_traces(body)
    first, second = decoded.rows[TRACES]
    resource = first[TABLE_COLUMNS[TRACES].index("ResourceAttributes")]
    assert resource is second[TABLE_COLUMNS[TRACES].index("ResourceAttributes")]  # shared
    snapshot = copy.deepcopy(resource)
    before = detector_count("aws_secret_key")

    redactor(hash=("user.email",)).process(decoded)

    assert resource == snapshot  # the decoder's dict was not mutated
    rows = as_dicts(decoded, TRACES)
    assert rows[0]["ResourceAttributes"] is rows[1]["ResourceAttributes"]  # redacted once
    assert detector_count("aws_secret_key") == before + 1  # ... and counted once
    assert rows[0]["ResourceAttributes"]["deploy.note"] == (
        "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_key]"
    )
    assert re.fullmatch("[0-9a-f]{16}", rows[0]["ResourceAttributes"]["user.email"])
    assert rows[0]["ServiceName"] == "claude-code"
    assert rows[0]["SpanName"] == "GET https://ops:[REDACTED:url_credentials]@internal/x"
    assert rows[0]["SpanAttributes"]["db.password"] == "[REDACTED:secret_attribute]"
    assert "[REDACTED:github_token]" in rows[0]["SpanAttributes"]["tool_parameters"]
    assert rows[0]["StatusMessage"] == "401 for [REDACTED:jwt]"
    assert rows[0]["Events.Name"] == ["retry api_key=[REDACTED:secret_assignment]"]
    assert rows[0]["Events.Attributes"] == [{"exception.message": "[REDACTED:openai_key]"}]
    assert rows[0]["Links.Attributes"] == [{"note": "xoxb [REDACTED:slack_token]"}]
    assert rows[1]["SpanName"] == "claude_code.tool"
    everything = repr(decoded.rows)
    for secret in (corpus.AWS_SECRET, corpus.URL_PASSWORD, corpus.GITHUB_PAT, corpus.JWT,
                   corpus.API_KEY_HEX, corpus.OPENAI_LEGACY, corpus.SLACK_BOT, "hunter2",
                   "dev@example.com"):  # fmt: skip
        assert secret not in everything


def test_logs_body_attributes_and_event_name() -> None:
    body = ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=Resource(attributes=[kv("service.name", "codex_exec")]),
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=InstrumentationScope(
                            name="codex", attributes=[kv("scope.token", "tok-123456789")]
                        ),
                        log_records=[
                            logs_pb2.LogRecord(
                                time_unix_nano=1_795_323_269_000_000_000,
                                body=AnyValue(string_value=f"API error: key {corpus.ANTHROPIC}"),
                                attributes=[
                                    kv("event.name", "codex.tool_result"),
                                    kv(
                                        "arguments",
                                        corpus.codex_args(
                                            f"psql postgres://a:{corpus.DB_PASSWORD}@db/x"
                                        ),
                                    ),
                                    kv("output", f"export STRIPE={corpus.STRIPE_LIVE}"),
                                ],
                            ),
                            logs_pb2.LogRecord(
                                time_unix_nano=1_795_323_269_000_000_001,
                                body=AnyValue(
                                    kvlist_value={"values": [kv("password", "Tr0ub4dor&3x")]}
                                ),
                            ),
                        ],
                    )
                ],
            )
        ]
    ).SerializeToString()
    decoded = decode_logs(body)
    redactor().process(decoded)
    first, second = as_dicts(decoded, LOGS)
    assert first["Body"] == "API error: key [REDACTED:anthropic_key]"
    assert first["EventName"] == "codex.tool_result"
    assert first["ScopeAttributes"] == {"scope.token": "[REDACTED:secret_attribute]"}
    assert "[REDACTED:connection_string]" in first["LogAttributes"]["arguments"]
    assert first["LogAttributes"]["output"] == "export STRIPE=[REDACTED:stripe_key]"
    assert second["Body"] == '{"password":"[REDACTED:secret_assignment]"}'


def test_metrics_point_and_exemplar_attributes_and_service_name_hashing() -> None:
    attributes = [kv("model", "gpt-5.4"), kv("endpoint", f"https://u:{corpus.FTP_PASSWORD}@h/")]
    exemplar = metrics_pb2.Exemplar(
        time_unix_nano=1_795_323_269_000_000_000,
        as_double=1.0,
        filtered_attributes=[kv("authorization", f"Bearer {corpus.GITHUB_APP}")],
    )
    point = {"time_unix_nano": 1_795_323_269_000_000_000, "attributes": attributes}
    body = ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=Resource(attributes=[kv("service.name", "acme-internal")]),
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(
                        scope=InstrumentationScope(name="codex"),
                        metrics=[
                            metrics_pb2.Metric(
                                name="g",
                                description=f"with {corpus.GOOGLE}",
                                gauge=metrics_pb2.Gauge(
                                    data_points=[
                                        metrics_pb2.NumberDataPoint(
                                            **point, as_int=1, exemplars=[exemplar]
                                        )
                                    ]
                                ),
                            ),
                            metrics_pb2.Metric(
                                name="s",
                                sum=metrics_pb2.Sum(
                                    data_points=[metrics_pb2.NumberDataPoint(**point, as_int=2)]
                                ),
                            ),
                            metrics_pb2.Metric(
                                name="h",
                                histogram=metrics_pb2.Histogram(
                                    data_points=[metrics_pb2.HistogramDataPoint(**point, count=1)]
                                ),
                            ),
                            metrics_pb2.Metric(
                                name="q",
                                summary=metrics_pb2.Summary(
                                    data_points=[metrics_pb2.SummaryDataPoint(**point, count=1)]
                                ),
                            ),
                        ],
                    )
                ],
            )
        ]
    ).SerializeToString()
    decoded = decode_metrics(body)
    redactor(hash=("service.name",)).process(decoded)
    expected = {"model": "gpt-5.4", "endpoint": "https://u:[REDACTED:url_credentials]@h/"}
    for table in (METRICS_GAUGE, METRICS_SUM, METRICS_HISTOGRAM, METRICS_SUMMARY):
        (row,) = as_dicts(decoded, table)
        assert row["Attributes"] == expected, table
        assert row["ServiceName"] == row["ResourceAttributes"]["service.name"]
        assert re.fullmatch("[0-9a-f]{16}", row["ServiceName"])
    (gauge,) = as_dicts(decoded, METRICS_GAUGE)
    assert gauge["MetricDescription"] == "with [REDACTED:google_api_key]"
    assert gauge["Exemplars.FilteredAttributes"] == [
        {"authorization": "[REDACTED:secret_attribute]"}
    ]


def test_rows_without_secrets_are_left_as_the_same_objects() -> None:
    path = FIXTURES / "main_grpc" / "006_grpc_claude_traces.pb"
    decoded = decode_traces(path.read_bytes())
    rows = list(decoded.rows[TRACES])
    redactor().process(decoded)
    assert all(a is b for a, b in zip(rows, decoded.rows[TRACES], strict=True))


def test_process_logs_nothing_per_request() -> None:
    decoded = decode_traces((FIXTURES / "main_grpc" / "006_grpc_claude_traces.pb").read_bytes())
    r = redactor()
    with structlog.testing.capture_logs() as logs:
        r.process(decoded)
        r.redact_text(f"token={corpus.GITHUB_PAT}")
    assert logs == []


def test_default_settings_hash_user_email_and_account_uuid(tmp_path: Path) -> None:
    r = Redactor.from_settings(settings(tmp_path), environ={HASH_KEY_ENV: "k"})
    out = r.redact_attributes(
        {"user.email": "dev@example.com", "user.account_uuid": "f0cf", "user.id": "bfdb"}
    )
    assert out["user.email"] != "dev@example.com" and out["user.account_uuid"] != "f0cf"
    assert out["user.id"] == "bfdb"


# -- metrics and speed -----------------------------------------------------------------------------


def test_counters_count_each_secret_once_per_occurrence() -> None:
    r = redactor()
    before = {name: detector_count(name) for name in ("github_token", "jwt")}
    r.redact_text(f"{corpus.GITHUB_PAT} and {corpus.GITHUB_PAT_2} and {corpus.JWT}")
    assert detector_count("github_token") == before["github_token"] + 2
    assert detector_count("jwt") == before["jwt"] + 1


def test_clean_strings_are_scanned_once_across_requests_within_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = redactor()
    scanned: list[str] = []
    scan = r._text
    monkeypatch.setattr(r, "_text", lambda text, tally: scanned.append(text) or scan(text, tally))
    secret = f"token={corpus.GITHUB_PAT}"
    before = detector_count("github_token")
    for _ in range(3):  # three requests
        out = r.redact_attributes({"model": "Claude-Opus-4", "cmd": secret})
        assert out == {"model": "Claude-Opus-4", "cmd": "token=[REDACTED:github_token]"}
    assert scanned.count("Claude-Opus-4") == 1  # remembered clean
    assert scanned.count(secret) == 3  # a secret is never remembered: redacted and counted
    assert detector_count("github_token") == before + 3
    monkeypatch.setattr(redact_engine, "CLEAN_MEMORY_CHARS", 100)
    for i in range(50):
        r.redact_attributes({"v": f"Value-{i:04d}-xyz"})
    assert 0 < r._clean_chars <= 100  # emptied when full, not grown
    monkeypatch.setattr(redact_engine, "CLEAN_MEMORY_CHARS", 10**6)
    monkeypatch.setattr(redact_engine, "CLEAN_MEMORY_STRINGS", 10)
    for i in range(50):
        r.redact_attributes({"v": f"Other-{i:04d}-xyz"})
    assert 0 < len(r._clean) <= 10


ADVERSARIAL = {
    "pem headers without end": "-----BEGIN RSA PRIVATE KEY-----\n" * 2500,
    "assignments": "password=" * 9000,
    "jwt starts": "eyJ" * 27000,
    "url userinfo": "://a:" * 16000,
    "curl -u": " -u x:y" * 11000,
    "mysql -p": "mysql " + " -pabc" * 13000,
    "ado": "Server=x;Password=" * 4400,
    "redis-cli -a": "redis-cli" + " -a x" * 13000,
    "echo | sudo -S": "echo x | " * 7000 + "sudo -S",
    "printf | login --password-stdin": "printf %s x | " * 5000 + "--password-stdin",
    "htpasswd -b": "htpasswd -b " * 5000,
    "identified by": "identified by " * 5000,
    "password for": "password for x " * 5000,
    "sudo -S <<<": "sudo -S <<< x " * 5000,
    "xml password": "<password>x" * 7000,
    "setter": '.password("x' * 6000,
    "quoted pairs": "'password', 'x" * 5000,
}


@pytest.mark.parametrize("value", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_scanning_stays_linear_on_adversarial_values(value: str) -> None:
    start = time.perf_counter()
    redactor(truncate_bytes=64 * 1024).redact_text(value)
    assert time.perf_counter() - start < 5  # ~0.3 s on a slow CI machine; quadratic is minutes


def test_the_pre_filter_lets_few_real_values_through_to_the_detectors() -> None:
    """Not a benchmark (see the engine's docstring): a guard against the pre-filter
    silently sending every value to the detectors. The clean corpus is adversarial (half of it
    talks about passwords and tokens); real telemetry is not."""
    r = redactor()
    values: set[str] = set()
    for path in FIXTURES.glob("*/*.pb"):
        for rows in DECODERS[signal_of(path)](path.read_bytes()).rows.values():
            for row in rows:
                for column in row:
                    if isinstance(column, dict):
                        values.update(column.values())
                    elif isinstance(column, str):
                        values.add(column)
    through = sorted(v for v in values if r._gate is not None and r._gate.search(v))
    assert len(values) > 4000
    assert len(through) < len(values) // 50, through[:20]


def _counts() -> dict[str, float]:
    names = [*DETECTOR_NAMES, "acme_token"]
    return {
        **{name: detector_count(name) for name in names},
        **{f"rule:{rule}": rule_count(rule) for rule in ("drop", "hash", "truncate")},
    }


def _reference_rows(r: Redactor, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """What ``process`` must give: each distinct dict through ``redact_attributes`` once, each
    string through ``redact_text`` at every occurrence (how secrets are counted)."""
    maps: dict[int, dict[str, str]] = {}

    def one_map(d: dict[str, str]) -> dict[str, str]:
        if id(d) not in maps:
            maps[id(d)] = r.redact_attributes(d)
        return maps[id(d)]

    kinds = REDACTED_COLUMNS[TRACES]
    out = []
    for row in rows:
        new = list(row)
        for i, name in enumerate(TABLE_COLUMNS[TRACES]):
            kind = kinds.get(name)
            if kind in ("map",):
                new[i] = one_map(row[i])
            elif kind in ("text", "service"):
                new[i] = r.redact_text(row[i])
            elif kind == "maps":
                new[i] = [one_map(d) for d in row[i]]
            elif kind == "texts":
                new[i] = [r.redact_text(t) for t in row[i]]
        out.append(tuple(new))
    return out


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"hash": ("user.email",), "drop": ("prompt",)},
        {"truncate_bytes": 300},
        {"custom_detectors": {"acme_token": "acme_[0-9a-f]{32}"}},
    ],
    ids=["defaults", "rules", "truncate", "custom"],
)
@pytest.mark.parametrize(
    ("longest", "nul"), [(None, False), (4000, False), (4000, True)], ids=["all", "short", "nul"]
)
def test_process_redacts_and_counts_the_corpus_as_value_by_value_redaction_does(
    options: dict[str, Any], longest: int | None, nul: bool
) -> None:
    """``process`` decides a request column by column (set operations, values known clean,
    numbers and hex ids decided in bulk, unless a value is too long for that or holds the
    separator); its rows and counts must equal redacting every value on its own."""
    cases = [c for c in corpus.ALL_SECRET_CASES if longest is None or len(c.value) <= longest]
    clean = [v for v in corpus.ALL_CLEAN_VALUES if longest is None or len(v) <= longest]
    spans = []
    for n, case in enumerate(cases):
        text = case.value if case.key is None else f"{case.key}={case.value}"
        spans.append(
            span(
                n % 250 + 1,
                name=text if n % 3 == 0 else clean[n % len(clean)],
                attributes=[
                    kv(case.key or "command", case.value),
                    kv("clean", clean[(7 * n) % len(clean)]),
                    kv("count", str(1000 + n)),
                    kv("id", f"{n:032x}"),
                    kv("ref", corpus.AWS_KEY_ID if n % 7 == 0 else f"{n:x}"),  # alphanumeric
                    kv("nul", f"{n}\x00{corpus.GITHUB_PAT}" if nul and n % 50 == 0 else str(n)),
                    kv("user.email", f"dev{n % 4}@example.com"),
                    kv("prompt", "acme_" + f"{n:032x}"),
                ],
                status=trace_pb2.Status(code=2, message=text if n % 2 else ""),
                events=[trace_pb2.Span.Event(name=text, attributes=[kv("m", case.value)])]
                if n % 5 == 0
                else [],
            )
        )
    spans += [
        span(
            251,
            name=value,
            attributes=[
                kv("v", value),  # a value holding the separator, alone with clean ones:
                kv("nul", f"{i}\x00{corpus.GITHUB_PAT}" if nul and i % 50 == 0 else str(i)),
            ],
        )
        for i, value in enumerate(clean)
    ]
    body = ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=SECRET_RESOURCE,
                scope_spans=[trace_pb2.ScopeSpans(spans=spans[i : i + 97])],
            )
            for i in range(0, len(spans), 97)
        ]
    ).SerializeToString()
    options = {"hash_key": KEY, **options}
    for _ in range(2):  # the second time, clean values are known
        expected_counts = _counts()
        expected = _reference_rows(Redactor(**options), decode_traces(body).rows[TRACES])
        reference = {k: v - expected_counts[k] for k, v in _counts().items()}
        r = Redactor(**options)
        for request in range(2):
            decoded = decode_traces(body)
            before = _counts()
            r.process(decoded)
            counted = {k: v - before[k] for k, v in _counts().items()}
            assert decoded.rows[TRACES] == expected, request
            assert counted == reference, request
