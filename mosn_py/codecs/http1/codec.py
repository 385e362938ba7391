"""``Http1Codec``: the sans-IO HTTP/1.1 codec (RFC 9112) over httptools/llhttp.

One codec per connection and role (``mosn_py.codecs.base``)::

    Role.SERVER (downstream)  parses requests, sends responses
    Role.CLIENT (upstream)    sends requests, parses responses

Events, per stream (the base module's streaming contract): a head ``Frame`` (``headers`` a
``HeaderList`` with pseudo-headers first, ``extra`` an ``Http1Extra``), zero or more
``DataFrame``, optionally one ``TrailersFrame`` (chunked only); the last has
``end_stream=True``. Streams are numbered 1, 2, 3 ... per connection in pipeline order
(SERVER); a CLIENT codec's responses carry the id each request was sent with.

Decisions this codec makes (and the proxy relies on):

- **Interim responses** (1xx but 101, RFC 9110 §15.2) are their own RESPONSE ``Frame`` with
  ``end_stream=False`` and ``extra.interim=True``; the final head of the same stream follows.
  ``send()`` of a 1xx writes just its head and keeps the request unanswered; to an HTTP/1.0
  client it writes nothing (§15.2 forbids it). ``Expect: 100-continue`` is surfaced as
  ``extra.expect_continue``; the codec never answers it itself.
- **Ordering** (RFC 9112 §9.3.2): the SERVER codec parses pipelined requests back to back,
  but ``send()`` of a response head whose id is not the oldest unanswered request raises
  ``LocalProtocolError``: the proxy queues later responses until earlier ones are sent.
  A response must be complete (end_stream) before the next head is sent.
- **Closing**: ``must_close`` turns True as soon as the codec knows the connection carries
  no exchange after the current one: ``Connection: close`` either way, HTTP/1.0 without
  keep-alive, a close-delimited body, a tunnel, an error, a sent ``ResetFrame``, or a
  response completed before its request was (the rest of that request cannot be skipped
  safely). The glue then closes once the current exchange ends: SERVER after writing the
  response's last buffers, CLIENT after the response's ``end_stream`` (never pool it again).
  SERVER: once such a response is sent, queued events are dropped and input is ignored
  (RFC 9112 §9.6). ``ConnectionEvent.CLOSED`` reports the peer's EOF.
- **Tunnels** (Upgrade, RFC 9110 §7.8; CONNECT, §9.3.6): the request head has
  ``extra.upgrade=True`` and ``end_stream=False``; the SERVER codec then holds further
  input until the proxy sends the response (or calls ``refuse_upgrade``). A 101 (or 2xx
  to CONNECT) switches both directions to tunnel mode: every byte is a ``DataFrame`` of
  that stream, EOF becomes ``DataFrame(b"", end_stream=True)``; a sent ``end_stream`` is
  a half-close (``must_close``; the codec keeps delivering what the peer still sends
  until its EOF).
  Any other final response ends the request side with ``DataFrame(b"", end_stream=True)``
  and parsing resumes. CLIENT mirrors this: the upstream's 101/2xx head has
  ``end_stream=False`` and tunnel bytes follow; ``send()`` of tunnel data before that
  raises ``LocalProtocolError``.
- **Whole messages**: a head ``Frame`` with a non-empty ``body`` and ``end_stream=True`` is
  a whole message; ``send()`` emits head + body (``Content-Length``) at once (local replies).
- **Truncation**: EOF inside a body yields ``ResetFrame`` for that stream; a CLIENT codec
  also resets every request still without a response. EOF inside a SERVER request head is
  a ``RemoteProtocolError`` (400).

Errors: bad input raises ``RemoteProtocolError`` from ``next_event()`` after the events
decoded before it. SERVER: ``status_hint=CODEC_ERROR``, ``wire_code`` the status to answer
(400 malformed or smuggling-prone, 413 body over ``max_body_size``, 431 head over
``max_header_size``/``max_header_count``, 505 version); ``error_reply()`` builds that answer.
CLIENT: ``status_hint=UPSTREAM_RESET``, ``wire_code=502`` (Envoy's "upstream protocol error";
``ProxyStatus`` has no closer member).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mosn_py.codecs.base import (
    NEED_DATA,
    CodecLimits,
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
from mosn_py.codecs.http1.decoder import Decoder
from mosn_py.codecs.http1.encoder import Encoder
from mosn_py.codecs.http1.states import RxState, TxState
from mosn_py.codecs.http1.wire import (
    CLOSING_STATUSES,
    DEFAULT_MESSAGES,
    PROTOCOL,
    STATUS_TEXT,
    Exchange,
    Http1Extra,
    Shared,
    http_status_for,
)
from mosn_py.codecs.http1.wire import match as _match
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

_DEFAULT_LIMITS = CodecLimits()
OutFrame = Frame | DataFrame | TrailersFrame | ResetFrame


class Http1Codec:
    """HTTP/1.1 codec for one connection. See the module docstring for the decisions."""

    protocol: ClassVar[str] = PROTOCOL
    pool_mode: ClassVar[PoolMode] = PoolMode.PINGPONG

    __slots__ = ("_rx", "_shared", "_tx", "limits", "role")

    def __init__(
        self, role: Role, *, limits: CodecLimits = _DEFAULT_LIMITS, scheme: str = "http"
    ) -> None:
        """``scheme`` is what decoded requests carry as ``:scheme`` ("https" behind TLS)."""
        self.role = role
        self.limits = limits
        server = role is Role.SERVER
        self._shared = Shared()
        self._rx = Decoder(server, limits, self._shared, scheme)
        self._tx = Encoder(server, self._shared, self._rx)

    # --- state -------------------------------------------------------------------------------

    @property
    def state(self) -> RxState:
        """The receive state (``RxState``): ERROR after a ``RemoteProtocolError``."""
        return self._rx.state

    @property
    def send_state(self) -> TxState:
        return self._tx.state

    @property
    def must_close(self) -> bool:
        """True once no exchange may follow the current one (see the module docstring)."""
        return self._shared.must_close

    @property
    def buffered(self) -> int:
        """Received octets not decoded yet (held for a tunnel decision or paused)."""
        return self._rx.buffered

    @property
    def pending(self) -> int:
        """Requests without a complete response (SERVER: received; CLIENT: sent)."""
        return len(self._shared.exchanges)

    @property
    def is_idle(self) -> bool:
        """No exchange in progress: a CLIENT connection may go back to its pool."""
        return (
            not self._shared.exchanges
            and self._tx.state is TxState.IDLE
            and self._rx.state is RxState.HEAD
            and not self._rx.events
            and not self._shared.must_close
        )

    # --- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take ``data`` (decoded now; nothing of the caller's buffer is kept). ``b""``: EOF.

        Data after EOF raises ``RuntimeError``; in ERROR data is dropped.
        """
        self._rx.receive(data)

    def next_event(self) -> Any:
        """The next ``Frame``/``DataFrame``/``TrailersFrame``/``ResetFrame``, a
        ``ConnectionEvent.CLOSED`` (then forever), or ``NEED_DATA``.

        Raises ``RemoteProtocolError`` once the events before a protocol violation are
        delivered; the state is ERROR from then on and every call raises again.
        """
        rx = self._rx
        events = rx.events
        if not events and rx.paused:
            rx.pump()  # the queue was full: decode what waited
        if events:
            return events.popleft()
        state = rx.state
        if state is RxState.ERROR:
            err = rx.error
            assert err is not None
            raise RemoteProtocolError(
                str(err),
                protocol=PROTOCOL,
                status_hint=err.status_hint,
                wire_code=err.wire_code,
                request_id=err.request_id,
            )
        if state is RxState.CLOSED:
            return ConnectionEvent.CLOSED
        return NEED_DATA

    def refuse_upgrade(self, request_id: int) -> bool:
        """SERVER: treat the Upgrade request ``request_id`` as a plain request from now on
        (RFC 9110 §7.8 lets a server ignore Upgrade): its request side ends -- a
        ``DataFrame(b"", end_stream=True)`` after any body -- and parsing of what follows
        resumes at once; a 101 for it is refused by ``send()``. Returns False when the
        stream is not an Upgrade waiting for its answer (CONNECT cannot be refused this way:
        answer it instead)."""
        return self._rx.refuse_upgrade(request_id)

    # --- sending -----------------------------------------------------------------------------

    def send(self, frame: OutFrame, request_id: int | None = None) -> list[bytes | memoryview]:
        """Wire buffers for ``frame``, for ``transport.writelines()``.

        SERVER sends RESPONSE heads (in request order), CLIENT REQUEST heads; both send the
        ``DataFrame``/``TrailersFrame`` of the message in progress. ``request_id`` overrides
        the frame's id (HTTP/1.1 has none on the wire: it only names the stream). Body
        buffers pass through uncopied (a ``bytearray`` is copied). A ``ResetFrame`` returns
        ``[]`` and sets ``must_close``. Raises ``LocalProtocolError`` for anything the
        protocol or the current state forbids (see the encoder's table).
        """
        return self._tx.send(frame, request_id)

    # --- local replies -----------------------------------------------------------------------

    def local_reply(self, request: Frame, status: ProxyStatus, message: str = "") -> Frame:
        """A whole response to ``request`` telling ``status`` (Envoy's HTTP mapping).

        ``text/plain`` body ``message`` (default: Envoy's wording), ``content-length`` set,
        ``connection: close`` for CODEC_ERROR and DRAINING. Ready for ``send()``; a
        response to HEAD goes out without its body.
        """
        if request.stream_type is StreamType.RESPONSE:
            raise LocalProtocolError("local_reply() needs a request", protocol=PROTOCOL)
        return reply_frame(
            request.request_id,
            http_status_for(status),
            message or DEFAULT_MESSAGES[status],
            close=status in CLOSING_STATUSES,
        )

    def error_reply(self, message: str | None = None) -> Frame | None:
        """After a ``RemoteProtocolError`` (SERVER): the response that rejects the request.

        Status = the error's ``wire_code`` (400/413/431/505), ``connection: close``, body
        ``message`` (default: the error text). Returns ``None`` for a CLIENT codec, when not
        in ERROR, or when the response to that request has already begun. When earlier
        pipelined requests still await their responses, send those first (ordering).
        """
        rx = self._rx
        err = rx.error
        if self.role is not Role.SERVER or rx.state is not RxState.ERROR or err is None:
            return None
        rid = err.request_id
        exchanges = self._shared.exchanges
        if rid is None or (self._tx.state is not TxState.IDLE and self._tx.stream_id == rid):
            return None
        if not any(e.id == rid for e in exchanges):
            if rid != rx.next_id:
                return None  # already answered
            exchanges.append(Exchange(rid, "GET", close=True))
            rx.next_id = rid + 1
        for exch in exchanges:
            if exch.id == rid:
                exch.rx_done = True
                exch.close = True
        text = str(err) if message is None else message
        return reply_frame(rid, err.wire_code or 400, text, close=True)

    @classmethod
    def match(cls, prefix: bytes | bytearray | memoryview) -> MatchResult:
        """Protocol sniffing: see ``wire.match``."""
        return _match(prefix)


def reply_frame(request_id: int, status: int, text: str, *, close: bool = False) -> Frame:
    """A whole ``text/plain`` response (head + body in one ``Frame``)."""
    body = text.encode("utf-8")
    fields = [
        (":status", STATUS_TEXT[status]),
        ("content-type", "text/plain"),
        ("content-length", str(len(body))),
    ]
    if close:
        fields.append(("connection", "close"))
    return Frame(
        StreamType.RESPONSE,
        request_id,
        HeaderList(fields),
        body,
        status,
        protocol=PROTOCOL,
        extra=Http1Extra("1.1", not close),
    )
