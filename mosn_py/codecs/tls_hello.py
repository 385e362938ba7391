"""Reading a TLS ClientHello without terminating TLS: is this TLS, and which server name
(SNI) and application protocols (ALPN) does the client ask for? For protocol sniffing on
intercepted connections (an application that speaks TLS itself is passed through).

Wire layout (RFC 8446 §4.1.2 and §5.1; TLS 1.0-1.2 use the same ClientHello framing)::

    record:     type=0x16 (handshake) | version u16 (0x0301..0x0304) | length u16 | fragment
    handshake:  type=0x01 (client_hello) | length u24 | body
    body:       legacy_version u16 | random[32] | session_id <0..32> (u8 length)
                | cipher_suites <2..2^16-2> (u16 length) | compression <1..255> (u8 length)
                | extensions <8..2^16-1> (u16 length), each: type u16 | length u16 | data
    server_name (type 0, RFC 6066 §3): list u16 | (name_type u8=0 | name u16-length)...
    ALPN (type 16, RFC 7301 §3.1):     list u16 | (protocol u8-length)...

Only the first record is read (a ClientHello larger than one 16 KiB record is unheard of in
practice; such a hello is TLS without SNI/ALPN to us). Sans-IO: bytes in, a result out.
"""

from __future__ import annotations

from dataclasses import dataclass

from mosn_py.codecs.base import MatchResult

HANDSHAKE = 0x16
CLIENT_HELLO = 0x01
EXT_SERVER_NAME = 0
EXT_ALPN = 16
MAX_RECORD = 16384 + 2048  # a TLSCiphertext fragment's limit (RFC 8446 §5.2)


@dataclass(frozen=True, slots=True)
class ClientHello:
    server_name: str | None
    alpn: tuple[str, ...]


def match(prefix: bytes | bytearray | memoryview) -> MatchResult:
    """MATCH when ``prefix`` starts like a TLS handshake record carrying a ClientHello."""
    b = bytes(prefix[:6])
    if not b:
        return MatchResult.NEED_MORE
    if b[0] != HANDSHAKE:
        return MatchResult.NO_MATCH
    if len(b) >= 2 and b[1] != 0x03:
        return MatchResult.NO_MATCH
    if len(b) >= 3 and b[2] > 0x04:
        return MatchResult.NO_MATCH
    if len(b) >= 6:
        length = int.from_bytes(b[3:5], "big")
        if length == 0 or length > MAX_RECORD or b[5] != CLIENT_HELLO:
            return MatchResult.NO_MATCH
        return MatchResult.MATCH
    return MatchResult.NEED_MORE


def parse(prefix: bytes | bytearray | memoryview) -> ClientHello | MatchResult:
    """The ClientHello's SNI and ALPN once the first record is complete; NEED_MORE before;
    NO_MATCH when it is not a (well-formed) ClientHello."""
    m = match(prefix)
    if m is not MatchResult.MATCH:
        return m
    data = bytes(prefix)
    length = int.from_bytes(data[3:5], "big")
    if len(data) < 5 + length:
        return MatchResult.NEED_MORE
    try:
        return _hello(memoryview(data)[5 : 5 + length])
    except (IndexError, ValueError):
        return MatchResult.NO_MATCH


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ValueError("truncated")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_size: int) -> memoryview:
        return self.take(self.uint(length_size))


def _hello(fragment: memoryview) -> ClientHello:
    r = _Reader(fragment)
    if r.uint(1) != CLIENT_HELLO:
        raise ValueError("not a ClientHello")
    body = _Reader(r.vector(3))
    body.take(2 + 32)  # legacy_version, random
    body.vector(1)  # session id
    body.vector(2)  # cipher suites
    body.vector(1)  # compression methods
    if body.pos == len(body.buf):
        return ClientHello(None, ())  # no extensions (SSLv3-style hello)
    exts = _Reader(body.vector(2))
    name: str | None = None
    alpn: list[str] = []
    while exts.pos < len(exts.buf):
        etype = exts.uint(2)
        data = _Reader(exts.vector(2))
        if etype == EXT_SERVER_NAME:
            names = _Reader(data.vector(2))
            while names.pos < len(names.buf):
                kind = names.uint(1)
                value = bytes(names.vector(2))
                if kind == 0 and name is None:
                    name = value.decode("ascii", "replace").lower()
        elif etype == EXT_ALPN:
            protos = _Reader(data.vector(2))
            while protos.pos < len(protos.buf):
                alpn.append(bytes(protos.vector(1)).decode("ascii", "replace"))
    return ClientHello(name, tuple(alpn))
