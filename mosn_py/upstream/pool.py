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

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mosn_py.codecs.base import (
    NEED_DATA,
    CodecLimits,
    ConnectionEvent,
    DataFrame,
    Frame,
    StreamType,
    TrailersFrame,
)
from mosn_py.errors import ProtocolError, ResetReason
from mosn_py.observability.log import log_event
from mosn_py.server.connection import WriteBatcher
from mosn_py.upstream.connection import PooledConnection

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
    @property
    def usable(self) -> bool:
        return not self.closed

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

class MultiplexPool:
    """Up to ``size`` shared connections to one host, picked round robin."""

    __slots__ = (
        "host",
        "size",
        "codec_factory",
        "limits",
        "connect_timeout",
        "loop",
        "batcher",
        "cluster_name",
        "health",
        "conns",
        "_rr",
        "closed",
        "conn_cls",
    )

    def __init__(
        self,
        host: Host,
        *,
        size: int,
        codec_factory: Callable[..., Any],
        limits: CodecLimits,
        connect_timeout: float,
        loop: asyncio.AbstractEventLoop,
        batcher: WriteBatcher,
        cluster_name: str,
        health: Any = None,
        conn_cls: type[UpstreamConnection] | None = None,
    ) -> None:
        self.host = host
        self.health = health  # gets report_connect_success/failure(host)
        self.conn_cls = conn_cls or UpstreamConnection
        self.size = size
        self.codec_factory = codec_factory
        self.limits = limits
        self.connect_timeout = connect_timeout
        self.loop = loop
        self.batcher = batcher
        self.cluster_name = cluster_name
        self.conns: list[UpstreamConnection] = []
        self._rr = 0
        self.closed = False

    def acquire(self) -> UpstreamConnection:
        """A connection to send on: a new one until ``size`` exist, then round robin."""
        conns = self.conns
        if len(conns) < self.size:
            c = self.conn_cls(self)
            conns.append(c)
            c.start_connect()
            return c
        self._rr = (self._rr + 1) % len(conns)
        return conns[self._rr]

    def remove(self, conn: UpstreamConnection) -> None:
        try:
            self.conns.remove(conn)
        except ValueError:
            pass

    def close(self) -> None:
        self.closed = True
        for c in list(self.conns):
            c.shutdown()
        self.conns.clear()

    @property
    def in_flight(self) -> int:
        return sum(len(c.streams) for c in self.conns)
