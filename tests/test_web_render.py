"""The web UI's pure parts: event descriptions, chart geometry, escaping and JSON (the fast
set: no ClickHouse, no network)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from receiver.web.charts import BOTTOM, HEIGHT, TOP, stacked_bars
from receiver.web.events import describe, short_name
from receiver.web.render import environment, to_json

pytestmark = pytest.mark.unit


def test_events_say_their_main_detail_and_whether_they_failed() -> None:
    assert describe("claude_code.tool_result", {"tool_name": "Bash", "success": "false",
                                                "duration_ms": "12", "error": "exit 1"}) == (
        "Bash failed 12 ms exit 1", True)  # fmt: skip
    assert describe("claude_code.api_error", {"model": "m", "status_code": "529",
                                              "error": "overloaded"}) == (
        "m status 529 overloaded", True)  # fmt: skip
    assert describe("codex.api_request", {"model": "gpt", "http.response.status_code": "500"})[1]
    assert not describe("codex.api_request", {"http.response.status_code": "200"})[1]
    request = {"model": "m", "input_tokens": "3", "output_tokens": "4", "cost_usd": "0.5"}
    detail, failed = describe("claude_code.api_request", request)
    assert detail == "m 3 in / 4 out tokens $0.500000" and not failed
    assert describe("claude_code.hook.PreToolUse", {"tool_name": "Bash"})[0] == "Bash"
    assert describe("something.else", {}, body="a body") == ("a body", False)
    assert short_name("claude_code.hook.Stop") == "hook.Stop" and short_name("x.y") == "x.y"


def test_stacked_bars_scale_the_tallest_day_to_the_plot() -> None:
    chart = stacked_bars(
        "t", "USD", {("d1", "a"): 1.0, ("d1", "b"): 3.0, ("d2", "a"): 2.0}, ["d1", "d2", "d3"]
    )
    assert [name for name, _ in chart.legend] == ["a", "b"]
    d1 = [bar for bar in chart.bars if bar.title.startswith("d1")]
    assert sum(bar.height for bar in d1) == pytest.approx(HEIGHT - BOTTOM - TOP)
    assert len(chart.bars) == 3 and not chart.empty
    assert stacked_bars("t", "USD", {}, ["d1"]).empty


def test_templates_escape_every_value() -> None:
    html = (
        environment()
        .from_string("<p>{{ v }}</p><a href='/s/{{ v|path }}'>")
        .render(v='<script>alert("x")</script>')
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "/s/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E" in html


def test_json_carries_times_as_utc_and_no_nan() -> None:
    data = json.loads(to_json({"t": datetime(2026, 12, 3, 8, 0, 1), "x": float("nan")}))
    assert data == {"t": "2026-12-03T08:00:01Z", "x": None}
