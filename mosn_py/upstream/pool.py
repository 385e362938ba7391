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
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.errors import ProtocolError, ResetReason
from mosn_py.observability.log import log_event
from mosn_py.server.connection import PAUSE_UPSTREAM, BaseConnection, WriteBatcher

if TYPE_CHECKING:
    from mosn_py.upstream.host import Host

log = logging.getLogger("mosn_py.upstream")

_U32 = 1 << 32


class UpstreamCallbacks(Protocol):
    def on_upstream_response(self, frame: Frame) -> None: ...

    def on_upstream_data(self, df: DataFrame) -> None: ...

    def on_upstream_trailers(self, tf: TrailersFrame) -> None: ...

    def on_upstream_reset(self, reason: ResetReason) -> None: ...


class UpstreamConnection(BaseConnection):
    __slots__ = (
        "pool",
        "host",
        "codec",
        "streams",
        "_next_id",
        "_connecting",
        "_queued",
        "_paused_downstreams",
        "_write_paused",
        "_connect_task",
    )

    def __init__(self, pool: MultiplexPool) -> None:
        super().__init__(pool.batcher, pool.loop)
        self.pool = pool
        self.host = pool.host
        self.codec = pool.codec_factory(Role.CLIENT, limits=pool.limits)
        self.streams: dict[int, UpstreamCallbacks] = {}
        self._next_id = 1
        self._connecting = True
        self._queued: list[Any] = []
        self._paused_downstreams: set[BaseConnection] = set()
        self._write_paused = False
        self._connect_task: asyncio.Task[Any] | None = None

    # --- connect -----------------------------------------------------------------------------
    def start_connect(self) -> None:
        self._connect_task = self.pool.loop.create_task(self._connect())

    async def _connect(self) -> None:
        addr = self.host.address
        self.host.cx_total += 1
        try:
            await asyncio.wait_for(
                self.pool.loop.create_connection(lambda: self, addr.host, addr.port),
                self.pool.connect_timeout,
            )
        except (OSError, TimeoutError) as e:
            self.host.cx_connect_fail += 1
            if self.pool.health is not None:
                self.pool.health.report_connect_failure(self.host)
            log_event(
                log, logging.WARNING, "upstream connect failed",
                cluster=self.pool.cluster_name, host=str(addr), error=str(e) or type(e).__name__,
            )
            self._fail_all(ResetReason.CONNECT_FAILURE)
        except asyncio.CancelledError:
            self._fail_all(ResetReason.CONNECT_FAILURE)
            raise
        finally:
            self._connect_task = None

    def on_connected(self) -> None:
        self._connecting = False
        self.host.cx_active += 1
        if self.pool.health is not None:
            self.pool.health.report_connect_success(self.host)
        if self._queued:
            q, self._queued = self._queued, []
            self.write(q)
            self.batcher.flush()

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
        bufs = self.codec.send(frame, rid)
        if self._connecting:
            self._queued.extend(bufs)
        else:
            self.write(bufs)
        return rid

    def send_data(self, rid: int, df: DataFrame) -> None:
        """Body of a streaming request sent with ``send_request`` (multiplexed protocols)."""
        bufs = self.codec.send(DataFrame(rid, df.data, df.end_stream))
        if self._connecting:
            self._queued.extend(bufs)
        else:
            self.write(bufs)

    def send_trailers(self, rid: int, tf: TrailersFrame) -> None:
        bufs = self.codec.send(TrailersFrame(rid, tf.trailers))
        if self._connecting:
            self._queued.extend(bufs)
        else:
            self.write(bufs)

    def cancel(self, rid: int) -> None:
        """Forget request ``rid`` (timed out): a late response is dropped."""
        self.streams.pop(rid, None)

    def register_backpressure(self, downstream: BaseConnection) -> None:
        """Pause ``downstream`` until this connection's write buffer drains."""
        if self._write_paused and downstream not in self._paused_downstreams:
            self._paused_downstreams.add(downstream)
            downstream.pause(PAUSE_UPSTREAM)

    @property
    def congested(self) -> bool:
        return self._write_paused

    def on_write_paused(self) -> None:
        self._write_paused = True

    def on_write_resumed(self) -> None:
        self._write_paused = False
        paused, self._paused_downstreams = self._paused_downstreams, set()
        for d in paused:
            d.resume(PAUSE_UPSTREAM)

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

    def on_closed(self, exc: Exception | None) -> None:
        if not self._connecting:
            self.host.cx_active -= 1
        self._connecting = False
        self._fail_all(
            ResetReason.CONNECTION_FAILED if exc is not None else ResetReason.CONNECTION_TERMINATED
        )
        self.on_write_resumed()

    def _fail_all(self, reason: ResetReason) -> None:
        self.closed = True
        self._queued = []
        self.pool.remove(self)
        streams, self.streams = self.streams, {}
        for cb in streams.values():
            cb.on_upstream_reset(reason)
        self.batcher.flush()

    def shutdown(self) -> None:
        if self._connect_task is not None:
            self._connect_task.cancel()
        self.close()


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
