"""The SOFARPC header map (bolt.md §4): decode (incl. nulls) and encode."""

from __future__ import annotations

import struct

import pytest

from mosn_py.codecs.bolt import decode_header_map, encode_header_map
from mosn_py.errors import LocalProtocolError

from .vectors import REQUESTS, RESPONSES, Vector, pack_header_map


def block_of(v: Vector) -> tuple[bytes, int, int]:
    f = v.fields
    start = f["fixed_len"] + f["class_len"]
    return v.wire, start, start + f["header_len"]


@pytest.mark.parametrize("v", REQUESTS + RESPONSES, ids=lambda v: v.name)
def test_captured_blocks(v: Vector) -> None:
    wire, start, end = block_of(v)
    headers = decode_header_map(wire, start, end)
    assert list(headers.items()) == v.header_pairs
    assert encode_header_map(dict(v.header_pairs)) == wire[start:end]


def test_empty() -> None:
    assert decode_header_map(b"", 0, 0) == {}
    assert encode_header_map({}) == b""


def test_null_entries_are_dropped_like_java() -> None:
    block = pack_header_map(
        [(b"a", b"1"), (b"nullvalue", None), (None, b"nullkey"), (None, None), (b"b", b"")]
    )
    assert decode_header_map(block, 0, len(block)) == {"a": "1", "b": ""}


def test_only_the_window_is_read() -> None:
    block = pack_header_map([(b"k", b"v")])
    data = b"xx" + block + struct.pack(">i", 1000)
    assert decode_header_map(data, 2, 2 + len(block)) == {"k": "v"}


def test_utf8() -> None:
    headers = {"schlüssel": "wert ✓", "": ""}
    block = encode_header_map(headers)
    assert block == pack_header_map([("schlüssel".encode(), "wert ✓".encode()), (b"", b"")])
    assert decode_header_map(block, 0, len(block)) == headers


def test_repeated_key_keeps_last() -> None:
    block = pack_header_map([(b"k", b"1"), (b"k", b"2")])
    assert decode_header_map(block, 0, len(block)) == {"k": "2"}


@pytest.mark.parametrize(
    "block",
    [
        struct.pack(">i", 4) + b"key",
        struct.pack(">i", 1) + b"k" + struct.pack(">i", 2) + b"v",
        struct.pack(">i", 1) + b"k",
        struct.pack(">i", 1) + b"k" + b"\x00\x00",
        struct.pack(">i", 4) + b"abcd" + b"\x00\x00",
        b"\x00\x00\x00",
        struct.pack(">i", -2) + struct.pack(">i", 0),
        struct.pack(">i", 0) + struct.pack(">i", -3),
        struct.pack(">i", -(2**31)) + struct.pack(">i", 0),
        struct.pack(">i", 2**31 - 1) + struct.pack(">i", 0),
        pack_header_map([(b"k", b"\x80")]),
    ],
)
def test_malformed(block: bytes) -> None:
    with pytest.raises(LocalProtocolError) as exc:
        decode_header_map(block + b"trailing content", 0, len(block))
    assert "header map" in str(exc.value)


def test_encode_rejects() -> None:
    with pytest.raises(LocalProtocolError):
        encode_header_map({"k": 1})  # type: ignore[dict-item]
    with pytest.raises(LocalProtocolError):
        encode_header_map({"k": "v" * 40000})
    assert encode_header_map({"k": None}) == b""  # type: ignore[dict-item]


def test_lazy_headers_agree_with_eager_decode() -> None:
    from mosn_py.codecs.bolt.headers import BoltHeaders, validate_header_block

    pairs = [("service", "a:1.0"), ("k", ""), ("service", "b:1.0"), ("ünï", "cödé")]
    block = b"".join(
        struct.pack(">i", len(k.encode())) + k.encode() + struct.pack(">i", len(v.encode()))
        + v.encode()
        for k, v in pairs
    )
    # a null entry (Java drops it) between two real ones
    block += struct.pack(">i", 1) + b"n" + struct.pack(">i", -1)
    validate_header_block(block, 0, len(block))
    eager = decode_header_map(block, 0, len(block))
    lazy = BoltHeaders(block, 0, len(block))
    assert lazy.get("service") == "b:1.0" == eager["service"]  # the last duplicate wins
    assert lazy.get("ünï") == "cödé" and lazy.get("n") is None and "n" not in lazy
    assert lazy.get("missing", "dflt") == "dflt"
    assert dict(lazy) == eager and lazy == eager and len(lazy) == 3
