"""The receive half of ``Http1Codec``: llhttp's callbacks -> frames and events.

``framer.Framer`` (the base class) decides what octets llhttp sees and when; this module
turns llhttp's callbacks into head ``Frame``s (through ``heads``), ``DataFrame``s and
``TrailersFrame``s, runs the message lifecycle -- where the message ends, the tunnel
decision of an Upgrade/CONNECT request, EOF -- and turns failures into
``RemoteProtocolError`` (RFC 9112 §2.2: a recipient that cannot parse a message must
reject it; the status to answer with travels as ``wire_code``).

When llhttp would misjudge what follows a head -- a response to HEAD, a 101, a 2xx to
CONNECT, an Upgrade request -- ``on_headers_complete`` raises ``_Stop``: the framer fed llhttp
exactly that head, so nothing is lost, and a fresh parser takes the next message (httptools
cannot tell llhttp "this message has no body").
"""

from __future__ import annotations

from typing import NoReturn

from httptools import HttpRequestParser, HttpResponseParser
from httptools.parser.errors import HttpParserCallbackError, HttpParserError

from mosn_py.codecs.base import (
    CodecLimits,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    ResetFrame,
    TrailersFrame,
)
from mosn_py.codecs.http1.framer import Framer
from mosn_py.codecs.http1.heads import (
    Fields,
    Head,
    Reject,
    method_name,
    request_head,
    response_head,
    trailer_fields,
)
from mosn_py.codecs.http1.states import Framing, RxState
from mosn_py.codecs.http1.wire import PROTOCOL, Exchange, Shared
from mosn_py.errors import ProxyStatus, RemoteProtocolError

Event = Frame | DataFrame | TrailersFrame | ResetFrame | ConnectionEvent


_HEAD = RxState.HEAD
_BODY = RxState.BODY
_CHUNK_SIZE = RxState.CHUNK_SIZE
_CHUNK_DATA = RxState.CHUNK_DATA
_TRAILERS = RxState.TRAILERS
_RAW_BODY = RxState.RAW_BODY
_UNTIL_CLOSE = RxState.UNTIL_CLOSE
_HOLD = RxState.HOLD
_TUNNEL = RxState.TUNNEL
_DONE = RxState.DONE
_CLOSED = RxState.CLOSED
_ERROR = RxState.ERROR
_MID_BODY = frozenset((_BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS, _RAW_BODY))
_LENGTH = Framing.LENGTH
_CHUNKED = Framing.CHUNKED
_INTERIM = Framing.INTERIM
_TUNNEL_F = Framing.TUNNEL
# where a head llhttp was stopped at resumes (enum-keyed dicts hash in Python: rare path only)
_AFTER_STOP = {
    Framing.UNTIL_CLOSE: _UNTIL_CLOSE,
    Framing.TUNNEL: _TUNNEL,
    Framing.HOLD: _HOLD,
}
_COMPACT_MIN = 64 * 1024


class _Stop(Exception):
    """Raised from ``on_headers_complete``: llhttp must not see what follows the head."""


