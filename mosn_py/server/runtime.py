"""The runtime of one process: clusters, listeners, demo upstreams, admin; start, drain, stop,
and live updates.

    rt = Runtime(config, registries, loop)
    await rt.start()              # binds and serves
    await rt.apply(new_config)    # a live update (xDS): see ``apply``
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
    Address,
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
            config.clusters, registries, loop=loop, batcher=self.batcher,
            drain_timeout=config.drain_timeout,
        )
        self.listeners: list[Listener] = []
        self.retiring: set[Listener] = set()  # replaced or removed, draining
        self._virtual: dict[tuple[str, int], list[ListenerContext]] = {}
        self._retire_tasks: set[asyncio.Task[None]] = set()
        self._sockets = sockets or {}
        self._workers = sockets is not None  # forked workers: sockets inherited
        self._demo: list[Any] = []
        self.admin: Any = None
        self.xds: Any = None  # the XdsClient when the config has ``xds``

    def _make_context(self, cfg: ListenerConfig, config: Config | None = None) -> ListenerContext:
        ctx = ListenerContext(cfg, self, self.loop, self.batcher)
        config = config or self.config
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
            ctx.http = cfg.protocol in HTTP_LISTENER_PROTOCOLS
            ctx.route_table = self._route_table(ctx, config)
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

    def _route_table(self, ctx: ListenerContext, config: Config) -> Any:
        cfg = ctx.config
        route = config.route(cfg.route or "")
        if route is None:
            raise ConfigError(f"listener {cfg.name!r}: no route named {cfg.route!r}")
        if cfg.protocol in HTTP_LISTENER_PROTOCOLS:
            self._check_translators(ctx, route, config)
            return HttpRouteTable(route)
        if cfg.protocol in CACHE_PROTOCOLS:
            return CacheRouteTable(route)
        return RouteTable(route, cfg.protocol)

    def _check_translators(self, ctx: ListenerContext, route: Any, config: Config) -> None:
        """Build the translators of HTTP rules now, so that bad ``translate`` options stop
        the start (the config loader checks those of single-frame rules itself)."""
        for vh in route.virtual_hosts:
            for rule in vh.rules:
                names = [rule.cluster] if rule.cluster else [
                    w.cluster for w in rule.weighted_clusters
                ]
                for name in names:
                    cluster = config.cluster(name)
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
            sock = (
                None if not cfg.bind_to_port
                else self._sockets.get(cfg.name) or bind_socket(cfg)
            )
            listener = Listener(ctx, self.protocol_factory(cfg), sock)
            await listener.start()
            self.listeners.append(listener)
            host, port = listener.address
            log_event(
                log, logging.INFO, "listener started",
                listener=cfg.name, protocol=cfg.protocol, address=_fmt(host, port),
            )
        self._index_virtual()
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

    # --- live updates -------------------------------------------------------------------------
    async def apply(self, new: Config) -> dict[str, int]:
        """Move to the config snapshot ``new`` without disrupting what did not change.

        Clusters: see ``ClusterManager.update`` (unchanged kept, endpoint changes in place,
        others replaced; retired ones finish their requests). Listeners: an unchanged one
        keeps its socket and connections and gets the new route table if its route config
        changed (new requests route by it at once; requests in flight finish on the rule
        they matched); a changed one is replaced (its socket is handed over when the address
        stays, so no connection is refused) and the old one drains; a removed one drains.

        Everything that can fail (route tables, translators, filters, binding new addresses)
        is done before anything changes: ``ConfigError`` leaves the runtime as it was.
        """
        old_by_name = {lst.config.name: lst for lst in self.listeners}
        by_addr = {_addr_key(lst.config): lst for lst in self.listeners}
        by_addr.pop(None, None)
        plan: list[tuple[ListenerConfig, Any, Listener | None, Listener | None]] = []
        bound: list[socket.socket] = []
        try:
            for cfg in new.listeners:
                if cfg.api_listener:
                    continue
                cur = old_by_name.get(cfg.name)
                if cur is not None and cur.config == cfg:
                    if cfg.route and self.config.route(cfg.route) != new.route(cfg.route):
                        plan.append((cfg, self._route_table(cur.ctx, new), cur, None))
                    else:
                        plan.append((cfg, None, cur, None))
                    continue
                ctx = self._make_context(cfg, new)
                donor = by_addr.get(_addr_key(cfg))
                if not cfg.bind_to_port:
                    plan.append((cfg, ctx, cur, None))
                    continue
                if donor is None:
                    # workers each run their own xDS client and bind what it adds
                    bound.append(bind_socket(cfg, reuse_port=self._workers))
                plan.append((cfg, ctx, cur, donor))
        except (ConfigError, OSError) as e:
            for b in bound:
                b.close()
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(e.strerror or str(e)) from None
        self.config = new
        self.clusters.drain_timeout = new.drain_timeout
        stats = dict(zip(("clusters_added", "clusters_updated", "clusters_removed"),
                         self.clusters.update(new.clusters), strict=True))
        keep: list[Listener] = []
        started = replaced = routes = 0
        sockets = iter(bound)
        for cfg, obj, cur, donor in plan:
            if isinstance(obj, ListenerContext):
                sock: socket.socket | None = (
                    None if not cfg.bind_to_port
                    else donor.dup_socket() if donor is not None
                    else next(sockets)
                )
                listener = Listener(obj, self.protocol_factory(cfg), sock)
                await listener.start()
                keep.append(listener)
                started += 1
                if cur is not None:
                    replaced += 1
                log_event(log, logging.INFO, "listener started", listener=cfg.name,
                          protocol=cfg.protocol, address=_fmt(*listener.address))
                continue
            assert cur is not None
            if obj is not None:
                cur.ctx.route_table = obj
                cur.ctx.reset_caches()
                routes += 1
            elif stats["clusters_added"] or stats["clusters_updated"]:
                cur.ctx.reset_caches()
            keep.append(cur)
        kept = {id(lst) for lst in keep}
        for lst in self.listeners:
            if id(lst) not in kept:
                self._retire(lst)
        self.listeners = keep
        self._index_virtual()
        names = {lst.config.name for lst in keep}
        stats.update(
            listeners_added=started - replaced,
            listeners_replaced=replaced,
            listeners_removed=sum(1 for name in old_by_name if name not in names),
            route_tables_swapped=routes,
        )
        return stats

    def _retire(self, lst: Listener) -> None:
        lst.stop_accepting()
        lst.start_drain()
        self.retiring.add(lst)
        log_event(log, logging.INFO, "listener draining", listener=lst.config.name)
        task = self.loop.create_task(self._finish_retired(lst))
        self._retire_tasks.add(task)
        task.add_done_callback(self._retire_tasks.discard)

    async def _finish_retired(self, lst: Listener) -> None:
        deadline = self.loop.time() + self.config.drain_timeout
        while lst.in_flight and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        lst.close_all()
        await asyncio.sleep(0)
        lst.close_logs()
        self.retiring.discard(lst)

    def _index_virtual(self) -> None:
        index: dict[tuple[str, int], list[ListenerContext]] = {}
        for lst in self.listeners:
            cfg = lst.config
            if not cfg.bind_to_port:
                index.setdefault((cfg.address.host, cfg.address.port), []).append(lst.ctx)
        self._virtual = index

    def virtual_listeners(self, dst: Address) -> list[ListenerContext]:
        """The ``bind_to_port: false`` listeners for an original destination: those at
        exactly that ip:port, else those at the wildcard address with that port."""
        found = self._virtual.get((dst.host, dst.port))
        if found:
            return found
        wildcard = "::" if ":" in dst.host else "0.0.0.0"
        return self._virtual.get((wildcard, dst.port)) or []

    @staticmethod
    def protocol_factory(cfg: ListenerConfig) -> Any:
        """The protocol factory of a listener's connections (the dispatcher's hand-off
        uses it too)."""
        if cfg.use_original_dst:
            from mosn_py.server.dispatch import make_dispatch_protocol

            return make_dispatch_protocol
        if cfg.protocol == "tcp":
            return make_tcp_protocol
        if cfg.protocol in CACHE_PROTOCOLS:
            return make_cache_protocol
        return make_l7_protocol

    @property
    def in_flight(self) -> int:
        return sum(lst.in_flight for lst in self.listeners) + sum(
            lst.in_flight for lst in self.retiring
        )

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
        for task in self._retire_tasks:
            task.cancel()
        for lst in [*self.listeners, *self.retiring]:
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
        for lst in [*self.listeners, *self.retiring]:
            lst.close_logs()


def _addr_key(cfg: ListenerConfig) -> tuple[str, int, bool] | None:
    """Listeners with equal keys can hand their socket over; port 0 ("any") never does."""
    if cfg.address.port == 0:
        return None
    return (cfg.address.host, cfg.address.port, cfg.transparent)


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
