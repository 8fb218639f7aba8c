"""AnyValue stringification matches the collector exporter (pdata Value.AsString)."""

import math

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from receiver.ingest.anyvalue import any_value_to_str, attributes_to_map, format_double

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (2.0, "2"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (-3.25, "-3.25"),
        (1e-5, "0.00001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e20, "100000000000000000000"),
        (1.2345678901234567e20, "123456789012345670000"),
        (1e21, "1e+21"),
        (-2.5e300, "-2.5e+300"),
        (123456.789, "123456.789"),
        (math.nan, "NaN"),
        (math.inf, "Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_doubles_are_written_like_go_json_numbers(value: float, text: str) -> None:
    assert format_double(value) == text


def test_scalars() -> None:
    assert any_value_to_str(AnyValue(string_value="héllo <b>")) == "héllo <b>"
    assert any_value_to_str(AnyValue(int_value=-9223372036854775808)) == "-9223372036854775808"
    assert any_value_to_str(AnyValue(bool_value=True)) == "true"
    assert any_value_to_str(AnyValue(bool_value=False)) == "false"
    assert any_value_to_str(AnyValue(bytes_value=b"\x00\xffab")) == "AP9hYg=="
    assert any_value_to_str(AnyValue()) == ""


def test_array_and_kvlist_are_json_with_sorted_keys_and_go_escapes() -> None:
    inner = KeyValueList(
        values=[
            KeyValue(key="z", value=AnyValue(double_value=2.0)),
            KeyValue(key="a", value=AnyValue(string_value="x<y & \u2028")),
            KeyValue(key="m", value=AnyValue(bytes_value=b"hi")),
        ]
    )
    array = ArrayValue(
        values=[
            AnyValue(int_value=1),
            AnyValue(double_value=0.5),
            AnyValue(bool_value=False),
            AnyValue(),
            AnyValue(kvlist_value=inner),
            AnyValue(double_value=math.nan),
        ]
    )
    assert any_value_to_str(AnyValue(kvlist_value=inner)) == (
        '{"a":"x\\u003cy \\u0026 \\u2028","m":"aGk=","z":2}'
    )
    assert any_value_to_str(AnyValue(array_value=array)) == (
        '[1,0.5,false,null,{"a":"x\\u003cy \\u0026 \\u2028","m":"aGk=","z":2},null]'
    )


def test_repeated_attribute_key_keeps_the_last_value() -> None:
    attrs = [
        KeyValue(key="k", value=AnyValue(string_value="first")),
        KeyValue(key="k", value=AnyValue(int_value=2)),
    ]
    assert attributes_to_map(attrs) == {"k": "2"}


def test_attribute_maps_are_sorted_by_key() -> None:
    attrs = [KeyValue(key=k, value=AnyValue(string_value=k)) for k in ("b", "c", "a")]
    assert list(attributes_to_map(attrs)) == ["a", "b", "c"]
