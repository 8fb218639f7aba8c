"""The web UI (``receiver.web``) of a real ``otel-receiver serve``, over the real ClickHouse, on
the replayed real Claude Code / Codex capture plus hostile telemetry, in a real browser
(Playwright driving Debian's Chromium) and through its JSON API."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2
from playwright.sync_api import Browser, Page, expect, sync_playwright

from receiver.config import load_settings
from receiver.ingest.auth import Authenticator, parse_entry
from receiver.ingest.otlp import SERVICES
from receiver.query.tree import build_tree
from receiver.store.sink import connect
from receiver.web.app import CONTENT_SECURITY_POLICY, UiServer
from receiver.web.queries import connect_readonly

from .capture import CAPTURE_TOOL_EXECUTION_SPAN, Replay, replay
from .receiver_process import ReceiverProcess, wait_for

# One real ClickHouse (the embedded one) for the module: the browser tests share one data set.
pytestmark = pytest.mark.parametrize("clickhouse_url", ["embedded"], indirect=True, scope="session")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = (
    '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2;alert(2)</script>'
)
HOSTILE_NAME = "<script>alert('span')</script>span"
HOSTILE_BODY = "</td></tr><svg onload=alert(3)>body"
_databases = itertools.count()


# -- data ---------------------------------------------------------------------------------------


def kvs(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=str(v))) for k, v in attributes.items()]


def send(target: str, bodies: list[tuple[str, bytes]]) -> None:
    with grpc.insecure_channel(target) as channel:
        for signal, body in bodies:
            channel.unary_unary(f"/{SERVICES[signal][0]}/Export")(body, timeout=10)


def claude_log(
    session: str, event: str, attributes: dict[str, Any], body: str = "", trace: bytes = b""
) -> bytes:
    """One Claude Code-shaped log event (``event_name`` set as a hook event would be)."""
    record = logs_pb2.LogRecord(
        time_unix_nano=time.time_ns(),
        observed_time_unix_nano=time.time_ns(),
        event_name=event,
        body=AnyValue(string_value=body or event),
        attributes=kvs({"session.id": session, **attributes}),
        trace_id=trace,
    )
    request = ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=Resource(attributes=kvs({"service.name": "claude-code"})),
                scope_logs=[logs_pb2.ScopeLogs(log_records=[record])],
            )
        ]
    )
    return request.SerializeToString()


def hostile_bodies(session: str, trace: bytes) -> list[tuple[str, bytes]]:
    """A Claude session whose span names, attributes, prompts, tool names and log bodies are
    HTML and script."""
    now = time.time_ns()
    interaction, tool = os.urandom(8), os.urandom(8)
    attributes = {"session.id": session, "user_prompt": HOSTILE, HOSTILE: HOSTILE}
    spans = [
        trace_pb2.Span(
            trace_id=trace,
            span_id=interaction,
            name="claude_code.interaction",
            start_time_unix_nano=now - 2_000_000_000,
            end_time_unix_nano=now,
            attributes=kvs({**attributes, "interaction.sequence": 1}),
        ),
        trace_pb2.Span(
            trace_id=trace,
            span_id=tool,
            parent_span_id=interaction,
            name=HOSTILE_NAME,
            start_time_unix_nano=now - 1_500_000_000,
            end_time_unix_nano=now - 500_000_000,
            attributes=kvs(attributes),
            events=[trace_pb2.Span.Event(name=HOSTILE, time_unix_nano=now - 1_000_000_000)],
            status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message=HOSTILE),
        ),
    ]
    traces = ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=Resource(attributes=kvs({"service.name": "claude-code"})),
                scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
            )
        ]
    )
    return [
        ("traces", traces.SerializeToString()),
        ("logs", claude_log(session, "claude_code.user_prompt", {"prompt": HOSTILE})),
        (
            "logs",
            claude_log(
                session,
                "claude_code.tool_result",
                {"tool_name": HOSTILE, "success": "false", "error": HOSTILE},
            ),
        ),
        ("logs", claude_log(session, "claude_code.hook.PreToolUse", {"tool_name": HOSTILE})),
        ("logs", claude_log(session, "", {}, body=HOSTILE_BODY, trace=trace)),
    ]


# -- fixtures -----------------------------------------------------------------------------------


class Served:
    """The receiver with its UI, and what was sent to it."""

    def __init__(self, receiver: ReceiverProcess, capture: Replay, ch: Client, database: str):
        self.receiver = receiver
        self.capture = capture
        self.ch = ch
        self.database = database
        self.ui = f"http://127.0.0.1:{receiver.event('receiver_started')['ui_port']}"
        self.hostile_session = str(uuid.uuid4())
        self.hostile_trace = os.urandom(16)

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.ui + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    @property
    def capture_trace(self) -> str:
        return self.ch.query(
            f"SELECT TraceId FROM {self.database}.otel_traces WHERE SpanId = %(s)s",
            parameters={"s": self.capture.span(CAPTURE_TOOL_EXECUTION_SPAN)},
        ).result_rows[0][0]


@pytest.fixture(scope="module")
def served(clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database = f"test_web_ui_{next(_databases)}"
    workdir = tmp_path_factory.mktemp("web_ui")
    receiver = ReceiverProcess.serving(
        workdir,
        clickhouse_url,
        database,
        "--ui-listen",
        "127.0.0.1:0",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    ).start()
    ch = connect(clickhouse_url)
    try:
        served = Served(receiver, replay("main_grpc"), ch, database)
        send(receiver.grpc_target, list(served.capture.bodies()))
        send(receiver.grpc_target, hostile_bodies(served.hostile_session, served.hostile_trace))

        def stitched() -> bool:
            tops = build_tree(ch, database, served.capture.session)
            return bool(tops) and any(n.kind == "codex_run" for n in _nodes(tops))

        wait_for(stitched, 30, "the capture's codex run under its session", interval=0.3)
        yield served
    finally:
        receiver.stop()
        ch.command(f"DROP DATABASE IF EXISTS {database}")
        ch.close()


def _nodes(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        yield from _nodes(node.children)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install -y chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page that records every dialog (none may ever open) and console CSP error."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    yield page
    assert page.dialogs == []  # type: ignore[attr-defined]
    context.close()


def screenshot(page: Page, name: str) -> None:
    """Screenshots for docs/screenshots when WEB_UI_SCREENSHOTS names a directory (the page
    as a 1400 x 900 window shows it)."""
    folder = os.environ.get("WEB_UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


# -- pages in the browser -----------------------------------------------------------------------


def test_sessions_page_lists_the_captured_session_with_its_codex_run(
    served: Served, page: Page
) -> None:
    page.goto(served.ui + "/")
    session = page.locator(f'a[title="{served.capture.session}"]')
    expect(session).to_be_visible()
    codex = page.locator(f'tr.codex.child a[title="{served.capture.thread}"]')
    expect(codex).to_be_visible()
    row = page.locator("tr", has=session)
    expect(row).to_contain_text("claude-opus-5-5")
    screenshot(page, "sessions")


def test_session_page_shows_the_codex_run_under_the_bash_call(served: Served, page: Page) -> None:
    page.goto(served.ui + f"/session/{served.capture.session}")
    bash = page.locator("li.node.tool_call", has=page.locator(".name", has_text="Bash"))
    codex = bash.locator(f'li.node.codex_run .nid[title="{served.capture.thread}"]')
    expect(codex).to_be_visible()
    expect(page.locator("li.node.cc_launch").first).to_contain_text(served.capture.launch[:12])
    expect(page.locator("table.events")).to_contain_text("tool_result")
    expect(page.locator("table.events")).to_contain_text("Bash ok")
    # Collapsing the Bash call hides the codex run: the tree is expandable.
    bash.locator("summary").first.click()
    expect(codex).to_be_hidden()
    bash.locator("summary").first.click()
    expect(codex).to_be_visible()
    screenshot(page, "session")


def test_trace_page_draws_a_waterfall_of_every_span(served: Served, page: Page) -> None:
    trace = served.capture_trace
    count = served.ch.query(
        f"SELECT count() FROM {served.database}.otel_traces WHERE TraceId = %(t)s",
        parameters={"t": trace},
    ).result_rows[0][0]
    page.goto(served.ui + f"/session/{served.capture.session}")
    page.locator("li.node.tool_call a.trace").first.click()
    expect(page).to_have_url(re.compile(re.escape(f"{served.ui}/trace/{trace}#span-")))
    page.goto(served.ui + f"/trace/{trace}")
    expect(page.locator("details.span")).to_have_count(count)
    bar = page.locator("details.span svg.wf-bar rect").first
    expect(bar).to_be_visible()
    assert float(bar.get_attribute("width") or 0) > 0
    codex_exec = page.locator("details.span", has=page.locator(".wf-name", has_text="codex.exec"))
    codex_exec.locator(":scope > summary").click()
    expect(codex_exec.locator("table.attrs").first).to_contain_text("thread.id")
    screenshot(page, "trace")


def test_live_page_shows_an_event_sent_after_it_opened(served: Served, page: Page) -> None:
    page.goto(served.ui + "/live")
    expect(page.locator("#live-status")).to_have_text("live")
    marker = f"tool-{uuid.uuid4().hex[:8]}"
    send(
        served.receiver.grpc_target,
        [
            (
                "logs",
                claude_log(
                    served.capture.session,
                    "claude_code.tool_result",
                    {"tool_name": marker, "success": "true", "duration_ms": "5"},
                ),
            )
        ],
    )
    acknowledged = time.monotonic()
    row = page.locator("#live-rows tr", has_text=marker)
    expect(row).to_be_visible(timeout=10_000)
    shown_after = time.monotonic() - acknowledged
    assert shown_after < 3.0, f"shown {shown_after:.2f}s after the receiver acknowledged it"
    link = row.locator(f'a[title="{served.capture.session}"]')
    expect(link).to_be_visible()
    # Filtering by agent or session hides it; pausing holds new events back until resumed.
    page.select_option("#live-agent", "codex")
    expect(row).to_be_hidden()
    page.select_option("#live-agent", "")
    page.fill("#live-session", served.hostile_session)
    expect(row).to_be_hidden()
    page.fill("#live-session", served.capture.session[:8])
    expect(row).to_be_visible()
    page.click("#live-pause")
    held = f"tool-{uuid.uuid4().hex[:8]}"
    send(
        served.receiver.grpc_target,
        [
            (
                "logs",
                claude_log(served.capture.session, "claude_code.tool_result", {"tool_name": held}),
            )
        ],
    )
    expect(page.locator("#live-count")).to_contain_text("1 held while paused", timeout=10_000)
    expect(page.locator("#live-rows tr", has_text=held)).to_have_count(0)
    page.click("#live-pause")
    expect(page.locator("#live-rows tr", has_text=held)).to_be_visible()
    page.fill("#live-session", "")
    screenshot(page, "live")
    link.click()
    expect(page).to_have_url(f"{served.ui}/session/{served.capture.session}")


def test_hostile_values_are_shown_as_text_and_never_run(served: Served, page: Page) -> None:
    trace = served.hostile_trace.hex()
    for path, shown in (
        ("/", served.hostile_session[:13]),
        ("/live", HOSTILE),
        (f"/trace/{trace}", HOSTILE_BODY),
        (f"/trace/{trace}", HOSTILE_NAME),
        (f"/session/{served.hostile_session}", HOSTILE),
    ):
        page.goto(served.ui + path)
        page.locator("details").evaluate_all("ds => ds.forEach(d => d.open = true)")
        expect(page.get_by_text(shown, exact=False).first).to_be_visible()
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("img[src=x], body script:not([src])").count() == 0, path
    screenshot(page, "hostile")


def test_reports_page_charts_cost_and_tokens_by_model(served: Served, page: Page) -> None:
    page.goto(served.ui + "/reports")
    charts = page.locator("figure.chart")
    expect(charts).to_have_count(2)
    expect(charts.first.locator("rect").first).to_be_visible()
    expect(page.locator("ul.legend").first).to_contain_text("claude-opus-5-5")
    screenshot(page, "reports")
    page.locator("a", has_text="tools").first.click()
    expect(page.locator("table.report")).to_contain_text("Bash")
    screenshot(page, "report")


# -- JSON API and HTTP --------------------------------------------------------------------------


def test_every_page_has_a_json_twin_with_the_same_data(served: Served) -> None:
    session = served.capture.session
    twin = served.json(f"/session/{session}.json")
    assert twin == served.json(f"/api/session/{session}")
    top = twin["tree"][0]
    assert top["kind"] == "cc_launch" and top["totals"]["input_tokens"] == 296
    claude = top["children"][0]
    bash = claude["children"][0]["children"][0]
    assert bash["name"] == "Bash" and bash["children"][0]["id"] == served.capture.thread
    assert bash["trace_id"] == served.capture_trace
    assert [e["event"] for e in twin["events"]].count("claude_code.api_request") == 2
    listed = served.json("/api/sessions?since=1h")
    ids = [s["id"] for s in listed["sessions"]]
    assert session in ids and served.capture.thread in ids
    assert ids.index(served.capture.thread) == ids.index(session) + 1
    trace = served.json(f"/api/trace/{served.capture_trace}")
    assert trace["spans"][0]["depth"] == 0 and any(
        s["name"] == "codex.exec" for s in trace["spans"]
    )
    assert served.json("/reports/tools.json")["rows"]


def test_sessions_filters_narrow_the_list(served: Served) -> None:
    every = {s["id"] for s in served.json("/api/sessions?since=1h")["sessions"]}
    assert {served.capture.session, served.hostile_session} <= every
    failed = {s["id"] for s in served.json("/api/sessions?since=1h&failed=1")["sessions"]}
    assert served.hostile_session in failed and served.capture.session not in failed
    codex = served.json("/api/sessions?since=1h&agent=codex")["sessions"]
    assert {s["agent"] for s in codex} == {"codex"}
    model = served.json("/api/sessions?since=1h&model=gpt-5.4")["sessions"]
    assert [s["id"] for s in model] == [served.capture.thread]


def test_search_takes_any_id(served: Served) -> None:
    prompt = served.ch.query(
        f"SELECT LogAttributes['prompt.id'], LogAttributes['tool_use_id'] "
        f"FROM {served.database}.otel_logs WHERE EventName = 'claude_code.tool_result' "
        "AND LogAttributes['session.id'] = %(s)s AND LogAttributes['tool_use_id'] != ''",
        parameters={"s": served.capture.session},
    ).result_rows[0]
    session_url = f"/session/{served.capture.session}"
    for wanted, url in (
        (served.capture.session, session_url),
        (served.capture.launch, None),
        (served.capture.thread, f"/session/{served.capture.thread}"),
        (prompt[0], session_url),
        (prompt[1], session_url),
        (served.capture_trace, f"/trace/{served.capture_trace}"),
    ):
        found = served.json(f"/api/search?q={wanted}")
        assert found["matches"], wanted
        if url:
            assert found["matches"][0]["url"] == url, wanted
    status, _, _ = served.get("/api/search?q=nothing-is-named-this")
    assert status == 404


def test_errors_name_the_problem(served: Served) -> None:
    status, _, body = served.get("/api/session/no-such-run")
    assert status == 404 and "no-such-run" in json.loads(body)["error"]
    status, _, body = served.get("/api/sessions?since=yesterday-ish")
    assert status == 400 and "since" in json.loads(body)["error"]
    status, _, body = served.get("/reports/no_such_report")
    assert status == 404 and b"no_such_report" in body


def test_the_json_link_of_every_page_is_its_data(served: Served, page: Page) -> None:
    for path in ("/", f"/session/{served.capture.session}", "/reports", "/live"):
        page.goto(served.ui + path)
        href = page.locator("footer a", has_text="this page as JSON").get_attribute("href")
        assert href
        status, headers, _ = served.get(href)
        assert status == 200 and headers["Content-Type"].startswith("application/json"), href


def test_every_answer_carries_the_content_security_policy(served: Served) -> None:
    for path in ("/", "/live", "/static/live.js", "/api/sessions", "/session/missing"):
        _, headers, _ = served.get(path)
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


def test_the_ui_is_read_only(served: Served) -> None:
    request = urllib.request.Request(served.ui + "/api/sessions", method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 405


# -- login off loopback -------------------------------------------------------------------------


def test_a_token_login_sets_an_http_only_cookie(
    served: Served, clickhouse_url: str, tmp_path: Path
) -> None:
    token = "ui-token-" + uuid.uuid4().hex
    settings = load_settings(
        None,
        {"ui_listen": "127.0.0.1:0", "clickhouse_database": served.database},
        environ={},
    )
    server = UiServer(
        settings,
        lambda: connect_readonly(clickhouse_url, None),
        Authenticator([parse_entry(token, "test")]),
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(base + "/", timeout=10)
        assert refused.value.code == 302 and refused.value.headers["Location"].startswith("/login")
        with pytest.raises(urllib.error.HTTPError) as api:
            opener.open(base + "/api/sessions", timeout=10)
        assert api.value.code == 401
        for candidate, status in (("wrong-token-0123456789", 401), (token, 303)):
            form = f"token={candidate}&next=/live".encode()
            with pytest.raises(urllib.error.HTTPError) as answer:
                opener.open(urllib.request.Request(base + "/login", data=form), timeout=10)
            assert answer.value.code == status
        cookie = answer.value.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert answer.value.headers["Location"] == "/live"
        login = cookie.split(";")[0]
        with opener.open(
            urllib.request.Request(base + "/api/sessions?since=1h", headers={"Cookie": login}),
            timeout=30,
        ) as answer:
            assert served.capture.session in answer.read().decode()
        bearer = urllib.request.Request(
            base + "/api/reports", headers={"Authorization": f"Bearer {token}"}
        )
        with opener.open(bearer, timeout=30) as answer:
            assert answer.status == 200
    finally:
        server.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# -- the commands -------------------------------------------------------------------------------


def test_otel_receiver_ui_serves_the_ui_alone(served: Served, clickhouse_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "receiver.cli", "ui", "--ui-listen", "127.0.0.1:0",
         "--clickhouse-url", clickhouse_url, "--clickhouse-database", served.database],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("web UI: http://127.0.0.1:"), line
        with urllib.request.urlopen(line.split()[-1] + "api/sessions?since=1h", timeout=30) as r:
            assert served.capture.session in r.read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0


@pytest.mark.parametrize("command", ["ui", "serve"])
def test_a_ui_off_loopback_without_tokens_refuses_to_start(
    command: str, clickhouse_url: str, tmp_path: Path
) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "receiver.cli", command, "--ui-listen", "0.0.0.0:0",
         "--clickhouse-url", clickhouse_url, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "ui_listen=0.0.0.0:0 is not a loopback address" in refused.stderr
