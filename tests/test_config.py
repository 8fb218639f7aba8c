"""Settings precedence (flag > env > file > default) and validation messages."""

import argparse
from pathlib import Path

import pytest

from receiver.cli import build_parser
from receiver.config import (
    COMMAND_LINE_SETTINGS,
    FIELDS,
    ConfigError,
    Settings,
    how_to_set,
    load_settings,
)

pytestmark = pytest.mark.unit


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "receiver.toml"
    path.write_text(text)
    return str(path)


def test_defaults_listen_on_loopback() -> None:
    settings = load_settings(str(Path("config/receiver.toml")), environ={})
    assert settings.grpc_listen == "127.0.0.1:4317"
    assert settings.embedded_http_port == 8123 and settings.embedded_tcp_port == 9000
    assert settings.clickhouse_database == "otel" and settings.clickhouse_ttl_days == 30
    assert settings.grpc_max_receive_bytes == 16 * 1024 * 1024
    assert settings.uses_embedded_clickhouse


def test_flag_beats_env_beats_file(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[grpc]\nlisten = "127.0.0.1:1111"\n[clickhouse]\nurl = "http://file:8123"\n'
        'database = "fromfile"\n',
    )
    env = {
        "OTEL_RECEIVER_GRPC_LISTEN": "127.0.0.1:2222",
        "OTEL_RECEIVER_CLICKHOUSE_URL": "http://env:8123",
    }
    settings = load_settings(config, {"grpc_listen": "127.0.0.1:3333"}, env)
    assert settings.grpc_listen == "127.0.0.1:3333"
    assert settings.clickhouse_url == "http://env:8123"
    assert settings.clickhouse_database == "fromfile"
    assert settings.batch_max_rows == Settings().batch_max_rows


def test_env_values_are_typed() -> None:
    settings = load_settings(None, environ={"OTEL_RECEIVER_BATCH_MAX_DELAY": "0.25"})
    assert settings.batch_max_delay == 0.25


@pytest.mark.parametrize(
    ("text", "env", "flags", "named"),
    [
        ('[grpc]\nlisten = "nonsense"\n', {}, {}, "grpc_listen"),
        ("[grpc]\nmax_receive_bytes = 10\n", {}, {}, "grpc_max_receive_bytes"),
        ('[clickhouse]\nurl = "ftp://x"\n', {}, {}, "clickhouse_url"),
        ('[clickhouse]\ndatabase = "a;b"\n', {}, {}, "clickhouse_database"),
        ("[clickhouse]\nttl_days = -1\n", {}, {}, "clickhouse_ttl_days"),
        ('[embedded]\nlisten_host = "0.0.0.0"\n', {}, {}, "embedded_listen_host"),
        ("[batch]\nmax_rows = 0\n", {}, {}, "batch_max_rows"),
        ('[batch]\nmax_rows = "many"\n', {}, {}, "batch_max_rows"),
        ("[batch]\nmaxrows = 5\n", {}, {}, "batch.maxrows"),
        ("", {"OTEL_RECEIVER_EMBEDDED_HTTP_PORT": "http"}, {}, "OTEL_RECEIVER_EMBEDDED_HTTP_PORT"),
        ("", {}, {"log_level": "loud"}, "log_level"),
    ],
)
def test_invalid_settings_name_the_setting(
    tmp_path: Path, text: str, env: dict, flags: dict, named: str
) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(write(tmp_path, text), flags, env)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "nope.toml"), environ={})


def test_invalid_toml_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[grpc\n"), environ={})


def test_list_and_table_settings_from_file_and_env(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[redaction]\ndrop = ["prompt", "tool.*"]\n'
        '[redaction.custom_detectors]\ninternal = "ACME-[0-9]{8}"\n',
    )
    settings = load_settings(config, environ={})
    assert settings.redaction_drop == ("prompt", "tool.*")
    assert settings.redaction_custom_detectors == {"internal": "ACME-[0-9]{8}"}
    env = {
        "OTEL_RECEIVER_REDACTION_DROP": "a, b",
        "OTEL_RECEIVER_REDACTION_CUSTOM_DETECTORS": '{"x": "y+"}',
    }
    settings = load_settings(config, environ=env)
    assert settings.redaction_drop == ("a", "b")
    assert settings.redaction_custom_detectors == {"x": "y+"}
    with pytest.raises(ConfigError, match="redaction_drop"):
        load_settings(write(tmp_path, "[redaction]\ndrop = [1]\n"), environ={})


def _setting_flags(parser: argparse.ArgumentParser) -> set[str]:
    """The settings some command of ``parser`` (or of its subcommands) takes as a flag."""
    found: set[str] = set()
    for action in parser._actions:  # argparse keeps no public list of them
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _setting_flags(sub)
        elif action.dest in FIELDS and action.option_strings:
            found.add(action.dest)
    return found


def test_messages_offer_a_flag_only_where_one_exists() -> None:
    assert _setting_flags(build_parser()) == COMMAND_LINE_SETTINGS
    assert how_to_set("grpc_listen").startswith("--grpc-listen, OTEL_RECEIVER_GRPC_LISTEN or ")
    assert how_to_set("limits_max_inflight_bytes") == (
        "OTEL_RECEIVER_LIMITS_MAX_INFLIGHT_BYTES or limits.max_inflight_bytes in the config file"
    )
