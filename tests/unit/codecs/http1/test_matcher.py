"""Protocol sniffing: an HTTP/1.x request starts with a known method and a space."""

from __future__ import annotations

import pytest

from mosn_py.codecs.base import MatchResult
from mosn_py.codecs.http1 import Http1Codec, match

MATCH, NO_MATCH, NEED_MORE = MatchResult.MATCH, MatchResult.NO_MATCH, MatchResult.NEED_MORE


@pytest.mark.parametrize(
    ("prefix", "result"),
    [
        (b"GET / HTTP/1.1\r\n", MATCH),
        (b"GET ", MATCH),
        (b"POST /x", MATCH),
        (b"CONNECT example.com:443 HTTP/1.1", MATCH),
        (b"OPTIONS * HTTP/1.1", MATCH),
        (b"PROPPATCH /d HTTP/1.1", MATCH),  # the longest method: 9 letters
        (b"", NEED_MORE),
        (b"G", NEED_MORE),
        (b"GET", NEED_MORE),  # "GET" could still be "GETX" -- no: but it could be "GET "
        (b"PROP", NEED_MORE),
        (b"PROPFIN", NEED_MORE),
        (b"\x16\x03\x01\x02\x00", NO_MATCH),  # TLS ClientHello
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", NO_MATCH),  # the HTTP/2 preface
        (b"PRI", NO_MATCH),
        (b"P", NEED_MORE),  # POST, PUT, PATCH ... (and PRI, which fails one octet later)
        (b"\x01\x01\x00\x01", NO_MATCH),  # Bolt v1
        (b"\x02\x01\x01\x00", NO_MATCH),  # Bolt v2
        (b"*1\r\n$4\r\nPING\r\n", NO_MATCH),  # Redis RESP
        (b"get / HTTP/1.1", NO_MATCH),  # methods are case-sensitive (RFC 9110 §9.1)
        (b"GETX / HTTP/1.1", NO_MATCH),
        (b"GET/ HTTP/1.1", NO_MATCH),
        (b" GET /", NO_MATCH),
        (b"\r\nGET /", NO_MATCH),
        (b"BREW /pot HTTP/1.1", NO_MATCH),
        (b"PROPPATCHX", NO_MATCH),
    ],
)
def test_match(prefix: bytes, result: MatchResult) -> None:
    assert match(prefix) is result
    assert Http1Codec.match(bytearray(prefix)) is result
    assert Http1Codec.match(memoryview(prefix)) is result


def test_every_prefix_of_a_request_is_need_more_then_match() -> None:
    wire = b"DELETE /r HTTP/1.1\r\n"
    results = [match(wire[:i]) for i in range(len(wire) + 1)]
    assert results[:7] == [NEED_MORE] * 7 and set(results[7:]) == {MATCH}
