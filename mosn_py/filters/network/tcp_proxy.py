"""L4 ``tcp_proxy``: relay bytes between a downstream connection and an upstream host.

    client ──► TcpDownstream ══ session ══ TcpUpstream ──► host chosen by the cluster's LB

- The downstream is not read until the upstream is connected, so nothing is buffered while
  connecting. Hosts are tried in LB order; a connect failure or timeout moves to the next
  host not yet tried, until every host failed (then the downstream is closed).
- Each read is written straight to the other side's transport from the read buffer. When
  that transport could not send everything at once it may still reference the buffer
  (uvloop keeps a view of it), so the reader switches to a fresh buffer instead of copying.
- Backpressure: a side whose transport buffers more than the high watermark pauses reading
  on the other side until it drains.
- Half-close: EOF from one side becomes ``write_eof()`` (FIN) on the other; the session ends
  when both directions are done, or at once on a reset/error.
- One access-log line per session: bytes each way, duration, upstream host, outcome.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, cast

from mosn_py.config.model import Address
from mosn_py.observability.log import log_event
from mosn_py.server.connection import (
    PAUSE_PEER_SLOW,
    PAUSE_UPSTREAM,
    READ_BUFFER_SIZE,
    WRITE_HIGH_WATER,
    WRITE_LOW_WATER,
    BaseConnection,
)

if TYPE_CHECKING:
    from mosn_py.server.listener import ListenerContext
    from mosn_py.upstream.host import Host

log = logging.getLogger("mosn_py.tcp_proxy")

IP_TRANSPARENT = 19  # linux/in.h
IPV6_TRANSPARENT = 75  # linux/in6.h
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
IP6T_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv6/ip6_tables.h (same value, SOL_IPV6 level)


def original_destination(sock: socket.socket) -> Address | None:
    """Where an intercepted connection was going, or None: the pre-NAT destination of an
    iptables REDIRECT (``SO_ORIGINAL_DST``, ``IP6T_SO_ORIGINAL_DST``), else, for a
    connection accepted by an ``IP_TRANSPARENT`` socket (TPROXY: nothing was rewritten),
    the local address it was accepted on."""
    try:
        if sock.family == socket.AF_INET:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, ip = struct.unpack_from("!2xH4s", raw)
            return Address(socket.inet_ntop(socket.AF_INET, ip), port)
        if sock.family == socket.AF_INET6:
            raw = sock.getsockopt(socket.IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, 28)
            port, ip = struct.unpack_from("!2xH4x16s", raw)
            return Address(socket.inet_ntop(socket.AF_INET6, ip), port)
    except OSError:
        pass
    try:
        opt = (
            (socket.SOL_IP, IP_TRANSPARENT) if sock.family == socket.AF_INET
            else (socket.IPPROTO_IPV6, IPV6_TRANSPARENT)
        )
        if sock.getsockopt(*opt):
            host, port = sock.getsockname()[:2]
            return Address(str(host), int(port))
    except OSError:
        pass
    return None


class _Side(BaseConnection):
    """One half of a session; relays what it reads to ``peer``."""

    __slots__ = ("session", "peer", "bytes_read", "eof", "early")

    def __init__(self, session: TcpProxySession) -> None:
        super().__init__(session.ctx.batcher, session.ctx.loop)
        self.session = session
        self.peer: _Side | None = None
        self.bytes_read = 0
        self.eof = False
        # Bytes read before the upstream was connected. Reading is paused while connecting,
        # but a loop may deliver one read first (uvloop starts reading after
        # connection_made), so keep it rather than lose it.
        self.early: list[bytes] | None = None

    def buffer_updated(self, nbytes: int) -> None:
        # Hot path: no batching, no clock; one write straight from the read buffer.
        self.activity += 1
        self.bytes_read += nbytes
        peer = self.peer
        t = peer.transport if peer is not None else None
        if t is None:
            if self.early is None:
                self.early = []
            self.early.append(bytes(self._rmv[:nbytes]))
            if self.transport is not None:
                self.transport.pause_reading()
            return
        t.write(self._rmv[:nbytes])
        if t.get_write_buffer_size():
            # The transport may keep a view of our buffer until it is sent: leave it to
            # the transport and read into a new one.
            self._rbuf = bytearray(READ_BUFFER_SIZE)
            self._rmv = memoryview(self._rbuf)

    def on_data(self, data: memoryview) -> None:  # pragma: no cover - buffer_updated overrides
        raise AssertionError

    def eof_received(self) -> bool | None:
        self.eof = True
        peer = self.peer
        if peer is None and self.session.upstream is None and not self.session.done:
            return True  # still connecting: the EOF is passed on once connected
        if peer is not None and peer.transport is not None and not peer.closed:
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
            else:
                peer.close()
        if peer is None or peer.eof:
            self.session.finish("done")
            return None
        return True  # keep our write side open: the other direction may still send

    def on_write_paused(self) -> None:
        if self.peer is not None:
            self.peer.pause(PAUSE_PEER_SLOW)

    def on_write_resumed(self) -> None:
        if self.peer is not None:
            self.peer.resume(PAUSE_PEER_SLOW)

    def on_closed(self, exc: Exception | None) -> None:
        self.session.side_closed(self, exc)


class TcpDownstream(_Side):
    __slots__ = ()

    def on_connected(self) -> None:
        self.session.peer_addr = self.peername()
        self.pause(PAUSE_UPSTREAM)  # until the upstream is connected
        self.session.start()


class TcpUpstream(_Side):
    __slots__ = ()


class TcpProxySession:
    __slots__ = (
        "ctx", "downstream", "upstream", "host", "started", "done", "_task", "result", "peer_addr",
    )

    def __init__(self, ctx: ListenerContext) -> None:
        self.ctx = ctx
        self.downstream = TcpDownstream(self)
        self.upstream: TcpUpstream | None = None
        self.host: Host | Address | None = None
        self.started = time.time()
        self.done = False
        self._task: asyncio.Task[Any] | None = None
        self.result = ""
        self.peer_addr = ""

    def start(self) -> None:
        self.ctx.track(self.downstream)
        self._task = self.ctx.loop.create_task(self._connect())

    async def _connect(self) -> None:
        ctx = self.ctx
        cluster = ctx.clusters().get(ctx.config.cluster or "")
        if cluster is None:
            return self.finish("no_cluster")
        targets: list[Any]
        if cluster.config.type == "original_dst":
            t = self.downstream.transport
            sock = t.get_extra_info("socket") if t is not None else None
            dst = original_destination(sock) if sock is not None else None
            if dst is None:
                return self.finish("no_original_dst")
            targets = [dst]
        else:
            targets = []
        tried: set[Any] = set()
        loop = ctx.loop
        while not self.done:
            if cluster.config.type == "original_dst":
                if not targets:
                    return self.finish("connect_failed")
                target: Any = targets.pop()
                addr = target
            else:
                target = cluster.lb.choose(tried)
                if target is None or target in tried:
                    return self.finish("connect_failed" if tried else "no_healthy_upstream")
                tried.add(target)
                addr = target.address
                target.cx_total += 1
            up = TcpUpstream(self)

            def factory(up: TcpUpstream = up) -> TcpUpstream:  # bound now: the loop rebinds up
                return up

            try:
                await asyncio.wait_for(
                    loop.create_connection(
                        factory, addr.host, addr.port, **cluster.connect_args(addr.host)
                    ),
                    cluster.config.connect_timeout,
                )
            except (OSError, TimeoutError) as e:
                if hasattr(target, "cx_connect_fail"):
                    target.cx_connect_fail += 1
                    cluster.report_connect_failure(target)
                log_event(
                    log, logging.WARNING, "upstream connect failed",
                    listener=ctx.config.name, cluster=cluster.name, host=str(addr),
                    error=str(e) or type(e).__name__,
                )
                continue
            if self.done:  # the client went away while we were connecting
                up.abort()
                return
            why = cluster.peer_mismatch(up.transport)
            if why is not None:
                log_event(log, logging.WARNING, "upstream identity refused",
                          listener=ctx.config.name, cluster=cluster.name, host=str(addr),
                          error=why)
                up.abort()
                continue
            self.host = target
            if hasattr(target, "cx_connect_fail"):
                cluster.report_connect_success(target)
            if hasattr(target, "cx_active"):
                # A session is the tcp_proxy's "request": least_request balances on it.
                target.cx_active += 1
                target.rq_active += 1
                target.rq_total += 1
            self.upstream = up
            down = self.downstream
            up.peer, down.peer = down, up
            if up.transport is not None:
                up.transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
            # Either side may have read, hit EOF or (the upstream) closed before the two
            # were linked: the loop starts reading the upstream as soon as it is connected,
            # before this coroutine resumes. Pass all of that on now.
            up_paused = bool(up.early)  # buffer_updated paused it to keep the bytes
            _catch_up(down, up)
            _catch_up(up, down)
            if up.closed or (down.eof and up.eof):
                self.finish("done")
                return
            if not down.eof:
                down.resume(PAUSE_UPSTREAM)
                if down.transport is not None and not down._pause_mask:
                    down.transport.resume_reading()
            if up_paused and up.transport is not None and not up._pause_mask:
                up.transport.resume_reading()
            return

    def side_closed(self, side: _Side, exc: Exception | None) -> None:
        if exc is not None and not self.result:
            self.result = "reset"
        if side is self.downstream and self.upstream is None:
            # The client left before (or while) we connected.
            if self._task is not None and not self._task.done():
                self._task.cancel()
            self.finish("downstream_closed_early")
            return
        other = side.peer
        if other is not None and not other.closed:
            if exc is not None:
                other.abort()  # propagate a reset as a reset
            else:
                other.close()
        self._maybe_done()

    def finish(self, result: str) -> None:
        """End the session: close both sides (flushing what is queued)."""
        if not self.result:
            self.result = result
        for side in (self.downstream, self.upstream):
            if side is not None and not side.closed:
                side.close()
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.done or not self.downstream.closed:
            return
        if self.upstream is not None and not self.upstream.closed:
            return
        self.done = True
        ctx = self.ctx
        ctx.untrack(self.downstream)
        host = self.host
        if host is not None and hasattr(host, "cx_active"):
            counted = cast("Host", host)  # hasattr narrows cx_active only; a Host has both
            counted.cx_active -= 1
            counted.rq_active -= 1
        up = self.upstream
        sent = up.bytes_read if up else 0
        ctx.stats.cx_closed(self.downstream.bytes_read, sent)
        if ctx.access_log is not None:
            addr = getattr(host, "address", host)
            ctx.access_log.write(
                {
                    "listener": ctx.config.name,
                    "downstream": self.peer_addr,
                    "upstream": str(addr) if addr is not None else "",
                    "bytes_received": self.downstream.bytes_read,
                    "bytes_sent": sent,
                    "duration_ms": round((time.time() - self.started) * 1000, 3),
                    "result": self.result or "done",
                }
            )


def _catch_up(src: _Side, dst: _Side) -> None:
    """Write what ``src`` read before the session was linked to ``dst``, then its EOF."""
    t = dst.transport
    if t is None or dst.closed:
        return
    if src.early:
        early, src.early = src.early, None
        t.writelines(early)
    if src.eof:
        if t.can_write_eof():
            t.write_eof()
        else:
            dst.close()


def make_tcp_protocol(ctx: ListenerContext) -> asyncio.BufferedProtocol:
    return TcpProxySession(ctx).downstream
