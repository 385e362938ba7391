"""The runtime of one process: clusters, listeners, demo upstreams, admin; start, drain, stop.

    rt = Runtime(config, registries, loop)
    await rt.start()              # binds and serves
    await rt.drain()              # SIGTERM: stop accepting, let in-flight requests finish
    rt.close()
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from mosn_py.config.model import (
    CACHE_PROTOCOLS,
    HTTP_LISTENER_PROTOCOLS,
    Config,
    ListenerConfig,
)
from mosn_py.errors import ConfigError
from mosn_py.filters.network.cache_proxy import CacheRouteTable, make_cache_protocol
from mosn_py.filters.network.l7_proxy import make_l7_protocol
from mosn_py.filters.network.tcp_proxy import make_tcp_protocol
from mosn_py.observability.log import log_event
from mosn_py.registry import Registries
from mosn_py.router.http_routes import HttpRouteTable
from mosn_py.router.routes import RouteTable
from mosn_py.server.connection import WriteBatcher
from mosn_py.server.listener import Listener, ListenerContext, bind_socket
from mosn_py.server.timers import TimerWheel
from mosn_py.upstream.cluster_manager import ClusterManager

log = logging.getLogger("mosn_py.runtime")


class Runtime:
    def __init__(
        self,
        config: Config,
        registries: Registries,
        loop: asyncio.AbstractEventLoop,
        *,
        sockets: dict[str, socket.socket] | None = None,
    ) -> None:
        self.config = config
        self.registries = registries
        self.loop = loop
        self.batcher = WriteBatcher()
        self.timers = TimerWheel(loop)
        self.clusters = ClusterManager(
            config.clusters, registries, loop=loop, batcher=self.batcher
        )
        self.listeners: list[Listener] = []
        self._sockets = sockets or {}
        self._demo: list[Any] = []
        self.admin: Any = None

    def _make_context(self, cfg: ListenerConfig) -> ListenerContext:
        ctx = ListenerContext(cfg, self, self.loop, self.batcher)
        for name, cls in self.registries.translators.as_dict().items():
            down, _, up = name.partition("->")
            if down == cfg.protocol or (cfg.protocol == "http" and down in ("http1", "http2")):
                ctx.translators[(down, up)] = cls
        if cfg.protocol != "tcp":
            if cfg.protocol == "http":
                ctx.auto_codecs = (
                    self.registries.codecs.get("http2"),
                    self.registries.codecs.get("http1"),
                )
            else:
                ctx.codec_cls = self.registries.codecs.get(cfg.protocol)
            route = self.config.route(cfg.route or "")
            if route is None:
                raise ConfigError(f"listener {cfg.name!r}: no route named {cfg.route!r}")
            if cfg.protocol in HTTP_LISTENER_PROTOCOLS:
                ctx.route_table = HttpRouteTable(route)
                ctx.http = True
                self._check_translators(ctx, route)
            elif cfg.protocol in CACHE_PROTOCOLS:
                ctx.route_table = CacheRouteTable(route)
            else:
                ctx.route_table = RouteTable(route, cfg.protocol)
            factories = []
            for i, fc in enumerate(cfg.filters):
                fcls = self.registries.stream_filters.get(fc.name)
                try:
                    factories.append(fcls.from_config(fc.as_dict()))
                except ConfigError as e:
                    raise ConfigError(
                        [f"listeners[{cfg.name}].filters[{i}] ({fc.name}): {m}" for m in e.errors]
                    ) from None
            ctx.filter_factories = tuple(factories)
        return ctx

    def _check_translators(self, ctx: ListenerContext, route: Any) -> None:
        """Build the translators of HTTP rules now, so that bad ``translate`` options stop
        the start (the config loader checks those of single-frame rules itself)."""
        for vh in route.virtual_hosts:
            for rule in vh.rules:
                names = [rule.cluster] if rule.cluster else [
                    w.cluster for w in rule.weighted_clusters
                ]
                for name in names:
                    cluster = self.config.cluster(name)
                    if cluster is None:
                        continue
                    try:
                        ctx.translator_for(rule, cluster.protocol)
                    except ConfigError as e:
                        raise ConfigError([f"listener {ctx.config.name!r}, virtual host"
                                           f" {vh.name!r}, cluster {name!r}: translate: {m}"
                                           for m in e.errors]) from None

    async def start(self) -> None:
        from mosn_py.demo import start_demo_upstreams

        self._demo = await start_demo_upstreams(self.config.demo_upstreams, self.loop)
        served = [cfg for cfg in self.config.listeners if not cfg.api_listener]
        contexts = [self._make_context(cfg) for cfg in served]
        for cfg, ctx in zip(served, contexts, strict=True):
            sock = self._sockets.get(cfg.name) or bind_socket(cfg)
            factory: Any = (
                make_tcp_protocol if cfg.protocol == "tcp"
                else make_cache_protocol if cfg.protocol in CACHE_PROTOCOLS
                else make_l7_protocol
            )
            listener = Listener(ctx, factory, sock)
            await listener.start()
            self.listeners.append(listener)
            host, port = listener.address
            log_event(
                log, logging.INFO, "listener started",
                listener=cfg.name, protocol=cfg.protocol, address=_fmt(host, port),
            )
        if self.config.admin is not None:
            from mosn_py.admin.server import AdminServer

            self.admin = AdminServer(self, self.config.admin)
            await self.admin.start()

    def bound_addresses(self) -> dict[str, str]:
        out = {lst.config.name: _fmt(*lst.address) for lst in self.listeners}
        if self.admin is not None:
            out["admin"] = self.admin.address_str
        for d in self._demo:
            out[f"demo:{d.name}"] = d.address_str
        return out

    @property
    def in_flight(self) -> int:
        return sum(lst.in_flight for lst in self.listeners)

    async def drain(self, timeout: float) -> bool:
        """Stop accepting; wait up to ``timeout`` for in-flight work. True if all finished."""
        for lst in self.listeners:
            lst.stop_accepting()
        for lst in self.listeners:
            lst.start_drain()
        deadline = self.loop.time() + timeout
        while self.in_flight and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        left = self.in_flight
        log_event(log, logging.INFO, "drained", in_flight_left=left)
        return left == 0

    def close(self) -> None:
        """Abort everything still open (synchronous; see ``shutdown``)."""
        for lst in self.listeners:
            lst.stop_accepting()
            lst.close_all()
        self.clusters.close()
        self.timers.close()
        if self.admin is not None:
            self.admin.close()
        for d in self._demo:
            d.close()

    async def shutdown(self) -> None:
        """``close()``, then let the loop deliver the last callbacks (connection_lost,
        cancelled connects) before access logs are closed."""
        self.close()
        for _ in range(3):
            await asyncio.sleep(0)
        for lst in self.listeners:
            lst.close_logs()


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
