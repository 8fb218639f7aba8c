"""Process tuning the daemon applies at start-up."""

from __future__ import annotations

import platform

import pytest

from receiver.daemon import limit_malloc_arenas

pytestmark = pytest.mark.unit


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="only glibc has arenas to cap")
def test_malloc_arenas_are_capped_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limit_malloc_arenas() is True  # glibc accepted the cap
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the user's own setting is left alone
