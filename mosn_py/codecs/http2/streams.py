"""Per-stream bookkeeping of the HTTP/2 codec, and the send scheduler for pending DATA.

h2 owns each stream's protocol state (RFC 9113 §5.1: idle, open, half-closed, closed) and
refuses to buffer: ``send_data`` raises when the data does not fit the flow-control window
(§6.9) or SETTINGS_MAX_FRAME_SIZE (§4.2). What the codec adds per stream lives in
``StreamState``::

    head_sent      our HEADERS went out (a second head is a LocalProtocolError)
    chunks/pending body octets accepted by send() but not yet framed: they wait here for
                   WINDOW_UPDATE (or SETTINGS raising the initial window, §6.9.2)
    end_pending    END_STREAM goes on the last pending chunk (or on the trailers)
    trailers       trailing HEADERS to send once ``chunks`` is empty (§8.1)
    local_ended    END_STREAM handed to h2
    remote_ended   END_STREAM received
    unacked        DATA octets given to the consumer and not yet ``consumed()``
    received       body octets received (``CodecLimits.max_body_size``)

A stream enters the table when the application learns about it (a request head decoded on
the server, a request sent on the client) and leaves it when both directions ended or it
was reset either way; ``pending`` memory is released at that point too.

Scheduling (``Outbox.flush``): each pass frames as much of a stream's queue as
``min(stream window, connection window, peer MAX_FRAME_SIZE)`` allows, with no copy of the
caller's body until h2 serialises the frame (memoryview slices); what has to wait is copied
only if it views a mutable buffer (``_detach``). When the connection window
opens, blocked streams are served in turn, and a stream that is still blocked moves to the
back, so one large body cannot starve the rest (the spirit of §5.3's "fair" default).
"""

from __future__ import annotations

from collections import deque

from h2.errors import ErrorCodes
from h2.exceptions import H2Error
from hpack.struct import Header

from mosn_py.codecs.http2.connection import ProxyH2Connection


class StreamState:
    """What the codec knows about one stream beyond h2's state machine."""

    __slots__ = (
        "chunks",
        "end_pending",
        "head_sent",
        "local_ended",
        "pending",
        "received",
        "remote_ended",
        "stream_id",
        "trailers",
        "unacked",
    )

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.head_sent = False
        self.chunks: deque[memoryview] = deque()
        self.pending = 0
        self.end_pending = False
        self.trailers: list[Header] | None = None
        self.local_ended = False
        self.remote_ended = False
        self.unacked = 0
        self.received = 0

    @property
    def send_closed(self) -> bool:
        """True once END_STREAM is sent or queued: nothing more may be sent."""
        return self.local_ended or self.end_pending

    def __repr__(self) -> str:
        return (
            f"StreamState({self.stream_id}, pending={self.pending}, "
            f"local_ended={self.local_ended}, remote_ended={self.remote_ended})"
        )


