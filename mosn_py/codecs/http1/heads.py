"""HTTP heads both ways: llhttp's fields -> a head ``Frame`` and the framing it implies
(decoder), and a head ``Frame`` -> validated octets (encoder).

llhttp has validated the syntax by the time these functions run (token characters, field
values without CTLs, no obs-fold, one Content-Length of 1*DIGIT, CL and TE never together,
a request's TE ending in chunked). What is left is HTTP semantics (RFC 9112 §3.2, §6, §9;
RFC 9110 §7.2, §7.8, §9.3.6, §15.2): Host rules, the body-length rules for requests and
responses, persistence, Upgrade/CONNECT, and the pseudo-headers the rest of the proxy uses::

    request  -> :method :scheme :authority :path  (CONNECT: :method :authority only)
                Host becomes :authority; an absolute-form target's authority wins (§3.2.2)
    response -> :status

Field names are lower-cased, values decoded as latin-1, order and repeats kept. Outgoing
heads are written as given (names as given, values latin-1) and validated in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from httptools import parse_url
from httptools.parser.errors import HttpParserError

from mosn_py.codecs.base import Frame, HeaderList, StreamType
from mosn_py.codecs.http1.states import Framing
from mosn_py.codecs.http1.wire import (
    CONNECTION,
    CONTENT_LENGTH,
    EXPECT,
    FIELD_LINE,
    HOST,
    NO_BODY_STATUS,
    PROTOCOL,
    STATUS_TEXT,
    TOKEN,
    TRANSFER_ENCODING,
    UPGRADE,
    Exchange,
    extra_for,
    final_coding,
    tokens,
)
from mosn_py.errors import LocalProtocolError


class Reject(Exception):
    """The message is refused; ``code`` is the HTTP status that says why (SERVER role)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code


_SPECIAL = frozenset((HOST, CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION, EXPECT))


# (Connection value, HTTP/1.0) -> closes: peers send the same few values ("keep-alive")
_CLOSES: dict[tuple[str, bool], bool] = {}


class Fields:
    """The fields of one head, from the raw ``(name, value)`` pairs llhttp reported.

    One pass at the end of the head (``on_header`` only collects): names lower-cased, values
    latin-1 without trailing OWS (RFC 9110 §5.5), and the fields the codec interprets picked
    out on the way. A SERVER drops ``Host`` from ``items`` (it becomes ``:authority``).
    """

    __slots__ = ("cl", "conn", "expect", "host", "hosts", "items", "te")

    def __init__(self, raw: list[tuple[bytes, bytes]], drop_host: bool) -> None:
        items: list[tuple[str, str]] = []
        host: str | None = None
        hosts = 0
        cl: str | None = None
        te: str | None = None
        conn = ""
        expect = False
        special = _SPECIAL
        for name, value in raw:
            if value and value[-1] in (32, 9):  # trailing OWS is not part of the value (§5.1)
                value = value.rstrip(b" \t")
            k = name.lower().decode("latin-1")
            v = value.decode("latin-1")
            if k in special:
                if k == HOST:
                    hosts += 1
                    if host is None:
                        host = v
                    if drop_host:
                        continue  # carried as :authority
                elif k == CONTENT_LENGTH:
                    cl = v
                elif k == TRANSFER_ENCODING:
                    te = v if te is None else f"{te}, {v}"
                elif k == CONNECTION:
                    conn = v if not conn else f"{conn}, {v}"
                elif v.lower() == "100-continue":  # Expect (RFC 9110 §10.1.1)
                    expect = True
            items.append((k, v))
        self.items = items
        self.host = host
        self.hosts = hosts
        self.cl = cl
        self.te = te
        self.conn = conn
        self.expect = expect

    def close(self, http10: bool) -> bool:
        """Does this message end the connection (RFC 9112 §9.3)?"""
        key = (self.conn, http10)
        close = _CLOSES.get(key)
        if close is None:
            conn = tokens(self.conn) if self.conn else ()
            close = "close" in conn or (http10 and "keep-alive" not in conn)
            if len(self.conn) <= 64:
                if len(_CLOSES) >= 256:
                    _CLOSES.clear()
                _CLOSES[key] = close
        return close

    def content_length(self, max_body: int, code: int) -> int:
        """The Content-Length (llhttp accepted 1*DIGIT); ``Reject(code)`` over ``max_body``."""
        assert self.cl is not None
        n = int(self.cl)
        if max_body and n > max_body:
            raise Reject(code, f"Content-Length {n} exceeds the limit {max_body}")
        return n


