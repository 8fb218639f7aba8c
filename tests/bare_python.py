"""A ``python3`` without the project's dependencies: what ``#!/usr/bin/env python3`` finds on a
user's machine. The agent-side tools (cc-launch, the codex shim) must run under it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def make_bare_python(directory: Path) -> Path:
    """A fresh venv without pip or site packages in ``directory``; its ``python3``."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(directory)], check=True, timeout=120)
    python = directory / "bin" / "python3"
    probe = subprocess.run(
        [str(python), "-c", "import opentelemetry"], capture_output=True, timeout=30
    )
    assert probe.returncode != 0, "the bare interpreter must not see opentelemetry"
    return python
