"""ClientHello sniffing against hellos made by OpenSSL itself (Python's ssl over memory
BIOs): SNI and ALPN read out, NEED_MORE at every split, garbage never raises."""

from __future__ import annotations

import ssl

from hypothesis import given, settings
from hypothesis import strategies as st

from mosn_py.codecs.base import MatchResult
from mosn_py.codecs.tls_hello import ClientHello, match, parse


def real_hello(server_name: str | None, alpn: list[str] | None,
               version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def test_sni_and_alpn_from_openssl_hellos() -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        hello = real_hello("Reviews.Default.svc", ["h2", "http/1.1"], version)
        assert match(hello) is MatchResult.MATCH
        assert parse(hello) == ClientHello("reviews.default.svc", ("h2", "http/1.1"))
    assert parse(real_hello(None, None)) == ClientHello(None, ())
    assert parse(real_hello("a.test", ["istio-peer-exchange", "istio"])) == ClientHello(
        "a.test", ("istio-peer-exchange", "istio"))


def test_every_split_needs_more_until_the_record_is_complete() -> None:
    hello = real_hello("svc.test", ["h2"])
    for n in range(len(hello)):
        assert parse(hello[:n]) is MatchResult.NEED_MORE, n
    assert parse(hello + b"trailing") == ClientHello("svc.test", ("h2",))


def test_other_protocols_do_not_match() -> None:
    for prefix in (b"GET / HTTP/1.1\r\n", b"PRI * HTTP/2.0\r\n", b"*1\r\n$4\r\nPING\r\n",
                   b"\x01\x01\x00\x01", b"get k\r\n", b"\x16\x02\x00", b"\x16\x03\x09",
                   b"\x16\x03\x01\x00\x00\x01", b"\x16\x03\x01\x01\x00\x02"):
        assert match(prefix) is MatchResult.NO_MATCH, prefix
        assert parse(prefix) is MatchResult.NO_MATCH, prefix


def test_truncated_structures_inside_a_complete_record_are_no_match() -> None:
    hello = bytearray(real_hello("svc.test", ["h2"]))
    hello[9] ^= 0x7F  # the handshake length now disagrees with the record
    assert parse(bytes(hello)) in (MatchResult.NO_MATCH, ClientHello("svc.test", ("h2",)))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=599))
def test_garbage_never_raises(data: bytes, cut: int) -> None:
    hello = real_hello("x.test", ["h2"])
    for blob in (data, hello[:cut] + data, b"\x16\x03\x01" + data):
        out = parse(blob)
        assert isinstance(out, (ClientHello, MatchResult))
