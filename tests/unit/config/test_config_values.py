"""Table-driven tests for the scalar value parsers (mosn_py/config/values.py)."""

from __future__ import annotations

import pytest

from mosn_py.config.model import Address
from mosn_py.config.values import describe, parse_address, parse_duration, parse_size

# ------------------------------------------------------------------------------- durations

DURATIONS_OK = [
    ("250ms", 0.25),
    ("3s", 3.0),
    ("1.5s", 1.5),
    ("2m", 120.0),
    ("1h", 3600.0),
    ("100us", 0.0001),
    ("100µs", 0.0001),
    ("500ns", 0.0000005),
    ("1m30s", 90.0),
    ("1h2m3s", 3723.0),
    (".5s", 0.5),
    ("0s", 0.0),
    (" 3s ", 3.0),
    (3, 3.0),
    (0, 0.0),
    (1.5, 1.5),
]

DURATIONS_BAD = [
    ("-1s", "negative duration '-1s'"),
    (-1, "negative duration -1"),
    (-0.5, "negative duration -0.5"),
    ("abc", "'abc' is not a duration (use e.g. 250ms, 3s, 1.5s, 2m, 1h)"),
    ("3", "duration '3' has no unit (use e.g. 250ms, 3s, 1.5s, 2m, 1h)"),
    ("1d", "'1d' is not a duration (use e.g. 250ms, 3s, 1.5s, 2m, 1h)"),
    ("3 s", "'3 s' is not a duration (use e.g. 250ms, 3s, 1.5s, 2m, 1h)"),
    ("", "'' is not a duration (use e.g. 250ms, 3s, 1.5s, 2m, 1h)"),
    ("s", "'s' is not a duration (use e.g. 250ms, 3s, 1.5s, 2m, 1h)"),
    (True, "expected a duration such as 3s or 250ms, got true"),
    (None, "expected a duration such as 3s or 250ms, got null"),
    ([1], "expected a duration such as 3s or 250ms, got a list"),
    (float("nan"), "duration nan is not a number"),
    (float("inf"), "duration inf is too large (at most 100 years)"),
    ("999999999h", "duration '999999999h' is too large (at most 100 years)"),
    pytest.param(10**400, "duration 1" + "0" * 25 + "... is too large", id="huge-int"),
    pytest.param("1" * 100 + "s", "'" + "1" * 55 + "...' is not a duration (too long)", id="long"),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS_OK)