def trailer_fields(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """A trailer section's fields: names lower-cased, values latin-1 without trailing OWS."""
    return [(n.lower().decode("latin-1"), v.rstrip(b" \t").decode("latin-1")) for n, v in raw]


class Head:
    """A decoded head and what the decoder must do next."""

    __slots__ = ("close", "frame", "framing", "length", "stop")

    def __init__(
        self, frame: Frame, framing: Framing, length: int, close: bool, stop: bool
    ) -> None:
        self.frame = frame
        self.framing = framing
        self.length = length  # LENGTH / HOLD: Content-Length octets
        self.close = close  # no message follows this one on the connection
        self.stop = stop  # llhttp must not see what follows the head


def version_is_10(version: str, code: int) -> bool:
    """True for HTTP/1.0; anything but 1.0/1.1 is refused (505, RFC 9110 §15.6.6)."""
    if version == "1.1":
        return False
    if version == "1.0":
        return True
    raise Reject(code, f"HTTP/{version} is not supported")


_METHOD_NAMES: dict[bytes, str] = {}
_REQUEST = StreamType.REQUEST
_RESPONSE = StreamType.RESPONSE


def method_name(raw: bytes) -> str:
    """llhttp's method name as ``str`` (a small cache: llhttp knows ~40 methods)."""
    name = _METHOD_NAMES.get(raw)
    if name is None:
        name = _METHOD_NAMES[raw] = raw.decode("ascii")
    return name


def request_head(
    fields: Fields,
    request_id: int,
    method: str,
    url: bytes,
    version: str,
    upgrade: bool,
    scheme: str,
    max_body: int,
) -> tuple[Head, Exchange]:
    """SERVER: a request head. Raises ``Reject`` (400/413/505) for what llhttp let through."""
    http10 = version != "1.1" and version_is_10(version, 505)
    close = (http10 or bool(fields.conn)) and fields.close(http10)
    if fields.hosts != 1 and (fields.hosts or not http10):
        what = "more than one Host field" if fields.hosts else "HTTP/1.1 request without Host"
        raise Reject(400, f"{what} (RFC 9112 §3.2)")
    te = fields.te
    cl = fields.content_length(max_body, 413) if fields.cl is not None else 0
    if te is not None and http10:
        raise Reject(400, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)")
    target = url.decode("latin-1")
    if upgrade:
        if te is not None:
            raise Reject(400, "chunked body on an Upgrade/CONNECT request")
        framing, end_stream = Framing.HOLD, False
    elif te is not None:
        framing, end_stream = Framing.CHUNKED, False
    elif cl:
        framing, end_stream = Framing.LENGTH, False
    else:
        framing, end_stream = Framing.NONE, True
    if method == "CONNECT":
        if cl:
            raise Reject(400, "CONNECT request with a body (RFC 9110 §9.3.6)")
        pseudo = [(":method", method), (":authority", target)]
    else:
        authority = fields.host or ""
        if target[:1] != "/":
            if target != "*":  # absolute-form (RFC 9112 §3.2.2)
                scheme, authority, target = _absolute(url, scheme)
            elif method != "OPTIONS":
                raise Reject(400, "asterisk-form is for OPTIONS only (RFC 9112 §3.2.4)")
        pseudo = [(":method", method), (":scheme", scheme), (":authority", authority)]
        pseudo.append((":path", target))
    pseudo += fields.items
    extra = extra_for("1.0" if http10 else "1.1", not close, upgrade, fields.expect, False)
    frame = Frame(
        _REQUEST, request_id, HeaderList(pseudo), b"", 0, 0, False, end_stream, None, PROTOCOL,
        extra,
    )
    exch = Exchange(request_id, method, http10=http10, close=close, upgrade=upgrade)
    return Head(frame, framing, cl, close, upgrade), exch


def _absolute(url: bytes, scheme: str) -> tuple[str, str, str]:
    """(scheme, authority, origin-form target) of an absolute-form request-target (§3.2.2)."""
    try:
        parsed = parse_url(url)
    except HttpParserError:
        parsed = None
    if parsed is None or not parsed.schema or not parsed.host:
        raise Reject(400, f"invalid request-target {url[:80]!r} (RFC 9112 §3.2)")
    scheme = parsed.schema.decode("latin-1").lower()
    if scheme not in ("http", "https"):
        raise Reject(400, f"unsupported scheme {scheme!r} in the request-target")
    if parsed.userinfo is not None:
        raise Reject(400, "userinfo in the request-target (RFC 9110 §4.2.4)")
    host = parsed.host.decode("latin-1")
    authority = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if parsed.port:
        authority = f"{authority}:{parsed.port}"
    target = (parsed.path or b"/").decode("latin-1")
    if parsed.query:
        target = f"{target}?{parsed.query.decode('latin-1')}"
    return scheme, authority, target


def response_head(fields: Fields, exch: Exchange, status: int, version: str, max_body: int) -> Head:
    """CLIENT: the response to ``exch`` (the oldest request sent). Raises ``Reject``."""
    http10 = version != "1.1" and version_is_10(version, 502)
    if not 100 <= status <= 599:  # llhttp takes any three digits, "000" and "999" too
        raise Reject(502, f"status code {status} out of range (RFC 9110 §15)")
    close = (http10 or bool(fields.conn)) and fields.close(http10)
    te = fields.te
    length = 0
    stop = False
    if status < 200 and status != 101:
        framing, close = Framing.INTERIM, False
        stop = te is not None or fields.cl is not None  # 1xx has no body; llhttp would read it
    elif status == 101 or (exch.connect and status < 300):
        if status == 101 and not exch.upgrade:
            raise Reject(502, f"101 answers {exch.method}, which asked for no upgrade")
        framing, stop, close = Framing.TUNNEL, True, True  # CL/TE ignored (RFC 9110 §9.3.6)
    elif exch.head or status in NO_BODY_STATUS:
        framing = Framing.NONE
        stop = exch.head  # llhttp would wait for the body the fields describe
    elif te is not None:
        if final_coding(te) == "chunked":
            framing = Framing.CHUNKED
            close = close or http10  # RFC 9112 §6.1: faulty framing, close afterwards
        else:
            framing, stop, close = Framing.UNTIL_CLOSE, True, True
    elif fields.cl is not None:
        length = fields.content_length(max_body, 502)
        framing = Framing.LENGTH if length else Framing.NONE
    else:
        framing, stop, close = Framing.UNTIL_CLOSE, True, True
    interim = framing is Framing.INTERIM
    tunnel = framing is Framing.TUNNEL
    frame = Frame(
        _RESPONSE,
        exch.id,
        HeaderList([(":status", STATUS_TEXT[status]), *fields.items]),
        b"",
        status,
        0,
        False,
        framing is Framing.NONE,
        None,
        PROTOCOL,
        extra_for("1.0" if http10 else "1.1", not close, tunnel, False, interim),
    )
    return Head(frame, framing, length, close, stop)


# --- outgoing heads (the encoder) ----------------------------------------------------------

_OUT_SPECIAL = frozenset((CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION, HOST, UPGRADE))

# Outgoing heads are validated by one regex over the whole block (``encode_head``). When
# every field name and the method are tokens already seen, and the block holds no control
# octet, that regex cannot fail, so it is skipped: names and methods repeat (a proxy sends
# the names its peers sent), and the regex costs more than encoding the head.
_TOKEN_STR = re.compile(TOKEN.decode("ascii"))
_TOKENS: set[str] = set()
_TOKENS_MAX = 4096
_CTL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # (CR, LF: counted separately)


def is_token(name: str) -> bool:
    """``name`` is an RFC 9110 token (remembered once seen, up to ``_TOKENS_MAX``)."""
    if name in _TOKENS:
        return True
    if _TOKEN_STR.fullmatch(name) is None:
        return False
    if len(_TOKENS) < _TOKENS_MAX:
        _TOKENS.add(name)
    return True


def plain_target(target: str) -> bool:
    """A request-target of visible ASCII only (``[!-~]+`` given no control octets)."""
    return target.isascii() and " " not in target and "\t" not in target


def _error(msg: str) -> LocalProtocolError:
    return LocalProtocolError(msg, protocol=PROTOCOL)


class OutHead:
    """A head to send, split into what the encoder passes through and what it decides on."""

    __slots__ = ("cl", "conn", "host", "lines", "plain", "pseudo", "te", "upgrade")

    def __init__(self, headers: Mapping[str, str]) -> None:
        items_all = getattr(headers, "items_all", None)
        pairs: Iterable[tuple[str, str]] = items_all() if items_all is not None else headers.items()
        lines: list[str] = []
        pseudo: dict[str, str] = {}
        cl: str | None = None
        te: str | None = None
        conn: list[str] = []
        host: str | None = None
        upgrade = False
        plain = True  # every name in ``lines`` is a known token
        tokens = _TOKENS
        for k, v in pairs:
            if k[:1] == ":":
                pseudo[k] = v
                continue
            lk = k.lower()
            if lk in _OUT_SPECIAL:
                if lk == CONTENT_LENGTH:
                    v = v.strip()
                    if cl is not None and v != cl:
                        raise _error(f"differing Content-Length values {cl!r} and {v!r}")
                    cl = v
                    continue
                if lk == TRANSFER_ENCODING:
                    te = v if te is None else f"{te}, {v}"
                    continue
                if lk == CONNECTION:
                    conn.append(v)
                    continue
                if lk == HOST:
                    if host is None:
                        host = v
                    continue
                upgrade = True  # Upgrade: passed through
            lines.append(f"{k}: {v}\r\n")
            if plain and k not in tokens:
                plain = is_token(k)
        self.lines = lines
        self.plain = plain
        self.pseudo = pseudo
        self.cl = cl
        self.te = te
        self.conn = conn
        self.host = host
        self.upgrade = upgrade

    def content_length(self) -> int | None:
        cl = self.cl
        if cl is None:
            return None
        if not (cl.isdigit() and cl.isascii()):
            raise _error(f"Content-Length {cl!r} is not a non-negative integer")
        if self.te is not None:
            raise _error("both Content-Length and Transfer-Encoding (RFC 9112 §6.2)")
        return int(cl)

    def chunked(self) -> bool:
        te = self.te
        if te is None:
            return False
        if final_coding(te) != "chunked":
            raise _error(f"Transfer-Encoding {te!r} does not end in chunked (RFC 9112 §6.1)")
        return True

    def conn_tokens(self) -> set[str]:
        return tokens(", ".join(self.conn)) if self.conn else set()

    def conn_lines(self) -> list[str]:
        return [f"connection: {v}\r\n" for v in self.conn]


def encode_head(
    start: str,
    lines: list[str],
    framing: list[str],
    check: re.Pattern[bytes],
    starts: int = 1,
    plain: bool = False,
) -> bytes:
    """One latin-1 buffer for a head, validated by one regex over the whole of it.

    ``starts`` is the number of lines in ``start``. Counting CR and LF catches a CR/LF inside
    a value that would otherwise form valid-looking extra lines (response splitting); the
    regex catches every other bad octet (RFC 9110 §5.5, RFC 9112 §2.2). ``plain``: the
    caller checked that every name (and the start line) is made of tokens / visible ASCII;
    then no control octet means the regex would match, and it is skipped.
    """
    try:
        out = "".join((start, *lines, *framing, "\r\n")).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise _error(f"a field is not latin-1: {exc}") from None
    crlfs = starts + len(lines) + len(framing) + 1
    if out.count(b"\n") != crlfs or out.count(b"\r") != crlfs:
        raise _error("CR or LF inside a field name or value (RFC 9110 §5.5)")
    if plain and _CTL.search(out) is None:
        return out
    if check.fullmatch(out) is None:
        raise _error(_why_invalid(out))
    return out


def response_status(frame: Frame, head: OutHead) -> int:
    text = head.pseudo.get(":status")
    status = frame.status
    if text is not None:
        if not (len(text) == 3 and text.isdigit()):
            raise _error(f":status {text!r} is not a 3-digit code")
        if status and status != int(text):
            raise _error(f":status {text} contradicts Frame.status {status}")
        status = int(text)
    if not 100 <= status <= 599:
        raise _error(f"status {status} is not 100..599 (RFC 9110 §15)")
    return status


def _why_invalid(block: bytes) -> str:
    """Name the first bad line of an encoded head (error path only)."""
    lines = block.split(b"\r\n")
    for line in lines[1:-2]:
        if FIELD_LINE.fullmatch(line + b"\r\n") is None:
            return f"invalid field line {line[:80]!r} (RFC 9110 §5)"
    return f"invalid start line {lines[0][:80]!r} (RFC 9112 §3, §4)"
