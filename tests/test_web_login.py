"""Who may reach the web UI: the exposure rule (the fast set: no ClickHouse, no network)."""

from __future__ import annotations

import pytest

from receiver.config import ConfigError, load_settings
from receiver.ingest.auth import parse_entry
from receiver.web.login import check_ui_exposure, safe_next

pytestmark = pytest.mark.unit
TOKEN = parse_entry("a-token-of-enough-length", "test")


def settings(**values: object):
    return load_settings(None, {k: v for k, v in values.items()}, environ={})


def test_loopback_ui_needs_no_login() -> None:
    assert check_ui_exposure(settings(ui_listen="127.0.0.1:4319"), []) == []
    assert check_ui_exposure(settings(ui_listen="[::1]:4319"), []) == []
    assert check_ui_exposure(settings(ui_listen=""), []) == []


def test_a_ui_off_loopback_without_tokens_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match=r"ui_listen=0\.0\.0\.0:4319 is not a loopback address"):
        check_ui_exposure(settings(ui_listen="0.0.0.0:4319"), [])


def test_tokens_or_the_explicit_flag_allow_it_with_a_warning() -> None:
    warned = check_ui_exposure(settings(ui_listen="0.0.0.0:4319"), [TOKEN])
    assert warned and "clear text" in warned[0]
    allowed = settings(ui_listen="0.0.0.0:4319", insecure_allow_unauthenticated=True)
    assert "without authentication" in check_ui_exposure(allowed, [])[0]


def test_login_redirects_stay_on_this_server() -> None:
    assert safe_next("/session/x?y=1") == "/session/x?y=1"
    for outside in ("//evil.example/", "https://evil.example/", "/\\evil.example", "live"):
        assert safe_next(outside) == "/"
