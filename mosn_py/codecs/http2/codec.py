"""``Http2Codec``: the sans-IO HTTP/2 codec (RFC 9113), a thin adapter over python-hyper h2.

One codec per connection and role (``mosn_py.codecs.base``, streaming section)::

    Role.SERVER (downstream)  accepts the client preface (h2c prior knowledge, RFC 9113
                              §3.3), decodes requests, encodes responses
    Role.CLIENT (upstream)    sends the preface, encodes requests, decodes responses

Call sequence::

    codec = Http2Codec(Role.SERVER)
    transport.writelines(codec.initiate())        # SETTINGS (client: preface + SETTINGS)
    codec.receive_data(chunk)                     # b"" = EOF
    while (ev := codec.next_event()) is not NEED_DATA:
        ...                                       # Frame / DataFrame / TrailersFrame /
                                                  # ResetFrame / ConnectionEvent
    transport.writelines(codec.data_to_send())    # after every receive/pull cycle
    transport.writelines(codec.send(frame))       # send() returns everything queued

``data_to_send()`` matters: h2 answers SETTINGS and PING itself (§6.5.3, §6.7), the codec
hands back flow-control credit (WINDOW_UPDATE, §6.9) and, when a WINDOW_UPDATE arrives,
frames body data that was waiting for it. All of that is output produced while *receiving*.
Every method that returns buffers drains the same queue, so bytes always leave in the order
h2 produced them (HPACK state depends on it, RFC 7541 §2.2).

Events (``inbound.py``): per stream a head ``Frame`` (pseudo-headers kept as received,
``Frame.status`` on responses, ``grpc-timeout`` as ``timeout_ms``), ``DataFrame``s, maybe a
``TrailersFrame``; or a ``ResetFrame`` (peer RST_STREAM, a limit, a GOAWAY not covering it).

End-to-end flow control (§5.2, §6.9). DATA is never acknowledged on decode. The stream's
window reopens only when the consumer calls ``consumed(stream_id, n)`` -- typically after
the other side's transport accepted those bytes. A slow reader behind the proxy therefore
keeps *its* stream's window shut and the sender here stalls, instead of the proxy buffering
without bound. The connection-level window is handed back at decode time, so one stalled
stream never blocks the others; what the codec and its consumer can hold unread is bounded
by ``MAX_CONCURRENT_STREAMS x INITIAL_WINDOW_SIZE`` (6.25 MiB with the defaults).

Sending: ``send(frame)`` never refuses for lack of window. Body bytes that do not fit the
peer's windows or frame size stay queued in the codec, per stream (copied only if they view
a mutable buffer), and go out through ``data_to_send()`` when WINDOW_UPDATE arrives.
``pending(stream_id)`` and ``pending_total`` report them so the proxy can stop reading the
other side above a watermark. Stream ids: the CLIENT role assigns them (odd, increasing,
§5.1.1): ``send_request(frame) -> (stream_id, buffers)``; ``send(request)`` does the same
and ``next_stream_id`` tells beforehand which id it will take.

GOAWAY (§6.8) is graceful both ways: the streams it keeps (ids up to its last stream id)
finish normally; ``goaway()`` refuses new inbound streams above the id with REFUSED_STREAM;
a received GOAWAY is ``ConnectionEvent.GOAWAY`` (``goaway_last_stream_id``,
``goaway_error_code``), after which ``send_request`` raises.

Errors: a connection error from the peer (bad preface, bad frame, HPACK, flow-control
overrun, CONTINUATION flood) raises ``RemoteProtocolError`` with ``wire_code`` = the h2
error code; the GOAWAY that reports it is in ``data_to_send()`` and the codec is in ERROR.
A send h2 refuses raises ``LocalProtocolError`` (stream already closed or reset, illegal
headers, too many streams) and has no effect on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from h2.errors import ErrorCodes
from h2.exceptions import H2Error, TooManyStreamsError
from h2.settings import SettingCodes

from mosn_py.codecs.base import (
    NEED_DATA,
    CodecLimits,
    CodecState,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    MatchResult,
    PoolMode,
    ResetFrame,
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http2 import wire
from mosn_py.codecs.http2.connection import ProxyH2Connection
from mosn_py.codecs.http2.inbound import Inbound
from mosn_py.codecs.http2.replies import local_reply
from mosn_py.codecs.http2.streams import Outbox, StreamState
from mosn_py.codecs.http2.wire import PROTOCOL
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

_DEFAULT_LIMITS = CodecLimits()
_OutFrame = Frame | DataFrame | TrailersFrame | ResetFrame
_MAX_STREAM_ID = 2**31 - 1


# CodecState.OPEN: decoding; CLOSED: EOF at a frame boundary (next_event() keeps returning
# CLOSED); ERROR: a connection error (next_event() keeps raising).
_OPEN = CodecState.OPEN
_CLOSED = CodecState.CLOSED
_ERROR = CodecState.ERROR


class Http2Codec:
    """HTTP/2 codec for one connection (see the module docstring)."""

    protocol: ClassVar[str] = PROTOCOL
    pool_mode: ClassVar[PoolMode] = PoolMode.MULTIPLEX

    __slots__ = (
        "_eof",
        "_error",
        "_events",
        "_h2",
        "_in",
        "_inbuf",
        "_out",
        "_server",
        "_state",
        "limits",
        "role",
    )

    def __init__(
        self,
        role: Role,
        *,
        limits: CodecLimits = _DEFAULT_LIMITS,
        settings: Mapping[int, int] | None = None,
    ) -> None:
        """``settings`` overrides the SETTINGS we advertise (``wire.local_settings``);
        raises ``ValueError`` for one the codec cannot honour."""
        self.role = role
        self.limits = limits
        self._server = role is Role.SERVER
        base: dict[int, int] = {SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams}
        values = wire.local_settings(limits.max_header_size, {**base, **(settings or {})})
        self._h2 = ProxyH2Connection(client_side=not self._server, settings=values)
        self._h2.start()
        self._out = Outbox(self._h2)
        header_limit = values[SettingCodes.MAX_HEADER_LIST_SIZE]
        self._in = Inbound(self._h2, self._out, limits, header_limit, self._server)
        self._events = self._in.events
        self._inbuf = bytearray()
        self._eof = False
        self._state = _OPEN
        self._error: RemoteProtocolError | None = None

    # --- start ---------------------------------------------------------------------------

    def initiate(self) -> list[bytes]:
        """The bytes to write before anything else: the client preface and SETTINGS
        (CLIENT) or SETTINGS (SERVER, §3.4), plus the connection WINDOW_UPDATE."""
        return self.data_to_send()

    @classmethod
    def match(cls, prefix: bytes | bytearray | memoryview) -> MatchResult:
        """Sniff the client preface (``wire.match``)."""
        return wire.match(prefix)

    # --- receiving -----------------------------------------------------------------------

    @property
    def state(self) -> CodecState:
        return self._state

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of ``data``; ``b""`` means EOF. Decoding happens in
        ``next_event()``. Data after EOF raises ``RuntimeError``; in ERROR it is dropped."""
        if self._state is not _OPEN:
            if self._state is _ERROR or not data:
                return
            raise RuntimeError("receive_data() after EOF")
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("receive_data() after EOF")
        self._inbuf += data

    def next_event(self) -> Frame | DataFrame | TrailersFrame | ResetFrame | ConnectionEvent | Any:
        """The next event, ``ConnectionEvent.CLOSED`` after EOF, or ``NEED_DATA``.

        Decodes at most ``wire.FEED_CHUNK`` buffered bytes per step, only when no event is
        waiting, so a consumer that stops pulling stops decoding. Raises
        ``RemoteProtocolError`` (state ERROR, GOAWAY queued in ``data_to_send()``) on a
        connection error or EOF inside a frame; every later call raises again.
        """
        events = self._events
        while not events:
            if self._state is not _OPEN:
                if self._state is _CLOSED:
                    return ConnectionEvent.CLOSED
                raise self._again()
            if self._inbuf:
                self._feed()
            elif self._eof:
                if self._h2.mid_frame():
                    raise self._fail("connection closed inside a frame", ErrorCodes.PROTOCOL_ERROR)
                self._state = _CLOSED
                return ConnectionEvent.CLOSED
            else:
                return NEED_DATA
        return events.popleft()

    def data_to_send(self) -> list[bytes]:
        """Everything h2 has queued for the wire (control frames, acks, flushed DATA).

        Call it after each ``receive_data``/``next_event`` cycle and after ``consumed()``;
        ``send()`` / ``goaway()`` return the same queue.
        """
        data = self._h2.data_to_send()
        return [data] if data else []

    def consumed(self, stream_id: int, n: int) -> None:
        """The consumer has used ``n`` octets of ``stream_id``'s DATA: reopen that much of
        the stream's receive window (WINDOW_UPDATE in ``data_to_send()``, sent when h2
        judges it worthwhile). More than was delivered is capped; unknown or finished
        streams are ignored."""
        st = self._out.get(stream_id)
        if st is None or n <= 0:
            return
        n = min(n, st.unacked)
        st.unacked -= n
        self._h2.ack_stream(stream_id, n)

    def _feed(self) -> None:
        inbuf = self._inbuf
        if len(inbuf) <= wire.FEED_CHUNK:
            data = bytes(inbuf)
            inbuf.clear()
        else:
            data = bytes(inbuf[: wire.FEED_CHUNK])
            del inbuf[: wire.FEED_CHUNK]
        try:
            events = self._h2.receive_data(data)
        except H2Error as exc:
            code = getattr(exc, "error_code", ErrorCodes.PROTOCOL_ERROR)
            raise self._fail(f"HTTP/2 connection error: {exc}", code) from None
        self._in.translate(events)

    def _fail(self, msg: str, code: int) -> RemoteProtocolError:
        h2 = self._h2
        # h2 queues GOAWAY for frame errors itself; not for a bad preface or our EOF check
        if not h2.closed:
            h2.close_connection(code, last_stream_id=h2.highest_inbound_stream_id)
        self._state = _ERROR
        self._inbuf = bytearray()
        self._events.clear()
        err = RemoteProtocolError(
            msg, protocol=PROTOCOL, status_hint=ProxyStatus.CODEC_ERROR, wire_code=int(code)
        )
        self._error = err
        return err

    def _again(self) -> RemoteProtocolError:
        err = self._error
        assert err is not None
        return RemoteProtocolError(
            f"codec is in ERROR state: {err}",
            protocol=PROTOCOL,
            status_hint=err.status_hint,
            wire_code=err.wire_code,
        )

    # --- sending -------------------------------------------------------------------------

    def send(self, frame: _OutFrame, request_id: int | None = None) -> list[bytes]:
        """Queue ``frame`` and return every buffer h2 has for the wire.

        - head ``Frame``: HEADERS; with ``body`` also DATA and with ``trailers`` a final
          HEADERS, so a local reply is one call. SERVER sends responses on stream
          ``request_id`` (default ``frame.request_id``), which must be an open stream whose
          head was decoded; CLIENT sends requests on a new stream (see ``send_request``).
        - ``DataFrame``: DATA; what exceeds the windows waits in ``pending()``.
        - ``TrailersFrame``: HEADERS with END_STREAM, after any pending DATA.
        - ``ResetFrame``: RST_STREAM; a no-op for a stream already gone (races are normal).

        ``request_id``, when given, overrides the frame's stream id. Raises
        ``LocalProtocolError`` (nothing sent) for the wrong direction, a stream that is not
        open for sending, illegal headers, or a request h2 refuses (too many streams:
        ``status_hint=UPSTREAM_OVERFLOW``; after GOAWAY: ``UPSTREAM_RESET``).
        """
        if isinstance(frame, DataFrame):
            sid = frame.stream_id if request_id is None else request_id
            st = self._sendable(sid)
            self._guard(sid, self._out.queue_data, st, frame.data, frame.end_stream)
            self._guard(sid, self._out.flush, st)
            self._out.settle(self._server)
        elif isinstance(frame, Frame):
            self._send_head(frame, request_id)
        elif isinstance(frame, TrailersFrame):
            sid = frame.stream_id if request_id is None else request_id
            st = self._sendable(sid)
            flags = wire.CLIENT_TRAILERS if not self._server else wire.SERVER_TRAILERS
            trailers = self._guard(sid, wire.encode_headers, frame.trailers, flags)
            self._out.queue_trailers(st, trailers)
            self._guard(sid, self._out.flush, st)
            self._out.settle(self._server)
        elif isinstance(frame, ResetFrame):
            sid = frame.stream_id if request_id is None else request_id
            if not 0 <= frame.code <= 0xFFFFFFFF:
                raise LocalProtocolError(
                    f"error code {frame.code} does not fit 32 bits",
                    protocol=PROTOCOL,
                    request_id=sid,
                )
            if self._out.drop(sid) is not None:
                try:
                    self._h2.reset_stream(sid, frame.code)
                except H2Error:
                    pass  # h2 already closed it (the peer's reset is on its way to us)
        else:
            raise LocalProtocolError(f"cannot send {type(frame).__name__}", protocol=PROTOCOL)
        return self.data_to_send()

    def send_request(self, frame: Frame) -> tuple[int, list[bytes]]:
        """CLIENT: send a request head (with its body/trailers if any) on a new stream.

        Returns ``(stream_id, buffers)``; later ``DataFrame``/``TrailersFrame``/
        ``ResetFrame``s for this request use ``stream_id``.
        """
        sid = self._send_head(frame, None)
        return sid, self.data_to_send()

    @property
    def next_stream_id(self) -> int:
        """The stream id the next request will get (CLIENT)."""
        return self._h2.get_next_available_stream_id()

    def _sendable(self, sid: int) -> StreamState:
        st = self._out.get(sid)
        if st is None or not st.head_sent or st.send_closed:
            what = "not open" if st is None else "ended" if st.head_sent else "without a head"
            raise LocalProtocolError(
                f"stream {sid} is {what}: nothing can be sent on it",
                protocol=PROTOCOL,
                wire_code=int(ErrorCodes.STREAM_CLOSED),
                request_id=sid,
            )
        return st

    def _guard(self, sid: int, fn: Any, *args: Any) -> Any:
        """Call ``fn``; h2's refusals and bad header characters become LocalProtocolError."""
        try:
            return fn(*args)
        except (H2Error, ValueError, UnicodeError) as exc:
            overflow = isinstance(exc, TooManyStreamsError)
            raise LocalProtocolError(
                f"cannot send on stream {sid}: {exc}",
                protocol=PROTOCOL,
                status_hint=ProxyStatus.UPSTREAM_OVERFLOW if overflow else ProxyStatus.CODEC_ERROR,
                wire_code=int(getattr(exc, "error_code", ErrorCodes.PROTOCOL_ERROR)),
                request_id=sid,
            ) from None

    def _send_head(self, frame: Frame, request_id: int | None) -> int:
        response = frame.stream_type is StreamType.RESPONSE
        if response is not self._server:
            want = "responses" if self._server else "requests"
            raise LocalProtocolError(
                f"{self.role.value} role sends {want}, not {frame.stream_type.name}",
                protocol=PROTOCOL,
            )
        h2 = self._h2
        st: StreamState | None
        if response:
            sid = frame.request_id if request_id is None else request_id
            st = self._out.get(sid)
            if st is None or st.head_sent:
                what = "not open" if st is None else "already answered"
                raise LocalProtocolError(
                    f"stream {sid} is {what}",
                    protocol=PROTOCOL,
                    wire_code=int(ErrorCodes.STREAM_CLOSED),
                    request_id=sid,
                )
            headers: Mapping[str, str] = frame.headers
            items = headers.items_all() if isinstance(headers, HeaderList) else ()
            # (pseudo-headers come first: the usual head needs no index built to say so)
            if not (items and items[0][0] == ":status") and ":status" not in headers:
                headers = HeaderList([(":status", str(frame.status)), *wire.items(headers)])
            flags = wire.RESPONSE_HEAD
        else:
            if h2.remote_goaway is not None:
                raise LocalProtocolError(
                    "the peer sent GOAWAY: no new streams on this connection (RFC 9113 §6.8)",
                    protocol=PROTOCOL,
                    status_hint=ProxyStatus.UPSTREAM_RESET,
                )
            sid = h2.get_next_available_stream_id() if request_id is None else request_id
            if not 0 < sid <= _MAX_STREAM_ID:
                raise LocalProtocolError(f"stream id {sid} out of range", protocol=PROTOCOL)
            st = None
            headers = frame.headers
            flags = wire.REQUEST_HEAD
        encoded = self._guard(sid, wire.encode_headers, headers, flags)
        trailers = None
        if frame.trailers:
            tflags = wire.SERVER_TRAILERS if self._server else wire.CLIENT_TRAILERS
            trailers = self._guard(sid, wire.encode_headers, frame.trailers, tflags)
        body = frame.body
        end_on_head = frame.end_stream and not body and trailers is None
        self._guard(sid, h2.send_headers, sid, encoded, end_on_head)
        if st is None:
            st = self._out.open(sid)
        st.head_sent = True
        if end_on_head:
            st.local_ended = True
            self._out.ended.append(st)
        else:
            if body:
                self._out.queue_data(st, body, frame.end_stream and trailers is None)
            if trailers is not None:
                self._out.queue_trailers(st, trailers)
            self._guard(sid, self._out.flush, st)
        self._out.settle(self._server)
        return sid

    # --- flow-control state, GOAWAY, replies ---------------------------------------------

    def pending(self, stream_id: int) -> int:
        """Body octets of ``stream_id`` accepted by ``send()`` and not yet framed."""
        st = self._out.get(stream_id)
        return 0 if st is None else st.pending

    @property
    def pending_total(self) -> int:
        """Body octets waiting for flow-control credit, over all streams."""
        return self._out.pending_total

    @property
    def active_streams(self) -> int:
        """Streams the application knows that have not finished both ways nor been reset
        (a drain is over when this reaches 0)."""
        return len(self._out.streams)

    @property
    def can_open_stream(self) -> bool:
        """CLIENT: may a new request go on this connection now (no GOAWAY received, below
        the peer's SETTINGS_MAX_CONCURRENT_STREAMS)?"""
        h2 = self._h2
        if h2.remote_goaway is not None or self._state is _ERROR:
            return False
        return h2.open_outbound_streams < h2.remote_settings.max_concurrent_streams

    @property
    def rejected_heads(self) -> int:
        """Request heads answered with 431 by the codec itself (never surfaced)."""
        return self._in.rejected_heads

    @property
    def refused_streams(self) -> int:
        """Streams refused with REFUSED_STREAM (over the limit or above our GOAWAY)."""
        return self._h2.refused_streams

    @property
    def goaway_received(self) -> bool:
        return self._h2.remote_goaway is not None

    @property
    def goaway_last_stream_id(self) -> int | None:
        """Last stream id of the peer's (latest) GOAWAY; None if none was received."""
        ev = self._h2.remote_goaway
        return None if ev is None else ev.last_stream_id

    @property
    def goaway_error_code(self) -> int | None:
        """Error code of the peer's (latest) GOAWAY (0 = NO_ERROR, a graceful drain)."""
        ev = self._h2.remote_goaway
        return None if ev is None else int(ev.error_code or 0)

    def goaway(self, last_stream_id: int | None = None, code: int = 0) -> list[bytes]:
        """Send GOAWAY (RFC 9113 §6.8) and return the buffers to write.

        ``last_stream_id`` defaults to the highest stream the peer opened; streams up to it
        finish normally, new ones above it are refused (REFUSED_STREAM). For a graceful
        drain send ``goaway(2**31 - 1)`` first, then ``goaway()`` one RTT later (§6.8), and
        close once ``active_streams`` is 0. ``code`` != 0 signals an error: close after
        writing. The id may never increase (``LocalProtocolError``). After a connection
        error the GOAWAY is already queued and this only drains ``data_to_send()``.
        """
        h2 = self._h2
        if self._state is _ERROR or h2.closed:
            return self.data_to_send()
        last = h2.highest_inbound_stream_id if last_stream_id is None else last_stream_id
        if not 0 <= last <= _MAX_STREAM_ID or not 0 <= code <= 0xFFFFFFFF:
            raise LocalProtocolError(f"GOAWAY({last}, {code}) out of range", protocol=PROTOCOL)
        if h2.local_goaway is not None and last > h2.local_goaway:
            raise LocalProtocolError(
                f"GOAWAY last stream id may not increase ({h2.local_goaway} -> {last}, §6.8)",
                protocol=PROTOCOL,
            )
        h2.send_goaway(last, code)
        return self.data_to_send()

    def local_reply(self, request: Frame, status: ProxyStatus, message: str = "") -> Frame:
        """A response to ``request`` telling ``status``: Trailers-Only gRPC for gRPC calls,
        an HTTP status with a text body otherwise (tables in ``replies.py``/``grpc.py``).
        ``send()`` it as one frame."""
        return local_reply(request, status, message)
