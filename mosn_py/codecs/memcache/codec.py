"""``MemcacheCodec``: the sans-IO memcached text protocol codec (see the package docstring).

Receive state machine (``CodecState``), both roles::

    OPEN --request / reply--> OPEN
    OPEN --EOF between frames, or "quit" (SERVER)--> CLOSED   (next_event() keeps saying so)
    OPEN --fatal input / truncated at EOF--> ERROR            (next_event() keeps raising)

SERVER role inside OPEN: refused storage requests put the reader in a *swallowing* sub-state
(their data block is dropped as it arrives), and with ``max_pending_frames`` responses owed
it is *paused* (``next_event()`` returns ``NEED_DATA`` without decoding) until ``send()``
releases some.

Sending does not depend on the receive state: responses still go out, in request order,
after ``CLOSED`` or ``ERROR``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mosn_py.codecs.base import (
    CodecLimits,
    CodecState,
    ConnectionEvent,
    Frame,
    MatchResult,
    PoolMode,
    Role,
    StreamType,
)
from mosn_py.codecs.memcache import replies
from mosn_py.codecs.memcache.client import ReplyReader
from mosn_py.codecs.memcache.matcher import match as _match
from mosn_py.codecs.memcache.server import LineTooLong, RequestReader
from mosn_py.codecs.memcache.wire import (
    COMMANDS,
    DEFAULT_MAX_KEYS,
    DEFAULT_MAX_VALUE,
    MAX_LINE,
    PROTOCOL,
    Buffers,
    MemcacheCommand,
    MemcacheReply,
    encode_command,
    encode_reply,
)
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

_DEFAULT_LIMITS = CodecLimits()
_RESPONSE = StreamType.RESPONSE
_ONEWAY = StreamType.ONEWAY


_OPEN = CodecState.OPEN
_CLOSED = CodecState.CLOSED
_ERROR = CodecState.ERROR
_EV_CLOSED = ConnectionEvent.CLOSED


class MemcacheCodec:
    """memcached text protocol codec for one connection and role."""

    protocol: ClassVar[str] = PROTOCOL
    pool_mode: ClassVar[PoolMode] = PoolMode.PIPELINE

    __slots__ = (
        "role", "limits", "max_value_size", "_server", "_client", "_state", "_eof", "_error",
        "_fatal_reply", "_max_pending",
    )

    def __init__(
        self,
        role: Role,
        *,
        limits: CodecLimits = _DEFAULT_LIMITS,
        max_value_size: int | None = None,
        max_line: int = MAX_LINE,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        """``max_value_size``: the largest data block a client may store (default
        ``limits.max_body_size`` if > 0, else 1 MiB, memcached's default item size).
        ``max_line``: the longest command or reply line; retrieval command lines may be as
        long as ``limits.max_header_size`` (multi-gets). ``max_keys``: keys in one
        retrieval command. ``limits.max_pending_frames`` bounds the responses a SERVER codec
        owes before it stops decoding; ``limits.max_frame_size`` bounds one reply (CLIENT).
        """
        self.role = role
        self.limits = limits
        if max_value_size is None:
            max_value_size = limits.max_body_size if limits.max_body_size > 0 else DEFAULT_MAX_VALUE
        self.max_value_size = max_value_size
        self._server: RequestReader | None = None
        self._client: ReplyReader | None = None
        if role is Role.SERVER:
            self._server = RequestReader(
                max_line=max_line,
                max_get_line=max(limits.max_header_size, max_line),
                max_keys=max_keys,
                max_value=max_value_size,
                max_pending=max(1, limits.max_pending_frames),
            )
        else:
            self._client = ReplyReader(max_line=max_line, max_reply=limits.max_frame_size)
        self._max_pending = max(1, limits.max_pending_frames)
        self._state = _OPEN
        self._eof = False
        self._error: RemoteProtocolError | None = None
        self._fatal_reply: bytes | None = None  # what error_reply() answers, once

    # --- receiving ----------------------------------------------------------------------------

    @property
    def state(self) -> CodecState:
        return self._state

    @property
    def buffered(self) -> int:
        """Octets received and not yet returned as a frame."""
        rx = self._server if self._server is not None else self._client
        assert rx is not None
        return rx.buffered

    @property
    def paused(self) -> bool:
        """SERVER: ``max_pending_frames`` responses are owed, so no request is decoded; call
        ``next_event()`` again after ``send()`` (CLIENT: always False)."""
        return self._server is not None and self._server.paused

    @property
    def swallowing(self) -> int:
        """SERVER: octets of a refused data block still to be dropped as they arrive."""
        return self._server.swallowing if self._server is not None else 0

    def pending_replies(self) -> int:
        """SERVER: responses still owed to the client (including those held back by the
        reorder buffer); CLIENT: replies still expected from the server."""
        if self._server is not None:
            return len(self._server.order)
        assert self._client is not None
        return len(self._client.fifo)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data`` (copied: the caller may reuse its buffer); ``b""`` means EOF.

        Data after EOF raises ``RuntimeError`` (a caller bug); after ``quit`` or in the
        ERROR state it is dropped.
        """
        if self._eof:
            if data:
                raise RuntimeError("receive_data() after EOF")
            return
        if not data:
            self._eof = True
            if self._state is _OPEN:
                self._rx_feed_eof()
            return
        if self._state is not _OPEN:
            return
        if self._server is not None:
            self._server.feed(data)
        else:
            assert self._client is not None
            self._client.feed(data)

    def _rx_feed_eof(self) -> None:
        if self._server is not None:
            self._server.feed_eof()
        else:
            assert self._client is not None
            self._client.feed_eof()

    def next_event(self) -> Frame | ConnectionEvent | Any:
        """The next request (SERVER) or response (CLIENT) ``Frame``, ``CLOSED`` or
        ``NEED_DATA``.

        SERVER: ``CLOSED`` at EOF between requests, inside a refused data block, or on
        ``quit`` (the proxy should close once the earlier responses are out). A request whose
        ``extra.reply`` is set was answered by the codec: send ``reply_for(frame)``, do not
        forward it. CLIENT: ``CLOSED`` at EOF between replies (``pending_replies()`` tells how
        many requests it left unanswered).

        Raises ``RemoteProtocolError`` (``status_hint=CODEC_ERROR``) on fatal input: a line
        over the limit, an HTTP request, a reply that fits no outstanding request, or a
        frame cut by EOF. The state is then ERROR and every later call raises again.
        """
        if self._state is not _OPEN:
            if self._state is _CLOSED:
                return _EV_CLOSED
            raise RemoteProtocolError(
                f"codec is in ERROR state: {self._error}",
                protocol=PROTOCOL,
                status_hint=ProxyStatus.CODEC_ERROR,
            )
        try:
            if self._server is not None:
                ev = self._server.next()
            else:
                assert self._client is not None
                ev = self._client.next()
        except LocalProtocolError as exc:
            raise self._fail(exc) from None
        if ev is _EV_CLOSED:
            self._state = _CLOSED
        return ev

    def _fail(self, exc: LocalProtocolError) -> RemoteProtocolError:
        self._state = _ERROR
        if self._server is not None:
            self._server.drop()
            if isinstance(exc, LineTooLong):
                self._fatal_reply = b"CLIENT_ERROR line too long\r\n"
        else:
            assert self._client is not None
            self._client.drop()
        err = RemoteProtocolError(
            str(exc), protocol=PROTOCOL, status_hint=ProxyStatus.CODEC_ERROR
        )
        self._error = err
        return err

    # --- sending ------------------------------------------------------------------------------

    def send(self, frame: Frame, request_id: int | None = None) -> Buffers:
        """Wire buffers for ``frame``, for ``transport.writelines()``.

        SERVER (responses): ``request_id`` (default ``frame.request_id``) names the request
        answered. Responses may come in any order; the buffers returned are every response
        that became sendable, in request order -- possibly none, possibly several. Raises
        ``LocalProtocolError`` for a request id with no response slot (unknown, noreply, or
        answered already) or a frame that cannot be encoded.

        CLIENT (requests): the frame's ``raw`` bytes, or its ``MemcacheCommand`` encoded
        when ``raw`` is None (values above 64 KiB uncopied). Unless ``noreply``, the reply is
        then expected under ``request_id`` (default ``frame.request_id``). Raises
        ``LocalProtocolError`` for a response frame, a request the codec answered itself, a
        stream type that disagrees with ``noreply``, an invalid command, or
        (``status_hint=UPSTREAM_OVERFLOW``) ``limits.max_pending_frames`` requests already
        awaiting replies.
        """
        rid = frame.request_id if request_id is None else request_id
        server = self._server
        if server is not None:
            if frame.stream_type is not _RESPONSE:
                raise LocalProtocolError(
                    f"server role sends responses, not {frame.stream_type.name}",
                    protocol=PROTOCOL,
                )
            raw = frame.raw
            if raw is not None:
                return server.order.release(rid, [raw])
            reply = frame.extra
            if not isinstance(reply, MemcacheReply):
                raise LocalProtocolError(
                    "a memcache response needs raw bytes or a MemcacheReply", protocol=PROTOCOL
                )
            return server.order.release(rid, encode_reply(reply))
        client = self._client
        assert client is not None
        cmd = frame.extra
        if frame.stream_type is _RESPONSE or not isinstance(cmd, MemcacheCommand):
            raise LocalProtocolError(
                "client role sends request frames with a MemcacheCommand", protocol=PROTOCOL
            )
        if cmd.reply is not None:
            raise LocalProtocolError(
                "a request the codec answered itself cannot be sent upstream", protocol=PROTOCOL
            )
        name = cmd.name
        if name not in COMMANDS:
            raise LocalProtocolError(f"cannot send command {name!r}", protocol=PROTOCOL)
        if (frame.stream_type is _ONEWAY) is not cmd.noreply:
            raise LocalProtocolError(
                f"stream type {frame.stream_type.name} disagrees with noreply={cmd.noreply}",
                protocol=PROTOCOL,
            )
        expects = not cmd.noreply and name != "quit"
        if expects and len(client.fifo) >= self._max_pending:
            raise LocalProtocolError(
                f"{len(client.fifo)} requests already await their reply on this connection",
                protocol=PROTOCOL,
                status_hint=ProxyStatus.UPSTREAM_OVERFLOW,
            )
        raw = frame.raw
        out: Buffers = [raw] if raw is not None else encode_command(cmd)
        if expects:
            client.expect(rid, name)
        return out

    # --- replies the codec or the proxy makes -------------------------------------------------

    def reply_for(self, request: Frame) -> Frame | None:
        """For a request the codec answered itself (``extra.reply`` set): the response to
        ``send()``. None for any other request."""
        cmd = request.extra
        if isinstance(cmd, MemcacheCommand) and cmd.reply is not None:
            return replies.canned_reply(request.request_id, cmd.reply)
        return None

    def local_reply(self, request: Frame, status: ProxyStatus, message: str = "") -> Frame:
        """``SERVER_ERROR <message>`` answering ``request`` (the proxy could not serve it:
        no route, no healthy upstream, timeout ...). ``message`` defaults to a short text
        for ``status``. Raises ``LocalProtocolError`` if ``request`` is a response."""
        if request.stream_type is _RESPONSE:
            raise LocalProtocolError("local_reply() needs a request", protocol=PROTOCOL)
        return replies.local_reply_for_id(request.request_id, status, message)

    def error_reply(self, message: str | None = None) -> Frame | None:
        """After a ``RemoteProtocolError`` (SERVER): a last reply before the connection
        closes, in a response slot of its own (so ``send()`` still keeps request order).

        Only for a line over the limit: ``CLIENT_ERROR <message>`` (default: ``line too
        long``). memcached itself closes silently; we add the line so the client learns why.
        None otherwise (an HTTP request, input cut by EOF, a CLIENT codec) and after the
        first call.
        """
        reply = self._fatal_reply
        server = self._server
        if reply is None or server is None or self._state is not _ERROR:
            return None
        self._fatal_reply = None
        rid = server.open_slot()
        if message is not None:
            return replies.client_error(rid, message)
        return replies.canned_reply(rid, reply)

    def error_reply_for(self, exc: Exception) -> Buffers:
        """``send(error_reply(str(exc)))``: the buffers to write now (``[]`` while earlier
        responses are outstanding: the reply follows them from a later ``send()``; ``[]``
        when there is nothing to answer), for proxies that write bytes rather than frames."""
        frame = self.error_reply(str(exc))
        return self.send(frame) if frame is not None else []

    # builders, usable without an instance (see ``replies``)
    value_reply = staticmethod(replies.value_reply)
    status_reply = staticmethod(replies.status_reply)
    number_reply = staticmethod(replies.number_reply)
    version_reply = staticmethod(replies.version_reply)
    client_error = staticmethod(replies.client_error)
    server_error = staticmethod(replies.server_error)
    error = staticmethod(replies.error)
    local_reply_for_id = staticmethod(replies.local_reply_for_id)
    make_request = staticmethod(replies.make_request)
    make_get = staticmethod(replies.make_get)

    @classmethod
    def match(cls, prefix: bytes | bytearray | memoryview) -> MatchResult:
        """Protocol sniffing: see ``matcher.match``."""
        return _match(prefix)
