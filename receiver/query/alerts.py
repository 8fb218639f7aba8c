"""Alert evaluation: run each rule's query on its interval and notify on transitions.

A rule's query returns rows of label columns and a value column; each distinct label set
(rows sharing one are added up) is in one of the states

    ok -> pending (condition holds, for less than ``for``) -> firing -> resolved (cleared)

with one notification per transition into firing or resolved, and a repeat while still
firing every ``repeat``. A label set missing from the result counts as cleared.

Runs on its own thread in the daemon (``AlertEvaluator``), with its own ClickHouse client,
never on the ingest event loop: a slow rule or a hanging webhook cannot delay an OTLP
acknowledgement.

State lives in ClickHouse (``alert_state``, ``schema/0013``), not in memory, for two reasons:

- a restart does not notify again: a new evaluator reads the stored states (a label set
  already firing stays firing, silently) before it evaluates;
- several receivers on one database notify once. Each evaluation *claims* its rule's time
  slot (``floor(now / every)``), and each notification claims its transition (rule, labels,
  state, starts_at, repeat number), by inserting a claim row whose
  ``insert_deduplication_token`` is the claim's key: ClickHouse stores only the first insert
  of a token (``non_replicated_deduplication_window``; replicated tables deduplicate the
  same way), so every contender then reads the claim back and only the receiver named in it
  proceeds. This needs no lease renewal, clock agreement beyond the slot length, or a
  coordinator; a receiver that dies after winning a notification claim loses that one
  notification (at most once), which the stored state then shows. Slot claims also keep N
  receivers from running the same query N times.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from clickhouse_connect.driver.client import Client
from prometheus_client import Counter, Gauge

from receiver.config import ConfigError
from receiver.query import notify, reports
from receiver.query.alert_rules import AlertRule, template_fields

log = structlog.get_logger("receiver.query.alerts")

EVALUATIONS = Counter(
    "otel_receiver_alert_evaluations_total",
    "Alert rule evaluations by rule and outcome (ok | error | skipped: another receiver "
    "evaluated that slot)",
    ["alert", "outcome"],
)
FIRING = Gauge("otel_receiver_alerts_firing", "Label sets firing, by rule", ["alert"])

_NUMERIC = re.compile(r"(Nullable\()?(U?Int|Float|Decimal)")
_TEXT = re.compile(r"(LowCardinality\()?(Nullable\()?(String|FixedString|Date\b|Enum|UUID)")
_USED = re.compile(r"\{(\w+):[^}]+\}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RANK = {"ok": 0, "resolved": 0, "pending": 1, "firing": 2}
_STATE_COLUMNS = (
    "Rule",
    "Kind",
    "Key",
    "Labels",
    "State",
    "Value",
    "ActiveSince",
    "StartsAt",
    "EndsAt",
    "LastNotifiedAt",
    "Outcome",
    "Receiver",
    "Detail",
    "UpdatedAt",
    "Version",
)


@dataclass
class LabelState:
    """What the evaluator knows about one label set of one rule."""

    key: str
    labels: dict[str, str]
    state: str = "ok"
    value: float = 0.0
    active_since: datetime | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    last_notified_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    """The outcome of one evaluation for one label set: its new state and the notification
    (``firing`` or ``resolved``) the transition calls for, if any."""

    state: LabelState
    notify: str | None = None
    repeat: int = 0  # 0: the first firing notification; n: the n-th repeat


def step(rule: AlertRule, previous: LabelState, value: float | None, now: datetime) -> Step:
    """The state machine, for one label set (``value`` None: absent from the result)."""
    holds = value is not None and rule.breached(value)
    current = replace(previous, value=previous.value if value is None else value)
    if not holds:
        if previous.state == "firing":
            return Step(replace(current, state="resolved", ends_at=now), "resolved")
        if previous.state == "pending":
            return Step(replace(current, state="ok", active_since=None))
        return Step(current)
    if previous.state in ("ok", "resolved"):
        current = replace(current, state="pending", active_since=now, starts_at=None, ends_at=None)
    if current.state == "pending":
        assert current.active_since is not None
        if (now - current.active_since).total_seconds() >= rule.for_:
            fired = replace(current, state="firing", starts_at=now, last_notified_at=now)
            return Step(fired, "firing")
        return Step(current)
    # firing: a repeat once ``repeat`` has passed since the last notification
    assert current.starts_at is not None
    last = current.last_notified_at or current.starts_at
    if rule.repeat > 0 and (now - last).total_seconds() >= rule.repeat:
        number = max(1, int((now - current.starts_at).total_seconds() // rule.repeat))
        return Step(replace(current, last_notified_at=now), "firing", number)
    return Step(current)


def labels_key(labels: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:32]


def _today(now: datetime) -> str:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()


def rule_query(rule: AlertRule, database: str, now: datetime) -> tuple[str, dict[str, str]]:
    """The SQL of a rule and its parameters (``{database:Identifier}`` and ``params``; the
    time ``today`` is midnight UTC)."""
    params = {k: (_today(now) if v == "today" else v) for k, v in rule.params.items()}
    if rule.report:
        report = reports.get(rule.report)
        return report.sql, reports.parameters(report, database, extra=params, now=now)
    used = set(_USED.findall(_strip_comments(rule.query)))
    values = {k: v for k, v in params.items() if k in used}
    if "database" in used:
        values["database"] = database
    return rule.query, values


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def label_columns(rule: AlertRule, columns: list[str], types: list[str]) -> list[str]:
    """``labels`` if set; else every column but the value (for a report: its text columns,
    since its other figures change all the time)."""
    if rule.labels is not None:
        return list(rule.labels)
    return [
        c
        for c, t in zip(columns, types, strict=True)
        if c != rule.column and (not rule.report or _TEXT.match(t))
    ]


def check_rules(client: Client, database: str, rules: Iterable[AlertRule]) -> None:
    """Let ClickHouse check every rule's SQL (``DESCRIBE TABLE (query)``): it must parse, its
    tables and parameters must exist, and it must return the numeric value column and the
    label columns the rule and its summary name. Raises ConfigError naming ``alerts.<name>``."""
    now = datetime.now(UTC)
    for rule in rules:
        where = f"alerts.{rule.name}"
        try:
            sql, params = rule_query(rule, database, now)
            described = client.query(
                f"DESCRIBE TABLE ({_strip_comments(sql).strip().rstrip(';')})", parameters=params
            ).result_rows
        except reports.ReportError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{where}: ClickHouse refused the query: {first}") from None
        columns = [row[0] for row in described]
        types = {row[0]: row[1] for row in described}
        if rule.column not in types:
            raise ConfigError(
                f"{where}: the query returns no column {rule.column!r} (columns: "
                f"{', '.join(columns)}); name the value column {rule.column!r} or set column"
            )
        if not _NUMERIC.match(types[rule.column]):
            raise ConfigError(
                f"{where}: column {rule.column!r} is {types[rule.column]}, not a number"
            )
        labels = label_columns(rule, columns, [types[c] for c in columns])
        missing = [c for c in labels if c not in types]
        if missing:
            raise ConfigError(f"{where}.labels: no column {', '.join(missing)} in the result")
        unknown = template_fields(rule.summary) - set(labels) - {"value"}
        if unknown:
            raise ConfigError(
                f"{where}.summary: {', '.join(sorted(unknown))} is not a label "
                f"(labels: {', '.join(labels) or 'none'}) or value"
            )


def _label_text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(_label_text(v) for v in value)
    return "" if value is None else str(value)


def samples(client: Client, rule: AlertRule, database: str, now: datetime) -> dict[str, tuple]:
    """Run the rule: labels key -> (labels, value); rows sharing a label set add up, rows
    whose value is NULL or NaN are skipped."""
    sql, params = rule_query(rule, database, now)
    result = client.query(sql, parameters=params)
    if not result.result_rows:  # no rows come with no column names either
        return {}
    columns = list(result.column_names)
    labels = label_columns(rule, columns, [t.name for t in result.column_types])
    value_at = columns.index(rule.column)
    label_at = [columns.index(c) for c in labels]
    found: dict[str, tuple[dict[str, str], float]] = {}
    for row in result.result_rows:
        raw = row[value_at]
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            continue
        label_set = {c: _label_text(row[i]) for c, i in zip(labels, label_at, strict=True)}
        key = labels_key(label_set)
        previous = found.get(key, (label_set, 0.0))[1]
        found[key] = (label_set, previous + float(raw))
    return found


def _ms(when: datetime | None) -> datetime:
    return when or _EPOCH


def _from_ms(ms: int) -> datetime | None:
    return None if ms <= 0 else _EPOCH + timedelta(milliseconds=ms)


def summary_text(rule: AlertRule, labels: Mapping[str, str], value: float) -> str:
    if not rule.summary:
        return ""
    try:
        return rule.summary.format(**labels, value=value)
    except (KeyError, ValueError, IndexError) as exc:
        return f"{rule.summary} (template error: {exc})"


def notification(rule: AlertRule, step_: Step) -> dict[str, Any]:
    s = step_.state
    assert step_.notify is not None and s.starts_at is not None
    return notify.payload(
        alert=rule.name,
        state=step_.notify,
        value=s.value,
        labels=s.labels,
        severity=rule.severity,
        summary=summary_text(rule, s.labels, s.value),
        condition=rule.condition,
        starts_at=s.starts_at,
        ends_at=s.ends_at if step_.notify == "resolved" else None,
        repeat=step_.repeat > 0,
    )


@dataclass
class Evaluation:
    """What one evaluation of a rule did (the CLI's ``alerts test`` prints it)."""

    rule: AlertRule
    at: datetime
    steps: list[tuple[LabelState, Step]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False


class AlertStore:
    """The rows of ``alert_state``: label-set states, rule summaries and claims."""

    def __init__(self, client: Client, database: str, receiver_id: str) -> None:
        self.client = client
        self.database = database
        self.receiver_id = receiver_id

    def states(self, rule: str) -> dict[str, LabelState]:
        rows = self.client.query(
            f"SELECT Key, Labels, State, Value, toUnixTimestamp64Milli(ActiveSince), "
            f"toUnixTimestamp64Milli(StartsAt), toUnixTimestamp64Milli(EndsAt), "
            f"toUnixTimestamp64Milli(LastNotifiedAt) FROM `{self.database}`.alert_state FINAL "
            "WHERE Rule = {rule:String} AND Kind = 'state'",
            parameters={"rule": rule},
        ).result_rows
        return {
            key: LabelState(
                key,
                dict(labels),
                state,
                value,
                _from_ms(active),
                _from_ms(starts),
                _from_ms(ends),
                _from_ms(notified),
            )
            for key, labels, state, value, active, starts, ends, notified in rows
        }

    def _row(self, rule: str, kind: str, key: str, **values: Any) -> list[Any]:
        row = {
            "Rule": rule,
            "Kind": kind,
            "Key": key,
            "Labels": {},
            "State": "",
            "Value": 0.0,
            "ActiveSince": _EPOCH,
            "StartsAt": _EPOCH,
            "EndsAt": _EPOCH,
            "LastNotifiedAt": _EPOCH,
            "Outcome": "",
            "Receiver": self.receiver_id,
            "Detail": "",
            "UpdatedAt": datetime.now(UTC),
            "Version": time.time_ns(),
            **values,
        }
        return [row[c] for c in _STATE_COLUMNS]

    def write_states(self, rule: str, states: Iterable[LabelState], summary: list[Any]) -> None:
        rows = [
            self._row(
                rule,
                "state",
                s.key,
                Labels=s.labels,
                State=s.state,
                Value=s.value,
                ActiveSince=_ms(s.active_since),
                StartsAt=_ms(s.starts_at),
                EndsAt=_ms(s.ends_at),
                LastNotifiedAt=_ms(s.last_notified_at),
            )
            for s in states
        ]
        rows.append(summary)
        self.client.insert(
            "alert_state", rows, column_names=list(_STATE_COLUMNS), database=self.database
        )

    def rule_summary(self, rule: str, state: str, value: float, error: str) -> list[Any]:
        return self._row(rule, "rule", "", State=state, Value=value, Detail=error)

    def claim(self, rule: str, key: str, **values: Any) -> bool:
        """Insert the claim ``key`` (deduplicated by ClickHouse) and say whether it is ours."""
        self.client.insert(
            "alert_state",
            [self._row(rule, "claim", key, Outcome="claimed", Version=0, **values)],
            column_names=list(_STATE_COLUMNS),
            database=self.database,
            settings={"insert_deduplication_token": f"{rule}|{key}", "insert_deduplicate": 1},
        )
        winner = self.client.query(
            f"SELECT Receiver FROM `{self.database}`.alert_state "
            "WHERE Rule = {rule:String} AND Kind = 'claim' AND Key = {key:String} "
            "ORDER BY Version, UpdatedAt LIMIT 1",
            parameters={"rule": rule, "key": key},
        ).result_rows
        return bool(winner) and winner[0][0] == self.receiver_id

    def record_outcome(self, rule: str, key: str, outcome: str, body: Mapping[str, Any]) -> None:
        self.client.insert(
            "alert_state",
            [
                self._row(
                    rule,
                    "claim",
                    key,
                    State=body["state"],
                    Outcome=outcome,
                    Detail=json.dumps(body),
                )
            ],
            column_names=list(_STATE_COLUMNS),
            database=self.database,
        )


class AlertEvaluator:
    """Evaluates the rules on their intervals on one background thread."""

    def __init__(
        self,
        connect: Callable[[], Client],
        database: str,
        rules: Iterable[AlertRule],
        *,
        receiver_id: str | None = None,
        send: Callable[..., bool] = notify.send,
    ) -> None:
        self._connect = connect
        self.database = database
        self.rules = {rule.name: rule for rule in rules}
        self.receiver_id = receiver_id or f"{uuid.uuid4()}"
        self._send = send
        self._store: AlertStore | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> AlertStore:
        if self._store is None:
            self._store = AlertStore(self._connect(), self.database, self.receiver_id)
        return self._store

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-evaluator", daemon=True)
        self._thread.start()
        log.info("alerts_started", rules=len(self.rules), receiver=self.receiver_id)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        if self._store and not (self._thread and self._thread.is_alive()):
            self._store.client.close()  # else the thread is stuck on a webhook: it exits with us

    def _run(self) -> None:
        due = dict.fromkeys(self.rules, 0.0)
        while not self._stop.is_set():
            now = time.time()
            for name, rule in self.rules.items():
                if now < due[name] or self._stop.is_set():
                    continue
                slot = math.floor(now / rule.every)
                due[name] = (slot + 1) * rule.every
                at = datetime.fromtimestamp(slot * rule.every, UTC)
                try:
                    self.evaluate(rule, at)
                except Exception as exc:
                    EVALUATIONS.labels(name, "error").inc()
                    log.error("alert_evaluation_failed", alert=name, error=_first_line(exc))
                    self._record_error(rule, exc)
            self._stop.wait(max(min(due.values(), default=now + 60) - time.time(), 0.05))

    def _record_error(self, rule: AlertRule, exc: Exception) -> None:
        try:
            store = self.store
            store.write_states(rule.name, [], store.rule_summary(rule.name, "error", 0.0, str(exc)))
        except Exception:  # ClickHouse itself is down: the log line above says it
            pass

    def evaluate(self, rule: AlertRule, at: datetime, *, dry_run: bool = False) -> Evaluation:
        """One evaluation at ``at`` (the start of its time slot). ``dry_run``: compute what
        would happen and send nothing, claim nothing, store nothing."""
        store = self.store
        evaluation = Evaluation(rule, at)
        slot = math.floor(at.timestamp() / rule.every)
        if not dry_run and not store.claim(rule.name, f"slot:{rule.every:g}:{slot}"):
            EVALUATIONS.labels(rule.name, "skipped").inc()
            evaluation.skipped = True
            return evaluation
        current = samples(store.client, rule, self.database, at)
        known = store.states(rule.name)
        for key in dict.fromkeys([*current, *known]):
            labels, value = current.get(key, (None, None))
            previous = known.get(key) or LabelState(key, labels or {})
            evaluation.steps.append((previous, step(rule, previous, value, at)))
        if dry_run:
            return evaluation
        changed = [
            s.state
            for previous, s in evaluation.steps
            if s.state != previous or s.state.state in ("pending", "firing")
        ]
        worst = max(
            (s.state for _, s in evaluation.steps), key=lambda s: _RANK[s.state], default=None
        )
        values = [v for _, v in current.values()]
        extreme = (min if rule.below is not None else max)(values, default=0.0)
        summary = store.rule_summary(rule.name, worst.state if worst else "ok", extreme, "")
        store.write_states(rule.name, changed, summary)
        FIRING.labels(rule.name).set(sum(s.state.state == "firing" for _, s in evaluation.steps))
        EVALUATIONS.labels(rule.name, "ok").inc()
        for _, s in evaluation.steps:
            if s.notify:
                body = notification(rule, s)
                if self._deliver(rule, s, body):
                    evaluation.sent.append(body)
        return evaluation

    def _deliver(self, rule: AlertRule, s: Step, body: dict[str, Any]) -> bool:
        """Claim the notification, then send it if the claim is ours; True when claimed."""
        state = s.state
        assert state.starts_at is not None
        key = f"notify:{state.key}:{s.notify}:{int(state.starts_at.timestamp() * 1000)}:{s.repeat}"
        if not self.store.claim(rule.name, key, State=s.notify or "", Detail=json.dumps(body)):
            return False
        delivered = (
            self._send(
                rule.notify, body, timeout=rule.timeout, retries=rule.retries, stop=self._stop
            )
            if rule.notify
            else True
        )
        outcome = ("sent" if delivered else "failed") if rule.notify else "no_webhook"
        log.info(
            "alert_notified",
            alert=rule.name,
            state=s.notify,
            outcome=outcome,
            webhooks=len(rule.notify),
        )
        self.store.record_outcome(rule.name, key, outcome, body)
        return True


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