def test_parse_duration_valid(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "message"), DURATIONS_BAD)
def test_parse_duration_invalid(value: object, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(value)
    assert str(exc.value) == message


# ----------------------------------------------------------------------------------- sizes

SIZES_OK = [
    (0, 0),
    (1024, 1024),
    (2048.0, 2048),
    ("1024", 1024),
    ("512B", 512),
    ("64KiB", 64 << 10),
    ("16MiB", 16 << 20),
    ("1GiB", 1 << 30),
    ("1TiB", 1 << 40),
    ("10KB", 10_000),
    ("10MB", 10_000_000),
    ("2GB", 2_000_000_000),
    ("1.5KiB", 1536),
    ("16mib", 16 << 20),
    ("16 MiB", 16 << 20),
]

SIZES_BAD = [
    (-1, "negative size -1"),
    ("-1KiB", "negative size '-1KiB'"),
    ("1.5B", "size '1.5B' is not a whole number of bytes"),
    (1.5, "size 1.5 is not a whole number of bytes"),
    ("12XB", "'12XB' has an unknown size unit 'XB' (use e.g. 512B, 64KiB, 16MiB, 1GiB, 10MB)"),
    ("1K", "'1K' has an unknown size unit 'K' (use e.g. 512B, 64KiB, 16MiB, 1GiB, 10MB)"),
    ("MiB", "'MiB' is not a size (use e.g. 512B, 64KiB, 16MiB, 1GiB, 10MB)"),
    ("", "'' is not a size (use e.g. 512B, 64KiB, 16MiB, 1GiB, 10MB)"),
    (True, "expected a size such as 16MiB or 1024, got true"),
    (None, "expected a size such as 16MiB or 1024, got null"),
    ({"a": 1}, "expected a size such as 16MiB or 1024, got a mapping"),
]


@pytest.mark.parametrize(("value", "size"), SIZES_OK)
def test_parse_size_valid(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(("value", "message"), SIZES_BAD)
def test_parse_size_invalid(value: object, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_size(value)
    assert str(exc.value) == message


# ------------------------------------------------------------------------------- addresses

ADDRESSES_OK = [
    ("127.0.0.1:8080", Address("127.0.0.1", 8080)),
    ("0.0.0.0:0", Address("0.0.0.0", 0)),
    ("10.1.2.3:65535", Address("10.1.2.3", 65535)),
    ("[::1]:443", Address("::1", 443)),
    ("[0:0:0:0:0:0:0:1]:443", Address("::1", 443)),  # canonical form
    ("[::]:80", Address("::", 80)),
    ("[fe80::1%eth0]:80", Address("fe80::1%eth0", 80)),
    ("localhost:6379", Address("localhost", 6379)),
    ("redis.default.svc.cluster.local:6379", Address("redis.default.svc.cluster.local", 6379)),
    ("my_host-1.example.com.:1", Address("my_host-1.example.com.", 1)),
]

ADDRESSES_BAD = [
    ("abc", "'abc' is not host:port"),
    ("", "'' is not host:port"),
    ("127.0.0.1", "'127.0.0.1' is not host:port"),
    ("127.0.0.1:", "'127.0.0.1:' has no port (write host:port)"),
    (":80", "':80' has no host (use 0.0.0.0 for every interface)"),
    ("127.0.0.1:65536", "'127.0.0.1:65536': port 65536 is out of range 0..65535"),
    ("127.0.0.1:-1", "'127.0.0.1:-1': port '-1' is not a number"),
    ("127.0.0.1:http", "'127.0.0.1:http': port 'http' is not a number"),
    ("::1:80", "'::1:80': an IPv6 address needs brackets, e.g. [::1]:8080"),
    ("[::1]", "'[::1]' is not [ipv6]:port"),
    ("[::1]80", "'[::1]80' is not [ipv6]:port"),
    ("[zz::1]:80", "'[zz::1]:80': 'zz::1' is not an IPv6 address"),
    ("[127.0.0.1]:80", "'[127.0.0.1]:80': '127.0.0.1' is not an IPv6 address"),
    ("256.0.0.1:80", "'256.0.0.1:80': '256.0.0.1' is not an IPv4 address"),
    ("1.2.3:80", "'1.2.3:80': '1.2.3' is not an IPv4 address"),
    ("exa mple.com:80", "'exa mple.com:80': 'exa mple.com' is not a valid host name"),
    ("-bad.example:80", "'-bad.example:80': '-bad.example' is not a valid host name"),
    ("a..b:80", "'a..b:80': 'a..b' is not a valid host name"),
    ("héllo:80", "'héllo:80': 'héllo' is not a valid host name"),
    ("http://x:80", "'http://x:80' is not host:port (no scheme or path)"),
    ("x:80/path", "'x:80/path' is not host:port (no scheme or path)"),
    (8080, "expected an address such as 127.0.0.1:8080, got 8080"),
    (None, "expected an address such as 127.0.0.1:8080, got null"),
]


@pytest.mark.parametrize(("text", "address"), ADDRESSES_OK)
def test_parse_address_valid(text: str, address: Address) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize(("value", "message"), ADDRESSES_BAD)
def test_parse_address_invalid(value: object, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_address(value)
    assert str(exc.value) == message


def test_address_str_round_trips() -> None:
    for text, address in ADDRESSES_OK:
        assert parse_address(str(address)) == address, text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        ("yes", "'yes'"),
        (5, "5"),
        (1.5, "1.5"),
        ({}, "a mapping"),
        ([], "a list"),
        ("x" * 100, "'" + "x" * 55 + "...'"),
    ],
)
def test_describe(value: object, text: str) -> None:
    assert describe(value) == text
