"""Ping-pong upstream pool (HTTP/1.1): one exchange at a time per connection.

A connection is bound to one stream from ``send_request`` until both its request and its
response have ended; then it goes back to the pool's idle list (if the codec says the
connection may be reused) or is closed. A connection is never shared between streams in
flight, so response order is never an issue. The pool opens a new connection whenever no
idle one is ready; the cluster's ``max_requests`` bounds how many exist at once.

Cancelling an exchange half-way (timeout, the client went away) closes the connection: an
HTTP/1.1 connection cannot be reused in the middle of a message.

The stream-facing API matches the multiplexing pool's connections: ``send_request(frame,
cb) -> id``, ``send_data(id, df)``, ``send_trailers(id, tf)``, ``cancel(id)``; the owner
gets ``on_upstream_response(head)``, ``on_upstream_data(df)``, ``on_upstream_trailers(tf)``
and ``on_upstream_reset(reason)``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mosn_py.codecs.base import (
    NEED_DATA,
    ConnectionEvent,
    DataFrame,
    Frame,
    ResetFrame,
    TrailersFrame,
)
from mosn_py.errors import ProtocolError, ResetReason
from mosn_py.observability.log import log_event
from mosn_py.upstream.connection import PoolBase, PooledConnection

if TYPE_CHECKING:
    from mosn_py.upstream.host import Host

log = logging.getLogger("mosn_py.upstream")


class PingPongConnection(PooledConnection):
    __slots__ = ("_next_id", "_req_done", "_resp_done")

    def __init__(self, pool: PingPongPool) -> None:
        super().__init__(pool)
        self._next_id = 1
        self._req_done = True
        self._resp_done = True

    # --- the exchange ------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        return not self.streams and not self.closed

    def send_request(self, frame: Frame, cb: Any) -> int:
        rid = self._next_id
        self._next_id += 1
        self.streams[rid] = cb
        self._req_done = frame.end_stream
        self._resp_done = False
        self._emit(self.codec.send(frame, rid))
        return rid

    def send_data(self, rid: int, df: DataFrame) -> None:
        if rid not in self.streams:
            return
        self._emit(self.codec.send(DataFrame(rid, df.data, df.end_stream)))
        if df.end_stream:
            self._req_done = True
            self._maybe_release()

    def send_trailers(self, rid: int, tf: TrailersFrame) -> None:
        if rid not in self.streams:
            return
        self._emit(self.codec.send(TrailersFrame(rid, tf.trailers)))
        self._req_done = True
        self._maybe_release()

    def cancel(self, rid: int) -> None:
        """Abandon the exchange: the connection is in the middle of a message, so close it."""
        if self.streams.pop(rid, None) is not None:
            self.abort()

    def on_data(self, data: memoryview) -> None:
        codec = self.codec
        codec.receive_data(data)
        try:
            while not self.closed:
                ev = codec.next_event()
                if ev is NEED_DATA:
                    return
                if ev is ConnectionEvent.CLOSED:
                    return
                cb = next(iter(self.streams.values()), None)
                if cb is None:
                    continue  # nothing is waiting (e.g. a late answer after a cancel)
                if type(ev) is Frame:
                    cb.on_upstream_response(ev)
                    if ev.end_stream and not (100 <= ev.status < 200):
                        self._resp_done = True
                elif type(ev) is DataFrame:
                    cb.on_upstream_data(ev)
                    if ev.end_stream:
                        self._resp_done = True
                elif type(ev) is TrailersFrame:
                    cb.on_upstream_trailers(ev)
                    self._resp_done = True
                elif type(ev) is ResetFrame:
                    self._fail_all(ResetReason.REMOTE_RESET)
                    return
                if self._resp_done:
                    self._maybe_release()
        except ProtocolError as e:
            log_event(
                log, logging.WARNING, "upstream protocol error",
                cluster=self.pool.cluster_name, host=str(self.host.address), error=str(e),
            )
            self._fail_all(ResetReason.CODEC_ERROR)
            self.abort()

    def _maybe_release(self) -> None:
        if not (self._req_done and self._resp_done) or not self.streams:
            return
        self.streams.clear()
        if getattr(self.codec, "must_close", False) or self.closed:
            self.close()
        else:
            self.pool.release(self)

    def on_eof(self) -> bool | None:
        # A close-delimited body ends here: let the codec see the EOF.
        self.codec.receive_data(b"")
        self.on_data(memoryview(b""))
        return None

class PingPongPool(PoolBase):
    """Connections to one host, each carrying one exchange at a time (``size`` is unused:
    one connection per exchange in flight)."""

    __slots__ = ("idle",)

    def __init__(self, host: Host, **kw: Any) -> None:
        super().__init__(host, **kw)
        self.idle: list[PingPongConnection] = []

    def acquire(self) -> PingPongConnection:
        """An idle connection (most recently used first), or a new one."""
        idle = self.idle
        while idle:
            c = idle.pop()
            if c.idle:
                return c
        conn: PingPongConnection = self._open(PingPongConnection)
        return conn

    def release(self, conn: PingPongConnection) -> None:
        if self.closed or conn.closed:
            conn.close()
            return
        self.idle.append(conn)

    def remove(self, conn: PingPongConnection) -> None:
        super().remove(conn)
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def close(self) -> None:
        super().close()
        self.idle.clear()
