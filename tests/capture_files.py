"""Where the real Claude Code / Codex captures live, and how to read their file names.

The captures are part of the repository (``tests/fixtures/real``, with their README), so a
fresh clone passes its tests with nothing beside it.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "real"


def signal_of(path: Path) -> str:
    """``003_grpc_codex_logs.pb`` -> ``logs``."""
    return path.stem.rsplit("_", 1)[1]