class Decoder(Framer):
    """Bytes in, events out, for one connection (the codec's receive half)."""

    __slots__ = (
        "_exch",
        "_head",
        "_max_count",
        "_open",
        "_parser",
        "_raw",
        "_reject",
        "_sid",
        "_url",
        "error",
        "next_id",
        "scheme",
        "server",
        "shared",
    )

    def __init__(self, server: bool, limits: CodecLimits, shared: Shared, scheme: str) -> None:
        super().__init__(limits.max_header_size, limits.max_body_size, limits.max_pending_frames)
        self.server = server
        self.shared = shared
        self.scheme = scheme
        self._max_count = limits.max_header_count
        self.error: RemoteProtocolError | None = None
        self.next_id = 1  # SERVER: the id the next request gets
        self._parser: HttpRequestParser | HttpResponseParser | None = None
        # llhttp's (name, value) pairs of the head, then of the trailer section, in progress
        self._raw: list[tuple[bytes, bytes]] = []
        self._url = b""
        self._head: Head | None = None  # the current message's decoded head
        self._exch: Exchange | None = None
        self._sid = 0  # the current message's stream id
        self._open = False  # its head went out with end_stream=False
        self._reject: Reject | None = None

    def _feed(self, view: memoryview) -> None:
        parser = self._parser
        if parser is None:
            parser = self._parser = (
                HttpRequestParser(self) if self.server else HttpResponseParser(self)
            )
        try:
            parser.feed_data(view)
        except HttpParserCallbackError:
            head = self._head
            if head is not None and head.stop:
                self._after_stop(head)
                return
            rej = self._reject
            if rej is None:  # pragma: no cover (callbacks raise Reject or _Stop only)
                raise
            self._reject = None
            self._fail(rej.code, str(rej))
        except HttpParserError as exc:  # (HttpParserUpgrade cannot happen: heads stop first)
            self._fail(400, f"malformed HTTP/1.x: {exc} (llhttp)")

    # --- llhttp callbacks --------------------------------------------------------------------
    #
    # Kept minimal (each is a call from C per event): ``on_header`` only collects the raw
    # pairs, which ``Fields`` turns into the head's fields in one pass at the end.

    def on_message_begin(self) -> None:
        self._in_msg = True
        self._raw = []
        self._url = b""
        self._head = None
        if not self.server and not self.shared.exchanges:
            self._raise(Reject(502, "response without an outstanding request"))

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        raw = self._raw
        if len(raw) >= self._max_count:  # RFC 6585 §5
            what = "trailer" if self.state is _TRAILERS else "header"
            self._raise(Reject(431, f"more than {self._max_count} {what} fields"))
        raw.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        fields = Fields(self._raw, self.server)
        self._raw = []  # from here on: the trailer section's fields
        try:
            if isinstance(parser, HttpRequestParser):
                head, exch = request_head(
                    fields,
                    self.next_id,
                    method_name(parser.get_method()),
                    self._url,
                    parser.get_http_version(),
                    parser.should_upgrade(),
                    self.scheme,
                    self._max_body,
                )
                self.next_id += 1
                self.shared.exchanges.append(exch)
            else:
                assert parser is not None
                exch = self.shared.exchanges[0]
                head = response_head(
                    fields,
                    exch,
                    parser.get_status_code(),
                    parser.get_http_version(),
                    self._max_body,
                )
        except Reject as rej:
            self._raise(rej)
        self._head = head
        self._exch = exch
        frame = head.frame
        framing = head.framing
        self._sid = frame.request_id
        self._open = not frame.end_stream and framing is not _INTERIM
        self._received = 0
        self._remaining = head.length
        if head.close:
            self.shared.must_close = True
        if framing is _TUNNEL_F:
            self.shared.exchanges.popleft()
            exch.tunnel = True
        elif not self.server and framing is not _INTERIM:
            exch.answered = True
        self.events.append(frame)
        if head.stop:
            raise _Stop
        if framing is _LENGTH:  # where llhttp continues after the head
            self.state = _BODY
        elif framing is _CHUNKED:
            self.state = _CHUNK_SIZE

    def on_body(self, body: bytes) -> None:
        self._parts.append(body)

    def on_message_complete(self) -> None:
        self._end_message()

    def _raise(self, rej: Reject) -> NoReturn:
        if not self.server:
            rej.code = 502  # the downstream learns of an upstream protocol error as 502
        self._reject = rej
        raise rej

    def _after_stop(self, head: Head) -> None:
        """llhttp was stopped after ``head``: it is in an error state, so drop it."""
        self._parser = None
        head.stop = False
        state = _AFTER_STOP.get(head.framing)
        if state is _HOLD and head.length:
            self.state = _RAW_BODY
        elif state is _HOLD:
            self._enter_hold()
        elif state is not None:
            self._in_msg = False
            self.state = state
        else:  # NONE (a response to HEAD) or INTERIM: the message is complete
            self._end_message()

    # --- message ends --------------------------------------------------------------------------

    def _flush(self, end_stream: bool) -> None:
        parts = self._parts
        if parts:
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            self.events.append(DataFrame(self._sid, data, end_stream))
        elif end_stream:
            self.events.append(DataFrame(self._sid, b"", True))

    def _end_message(self) -> None:
        self._in_msg = False
        self._head_size = 0
        self._scanned = 0
        if self._raw:  # a trailer section
            self._flush(False)
            self.events.append(TrailersFrame(self._sid, HeaderList(trailer_fields(self._raw))))
            self._raw = []
        elif self._open:
            self._flush(True)
        head = self._head
        exch = self._exch
        assert head is not None and exch is not None
        if self.server:
            exch.rx_done = True
        elif head.framing is Framing.INTERIM:
            self.state = _HEAD
            return
        else:
            self.shared.exchanges.popleft()
        self.state = _DONE if head.close else _HEAD

    def _enter_hold(self) -> None:
        """SERVER: the Upgrade/CONNECT request is in; wait for the response to decide."""
        exch = self._exch
        assert exch is not None
        exch.rx_done = True
        self._in_msg = False
        self._head_size = 0
        self._scanned = 0
        self.state = _HOLD
        if exch.refused:
            self._decide(exch, False)

    def upgrade_decided(self, exch: Exchange, tunnel: bool) -> None:
        """The encoder sent the final response to ``exch`` (an Upgrade/CONNECT request)."""
        if self.state is not _HOLD or self._exch is not exch:
            exch.refused = not tunnel  # its body is still arriving: decide at its end
            return
        self._decide(exch, tunnel)
        self.pump()

    def refuse_upgrade(self, request_id: int) -> bool:
        """SERVER: the proxy will not tunnel this Upgrade request: it becomes a plain request
        now, without waiting for the response. False if it is not a pending Upgrade."""
        for exch in self.shared.exchanges:
            if exch.id == request_id:
                break
        else:
            return False
        if not exch.upgrade or exch.tunnel:
            return False
        exch.upgrade = False
        if self.state is _HOLD and self._exch is exch:
            self._decide(exch, False)
            self.pump()
        else:
            exch.refused = True  # its body is still arriving: decided at its end
        return True

    def _decide(self, exch: Exchange, tunnel: bool) -> None:
        if tunnel:
            self.state = _TUNNEL
        else:
            # The request side ends here; what the client sent next is HTTP again
            # (RFC 9110 §7.8: a server may ignore Upgrade).
            self.events.append(DataFrame(exch.id, b"", True))
            self.state = _DONE if exch.close else _HEAD

    def close_input(self) -> None:
        """SERVER: the connection closes after the response just sent; read nothing more."""
        if self.state is _CLOSED or self.state is _ERROR:
            return
        self.state = _DONE
        self.paused = False
        self.events.clear()
        self._parts.clear()
        self._buf.clear()
        self._bpos = 0
        if self._eof:
            self.on_eof()

    def on_eof(self) -> None:
        """The peer closed and all input is processed: end whatever was in progress.

        At a message boundary: ``CLOSED``. Inside a SERVER request head: ``RemoteProtocolError``
        (400). Inside a Content-Length/chunked body: ``ResetFrame`` for the stream. An
        until-close body or a tunnel: its final ``DataFrame(end_stream=True)``. CLIENT: a
        ``ResetFrame`` for every request still without a response. Then ``CLOSED``. In HOLD the
        EOF waits for the encoder's decision.
        """
        state = self.state
        if state is _HOLD or state is _CLOSED or state is _ERROR:
            return
        events = self.events
        exchanges = self.shared.exchanges
        if state is _HEAD:
            partial = self._in_msg or self._buf[self._bpos :].strip(b"\r\n")
            if partial and self.server:
                self._fail(400, "connection closed inside a request head")
                return
        elif state in _MID_BODY:
            self._flush(False)
            events.append(ResetFrame(self._sid, reason="connection closed inside the body"))
            if not self.server and exchanges and exchanges[0] is self._exch:
                exchanges.popleft()
        elif state is _UNTIL_CLOSE or state is _TUNNEL:
            self._flush(True)
            if state is _UNTIL_CLOSE:
                exchanges.popleft()
        if not self.server:
            while exchanges:
                rid = exchanges.popleft().id
                events.append(ResetFrame(rid, reason="connection closed before the response"))
        self.shared.must_close = True
        events.append(ConnectionEvent.CLOSED)
        self.state = _CLOSED

    # --- errors ------------------------------------------------------------------------------

    def _fail(self, code: int, msg: str) -> None:
        """Enter ERROR: nothing more is decoded; events queued so far are still delivered."""
        rid: int | None
        if self.server:
            hint = ProxyStatus.CODEC_ERROR
            exch = self._exch
            # the request whose head was decoded, else the one being parsed (no id yet)
            rid = exch.id if exch is not None and not exch.rx_done else self.next_id
        else:
            # The upstream broke the protocol: the downstream gets 502 (Envoy's UPE).
            hint, code = ProxyStatus.UPSTREAM_RESET, 502
            rid = self.shared.exchanges[0].id if self.shared.exchanges else None
        self.state = _ERROR
        self.paused = False
        self.shared.must_close = True
        self._buf = bytearray()
        self._bpos = 0
        self._parts.clear()
        self._parser = None
        self.error = RemoteProtocolError(
            msg, protocol=PROTOCOL, status_hint=hint, wire_code=code, request_id=rid
        )
