"""``RedisCodec``: the sans-IO RESP codec for one connection (wire format in ``wire.py``).

::

    Role.SERVER (downstream: a Redis client talks to us)
        in:  commands (multibulk or inline)  -> Frame(REQUEST, id 1, 2, 3 ...)
        out: replies, any order, via send()  -> bytes in request order (reorder buffer)
    Role.CLIENT (upstream: we talk to redis-server)
        out: commands via send(frame, id)    -> bytes; id appended to a FIFO
        in:  replies                         -> Frame(RESPONSE, id = FIFO head)
             RESP3 push (">")                -> Frame(ONEWAY, id 0): out of band, no FIFO

Receive state machine (``CodecState``)::

    OPEN --unit--> OPEN
    OPEN --EOF on a command/reply boundary--> CLOSED   (next_event() keeps returning CLOSED)
    OPEN --bad bytes / EOF inside a unit--> ERROR      (next_event() keeps raising)

Sending does not depend on the receive state: after a ``RemoteProtocolError`` the SERVER
still answers the requests before the bad one, then the bad one itself (``error_reply``).

Ordering (SERVER). Redis has no request ids on the wire: the n-th reply answers the n-th
command. The proxy sends each command to its shard and the shards answer in their own
time, so ``send()`` takes replies in any order and returns the bytes of every reply that
has become sendable: ``[]`` while an earlier one is missing, several buffers when the
missing one arrives. A reply waits in the reorder buffer until then. The buffer is
bounded: once ``limits.max_pending_frames`` commands await their reply, ``next_event()``
returns ``NEED_DATA`` even with commands buffered (``paused`` is True) and decodes again
after ``send()`` has released replies -- so pull again after sending.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from mosn_py.codecs.base import (
    NEED_DATA,
    CodecLimits,
    CodecState,
    ConnectionEvent,
    Frame,
    MatchResult,
    PoolMode,
    Role,
    StreamType,
)
from mosn_py.codecs.redis.framing import ReplyReader, RequestReader, Violation
from mosn_py.codecs.redis.matcher import match as _match
from mosn_py.codecs.redis.replies import (
    EMPTY_HEADERS,
    STATUS_ERROR,
    STATUS_OK,
    error_frame,
    status_reply,
)
from mosn_py.codecs.redis.values import (
    RedisCommand,
    ReplyParser,
    encode_command,
    encode_reply,
)
from mosn_py.codecs.redis.wire import PROTOCOL, T_BLOB_ERROR, T_ERROR, T_PUSH
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

_DEFAULT_LIMITS = CodecLimits()
_REQUEST = StreamType.REQUEST
_RESPONSE = StreamType.RESPONSE
_ONEWAY = StreamType.ONEWAY
_CLOSED_EVENT = ConnectionEvent.CLOSED
_ERROR_TYPES = frozenset((T_ERROR, T_BLOB_ERROR))

Buffers = list[bytes | bytearray | memoryview]


_OPEN = CodecState.OPEN
_CLOSED = CodecState.CLOSED
_ERROR = CodecState.ERROR


def _wrong_role() -> Any:  # pragma: no cover (next_event() picks the reader by role)
    raise AssertionError("this role does not decode that direction")


class RedisCodec:
    """RESP2/RESP3 codec for one connection. See the module docstring for roles and order."""

    protocol: ClassVar[str] = PROTOCOL
    pool_mode: ClassVar[PoolMode] = PoolMode.PIPELINE

    __slots__ = (
        "role",
        "limits",
        "_server",
        "_rx",
        "_read_command",
        "_read_reply",
        "_state",
        "_error",
        # SERVER: ids and the reorder buffer
        "_next_id",
        "_next_send",
        "_parked",
        "_max_pending",
        "_error_id",
        "_error_sent",
        # CLIENT: ids of the requests sent, oldest first
        "_fifo",
        "_parser",
    )

    def __init__(
        self,
        role: Role,
        *,
        limits: CodecLimits = _DEFAULT_LIMITS,
        parse_replies: bool = True,
    ) -> None:
        """``parse_replies`` (CLIENT): give every response its parsed value in ``extra``;
        False leaves ``extra`` None (pure pass-through; ``parse_reply(frame.raw)`` later)."""
        self.role = role
        self.limits = limits
        server = role is Role.SERVER
        self._server = server
        self._rx: RequestReader | ReplyReader
        if server:
            requests = RequestReader(limits.max_frame_size)
            self._rx = requests
            self._read_command = requests.read
            self._read_reply = _wrong_role
        else:
            replies = ReplyReader(limits.max_frame_size)
            self._rx = replies
            self._read_command = _wrong_role
            self._read_reply = replies.read
        self._state = _OPEN
        self._error: RemoteProtocolError | None = None
        self._next_id = 1  # id of the next command decoded (SERVER)
        self._next_send = 1  # id of the next reply due on the wire (SERVER)
        self._parked: dict[int, bytes | bytearray | memoryview] = {}
        self._max_pending = max(1, limits.max_pending_frames)
        self._error_id = 0  # id given to the bad command once its error reply is asked for
        self._error_sent = False
        self._fifo: deque[int] = deque()
        self._parser = ReplyParser() if parse_replies and not server else None

    # --- state -------------------------------------------------------------------------------

    @property
    def state(self) -> CodecState:
        return self._state

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned in a frame."""
        return self._rx.buffered

    @property
    def paused(self) -> bool:
        """SERVER: ``max_pending_frames`` commands await their reply, so ``next_event()``
        holds the rest back until ``send()`` releases replies."""
        return self._server and self._next_id - self._next_send >= self._max_pending

    def pending_replies(self) -> int:
        """SERVER: commands decoded (plus a requested error reply) whose reply bytes
        ``send()`` has not returned yet, parked ones included. CLIENT: requests sent whose
        reply has not been decoded yet."""
        if self._server:
            return self._next_id - self._next_send
        return len(self._fifo)

    # --- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of ``data``; ``b""`` means EOF.

        Data after EOF raises ``RuntimeError`` (a caller bug). In the ERROR state data is
        dropped: nothing more will be decoded.
        """
        if self._state is not _OPEN:
            if self._state is _ERROR or not data:
                return
            raise RuntimeError("receive_data() after EOF")
        rx = self._rx
        if rx.eof and data:
            raise RuntimeError("receive_data() after EOF")
        rx.feed(data)

    def next_event(self) -> Frame | ConnectionEvent | Any:
        """The next command (SERVER) or reply (CLIENT), ``ConnectionEvent.CLOSED`` or
        ``NEED_DATA``.

        SERVER: ``Frame(REQUEST)``, ``request_id`` 1, 2, 3 ... in arrival order, ``raw`` the
        command's exact bytes, ``extra`` a ``RedisCommand``. Empty commands (a blank inline
        line, ``*0``, ``*-1``) are skipped without an id, as redis-server skips them.
        CLIENT: ``Frame(RESPONSE)`` with the oldest unanswered request's id, ``raw`` the
        reply's exact bytes, ``extra`` its value (``values`` module), ``status`` 1 for an
        error reply else 0; a RESP3 push is ``Frame(ONEWAY, request_id=0)``.

        Raises ``RemoteProtocolError`` (``status_hint=CODEC_ERROR``; message
        ``Protocol error: ...`` as redis-server words it) on bad bytes, on a unit cut by
        EOF, or (CLIENT) on a reply with no request pending; the state is then ERROR and
        every later call raises again. SERVER errors carry ``request_id``: the id the bad
        command's error reply takes (``error_reply``).
        """
        if self._state is not _OPEN:
            if self._state is _CLOSED:
                return _CLOSED_EVENT
            assert self._error is not None
            err = self._error
            raise RemoteProtocolError(
                str(err), protocol=PROTOCOL, status_hint=err.status_hint,
                request_id=err.request_id,
            )
        if self._server:
            if self._next_id - self._next_send >= self._max_pending:
                return NEED_DATA
            try:
                got = self._read_command()
            except Violation as v:
                raise self._fail(str(v)) from None
            if got is None:
                return NEED_DATA
            if not isinstance(got, tuple):
                self._state = _CLOSED
                return got
            raw, args = got
            rid = self._next_id
            self._next_id = rid + 1
            return Frame(
                _REQUEST, rid, EMPTY_HEADERS, b"", 0, 0, False, True, None, PROTOCOL,
                RedisCommand(args), raw,
            )
        try:
            got_reply = self._read_reply()
        except Violation as v:
            raise self._fail(str(v)) from None
        if got_reply is None:
            return NEED_DATA
        if not isinstance(got_reply, tuple):
            self._state = _CLOSED
            return got_reply
        raw, top, odd = got_reply
        value: Any = None
        parser = self._parser
        if parser is not None:
            try:
                value = parser.parse(raw, not odd)
            except RemoteProtocolError as e:
                raise self._fail(str(e)) from None
        if top == T_PUSH:
            return Frame(
                _ONEWAY, 0, EMPTY_HEADERS, b"", 0, 0, False, True, None, PROTOCOL, value, raw
            )
        fifo = self._fifo
        if not fifo:
            raise self._fail("Protocol error: a reply arrived with no request pending")
        status = STATUS_ERROR if top in _ERROR_TYPES else STATUS_OK
        return Frame(
            _RESPONSE, fifo.popleft(), EMPTY_HEADERS, b"", status, 0, False, True, None,
            PROTOCOL, value, raw,
        )

    def _fail(self, msg: str) -> RemoteProtocolError:
        """Enter ERROR and drop the input."""
        self._state = _ERROR
        self._rx.drop()
        err = RemoteProtocolError(
            msg,
            protocol=PROTOCOL,
            status_hint=ProxyStatus.CODEC_ERROR,
            request_id=self._next_id if self._server else None,
        )
        self._error = err
        return err

    # --- sending -----------------------------------------------------------------------------

    def send(self, frame: Frame, request_id: int | None = None) -> Buffers:
        """Wire buffers for ``frame`` (for ``transport.writelines()``).

        SERVER, a RESPONSE: the reply to command ``request_id`` (default
        ``frame.request_id``); returns the bytes of every reply now sendable in request
        order, possibly none (module docstring). The reply's bytes are ``frame.raw`` as
        they are (pass-through) or, without ``raw``, ``encode_reply(frame.extra)``. A
        ONEWAY frame (a RESP3 push) goes out at once, between replies. Raises
        ``LocalProtocolError`` for an id that is not awaiting its reply (never decoded,
        already answered, or answered twice) or a value with no RESP form.

        CLIENT, a REQUEST: ``frame.raw`` as it is, or ``frame.extra.args`` (a
        ``RedisCommand``) encoded as multibulk; ``request_id`` (default
        ``frame.request_id``) is what the reply's frame will carry. Raises
        ``LocalProtocolError`` for anything but a request, an empty command, or
        (``status_hint=UPSTREAM_OVERFLOW``) ``max_pending_frames`` requests already
        awaiting replies.
        """
        stream_type = frame.stream_type
        if self._server:
            if stream_type is _RESPONSE:
                data = frame.raw
                if data is None:
                    data = encode_reply(frame.extra)
                rid = frame.request_id if request_id is None else request_id
                nxt = self._next_send
                if rid == nxt:
                    nxt += 1
                    parked = self._parked
                    if not parked:
                        self._next_send = nxt
                        return [data]
                    out: Buffers = [data]
                    while nxt in parked:
                        out.append(parked.pop(nxt))
                        nxt += 1
                    self._next_send = nxt
                    return out
                self._check_reply_id(rid, nxt)
                self._parked[rid] = data
                return []
            if stream_type is _ONEWAY:
                data = frame.raw
                return [data if data is not None else encode_reply(frame.extra)]
            raise LocalProtocolError(
                f"server role sends replies, not {stream_type.name}", protocol=PROTOCOL
            )
        if stream_type is not _REQUEST:
            raise LocalProtocolError(
                f"client role sends commands, not {stream_type.name}", protocol=PROTOCOL
            )
        fifo = self._fifo
        if len(fifo) >= self._max_pending:
            raise LocalProtocolError(
                f"{len(fifo)} commands already await their reply on this connection",
                protocol=PROTOCOL,
                status_hint=ProxyStatus.UPSTREAM_OVERFLOW,
            )
        data = frame.raw
        if data is None:
            extra = frame.extra
            if not isinstance(extra, RedisCommand):
                raise LocalProtocolError(
                    "a command frame needs raw bytes or a RedisCommand in extra",
                    protocol=PROTOCOL,
                )
            data = encode_command(extra.args)
        fifo.append(frame.request_id if request_id is None else request_id)
        return [data]

    def _check_reply_id(self, rid: int, nxt: int) -> None:
        if rid < 1 or rid >= self._next_id:
            raise LocalProtocolError(f"no command {rid} awaits a reply", protocol=PROTOCOL)
        if rid < nxt or rid in self._parked:
            raise LocalProtocolError(f"command {rid} was already answered", protocol=PROTOCOL)

    # --- replies the codec makes -------------------------------------------------------------

    def local_reply(self, request: Frame, status: ProxyStatus, message: str = "") -> Frame:
        """The reply telling ``request``'s client ``status``: ``-ERR <what happened>[:
        message]`` (``+OK`` for OK); table in ``replies.py``. Raises ``LocalProtocolError``
        if ``request`` is a response."""
        if request.stream_type is _RESPONSE:
            raise LocalProtocolError("local_reply() needs a request", protocol=PROTOCOL)
        return status_reply(request.request_id, status, message)

    def error_reply(self, message: str | None = None) -> Frame | None:
        """After a ``RemoteProtocolError`` (SERVER): the reply to the bad command,
        ``-ERR <message>`` (default: the error's own ``Protocol error: ...`` text), under
        the error's ``request_id``; ``send()`` it like any reply: it goes out after the
        replies to the commands before it. ``None`` for a CLIENT codec or when not in
        ERROR. Afterwards the connection should be closed, as redis-server does.
        """
        err = self._error
        if not self._server or self._state is not _ERROR or err is None:
            return None
        if not self._error_id:
            self._error_id = self._next_id
            self._next_id += 1
        text = str(err) if message is None else message
        return error_frame(self._error_id, "ERR " + text)

    def error_reply_for(self, exc: Exception) -> Buffers:
        """``send(error_reply(str(exc)))`` once: the bytes now sendable (``[]`` while
        earlier replies are outstanding: the error reply follows them from a later
        ``send()``), ``[]`` when there is nothing to answer or it was queued already."""
        if self._error_sent:
            return []
        frame = self.error_reply(str(exc))
        if frame is None:
            return []
        self._error_sent = True
        return self.send(frame)

    @classmethod
    def match(cls, prefix: bytes | bytearray | memoryview) -> MatchResult:
        """Protocol sniffing: see ``matcher.match``."""
        return _match(prefix)
