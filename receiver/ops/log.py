"""Structured logging: one JSON line per meaningful event (a flush, an error, a start), never
per span or per request, so logs stay readable under load."""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


# Libraries whose own log records repeat what the receiver already says once, with context:
# clickhouse-connect logs "Unexpected Http Driver Exception" on every failed request, and its
# transport urllib3 each retry, which the delivery reports (retries, spool) and the commands
# explain in one line.
_QUIET_LIBRARIES = ("clickhouse_connect", "urllib3")


def configure_logging(level: str = "info") -> None:
    """Send JSON events to stderr, filtered at ``level``; the standard library's log records
    (from libraries) become the same JSON lines, so stderr never mixes in plain text."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.addFilter(_not_quiet)  # a filter: clickhouse-connect sets urllib3's level itself
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(_LEVELS[level], logging.WARNING))


def _not_quiet(record: logging.LogRecord) -> bool:
    quiet = record.name.split(".", 1)[0] in _QUIET_LIBRARIES
    return not quiet or record.levelno >= logging.CRITICAL
