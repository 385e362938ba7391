"""``wire.py``: settings assembly, header conversion both ways, outbound validation."""

from __future__ import annotations

import pytest
from h2.exceptions import ProtocolError
from hpack import NeverIndexedHeaderTuple

from mosn_py.codecs.base import HeaderList
from mosn_py.codecs.http2 import wire

from .peer import SETTING


def test_local_settings_defaults_and_overrides() -> None:
    values = wire.local_settings(8192, None)
    assert values[SETTING.MAX_HEADER_LIST_SIZE] == 8192
    assert values[SETTING.MAX_CONCURRENT_STREAMS] == 100
    assert values[SETTING.ENABLE_PUSH] == 0
    values = wire.local_settings(8192, {3: 5, SETTING.MAX_HEADER_LIST_SIZE: 100, 0xF0: 1})
    assert values[SETTING.MAX_CONCURRENT_STREAMS] == 5
    assert values[SETTING.MAX_HEADER_LIST_SIZE] == 100
    assert values[0xF0] == 1


def test_header_list_size_follows_rfc_9113() -> None:
    assert wire.header_list_size([(b":status", b"200"), (b"a", b"")]) == (7 + 3 + 32 + 1 + 32, 2)


def test_to_header_list_is_latin1_and_ordered() -> None:
    headers = wire.to_header_list([(b":status", b"200"), (b"x", b"\xe9"), (b"x", b"2")])
    assert headers.items_all() == ((":status", "200"), ("x", "\xe9"), ("x", "2"))


def test_to_wire_orders_pseudo_headers_and_drops_connection_fields() -> None:
    pairs = wire.to_wire(
        HeaderList(
            [
                ("X-A", "1"),
                (":status", "200"),
                ("Connection", "close"),
                ("te", "trailers"),
                ("TE", "gzip"),
                ("upgrade", "h2c"),
            ]
        )
    )
    assert pairs == [(b":status", b"200"), (b"x-a", b"1"), (b"te", b"trailers")]
    assert wire.to_wire({"a": "b"}) == [(b"a", b"b")]
    with pytest.raises(UnicodeEncodeError):
        wire.to_wire({"a": "\u20ac"})


def test_prepare_marks_credentials_never_indexed() -> None:
    out = wire.prepare(
        [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":path", b"/"),
            (b":authority", b"a"),
            (b"authorization", b"secret"),
        ],
        wire.REQUEST_HEAD,
    )
    assert isinstance(out[-1], NeverIndexedHeaderTuple)  # RFC 7541 §7.1.3


@pytest.mark.parametrize(
    "pairs",
    [
        [(b":status", b"200"), (b"a b", b"1")],
        [(b":status", b"200"), (b"a", b"1\r\n")],
        [(b":status", b"200"), (b":", b"1")],
        [(b":status", b"200"), (b"", b"1")],
        [(b":status", b"200"), (b"a:b", b"1")],
    ],
)
def test_prepare_rejects_bad_characters(pairs: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(ValueError):
        wire.prepare(pairs, wire.RESPONSE_HEAD)


def test_prepare_rejects_bad_pseudo_headers() -> None:
    with pytest.raises(ProtocolError):
        wire.prepare([(b"x", b"1"), (b":status", b"200")], wire.RESPONSE_HEAD)  # order
    with pytest.raises(ProtocolError):
        wire.prepare([(b":method", b"GET")], wire.REQUEST_HEAD)  # missing :path etc.


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({":status": "204"}, 204),
        ({":status": "2000"}, None),
        ({":status": "abc"}, None),
        ({}, None),
        ({":status": "٢٠٠"}, None),
    ],
)
def test_status_of(headers: dict[str, str], status: int | None) -> None:
    assert wire.status_of(headers) == status
