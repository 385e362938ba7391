"""What every pooled upstream connection shares, whatever its pool discipline: connecting
(with a timeout, health reports, queueing what is sent meanwhile), failing every owner at
once when it dies, and pausing the downstream connections that feed it while its write
buffer is full.

Subclasses: ``pool.UpstreamConnection`` (multiplexed by request id),
``streaming.StreamingUpstreamConnection`` (multiplexed, codec-owned stream ids),
``pingpong.PingPongConnection`` (one exchange at a time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mosn_py.codecs.base import CodecLimits, Role
from mosn_py.errors import ResetReason
from mosn_py.observability.log import log_event
from mosn_py.server.connection import PAUSE_UPSTREAM, BaseConnection, WriteBatcher

if TYPE_CHECKING:
    from mosn_py.upstream.host import Host

log = logging.getLogger("mosn_py.upstream")


class PooledConnection(BaseConnection):
    __slots__ = (
        "pool",
        "host",
        "codec",
        "streams",
        "_connecting",
        "_queued",
        "_paused_downstreams",
        "_write_paused",
        "_connect_task",
    )

    def __init__(self, pool: Any) -> None:
        super().__init__(pool.batcher, pool.loop)
        self.pool = pool
        self.host = pool.host
        self.codec = pool.codec_factory(Role.CLIENT, limits=pool.limits)
        self.streams: dict[int, Any] = {}  # id -> owner (UpstreamCallbacks)
        self._connecting = True
        self._queued: list[Any] = []  # buffers sent while connecting
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
                self.pool.loop.create_connection(
                    lambda: self, addr.host, addr.port, **self.pool.connect_args(addr.host)
                ),
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
        if self.pool.check_peer is not None:
            why = self.pool.check_peer(self.transport)
            if why is not None:
                self.host.cx_connect_fail += 1
                log_event(log, logging.WARNING, "upstream identity refused",
                          cluster=self.pool.cluster_name, host=str(self.host.address),
                          error=why)
                self._fail_all(ResetReason.CONNECT_FAILURE)
                self.abort()
                return
        self._connecting = False
        self.host.cx_active += 1
        if self.pool.health is not None:
            self.pool.health.report_connect_success(self.host)
        if self._queued:
            q, self._queued = self._queued, []
            self.write(q)
            self.batcher.flush()

    def _emit(self, bufs: list[Any]) -> None:
        """Write ``bufs`` now, or after the connect if it is still under way."""
        if self._connecting:
            self._queued.extend(bufs)
        else:
            self.write(bufs)

    # --- backpressure --------------------------------------------------------------------------
    @property
    def congested(self) -> bool:
        return self._write_paused

    def register_backpressure(self, downstream: BaseConnection) -> None:
        """Pause ``downstream`` until this connection's write buffer drains."""
        if self._write_paused and downstream not in self._paused_downstreams:
            self._paused_downstreams.add(downstream)
            downstream.pause(PAUSE_UPSTREAM)

    def on_write_paused(self) -> None:
        self._write_paused = True

    def on_write_resumed(self) -> None:
        self._write_paused = False
        paused, self._paused_downstreams = self._paused_downstreams, set()
        for d in paused:
            d.resume(PAUSE_UPSTREAM)

    # --- the end -------------------------------------------------------------------------------
    def on_closed(self, exc: Exception | None) -> None:
        if not self._connecting:
            self.host.cx_active -= 1
        self._connecting = False
        self._fail_all(
            ResetReason.CONNECTION_FAILED if exc is not None else ResetReason.CONNECTION_TERMINATED
        )
        self.on_write_resumed()

    def _fail_all(self, reason: ResetReason) -> None:
        """Dead: leave the pool and tell every owner at once."""
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


class PoolBase:
    """The connections of one pool discipline to one host (subclasses pick and reuse)."""

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
        "closed",
        "setup",
        "check_peer",
        "_connect_args",
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
        connect_args: Callable[[str], dict[str, Any]] | None = None,
        check_peer: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.host = host
        # host -> create_connection keywords (TLS, local address): the cluster's
        self._connect_args = connect_args
        # transport -> why the server's certificate is not the one wanted (None: it is)
        self.check_peer = check_peer
        # Requests every new connection sends first (Redis AUTH / HELLO 3): (frame, callbacks)
        self.setup: list[tuple[Any, Any]] = []
        self.size = size
        self.codec_factory = codec_factory
        self.limits = limits
        self.connect_timeout = connect_timeout
        self.loop = loop
        self.batcher = batcher
        self.cluster_name = cluster_name
        self.health = health  # gets report_connect_success/failure(host)
        self.conns: list[Any] = []
        self.closed = False

    def connect_args(self, host: str) -> dict[str, Any]:
        """Keyword arguments for ``create_connection``: none for plain TCP."""
        return self._connect_args(host) if self._connect_args is not None else {}

    def _open(self, cls: type[PooledConnection]) -> Any:
        c: Any = cls(self)
        self.conns.append(c)
        c.start_connect()
        for frame, cb in self.setup:  # queued ahead of every request
            c.send_request(frame, cb)  # (multiplexed connections only set ``setup``)
        return c

    def remove(self, conn: Any) -> None:
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
