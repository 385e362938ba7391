"""Multiplexing upstream connection pool (Bolt now, HTTP/2 later).

Many downstream connections share few upstream connections per host (``connections_per_host``,
default 1). Each upstream connection gives every request a fresh upstream request id
(u32, wraps, skips ids still in flight) and matches responses by it, so they may come back in
any order. An id is never reused while its request is pending.

A connection accepts requests from the moment it exists: while it is connecting they are
queued and written on connect, or all answered at once when the connect fails. When the
connection closes or resets, every request in flight is told at once (``on_upstream_reset``):
no request waits for its timeout because its connection died.

Request owners implement ``UpstreamCallbacks``. Backpressure: while an upstream transport's
write buffer is above its high watermark, every downstream connection that sent to it is
paused (``PAUSE_UPSTREAM``) and resumed when it drains.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from mosn_py.codecs.base import (
    NEED_DATA,
    ConnectionEvent,
    DataFrame,
    Frame,
    StreamType,
    TrailersFrame,
)
from mosn_py.errors import ProtocolError, ResetReason
from mosn_py.observability.log import log_event
from mosn_py.upstream.connection import PoolBase, PooledConnection

if TYPE_CHECKING:
    from mosn_py.upstream.host import Host

log = logging.getLogger("mosn_py.upstream")

_U32 = 1 << 32


class UpstreamCallbacks(Protocol):
    def on_upstream_response(self, frame: Frame) -> None: ...

    def on_upstream_data(self, df: DataFrame) -> None: ...

    def on_upstream_trailers(self, tf: TrailersFrame) -> None: ...

    def on_upstream_reset(self, reason: ResetReason) -> None: ...


class UpstreamConnection(PooledConnection):
    __slots__ = ("_next_id",)

    def __init__(self, pool: MultiplexPool) -> None:
        super().__init__(pool)
        self._next_id = 1

    # --- requests ------------------------------------------------------------------------------
    def send_request(self, frame: Frame, cb: UpstreamCallbacks | None) -> int:
        """Send ``frame`` under a fresh upstream id; ``cb`` None = no response expected."""
        streams = self.streams
        rid = self._next_id
        while rid in streams:  # only after 2**32 ids with a request still pending
            rid = (rid + 1) % _U32
        self._next_id = (rid + 1) % _U32
        if cb is not None:
            streams[rid] = cb
        self.activity += 1  # writes count too: a busy oneway-only connection is not idle
        self._emit(self.codec.send(frame, rid))
        return rid

    def send_data(self, rid: int, df: DataFrame) -> None:
        """Body of a streaming request sent with ``send_request`` (multiplexed protocols)."""
        self._emit(self.codec.send(DataFrame(rid, df.data, df.end_stream)))

    def send_trailers(self, rid: int, tf: TrailersFrame) -> None:
        self._emit(self.codec.send(TrailersFrame(rid, tf.trailers)))

    def cancel(self, rid: int) -> None:
        """Forget request ``rid`` (timed out): a late response is dropped."""
        self.streams.pop(rid, None)

    # --- responses -----------------------------------------------------------------------------
    def on_data(self, data: memoryview) -> None:
        codec = self.codec
        codec.receive_data(data)
        streams = self.streams
        try:
            while True:
                ev = codec.next_event()
                if ev is NEED_DATA:
                    return
                if ev is ConnectionEvent.CLOSED:
                    return
                if ev.stream_type is not StreamType.RESPONSE:
                    continue
                cb = streams.pop(ev.request_id, None)
                if cb is None:
                    # A heartbeat ack, a late answer to a timed-out request, or anthunder's
                    # CONNECTION_CLOSED notice: nobody waits for it.
                    continue
                cb.on_upstream_response(ev)
        except ProtocolError as e:
            log_event(
                log, logging.WARNING, "upstream protocol error",
                cluster=self.pool.cluster_name, host=str(self.host.address), error=str(e),
            )
            self._fail_all(ResetReason.CODEC_ERROR)
            self.abort()

    def on_eof(self) -> bool | None:
        return None  # close; on_closed answers what is pending

class MultiplexPool(PoolBase):
    """Up to ``size`` shared connections to one host, picked round robin."""

    __slots__ = ("_rr", "conn_cls")

    def __init__(
        self, host: Host, *, conn_cls: type[UpstreamConnection] | None = None, **kw: Any
    ) -> None:
        super().__init__(host, **kw)
        self.conn_cls = conn_cls or UpstreamConnection
        self._rr = 0

    def acquire(self) -> UpstreamConnection:
        """A connection to send on: a new one until ``size`` exist, then round robin."""
        conns = self.conns
        if len(conns) < self.size:
            c: UpstreamConnection = self._open(self.conn_cls)
            return c
        self._rr = (self._rr + 1) % len(conns)
        conn: UpstreamConnection = conns[self._rr]
        return conn