class Outbox:
    """The codec's streams and the bytes they still have to send."""

    __slots__ = ("_blocked", "_h2", "ended", "pending_total", "streams")

    def __init__(self, h2: ProxyH2Connection) -> None:
        self._h2 = h2
        self.streams: dict[int, StreamState] = {}
        self._blocked: dict[int, StreamState] = {}  # insertion order = service order
        self.pending_total = 0
        # streams whose END_STREAM a flush just sent: the codec settles them (retire, or
        # reset a request still arriving) once the flush is over
        self.ended: list[StreamState] = []

    # --- the table ---------------------------------------------------------------------------

    def open(self, stream_id: int) -> StreamState:
        state = StreamState(stream_id)
        self.streams[stream_id] = state
        return state

    def get(self, stream_id: int) -> StreamState | None:
        return self.streams.get(stream_id)

    def drop(self, stream_id: int) -> StreamState | None:
        """Forget a stream (reset either way): its pending octets are released."""
        state = self.streams.pop(stream_id, None)
        if state is not None:
            self._discard(state)
        return state

    def retire_if_done(self, state: StreamState) -> None:
        """Forget ``state`` once both directions have ended (RFC 9113 §5.1 "closed")."""
        if state.local_ended and state.remote_ended:
            self.streams.pop(state.stream_id, None)

    def _discard(self, state: StreamState) -> None:
        self.pending_total -= state.pending
        state.pending = 0
        state.chunks.clear()
        state.trailers = None
        self._blocked.pop(state.stream_id, None)

    # --- queueing ----------------------------------------------------------------------------

    def queue_data(self, state: StreamState, data: bytes | memoryview, end: bool) -> None:
        """Append ``data`` (not copied) to the stream's queue; ``end`` ends the stream."""
        n = len(data)
        if n:
            view = data if isinstance(data, memoryview) else memoryview(data)
            if view.ndim != 1 or view.itemsize != 1:
                view = view.cast("B")
            state.chunks.append(view)
            state.pending += n
            self.pending_total += n
        if end:
            state.end_pending = True

    def queue_trailers(self, state: StreamState, trailers: list[Header]) -> None:
        state.trailers = trailers
        state.end_pending = True

    # --- sending -----------------------------------------------------------------------------

    def flush(self, state: StreamState) -> None:
        """Frame what the windows allow, then trailers / END_STREAM once the queue is empty.

        Raises h2's ``H2Error`` when h2 refuses (the stream was closed under us); the
        stream's queue is discarded first, so a retry cannot send stale data.
        """
        h2 = self._h2
        sid = state.stream_id
        chunks = state.chunks
        try:
            while chunks:
                room = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size)
                if room <= 0:
                    break
                head = chunks[0]
                if len(head) <= room:
                    piece = chunks.popleft()
                else:
                    piece = head[:room]
                    chunks[0] = head[room:]
                size = len(piece)
                state.pending -= size
                self.pending_total -= size
                last = not chunks and state.end_pending and state.trailers is None
                h2.send_data(sid, piece, end_stream=last)
                if last:
                    state.local_ended = True
                    self.ended.append(state)
            if chunks:
                self._blocked[sid] = state
                _detach(chunks)
                return
            self._blocked.pop(sid, None)
            if state.trailers is not None:
                trailers, state.trailers = state.trailers, None
                h2.send_headers(sid, trailers, end_stream=True)
                state.local_ended = True
                self.ended.append(state)
            elif state.end_pending and not state.local_ended:
                h2.end_stream(sid)  # an empty DATA frame with END_STREAM (§6.1)
                state.local_ended = True
                self.ended.append(state)
        except H2Error:
            self._discard(state)
            raise

    def flush_blocked(self) -> None:
        """Serve every blocked stream once (after a connection-level WINDOW_UPDATE or a
        SETTINGS change); a stream h2 has closed meanwhile just loses its queue -- its
        reset is reported by the event that closed it."""
        blocked = self._blocked
        for sid in list(blocked):
            state = blocked.get(sid)
            if state is None:
                continue
            before = state.pending
            try:
                self.flush(state)
            except H2Error:
                continue
            if sid in blocked and state.pending < before:
                # served but still waiting: the others go first next time (round robin)
                del blocked[sid]
                blocked[sid] = state

    def flush_stream(self, stream_id: int) -> None:
        """After a WINDOW_UPDATE on ``stream_id`` (receive path: h2 errors are swallowed)."""
        state = self._blocked.get(stream_id)
        if state is None:
            return
        try:
            self.flush(state)
        except H2Error:
            return

    def settle(self, server: bool) -> None:
        """Deal with the streams whose END_STREAM just went out (``ended``): forget them
        when both sides are done; a server whose response is complete while the request is
        still arriving stops the upload with RST_STREAM(NO_ERROR) (RFC 9113 §8.1)."""
        ended = self.ended
        while ended:
            state = ended.pop()
            if state.remote_ended:
                self.retire_if_done(state)
            elif server:
                self.drop(state.stream_id)
                try:
                    self._h2.reset_stream(state.stream_id, ErrorCodes.NO_ERROR)
                except H2Error:
                    pass  # h2 closed it meanwhile

    @property
    def blocked(self) -> int:
        """Number of streams with data waiting for flow-control credit."""
        return len(self._blocked)


def _detach(chunks: deque[memoryview]) -> None:
    """Copy queued chunks that view a mutable buffer: the caller may reuse its buffer once
    ``send()`` returns (a transport's receive buffer, say). Views of ``bytes`` stay as they
    are, so a body is copied only when it has to wait and is not immutable already."""
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk.obj, bytes):
            chunks[i] = memoryview(chunk.tobytes())
