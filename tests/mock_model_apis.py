"""Local mock model APIs for running the real Claude Code and Codex CLIs in tests.

- ``MockAnthropic``: the Anthropic Messages API as Claude Code uses it
  (``POST /v1/messages?beta=true``, streamed as SSE when ``stream`` is true). A request whose
  last message carries no ``tool_result`` is answered with one ``tool_use`` of Bash running
  ``bash_command``; a request answering a tool call gets a final text. ``count_tokens`` is
  answered too; anything else gets an empty JSON object.
- ``MockOpenAI``: the OpenAI Responses API as Codex uses it (``POST /v1/responses``, SSE:
  ``response.created``, ``response.output_item.added``, ``response.output_text.delta``,
  ``response.output_item.done``, ``response.completed`` with usage); also one non-streamed
  ``POST /v1/chat/completions`` answer (for agents on that API). ``GET /v1/models`` lists
  nothing; anything else (e.g. codex's ``/v1/analytics/...``) gets an empty JSON object.
- ``EgressBlocker``: an HTTP(S) proxy that refuses everything (403) and records where the
  clients tried to go, so a test never reaches the Internet and cannot hang on it.

Each answer's token usage is recorded in ``usage`` so a test can compare the totals the
receiver stored with what the "model" reported. All serve on 127.0.0.1, port 0, in a thread.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Seen:
    """One request the mock answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    answer: str = ""  # what kind of answer it got


@dataclass
class Usage:
    input_tokens: int
    output_tokens: int


def sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients drop connections (e.g. after a refused CONNECT): not worth a traceback."""


class _MockServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 whose handler calls ``self.handle``."""

    name = "mock"

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.usage: list[Usage] = []
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                with mock._lock:
                    mock.requests.append(seen)
                status, content_type, payload = mock.handle(seen)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("request-id", f"req_mock_{secrets.token_hex(6)}")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_CONNECT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{self.name}-api", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record_usage(self, input_tokens: int, output_tokens: int) -> None:
        with self._lock:
            self.usage.append(Usage(input_tokens, output_tokens))

    @property
    def input_tokens(self) -> int:
        return sum(u.input_tokens for u in self.usage)

    @property
    def output_tokens(self) -> int:
        return sum(u.output_tokens for u in self.usage)

    def handle(self, seen: Seen) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def describe(self) -> str:
        """The requests seen, one line each (for failure messages)."""
        return "\n".join(f"  {s.method} {s.path} -> {s.answer}" for s in self.requests)

    def __enter__(self) -> _MockServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _json(seen: Seen, answer: str, payload: Any, status: int = 200) -> tuple[int, str, bytes]:
    seen.answer = answer
    return status, "application/json", json.dumps(payload).encode()


