"""Listeners: a bound socket, the per-listener context its connections share, idle sweeping
and draining."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mosn_py.codecs.base import CodecLimits, Frame
from mosn_py.config.model import ListenerConfig
from mosn_py.observability.access_log import AccessLog
from mosn_py.observability.log import log_event
from mosn_py.observability.stats import ListenerStats
from mosn_py.router.routes import KEY_EXTRACTORS
from mosn_py.server.connection import BaseConnection, WriteBatcher
from mosn_py.tls import ALPN_BY_PROTOCOL, server_context

if TYPE_CHECKING:
    from mosn_py.server.runtime import Runtime
    from mosn_py.upstream.cluster_manager import ClusterManager

log = logging.getLogger("mosn_py.listener")

IP_TRANSPARENT = 19  # linux/in.h
IPV6_TRANSPARENT = 75  # linux/in6.h


class ListenerContext:
    """What every connection of one listener shares (read on the hot path)."""

    __slots__ = (
        "config",
        "runtime",
        "loop",
        "batcher",
        "conns",
        "access_log",
        "stats",
        "route_table",
        "codec_cls",
        "limits",
        "filter_factories",
        "draining",
        "timers",
        "http",
        "auto_codecs",
        "shards",
        "translators",
        "_translators",
    )

    def __init__(
        self,
        config: ListenerConfig,
        runtime: Runtime,
        loop: asyncio.AbstractEventLoop,
        batcher: WriteBatcher,
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.loop = loop
        self.batcher = batcher
        self.conns: set[Any] = set()
        self.access_log = AccessLog(config.access_log) if config.access_log else None
        self.stats = ListenerStats()
        self.route_table: Any = None  # RouteTable (single-frame protocols) or HttpRouteTable
        self.codec_cls: Any = None
        self.limits = CodecLimits(
            max_frame_size=config.max_frame_size,
            max_header_size=config.max_header_size,
            max_header_count=config.max_header_count,
            max_body_size=config.max_body_size,
            max_concurrent_streams=config.max_concurrent_streams,
        )
        self.filter_factories: tuple[Callable[[], Any], ...] = ()
        self.draining = False
        self.timers = runtime.timers
        self.http = False  # an HTTP listener: HTTP routing and head processing
        # ``protocol: http``: (HTTP/2 codec, HTTP/1.1 codec), picked per connection by ALPN
        # or by the HTTP/2 connection preface; ``codec_cls`` is None then.
        self.auto_codecs: tuple[Any, Any] | None = None
        self.shards: dict[int, Any] = {}  # cache protocols: a ketama ring per cluster
        # (listener protocol, cluster protocol) -> translator class; empty: none registered
        self.translators: dict[tuple[str, str], Any] = {}
        self._translators: dict[tuple[int, str], Any] = {}  # built per (rule, upstream)

    def translator_for(self, rule: Any, upstream: str) -> Any:
        """The translator a request needs to reach an ``upstream`` cluster under ``rule``
        (a RouteRule / HttpRouteRule), or None when the protocols match (HTTP versions
        convert without one). Built once per rule from its ``translate`` options."""
        down = self.config.protocol
        if down == upstream:
            return None
        key = (id(rule), upstream)
        found = self._translators.get(key)
        if found is not None:
            return found
        cls = self.translators.get((down, upstream))
        if cls is None:
            return None  # HTTP <-> HTTP (the config checks refused anything else)
        t = cls.from_options(dict(getattr(rule, "translate", ())))
        self._translators[key] = t
        return t

    def reset_caches(self) -> None:
        """After a live update: translators are built per rule, ketama rings per cluster."""
        self._translators = {}
        self.shards = {}

    def clusters(self) -> ClusterManager:
        return self.runtime.clusters

    def track(self, conn: Any) -> None:
        self.conns.add(conn)
        self.stats.cx_total += 1
        self.stats.cx_active += 1

    def untrack(self, conn: Any) -> None:
        if conn in self.conns:
            self.conns.discard(conn)
            self.stats.cx_active -= 1

    def describe(self, frame: Frame) -> str:
        ex = KEY_EXTRACTORS.get(self.config.protocol)
        if ex is None:
            return ""
        return ex[0](frame.headers) or ""


def bind_socket(config: ListenerConfig, *, reuse_port: bool = False) -> socket.socket:
    """Bind (but do not yet serve) a listening socket for ``config``. ``reuse_port``: with
    SO_REUSEPORT, for listeners each worker binds itself (the ones xDS adds)."""
    addr = config.address
    infos = socket.getaddrinfo(
        addr.host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if config.transparent:
            try:
                if family == socket.AF_INET:
                    sock.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
                else:
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
            except OSError as e:
                # Only TPROXY needs it; REDIRECT interception works without.
                log_event(
                    log, logging.WARNING, "IP_TRANSPARENT unavailable (TPROXY mode needs "
                    "CAP_NET_ADMIN); REDIRECT interception still works",
                    listener=config.name, error=str(e),
                )
        sock.bind(sockaddr)
        sock.listen(config.backlog)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"listener {config.name!r} cannot bind {addr}: {e.strerror}") from e
    return sock


class Listener:
    def __init__(
        self,
        ctx: ListenerContext,
        protocol_factory: Callable[[ListenerContext], asyncio.BaseProtocol],
        sock: socket.socket | None,
    ) -> None:
        """``sock`` None: a virtual listener (``bind_to_port: false``), reached only through
        a ``use_original_dst`` listener's hand-off."""
        self.ctx = ctx
        self.config = ctx.config
        self._factory = protocol_factory
        self._sock = sock
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def dup_socket(self) -> socket.socket:
        assert self._sock is not None
        """A second descriptor of the listening socket, for the listener that replaces this
        one on the same address (the kernel's accept queue carries over: no refused
        connection while they change places)."""
        sock = self._sock.dup()
        sock.setblocking(False)
        return sock

    @property
    def address(self) -> tuple[str, int]:
        if self._sock is None:
            return self.config.address.host, self.config.address.port
        name = self._sock.getsockname()
        return name[0], name[1]

    async def start(self) -> None:
        cfg = self.config
        ssl_ctx = (
            server_context(cfg.tls, ALPN_BY_PROTOCOL.get(cfg.protocol)) if cfg.tls else None
        )
        ctx = self.ctx
        factory = self._factory
        if self._sock is None:
            if cfg.idle_timeout:
                self._schedule_sweep()
            return
        self._server = await ctx.loop.create_server(
            lambda: factory(ctx), sock=self._sock, ssl=ssl_ctx, backlog=cfg.backlog
        )
        if cfg.idle_timeout:
            self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        interval = max(0.05, min(self.config.idle_timeout or 1.0, 20.0) / 4)
        self._sweeper = self.ctx.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        """Close connections that saw no traffic (and have nothing in flight) for
        ``idle_timeout``."""
        timeout = self.config.idle_timeout
        assert timeout
        now = self.ctx.loop.time()
        for conn in list(self.ctx.conns):
            token = idle_token(conn)
            if token is None:
                conn.idle_mark = None
                continue
            mark = conn.idle_mark
            if mark is None or mark[0] != token:
                conn.idle_mark = (token, now)
            elif now - mark[1] >= timeout:
                log_event(
                    log, logging.DEBUG, "closing idle connection",
                    listener=self.config.name, peer=getattr(conn, "peer_addr", ""),
                )
                close_idle(conn)
        self._schedule_sweep()

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def start_drain(self) -> None:
        """Draining: L7 connections take no new request (HTTP/2: GOAWAY; Bolt and HTTP/1.1
        stop reading, the client learns by the close) and close as soon as nothing is in
        flight (``L7Connection.drain``); TCP sessions run until they end or the drain
        timeout."""
        self.ctx.draining = True
        for conn in list(self.ctx.conns):
            drain = getattr(conn, "drain", None)
            if drain is not None:  # a tcp session has none: it runs until it ends
                drain()

    @property
    def in_flight(self) -> int:
        n = 0
        for conn in self.ctx.conns:
            streams = getattr(conn, "streams", None)
            n += len(streams) if streams is not None else 1  # a tcp session counts as one
        return n

    def close_all(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.ctx.conns):
            conn.abort() if isinstance(conn, BaseConnection) else conn.close()

    def close_logs(self) -> None:
        """After the aborted connections' last callbacks ran (they still log)."""
        if self.ctx.access_log is not None:
            self.ctx.access_log.close()


def idle_token(conn: Any) -> int | None:
    """A number that changes whenever the connection does something; None = busy."""
    streams = getattr(conn, "streams", None)
    token: int = conn.activity
    if streams:
        # Requests in flight: their own timeouts apply. Tunnels (WebSocket, CONNECT) have
        # none: they are idle when neither side moved a byte.
        for s in streams.values() if isinstance(streams, dict) else streams:
            if not getattr(s, "tunnel", False):
                return None
            up = s.upstream
            if up is not None:
                token += up.activity
        return token
    peer = getattr(conn, "peer", None)
    if peer is not None:
        token += peer.activity
    return token


def close_idle(conn: Any) -> None:
    session = getattr(conn, "session", None)
    if session is not None:
        session.finish("idle_timeout")
    else:
        conn.close()
