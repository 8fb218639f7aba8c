"""The README's "Layout" names every module of the daemon, so a newcomer can find each stage."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]


def test_every_receiver_module_is_in_the_readme_layout() -> None:
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    modules = [
        path.relative_to(REPO).as_posix()
        for path in sorted((REPO / "receiver").rglob("*.py"))
        if not path.name.startswith("__")
    ]
    missing = [m for m in modules if f"`{m}`" not in layout]
    assert not missing, f"README Layout lacks: {missing}"
