"""Why a ClickHouse request failed, in a few words a user can act on.

clickhouse-connect wraps urllib3's errors (``HTTPConnectionPool(host=..., port=...): Max retries
exceeded with url: /?query_id=... (Caused by NewConnectionError(...))``); the commands and the
daemon say instead which URL did not answer and the cause (``connection refused``, ``unknown
host``, ``timed out``, ``authentication failed`` ...), on one line.
"""

from __future__ import annotations

import re

# (pattern in the error text, what to say), the first match wins.
_CAUSES = (
    (re.compile(r"Connection refused"), "connection refused"),
    (
        re.compile(r"Name or service not known|nodename nor servname|name resolution|getaddrinfo"),
        "unknown host",
    ),
    (re.compile(r"timed out|Timeout", re.IGNORECASE), "timed out"),
    (re.compile(r"AUTHENTICATION_FAILED|Code: 516\b"), "authentication failed"),
    (re.compile(r"CERTIFICATE_VERIFY_FAILED"), "its TLS certificate is not trusted"),
    (re.compile(r"SSL|TLS"), "TLS handshake failed"),
    (re.compile(r"Connection reset|RemoteDisconnected|BadStatusLine"), "connection reset"),
    (re.compile(r"No route to host|Network is unreachable"), "network unreachable"),
)


class ClickHouseUnreachable(Exception):
    """ClickHouse did not answer at start; the message names the URL and the cause."""


def cause(exc: BaseException) -> str:
    """The cause of a failed ClickHouse request in a few words (one line)."""
    text = str(exc)
    for pattern, said in _CAUSES:
        if pattern.search(text):
            return said
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]
