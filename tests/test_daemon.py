"""Process tuning the daemon applies at start-up."""

from __future__ import annotations

import platform

import pytest

from receiver.daemon import fix_mmap_threshold, limit_malloc_arenas

pytestmark = pytest.mark.unit


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="only glibc has arenas to cap")
def test_malloc_arenas_are_capped_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limit_malloc_arenas() is True  # glibc accepted the cap
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the user's own setting is left alone


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_the_mmap_threshold_is_fixed_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fix_mmap_threshold() is True  # glibc accepted it (its effect: test_malloc_tuning.py)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert fix_mmap_threshold() is False  # the user's own setting is left alone
