"""Where the real Claude Code / Codex captures live, and how to read their file names."""

from __future__ import annotations

import os
from pathlib import Path

# ../shared beside the checkout (CI clones the repo with shared/ next to it).
FIXTURES = Path(
    os.environ.get("OTEL_RECEIVER_FIXTURES")
    or Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"
)


def signal_of(path: Path) -> str:
    """``003_grpc_codex_logs.pb`` -> ``logs``."""
    return path.stem.rsplit("_", 1)[1]
