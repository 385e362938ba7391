"""The send half of ``Http1Codec``: frames -> wire buffers (RFC 9112).

The encoder writes what it is given, except the framing fields, which it owns
(RFC 9112 §6): ``Content-Length``, ``Transfer-Encoding`` and, where persistence requires,
``Connection``. Given framing fields are *inputs* to its choice, re-emitted after the
other fields; contradictory ones raise ``LocalProtocolError``:

    head says                        whole message            streamed (end_stream=False)
    Content-Length: N                body must be N octets     DataFrames must total N
    Transfer-Encoding: ..., chunked  one chunk + last-chunk    chunked
    neither                          Content-Length: len(body) chunked (HTTP/1.1 peer);
                                                               until close (HTTP/1.0 client)
    both, differing CLs, a final coding other than chunked:   LocalProtocolError

No body on the wire for 1xx, 101, 204, 304, a 2xx to CONNECT and any response to HEAD
(RFC 9112 §6.3 rules 1-2); HEAD and 304 keep a given Content-Length (it describes the
representation, RFC 9110 §8.6), the others lose it.

Chunks are written zero-copy: ``[b"<hex>\\r\\n", data, b"\\r\\n"]`` (RFC 9112 §7.1). The send
state machine (``TxState``) is drawn and tabled in ``states.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mosn_py.codecs.base import DataFrame, Frame, ResetFrame, StreamType, TrailersFrame
from mosn_py.codecs.http1.heads import (
    OutHead,
    encode_head,
    is_token,
    plain_target,
    response_status,
)
from mosn_py.codecs.http1.states import TxState
from mosn_py.codecs.http1.wire import (
    BODY_METHODS,
    LAST_CHUNK_TRAILERS,
    NO_BODY_STATUS,
    PROTOCOL,
    REASONS,
    REQUEST_HEAD,
    RESPONSE_HEAD,
    Exchange,
    Shared,
)
from mosn_py.errors import LocalProtocolError

if TYPE_CHECKING:
    from mosn_py.codecs.http1.decoder import Decoder

Buffers = list[bytes | memoryview]
Body = bytes | bytearray | memoryview

_IDLE = TxState.IDLE
_LENGTH = TxState.LENGTH
_CHUNKED = TxState.CHUNKED
_UNTIL_CLOSE = TxState.UNTIL_CLOSE
_NO_BODY = TxState.NO_BODY
_UPGRADE_PENDING = TxState.UPGRADE_PENDING
_TUNNEL = TxState.TUNNEL
_DONE = TxState.DONE

_STATUS_LINES = {code: f"HTTP/1.1 {code} {REASONS.get(code, '')}\r\n" for code in range(100, 600)}
_NO_TOKENS: frozenset[str] = frozenset()
_CRLF = b"\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
_CRLF_LAST_CHUNK = b"\r\n0\r\n\r\n"
_TRAILER_STATES = (_CHUNKED, _LENGTH, _UNTIL_CLOSE, _NO_BODY)


def _error(msg: str) -> LocalProtocolError:
    return LocalProtocolError(msg, protocol=PROTOCOL)


def _own(data: Body) -> bytes | memoryview:
    """Body buffers pass through uncopied; a bytearray (mutable, reusable) is copied."""
    return bytes(data) if isinstance(data, bytearray) else data


class Encoder:
    """Frames out for one connection (the codec's send half)."""

    __slots__ = (
        "_close",
        "_exch",
        "_last",
        "_no_body_head",
        "_remaining",
        "_sid",
        "rx",
        "server",
        "shared",
        "state",
    )

    def __init__(self, server: bool, shared: Shared, rx: Decoder) -> None:
        self.server = server
        self.shared = shared
        self.rx = rx
        self.state = _IDLE
        self._sid = 0  # the stream being sent
        self._last = -1  # the last stream completely sent (late empty end_stream: no-op)
        self._exch: Exchange | None = None
        self._remaining = 0  # LENGTH: octets still due
        self._close = False  # close the connection once the current message is sent
        self._no_body_head = False  # NO_BODY because the request was HEAD (drop data)

    @property
    def stream_id(self) -> int:
        """The stream being sent (or sent last)."""
        return self._sid

    # --- dispatch ------------------------------------------------------------------------------

    def send(self, frame: object, request_id: int | None) -> Buffers:
        if self.state is _UPGRADE_PENDING:
            self._settle_upgrade()
        if isinstance(frame, DataFrame):
            sid = frame.stream_id if request_id is None else request_id
            return self._data(sid, frame.data, frame.end_stream)
        if isinstance(frame, Frame):
            rid = frame.request_id if request_id is None else request_id
            if self.state is not _IDLE:
                raise _error(self._busy(rid))
            if self.server:
                return self._response(frame, rid)
            return self._request(frame, rid)
        if isinstance(frame, TrailersFrame):
            sid = frame.stream_id if request_id is None else request_id
            return self._trailers(sid, frame.trailers)
        if isinstance(frame, ResetFrame):
            # HTTP/1.1 can only abort a message by closing the connection.
            self._finish_connection()
            return []
        raise _error(f"cannot send {type(frame).__name__}")

    def _busy(self, rid: int) -> str:
        if self.state is _DONE:
            return "the connection is closing: no further message may be sent"
        return f"stream {self._sid} is still being sent ({self.state.value}); cannot start {rid}"

    # --- heads ---------------------------------------------------------------------------------

    def _response(self, frame: Frame, rid: int) -> Buffers:
        if frame.stream_type is not StreamType.RESPONSE:
            raise _error(f"the server role sends responses, not {frame.stream_type.name}")
        exchanges = self.shared.exchanges
        if not exchanges:
            raise _error(f"no request is waiting for a response (stream {rid})")
        exch = exchanges[0]
        if rid != exch.id:
            # RFC 9112 §9.3.2: responses go in request order; the proxy queues them.
            raise _error(f"response to stream {rid} before the one to stream {exch.id}")
        head = OutHead(frame.headers)
        status = response_status(frame, head)
        start = _STATUS_LINES[status]
        if status < 200 and status != 101:  # interim (RFC 9110 §15.2)
            if exch.http10:
                return []  # never sent to an HTTP/1.0 client (RFC 9110 §15.2)
            return [
                encode_head(start, head.lines, head.conn_lines(), RESPONSE_HEAD, 1, head.plain)
            ]
        if status == 101 and not exch.upgrade:
            raise _error(f"101 for stream {rid}, whose request asked for no upgrade")
        if status == 101 or (exch.connect and status < 300):  # tunnel (RFC 9110 §7.8, §9.3.6)
            if not exch.rx_done:
                raise _error("switching protocols before the whole request was received")
            out = encode_head(start, head.lines, head.conn_lines(), RESPONSE_HEAD, 1, head.plain)
            exchanges.popleft()
            exch.tunnel = True
            self._begin(rid, exch, _TUNNEL)
            self.shared.must_close = True
            self.rx.upgrade_decided(exch, True)
            return [out]
        conn = head.conn_tokens() if head.conn else _NO_TOKENS
        close = exch.close or "close" in conn
        body = frame.body
        framing: list[str] = []
        if exch.head or status in NO_BODY_STATUS:
            if body and not exch.head:
                raise _error(f"a {status} response has no body (RFC 9110 §15.3.5, §15.4.5)")
            if status != 204:
                if head.cl is not None:
                    framing.append(f"content-length: {head.cl}\r\n")
                if head.te is not None:
                    framing.append(f"transfer-encoding: {head.te}\r\n")
            state = _NO_BODY
            self._no_body_head = exch.head
            body = b""
        elif frame.end_stream:
            state = self._whole(head, body, framing, exch.http10, True)
        else:
            state = self._streamed(head, framing, exch.http10)
            close = close or state is _UNTIL_CLOSE
        if close:
            framing.append("connection: close\r\n")
        elif exch.http10:
            framing.append("connection: keep-alive\r\n")  # RFC 9112 §9.3 (HTTP/1.0)
        elif head.conn:
            framing.extend(head.conn_lines())
        out = encode_head(start, head.lines, framing, RESPONSE_HEAD, 1, head.plain)
        if exch.upgrade or exch.connect:  # (wants_tunnel)
            self.rx.upgrade_decided(exch, False)
        self._close = close
        if close:
            self.shared.must_close = True
        return self._start(rid, exch, state, out, body, frame.end_stream)

    def _request(self, frame: Frame, rid: int) -> Buffers:
        if frame.stream_type is StreamType.RESPONSE:
            raise _error("the client role sends requests, not RESPONSE")
        head = OutHead(frame.headers)
        pseudo = head.pseudo
        method = pseudo.get(":method")
        if not method:
            raise _error("a request needs :method")
        authority = pseudo.get(":authority")
        if authority is None:
            authority = head.host
        elif head.host is not None and head.host != authority:
            raise _error(f"Host {head.host!r} contradicts :authority {authority!r}")
        connect = method == "CONNECT"
        target = authority if connect else pseudo.get(":path")
        if not target:
            raise _error("CONNECT needs :authority" if connect else "a request needs :path")
        conn = head.conn_tokens() if head.conn else _NO_TOKENS
        upgrade = connect or ("upgrade" in conn and head.upgrade)
        start = f"{method} {target} HTTP/1.1\r\nhost: {authority or ''}\r\n"
        body = frame.body
        framing: list[str] = []
        if upgrade:
            # The head goes out with no body framing unless it declares Content-Length;
            # what follows is tunnel data, sent once the response agreed (RFC 9110 §7.8).
            if head.chunked():
                raise _error("an Upgrade/CONNECT request with a chunked body is not supported")
            cl = head.content_length()
            if cl is None and body and frame.end_stream:
                cl = len(body)
            if cl:
                framing.append(f"content-length: {cl}\r\n")
            elif body:
                raise _error("an Upgrade/CONNECT request body needs Content-Length")
            state = _LENGTH if cl else _UPGRADE_PENDING
            self._remaining = cl or 0
        elif frame.end_stream:
            state = self._whole(head, body, framing, False, method in BODY_METHODS)
        else:
            state = self._streamed(head, framing, False)
        if head.conn:
            framing.extend(head.conn_lines())
        plain = head.plain and is_token(method) and plain_target(target)
        out = encode_head(start, head.lines, framing, REQUEST_HEAD, 2, plain)
        exch = Exchange(rid, method, upgrade=upgrade)
        self.shared.exchanges.append(exch)
        self._close = "close" in conn
        if self._close:
            self.shared.must_close = True
        return self._start(rid, exch, state, out, body, frame.end_stream)

    def _whole(
        self, head: OutHead, body: Body, framing: list[str], http10: bool, zero: bool
    ) -> TxState:
        """Framing for a message whose whole body is ``body`` (``zero``: say 0 when empty)."""
        n = len(body)
        cl = head.content_length()
        if head.chunked() and not http10:
            framing.append(f"transfer-encoding: {head.te}\r\n")
            return _CHUNKED
        if cl is not None and cl != n:
            raise _error(f"body of {n} octets but Content-Length {cl}")
        if n or cl is not None or zero:
            framing.append(f"content-length: {n}\r\n")
        self._remaining = n
        return _LENGTH

    def _streamed(self, head: OutHead, framing: list[str], http10: bool) -> TxState:
        """Framing for a message whose body follows in DataFrames."""
        cl = head.content_length()
        chunked = head.chunked()
        if cl is not None:
            framing.append(f"content-length: {cl}\r\n")
            self._remaining = cl
            return _LENGTH
        if http10:
            return _UNTIL_CLOSE  # HTTP/1.0 has no chunked (RFC 9112 §7.1)
        framing.append(f"transfer-encoding: {head.te if chunked else 'chunked'}\r\n")
        return _CHUNKED

    def _start(
        self, sid: int, exch: Exchange, state: TxState, out: bytes, body: Body, end: bool
    ) -> Buffers:
        """Enter ``state`` for stream ``sid``: the head plus whatever body came with it."""
        self._begin(sid, exch, state)
        if state is _UPGRADE_PENDING or not (body or end):
            return [out]
        rest = self._data(sid, body, end)
        if rest and type(rest[0]) is bytes and len(rest[0]) + len(out) <= 1024:
            rest[0] = out + rest[0]  # a small first piece travels in the head's buffer
            return rest
        return [out, *rest]

    def _begin(self, sid: int, exch: Exchange, state: TxState) -> None:
        self._sid = sid
        self._exch = exch
        self.state = state

    # --- bodies ---------------------------------------------------------------------------------

    def _data(self, sid: int, data: Body, end: bool) -> Buffers:
        state = self.state
        if sid != self._sid or state is _IDLE or state is _DONE:
            if sid == self._last and not data and end:
                return []  # a late end-of-stream for a message already complete
            if state is _IDLE or state is _DONE:
                raise _error(f"stream {sid} has no message being sent")
            raise _error(f"data for stream {sid} while sending stream {self._sid}")
        n = len(data)
        out: Buffers
        if state is _CHUNKED:
            if n:
                last = _CRLF_LAST_CHUNK if end else _CRLF
                out = [b"%x\r\n" % n, _own(data), last]  # zero-copy chunk (RFC 9112 §7.1)
            else:
                out = [_LAST_CHUNK] if end else []
        elif state is _LENGTH:
            remaining = self._remaining - n
            if remaining < 0:
                raise _error(f"{-remaining} octets beyond Content-Length on stream {sid}")
            if end and remaining:
                raise _error(f"stream {sid} ended {remaining} octets short of Content-Length")
            self._remaining = remaining
            out = [_own(data)] if n else []
            exch = self._exch
            if not remaining and not self.server and exch is not None and exch.wants_tunnel:
                self.state = _UPGRADE_PENDING  # the Upgrade request's own body is out
                self._settle_upgrade()
                return out
        elif state is _UNTIL_CLOSE or state is _TUNNEL:
            out = [_own(data)] if n else []
            if end and state is _TUNNEL:
                self._finish_connection(stop_reading=False)
                return out
        elif state is _NO_BODY:
            if n and not self._no_body_head:
                raise _error(f"stream {sid}: this response has no body")
            out = []  # a response to HEAD never carries content (RFC 9110 §9.3.2)
        else:  # UPGRADE_PENDING: send() settled it already if the response is in
            if n:
                raise _error(f"stream {sid}: no tunnel yet (waiting for 101 / 2xx)")
            return []
        if end:
            self._complete()
        return out

    def _trailers(self, sid: int, trailers: Mapping[str, str]) -> Buffers:
        state = self.state
        if sid != self._sid or state not in _TRAILER_STATES:
            raise _error(f"stream {sid} cannot take trailers now ({state.value})")
        if state is _LENGTH and self._remaining:
            raise _error(f"trailers {self._remaining} octets short of Content-Length")
        if state is not _CHUNKED:
            self._complete()  # only chunked carries trailers; dropped otherwise (as Envoy)
            return []
        head = OutHead(trailers)
        if head.cl is not None or head.te is not None or head.conn or head.pseudo:
            raise _error("trailers may not carry framing or pseudo fields (RFC 9110 §6.5.1)")
        block = encode_head("0\r\n", head.lines, [], LAST_CHUNK_TRAILERS, 1, head.plain)
        self._complete()
        return [block]

    # --- ends ----------------------------------------------------------------------------------

    def _complete(self) -> None:
        """The current message is fully sent."""
        exch = self._exch
        self._last = self._sid
        if not self.server:
            self.state = _DONE if self._close else _IDLE
            return
        assert exch is not None
        self.shared.exchanges.popleft()
        if self._close or not exch.rx_done:
            # a request still arriving after its response cannot be skipped reliably
            self._finish_connection()
        else:
            self.state = _IDLE

    def _settle_upgrade(self) -> None:
        """CLIENT, UPGRADE_PENDING: has the response decided yet?"""
        exch = self._exch
        assert exch is not None
        if exch.tunnel:
            self.state = _TUNNEL
        elif exch.answered:
            self._last = self._sid
            self.state = _DONE if self._close else _IDLE

    def _finish_connection(self, stop_reading: bool = True) -> None:
        """Nothing more may be sent; a SERVER also stops reading (RFC 9112 §9.6) unless
        only the send side of a tunnel ended (half-close: the peer may go on sending)."""
        self.state = _DONE
        self.shared.must_close = True
        if self.server and stop_reading:
            self.rx.close_input()
