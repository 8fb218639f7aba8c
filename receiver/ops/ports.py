"""Check that an address is free to listen on before anything starts.

A busy port then stops start-up at once, before ClickHouse starts, with one message that names
the setting to change (its flag, variable and TOML key), instead of grpc core's own log line
(``add_port.cc ... Address already in use``) or a server's start-up log.
"""

from __future__ import annotations

import socket

from receiver.config import ConfigError, how_to_set, parse_host_port


def check_free(host: str, port: int, setting: str) -> None:
    """Raise ConfigError naming ``setting`` when ``host:port`` cannot be bound now.

    Binds with SO_REUSEADDR, as the servers do, and closes at once; port 0 (OS-assigned) is
    always free. An address that does not resolve is left to the server to report.
    """
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                raise ConfigError(
                    f"{setting}: cannot listen on {shown}: {(exc.strerror or str(exc)).lower()}; "
                    f"stop what uses it or choose another with {how_to_set(setting)}"
                ) from None


def check_listen_free(listen: str, setting: str) -> None:
    """``check_free`` for a ``HOST:PORT`` setting such as ``grpc_listen``."""
    host, port = parse_host_port(listen, setting)
    check_free(host, port, setting)
