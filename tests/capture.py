"""Replays of the real Claude Code / Codex captures with fresh identities.

Each replay renames every trace and span id and every agent identifier (session, thread,
launch, run) consistently, and moves timestamps to the present (rows older than the table TTL
would be dropped on insert), so tests can replay the same capture many times side by side.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .capture_files import FIXTURES, signal_of

REQUEST_TYPES = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
ID_FIELDS = {"trace_id", "span_id", "parent_span_id"}
ID_ATTRIBUTES = {
    "session.id",
    "gen_ai.conversation.id",
    "conversation.id",
    "thread.id",
    "cc.launch.id",
    "agent.run.id",
    "agent.parent.session.id",
    "agent.parent.span.id",
}
CAPTURE_SESSION = "b08ba7ad-8bff-4a48-8d31-9ae659a67575"
CAPTURE_THREAD = "01a2019b-153d-7720-b50e-f5249e2b83da"
CAPTURE_LAUNCH = "test123"
CAPTURE_TOOL_EXECUTION_SPAN = "7fd0cf463656e912"
CAPTURE_INBOUND_SPAN = "1526e6d37ddcc3b1"
CAPTURE_END_NS = 1_795_323_271_000_000_000  # just after the captured claude process exited


@dataclass
class Renamer:
    """One consistent renaming: the same old id always becomes the same new id."""

    shift_ns: int
    ids: dict[bytes, bytes] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def id(self, old: bytes) -> bytes:
        if not old or not any(old):
            return old
        return self.ids.setdefault(old, os.urandom(len(old)))

    def name(self, old: str) -> str:
        if old in self.names:
            return self.names[old]
        if len(old) == 16 and all(c in "0123456789abcdef" for c in old):
            new = self.id(bytes.fromhex(old)).hex()
        elif old.isdigit():  # codex worker thread numbers are not identities
            return old
        else:
            new = str(uuid.uuid4()) if "-" in old else uuid.uuid4().hex[:12]
        self.names[old] = new
        return new

    def new_hex(self, old_hex: str) -> str:
        return self.id(bytes.fromhex(old_hex)).hex()


def _rewrite(message: Message, renamer: Renamer) -> None:
    for descriptor, value in message.ListFields():
        name = descriptor.name
        if name in ID_FIELDS:
            setattr(message, name, renamer.id(value))
        elif name.endswith("time_unix_nano") and value:
            setattr(message, name, value + renamer.shift_ns)
        elif name in ("attributes",):
            for kv in value:
                if kv.key in ID_ATTRIBUTES and kv.value.WhichOneof("value") == "string_value":
                    kv.value.string_value = renamer.name(kv.value.string_value)
                _rewrite(kv.value, renamer)
        elif descriptor.message_type is not None:
            for item in [value] if isinstance(value, Message) else value:
                if isinstance(item, Message):
                    _rewrite(item, renamer)


@dataclass
class Replay:
    """A renamed capture: (signal, request) pairs in arrival order, and the renaming."""

    requests: list[tuple[str, Message]]
    renamer: Renamer

    @property
    def session(self) -> str:
        return self.renamer.name(CAPTURE_SESSION)

    @property
    def thread(self) -> str:
        return self.renamer.name(CAPTURE_THREAD)

    @property
    def launch(self) -> str:
        return self.renamer.name(CAPTURE_LAUNCH)

    def span(self, old_hex: str) -> str:
        return self.renamer.new_hex(old_hex)

    def bodies(self) -> Iterator[tuple[str, bytes]]:
        for signal, request in self.requests:
            yield signal, request.SerializeToString()


def replay(folder: str, keep: Callable[[Path], bool] = lambda p: True) -> Replay:
    """The capture in ``folder`` renamed; ``keep`` selects its request files."""
    paths = [p for p in sorted((FIXTURES / folder).glob("*.pb")) if keep(p)]
    requests = [
        (signal_of(p), REQUEST_TYPES[signal_of(p)].FromString(p.read_bytes())) for p in paths
    ]
    renamer = Renamer(shift_ns=time.time_ns() - CAPTURE_END_NS)
    for _, request in requests:
        _rewrite(request, renamer)
    # Make sure the capture's well-known identities are in the renaming even if absent.
    for old in (CAPTURE_SESSION, CAPTURE_THREAD, CAPTURE_LAUNCH):
        renamer.name(old)
    return Replay(requests, renamer)


def is_codex(path: Path) -> bool:
    return "_codex_" in path.name


def is_claude(path: Path) -> bool:
    return "_claude_" in path.name