class MockAnthropic(_MockServer):
    """The Messages API: a Bash ``tool_use`` first, then a final text."""

    name = "anthropic"
    # Distinct figures per answer, so a sum that counts one answer twice (or misses one)
    # cannot match by accident.
    TOOL_USE_USAGE = Usage(123, 17)
    FINAL_USAGE = Usage(311, 9)
    FINAL_TEXT = "Codex said hi."

    def __init__(self, bash_command: str) -> None:
        super().__init__()
        self.bash_command = bash_command

    @staticmethod
    def _answers_tool(body: dict[str, Any]) -> bool:
        messages = body.get("messages") or []
        if not messages:
            return False
        content = messages[-1].get("content")
        return isinstance(content, list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in content
        )

    def handle(self, seen: Seen) -> tuple[int, str, bytes]:
        path = urlsplit(seen.path).path
        body = seen.body if isinstance(seen.body, dict) else {}
        if seen.method == "POST" and path == "/v1/messages/count_tokens":
            return _json(seen, "count_tokens", {"input_tokens": 100})
        if seen.method != "POST" or path != "/v1/messages":
            return _json(seen, "empty", {})
        model = body.get("model") or "claude-mock"
        message_id = f"msg_mock_{secrets.token_hex(8)}"
        if self._answers_tool(body):
            usage, stop = self.FINAL_USAGE, "end_turn"
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": self.FINAL_TEXT}]
            content = [{"type": "text", "text": self.FINAL_TEXT}]
            seen.answer = "final text"
        else:
            usage, stop = self.TOOL_USE_USAGE, "tool_use"
            tool_id = f"toolu_mock_{secrets.token_hex(8)}"
            tool_input = {"command": self.bash_command, "description": "Run codex"}
            block = {"type": "tool_use", "id": tool_id, "name": "Bash", "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(tool_input)}]
            content = [{**block, "input": tool_input}]
            seen.answer = "tool_use Bash"
        self.record_usage(usage.input_tokens, usage.output_tokens)
        full_usage = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        if not body.get("stream"):
            message = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": full_usage,
            }
            return _json(seen, seen.answer, message)
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**full_usage, "output_tokens": 1},
                    },
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            ),
            *(
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
                for d in deltas
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": usage.output_tokens},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return 200, "text/event-stream", sse(events)


class MockOpenAI(_MockServer):
    """The Responses API: one assistant message, with usage in ``response.completed``."""

    name = "openai"
    USAGE = Usage(57, 5)
    TEXT = "hi"

    def handle(self, seen: Seen) -> tuple[int, str, bytes]:
        path = urlsplit(seen.path).path
        if seen.method == "GET" and path == "/v1/models":
            return _json(seen, "models", {"object": "list", "data": [], "models": []})
        body = seen.body if isinstance(seen.body, dict) else {}
        if seen.method == "POST" and path == "/v1/chat/completions":
            return self._chat_completion(seen, body)
        if seen.method != "POST" or path != "/v1/responses":
            return _json(seen, "empty", {})
        seen.answer = "response"
        usage = self.USAGE
        self.record_usage(usage.input_tokens, usage.output_tokens)
        response_id = f"resp_mock_{secrets.token_hex(8)}"
        item_id = f"msg_mock_{secrets.token_hex(8)}"
        response = {
            "id": response_id,
            "object": "response",
            "model": body.get("model", "mock"),
            "status": "in_progress",
            "output": [],
        }
        done_item = {
            "type": "message",
            "id": item_id,
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": self.TEXT, "annotations": []}],
        }
        completed = {
            **response,
            "status": "completed",
            "output": [done_item],
            "usage": {
                "input_tokens": usage.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": usage.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage.input_tokens + usage.output_tokens,
            },
        }
        if not body.get("stream"):
            return _json(seen, "response", completed)
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"type": "response.created", "response": response}),
            (
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": {**done_item, "status": "in_progress", "content": []},
                },
            ),
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": self.TEXT,
                },
            ),
            (
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": 0, "item": done_item},
            ),
            ("response.completed", {"type": "response.completed", "response": completed}),
        ]
        return 200, "text/event-stream", sse(events)

    def _chat_completion(self, seen: Seen, body: dict[str, Any]) -> tuple[int, str, bytes]:
        """One non-streamed Chat Completions answer, with the same usage as a response."""
        usage = self.USAGE
        self.record_usage(usage.input_tokens, usage.output_tokens)
        completion = {
            "id": f"chatcmpl-mock-{secrets.token_hex(8)}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "mock"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.TEXT},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
            },
        }
        return _json(seen, "chat completion", completion)


class EgressBlocker(_MockServer):
    """A proxy for ``HTTPS_PROXY``/``HTTP_PROXY`` that refuses every request (403)."""

    name = "egress"

    def handle(self, seen: Seen) -> tuple[int, str, bytes]:
        seen.answer = "refused"
        return 403, "text/plain", b"no egress in tests\n"

    def destinations(self) -> list[str]:
        """``host:port`` of CONNECT tunnels, else the absolute URL, of each request."""
        return [seen.path for seen in self.requests]
