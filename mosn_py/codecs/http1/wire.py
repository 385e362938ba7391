"""HTTP/1.1 wire facts shared by the decoder and the encoder (RFC 9112, RFC 9110).

Message layout (RFC 9112 §2.1)::

    start-line CRLF                 request-line  = method SP request-target SP HTTP-version
                                    status-line   = HTTP-version SP status-code SP [reason]
    *( field-name ":" OWS field-value OWS CRLF )        (§5; no obs-fold, §5.2)
    CRLF
    [ message-body ]

Body length, first rule that applies (RFC 9112 §6.3)::

    1. response to HEAD, 1xx, 204, 304            no body
    2. 2xx to CONNECT, 101                          tunnel: the connection stops being HTTP
    3. Transfer-Encoding, final coding chunked      chunked (§7.1), optional trailers (§7.1.2)
       Transfer-Encoding otherwise                  request: 400; response: until close
       (Transfer-Encoding with Content-Length: 400, smuggling, §6.1 / §6.3 rule 3)
    4. Content-Length                               exactly that many octets
    5. request without either                       no body
    6. response without either                      until close

Chunked body (RFC 9112 §7.1)::

    chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF     chunk-size = 1*HEXDIG
    last-chunk = 1*("0") [ chunk-ext ] CRLF
    trailer-section = *( field-line CRLF ) CRLF

Persistence (RFC 9112 §9.3): HTTP/1.1 keeps the connection unless ``Connection: close``;
HTTP/1.0 closes unless ``Connection: keep-alive``. A close-delimited body always closes.

This module holds the constants, the per-message ``Http1Extra``, the ``Exchange`` record one
request/response pair shares between the two halves of the codec, the ProxyStatus -> HTTP
status mapping and protocol sniffing.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus

from mosn_py.codecs.base import MatchResult
from mosn_py.codecs.http_status import DEFAULT_MESSAGES as DEFAULT_MESSAGES
from mosn_py.codecs.http_status import (
    HTTP_STATUS_BY_PROXY_STATUS as HTTP_STATUS_BY_PROXY_STATUS,
)
from mosn_py.errors import ProxyStatus

PROTOCOL = "http1"

# --- per-message data ------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Http1Extra:
    """What an HTTP/1.x head says beyond its fields (``Frame.extra`` of decoded heads).

    - ``version``: ``"1.1"`` or ``"1.0"``, as received (the encoder always sends 1.1, RFC 9110
      §2.5: an intermediary sends its own version).
    - ``keep_alive``: the message lets the connection carry another exchange (RFC 9112 §9.3).
    - ``upgrade``: a request asking to leave HTTP: ``Upgrade`` + ``Connection: upgrade``
      (RFC 9110 §7.8) or ``CONNECT`` (§9.3.6). Its stream stays open until the response
      decides (see ``Http1Codec``).
    - ``expect_continue``: the request carries ``Expect: 100-continue`` (RFC 9110 §10.1.1);
      the proxy decides whether to send ``100 Continue``.
    - ``interim``: a 1xx response other than 101 (RFC 9110 §15.2); the final response of the
      same stream follows.

    Instances are shared (``extra_for``): never mutate one.
    """

    version: str = "1.1"
    keep_alive: bool = True
    upgrade: bool = False
    expect_continue: bool = False
    interim: bool = False


_EXTRAS: dict[tuple[str, bool, bool, bool, bool], Http1Extra] = {}


def extra_for(
    version: str, keep_alive: bool, upgrade: bool, expect: bool, interim: bool
) -> Http1Extra:
    """The shared ``Http1Extra`` for these values (at most 32 distinct objects exist)."""
    key = (version, keep_alive, upgrade, expect, interim)
    extra = _EXTRAS.get(key)
    if extra is None:
        extra = _EXTRAS[key] = Http1Extra(version, keep_alive, upgrade, expect, interim)
    return extra


class Exchange:
    """One request and its response, as both halves of a codec see them.

    SERVER role: the decoder appends one per request head; the encoder pops it when the final
    response is complete. CLIENT role: the encoder appends one per request sent; the decoder
    pops it when the final response is complete (or the tunnel opens). The FIFO order is the
    pipeline order (RFC 9112 §9.3.2).
    """

    __slots__ = (
        "answered",
        "close",
        "connect",
        "head",
        "http10",
        "id",
        "method",
        "refused",
        "rx_done",
        "tunnel",
        "upgrade",
    )

    def __init__(
        self,
        request_id: int,
        method: str,
        *,
        http10: bool = False,
        close: bool = False,
        upgrade: bool = False,
    ) -> None:
        self.id = request_id
        self.method = method
        self.head = method == "HEAD"
        self.connect = method == "CONNECT"
        self.upgrade = upgrade and not self.connect  # Upgrade handshake (not CONNECT)
        self.http10 = http10  # the request was HTTP/1.0: no chunked, no 1xx (RFC 9110 §15.2)
        self.close = close  # the request asked to close after its response
        self.rx_done = False  # SERVER: the whole request has been received
        self.answered = False  # CLIENT: a final (non-tunnel) response head arrived
        self.tunnel = False  # the exchange became a tunnel (101, or 2xx to CONNECT)
        self.refused = False  # SERVER: an upgrade/CONNECT got a final non-tunnel response

    @property
    def wants_tunnel(self) -> bool:
        return self.upgrade or self.connect

    def __repr__(self) -> str:
        return f"Exchange({self.id}, {self.method})"


class Shared:
    """Connection-wide state both halves read and write."""

    __slots__ = ("exchanges", "must_close")

    def __init__(self) -> None:
        self.exchanges: deque[Exchange] = deque()
        self.must_close = False


# --- fields ----------------------------------------------------------------------------------

# Field names the codec interprets (RFC 9112 §6, §9; RFC 9110 §7.2, §7.6.1, §7.8, §10.1.1).
CONTENT_LENGTH = "content-length"
TRANSFER_ENCODING = "transfer-encoding"
CONNECTION = "connection"
HOST = "host"
EXPECT = "expect"
UPGRADE = "upgrade"

NO_BODY_STATUS = frozenset((204, 304))
BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))  # send Content-Length: 0 when empty

TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_FIELD = rb"(?:" + TOKEN + rb": [\t\x20-\x7e\x80-\xff]*\r\n)"
# One fullmatch validates a whole encoded head: start line, every field line, no CR/LF/NUL
# smuggled into a name or value (RFC 9110 §5.5: CR, LF and NUL are never valid in a value).
REQUEST_HEAD = re.compile(TOKEN + rb" [!-~]+ HTTP/1\.1\r\n" + _FIELD + rb"*\r\n")
RESPONSE_HEAD = re.compile(
    rb"HTTP/1\.1 [1-5][0-9][0-9] [\t\x20-\x7e\x80-\xff]*\r\n" + _FIELD + rb"*\r\n"
)
LAST_CHUNK_TRAILERS = re.compile(rb"0\r\n" + _FIELD + rb"*\r\n")
FIELD_LINE = re.compile(_FIELD)
HEXDIGITS = re.compile(rb"[0-9A-Fa-f]+")


def tokens(value: str) -> set[str]:
    """The comma-separated tokens of a ``Connection``-like value, lower-cased (RFC 9110 §5.6.1)."""
    return {t.strip().lower() for t in value.split(",")} - {""}


def final_coding(value: str) -> str:
    """The last transfer coding of a ``Transfer-Encoding`` value (RFC 9112 §6.1)."""
    return value.rsplit(",", 1)[-1].strip().lower()


# --- status lines and local replies --------------------------------------------------------

# Python's phrases, with RFC 9110 §15's newer names pinned (they differ across Pythons).
REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus} | {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}
STATUS_TEXT: dict[int, str] = {code: str(code) for code in range(100, 600)}

# The ProxyStatus -> HTTP mapping and reply texts are shared with HTTP/2.
# Local replies for these close the connection (the request stream is unusable / we leave).
CLOSING_STATUSES = frozenset((ProxyStatus.CODEC_ERROR, ProxyStatus.DRAINING))


def http_status_for(status: ProxyStatus) -> int:
    """The HTTP status a local reply for ``status`` carries (Envoy's choices)."""
    return HTTP_STATUS_BY_PROXY_STATUS[status]


# --- sniffing --------------------------------------------------------------------------------

# RFC 9110 §9.3 methods plus the WebDAV/PATCH ones llhttp also accepts and clients send.
# ``PRI`` is deliberately absent: ``PRI * HTTP/2.0`` is HTTP/2's preface (RFC 9113 §3.4).
METHODS = (
    *("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"),
    *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH"),
    "PURGE",
)
_STARTS = frozenset(m.encode() + b" " for m in METHODS)
_PARTIALS = frozenset(s[:i] for s in _STARTS for i in range(1, len(s)))
_LONGEST = max(len(s) for s in _STARTS)


def match(prefix: bytes | bytearray | memoryview) -> MatchResult:
    """Is ``prefix`` the start of an HTTP/1.x request (a known method, then SP)?

    ``NEED_MORE`` while ``prefix`` is a proper prefix of some ``METHOD SP``; ``NO_MATCH`` as
    soon as it cannot be one: TLS (0x16), HTTP/2's ``PRI *`` preface, Bolt (0x01/0x02), RESP
    (``*``), lower-case methods. Never raises.
    """
    head = bytes(prefix[:_LONGEST])
    if not head:
        return MatchResult.NEED_MORE
    sp = head.find(b" ")
    if sp >= 0:
        return MatchResult.MATCH if head[: sp + 1] in _STARTS else MatchResult.NO_MATCH
    return MatchResult.NEED_MORE if head in _PARTIALS else MatchResult.NO_MATCH
