"""TLS for the OTLP front ends, from PEM files named in the settings.

``tls.cert_file`` + ``tls.key_file`` turn TLS on for both gRPC and HTTP; ``tls.client_ca_file``
additionally requires every client to present a certificate signed by that CA (mutual TLS).
The files are read once, at start; a missing or unreadable file stops start-up with a message
naming the setting. TLS 1.2 is the minimum.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from receiver.config import ConfigError, Settings


def _read(setting: str, path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None


def enabled(settings: Settings) -> bool:
    return bool(settings.tls_cert_file)


def grpc_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """Server credentials for ``add_secure_port``, or None without TLS."""
    if not enabled(settings):
        return None
    cert = _read("tls_cert_file", settings.tls_cert_file)
    key = _read("tls_key_file", settings.tls_key_file)
    ca = (
        _read("tls_client_ca_file", settings.tls_client_ca_file)
        if settings.tls_client_ca_file
        else None
    )
    server_context(settings)  # the same files must also load for HTTP: fail early and clearly
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """An SSL context for the HTTP server, or None without TLS."""
    if not enabled(settings):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"tls_cert_file / tls_key_file: cannot load {settings.tls_cert_file} with "
            f"{settings.tls_key_file}: {exc}"
        ) from None
    if settings.tls_client_ca_file:
        try:
            context.load_verify_locations(cafile=settings.tls_client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"tls_client_ca_file: cannot load {settings.tls_client_ca_file}: {exc}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context
