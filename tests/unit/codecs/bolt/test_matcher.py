"""Protocol sniffing (``BoltCodec.match`` / ``matcher.match``)."""

from __future__ import annotations

import pytest

from mosn_py.codecs.base import MatchResult
from mosn_py.codecs.bolt import BoltCodec, match

from .vectors import REQUESTS, RESPONSES, Vector

MATCH, NO_MATCH, NEED_MORE = MatchResult.MATCH, MatchResult.NO_MATCH, MatchResult.NEED_MORE


@pytest.mark.parametrize("v", REQUESTS, ids=lambda v: v.name)
def test_every_captured_request_matches(v: Vector) -> None:
    need = 4 if v.fields["proto"] == 1 else 5
    for n in range(need):
        assert BoltCodec.match(v.wire[:n]) is NEED_MORE, n
    for n in (need, need + 1, len(v.wire)):
        assert BoltCodec.match(v.wire[:n]) is MATCH
    assert BoltCodec.match(memoryview(v.wire)) is MATCH
    assert BoltCodec.match(bytearray(v.wire[:need])) is MATCH


@pytest.mark.parametrize("v", RESPONSES, ids=lambda v: v.name)
def test_responses_do_not_match(v: Vector) -> None:
    """A listener sees client bytes: a response first is not a Bolt client."""
    assert match(v.wire) is NO_MATCH


@pytest.mark.parametrize(
    "prefix, expected",
    [
        (b"", NEED_MORE),
        (b"\x01", NEED_MORE),
        (b"\x01\x01", NEED_MORE),
        (b"\x01\x01\x00", NEED_MORE),
        (b"\x01\x01\x00\x01", MATCH),  # RPC request
        (b"\x01\x01\x00\x00", MATCH),  # heartbeat
        (b"\x01\x02\x00\x01", MATCH),  # oneway
        (b"\x01\x02\x00\x00", NO_MATCH),  # oneway heartbeat
        (b"\x01\x01\x00\x02", NO_MATCH),  # RPC response cmdcode in a request
        (b"\x01\x01\x01", NO_MATCH),  # cmdcode high byte
        (b"\x01\x00", NO_MATCH),  # response
        (b"\x01\x03", NO_MATCH),
        (b"\x02", NEED_MORE),
        (b"\x02\x02", NEED_MORE),
        (b"\x02\x02\x01\x00", NEED_MORE),
        (b"\x02\x02\x01\x00\x01", MATCH),
        (b"\x02\x01\x01\x00\x01", MATCH),
        (b"\x02\x03", NO_MATCH),  # ver1 3
        (b"\x02\x02\x00", NO_MATCH),
        (b"GET / HTTP/1.1\r\n", NO_MATCH),
        (b"G", NO_MATCH),
        (b"PRI * HTTP/2.0", NO_MATCH),
        (b"\x16\x03\x01\x02\x00", NO_MATCH),  # TLS ClientHello
        (b"*1\r\n$4\r\nPING\r\n", NO_MATCH),  # RESP
        (b"\x80\x00\x00\x05", NO_MATCH),  # memcached binary
        (b"\x00\x00\x00\x00", NO_MATCH),
    ],
)
def test_match(prefix: bytes, expected: MatchResult) -> None:
    assert match(prefix) is expected
    assert BoltCodec.match(prefix) is expected


def test_match_never_raises() -> None:
    for a in range(256):
        for b in (0, 1, 2, 3, 255):
            for tail in (b"", b"\x00", b"\x00\x01", b"\x00\x01\x01"):
                assert match(bytes([a, b]) + tail) in MatchResult
