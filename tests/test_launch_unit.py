"""cc-launch and the codex shim without processes: the launch span's endpoint rule, its
hand-written OTLP/JSON (decoded by the receiver's own decoder), and the promise that the
agent-side tools need nothing but a Python 3.9 standard library."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from receiver.agents import launch
from receiver.ingest.http_frontend import json_to_protobuf

from .launch_env import clean_env

pytestmark = pytest.mark.unit

AGENTS = Path(launch.__file__).parent
REPO = AGENTS.parents[1]
AGENT_FILES = [
    *sorted(AGENTS.glob("*.py")),
    REPO / "bin" / "cc-launch",
    REPO / "bin" / "codex-spawn",
]


def attrs(key_values: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in key_values}


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: p.name)
def test_agent_tools_are_python_3_9_and_standard_library_only(path: Path) -> None:
    tree = ast.parse(path.read_text(), feature_version=(3, 9))  # no match, no 3.10+ syntax
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    imported.discard("receiver")  # only receiver.agents.* is imported (checked below)
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    own = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    # receiver.agents.* only: nothing that pulls in the daemon's dependencies
    assert all(m.startswith("receiver.agents") for m in own if m.startswith("receiver"))
    if path.suffix == ".py" and path.name != "__init__.py":
        # `X | Y` in annotations is only safe unevaluated (Python 3.9 cannot evaluate it).
        assert "from __future__ import annotations" in path.read_text()


def test_traces_url_rule() -> None:
    """The span goes to OTLP/HTTP: flag, env, else the gRPC endpoint's next port."""
    resolve = launch.resolve_traces_url
    assert resolve(None, {}, "http://127.0.0.1:4317") == "http://127.0.0.1:4318/v1/traces"
    assert resolve(None, {}, "https://[::1]:5317") == "https://[::1]:5318/v1/traces"
    env = {"CC_LAUNCH_HTTP_ENDPOINT": "h:9/"}
    assert resolve(None, env, "http://x:4317") == "http://h:9/v1/traces"
    assert resolve("https://r:1/v1/traces", env, "http://x:4317") == "https://r:1/v1/traces"
    prepared = launch.prepare(clean_env(CC_LAUNCH_ENDPOINT="http://10.0.0.1:4317"))
    assert prepared.traces_url == "http://10.0.0.1:4318/v1/traces"


def test_launch_span_is_otlp_json_the_receiver_decodes() -> None:
    """The hand-written OTLP/JSON: hex ids, int64 as strings, enums as numbers."""
    prepared = launch.prepare(
        clean_env(TRACEPARENT="00-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1-01"),
        task="T-1",
    )
    result = launch.RunResult(exit_code=130, start_ns=10**18, end_ns=10**18 + 5, killed_by=2)
    body = launch.build_span_request(prepared, ["/usr/bin/claude", "--secret"], result)
    document = json.loads(body)
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["startTimeUnixNano"] == "1000000000000000000"
    assert span["parentSpanId"] == "1526e6d37ddcc3b1"
    request = ExportTraceServiceRequest.FromString(json_to_protobuf("traces", body))
    [decoded] = request.resource_spans[0].scope_spans[0].spans
    assert decoded.trace_id.hex() == "a171b1cf0a55edc7f60e7b6d11e2c59f"
    assert decoded.span_id.hex() == prepared.context.span_id
    assert decoded.kind == Span.SPAN_KIND_INTERNAL
    assert decoded.flags == 0x301
    assert decoded.end_time_unix_nano == 10**18 + 5
    assert decoded.status.code == Status.STATUS_CODE_ERROR
    assert decoded.status.message == "killed by SIGINT"
    assert attrs(decoded.attributes)["process.exit_code"] == 130
    assert attrs(decoded.attributes)["process.command"] == "claude"
    resource = attrs(request.resource_spans[0].resource.attributes)
    assert resource["service.name"] == "cc-launch" and resource["task.id"] == "T-1"
