"""The environment the cc-launch and codex shim tests run their tools in."""

from __future__ import annotations

import os


def clean_env(**extra: str) -> dict[str, str]:
    """The test runner's environment without anything cc-launch or the shim reads."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "CLAUDE_CODE_", "CC_LAUNCH_", "TRACE", "ANTHROPIC_"))
    }
    env.update(extra)
    return env
