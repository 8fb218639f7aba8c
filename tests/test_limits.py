"""The limits stage in process: it reads attribute lists as serialized bytes (the wire twin
shared with decode) and hands its parsed request to decode, so these check what that must not
change: hostile encodings of the tenant claim, protobuf's verdict on malformed requests, and
rows identical to decoding the bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from receiver.ingest.decode import DECODERS, WIRE_REQUESTS
from receiver.ingest.limits import Limits

from .capture_files import FIXTURES, signal_of
from .decoder_paths import decode, decoder_path  # noqa: F401 (autouse: each test on both paths)
from .test_security import trace_request

pytestmark = pytest.mark.unit


def _raw_kv(key: str, value: str) -> bytes:
    return KeyValue(key=key, value=AnyValue(string_value=value)).SerializeToString()


def _with_raw_resource_attributes(raws: list[bytes], spans: int = 1) -> bytes:
    """A trace request whose resource carries exactly these serialized KeyValues."""
    request = WIRE_REQUESTS["traces"].FromString(
        trace_request("limits-unit", spans=spans).SerializeToString()
    )
    request.resource_spans[0].resource.attributes.extend(raws)
    return request.SerializeToString()


def _resource_attributes(body: bytes, limits: Limits, tenant: str = "") -> dict[str, str]:
    decoded = decode("traces", body, tenant, limits)
    return decoded.rows["otel_traces"][0][8]  # ResourceAttributes


def test_tenant_claim_is_replaced_however_it_is_encoded() -> None:
    value_first = b"\x12\x06\x0a\x04evil" + b"\x0a\x0btenant.name"  # fields out of order
    key_twice = b"\x0a\x01x" + b"\x12\x06\x0a\x04evil" + b"\x0a\x0btenant.name"  # last key wins
    body = _with_raw_resource_attributes([value_first, _raw_kv("tenant.name", "evil"), key_twice])
    attributes = _resource_attributes(body, Limits(), tenant="acme")
    assert attributes["tenant.name"] == "acme"
    assert "x" not in attributes  # the twice-keyed KeyValue's key is tenant.name: replaced


def test_a_malformed_attribute_fails_the_request_even_when_limits_reject_its_item() -> None:
    malformed = b"\x0a\x03ab"  # a key of 3 bytes with 2 present
    many = [_raw_kv(f"k{i}", "v") for i in range(10)]
    body = _with_raw_resource_attributes([*many, malformed])
    # max_attributes would reject the resource (and the malformed KeyValue with it), but
    # protobuf refuses the request, so the client hears that, as from the plain schema.
    with pytest.raises(DecodeError):
        Limits(max_attributes=5).screen("traces", body)
    torn = trace_request("limits-unit").SerializeToString()[:-1]
    with pytest.raises(DecodeError):
        Limits(max_items=1).screen("traces", torn)


def test_an_oversized_malformed_attribute_is_protobufs_error() -> None:
    long_but_torn = _raw_kv("k", "v" * 200)[:-1]
    body = _with_raw_resource_attributes([long_but_torn])
    with pytest.raises(DecodeError, match="Error parsing message"):
        Limits(max_value_bytes=100).screen("traces", body)


def test_truncation_rewrites_the_serialized_attribute() -> None:
    body = _with_raw_resource_attributes([_raw_kv("long", "é" * 200), _raw_kv("short", "s")])
    attributes = _resource_attributes(body, Limits(max_value_bytes=100))
    assert len(attributes["long"].encode()) <= 100
    assert attributes["long"].endswith("bytes]") and attributes["short"] == "s"


@pytest.mark.parametrize(
    "path", sorted(FIXTURES.glob("*/*.pb")), ids=lambda p: p.parent.name + "/" + p.name
)
def test_screened_request_decodes_to_the_same_rows_as_the_bytes(path: Path) -> None:
    signal = signal_of(path)
    body = path.read_bytes()
    screened = Limits(
        max_attributes=256, max_key_bytes=1024, max_value_bytes=2**20, max_depth=16
    ).screen(signal, body)
    assert screened.body is body  # nothing over a limit: passed on unchanged
    assert DECODERS[signal](body, screened.request).rows == DECODERS[signal](body).rows
