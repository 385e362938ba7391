"""A cluster: its hosts, its load balancer, its pools, its circuit breaker and passive
health (outlier ejection on consecutive connect failures)."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import replace
from typing import Any, ClassVar

from mosn_py.codecs.base import CodecLimits, PoolMode
from mosn_py.config.model import Address, ClusterConfig, Endpoint
from mosn_py.observability.log import log_event
from mosn_py.server.connection import WriteBatcher
from mosn_py.tls import client_context, san_mismatch
from mosn_py.upstream.host import Host
from mosn_py.upstream.lb import LoadBalancer
from mosn_py.upstream.pingpong import PingPongPool
from mosn_py.upstream.pool import MultiplexPool
from mosn_py.upstream.streaming import StreamingUpstreamConnection

log = logging.getLogger("mosn_py.cluster")
RETIRE_CHECK_INTERVAL = 0.25  # how often retired pools are checked for idleness


class Cluster:
    # protocol -> (config, variant) -> [(frame, callbacks)]: requests each new upstream
    # connection sends first (Redis AUTH / HELLO 3); filled in by extensions.py
    pool_setups: ClassVar[dict[str, Any]] = {}

    __slots__ = (
        "config",
        "name",
        "hosts",
        "lb",
        "rq_active",
        "rq_total",
        "rq_overflow",
        "max_requests",
        "_pools",
        "_codec_factory",
        "_limits",
        "_loop",
        "_batcher",
        "_sweeper",
        "_lb_cls",
        "_unejectors",
        "ssl",
        "setup_pool",
        "_retired",
        "_retire_timer",
        "drain_timeout",
        "_dns_task",
    )

    def __init__(
        self,
        config: ClusterConfig,
        lb_cls: type[LoadBalancer],
        *,
        codec_factory: Any = None,
        loop: asyncio.AbstractEventLoop,
        batcher: WriteBatcher,
    ) -> None:
        self.config = config
        self.name = config.name
        self.hosts = tuple(Host(e.address, e.weight) for e in config.endpoints)
        self._lb_cls = lb_cls
        self.lb = lb_cls(self.hosts)
        self._unejectors: dict[Host, asyncio.TimerHandle] = {}
        self.rq_active = 0
        self.rq_total = 0
        self.rq_overflow = 0
        self.max_requests = config.max_requests
        self._pools: dict[Any, Any] = {}  # by host, or (host, variant)
        self._codec_factory = codec_factory
        self._limits = CodecLimits(max_frame_size=config.max_frame_size)
        self._loop = loop
        self._batcher = batcher
        self._sweeper: asyncio.TimerHandle | None = None
        # TLS origination: one context for every connection of the cluster
        self.ssl = client_context(config.tls, config.protocol) if config.tls else None
        # (config, variant) -> [(frame, callbacks)] every new connection sends first
        self.setup_pool: Any = self.pool_setups.get(config.protocol)
        # pools of hosts that left the cluster (or of a replaced cluster): closed once idle
        self._retired: list[tuple[Any, float]] = []  # (pool, deadline)
        self._retire_timer: asyncio.TimerHandle | None = None
        self.drain_timeout = 10.0
        self._dns_task: asyncio.Task[None] | None = None
        if config.idle_timeout:
            self._schedule_sweep()
        if config.type == "strict_dns":
            self._dns_task = loop.create_task(self._resolve_loop())

    @property
    def overflowing(self) -> bool:
        return self.rq_active >= self.max_requests

    def pool(self, host: Host, variant: str = "") -> Any:
        """The pool for ``host``: multiplexing or ping-pong, as the cluster's codec says.
        ``variant`` names a separate pool of connections set up differently (Redis: RESP3
        connections); ``setup_pool`` gives them their first requests."""
        key: Any = (host, variant) if variant else host
        pool = self._pools.get(key)
        if pool is None:
            codec = self._codec_factory
            extra: dict[str, Any] = {}
            if getattr(codec, "pool_mode", None) is PoolMode.PINGPONG:
                pool_cls: Any = PingPongPool
            else:
                pool_cls = MultiplexPool
                if hasattr(codec, "send_request"):  # the codec owns stream ids (HTTP/2)
                    extra["conn_cls"] = StreamingUpstreamConnection
            pool = self._pools[key] = pool_cls(
                host,
                size=self.config.connections_per_host,
                codec_factory=self._codec_factory,
                limits=self._limits,
                connect_timeout=self.config.connect_timeout,
                loop=self._loop,
                batcher=self._batcher,
                cluster_name=self.name,
                health=self,
                connect_args=self.connect_args,
                check_peer=self.peer_mismatch if self._sans else None,
                **extra,
            )
            if self.setup_pool is not None:
                pool.setup = self.setup_pool(self.config, variant)
        return pool

    # --- live updates ------------------------------------------------------------------------
    def update_endpoints(self, config: ClusterConfig) -> None:
        """Take ``config`` (equal to the current one but for its endpoints): hosts that stay
        keep their pools, counters and ejection state; new ones join; removed ones get no
        new requests and their connections close once their requests finished."""
        self.config = config
        if config.type != "strict_dns":
            self._set_hosts(config.endpoints)

    def _set_hosts(self, endpoints: tuple[Endpoint, ...]) -> None:
        old = {h.address: h for h in self.hosts}
        hosts: list[Host] = []
        for e in endpoints:
            h = old.pop(e.address, None)
            if h is None:
                h = Host(e.address, e.weight)
            h.weight = e.weight
            hosts.append(h)
        self.hosts = tuple(hosts)
        gone = set(old.values())
        for h in gone:
            timer = self._unejectors.pop(h, None)
            if timer is not None:
                timer.cancel()
        if gone:
            for key in [k for k in self._pools if (k[0] if isinstance(k, tuple) else k) in gone]:
                self.retire_pool(self._pools.pop(key), self.drain_timeout)
        self._rebuild_lb()

    def retire_pool(self, pool: Any, timeout: float) -> None:
        """Close ``pool`` once nothing is in flight on it (at the latest after ``timeout``)."""
        self._retired.append((pool, self._loop.time() + timeout))
        self._check_retired()

    def retire(self, timeout: float) -> None:
        """The cluster left the config (or was replaced): no new requests reach it (nobody
        resolves it by name any more); its pools close as their requests finish."""
        self.drain_timeout = timeout
        for key in list(self._pools):
            self.retire_pool(self._pools.pop(key), timeout)
        self._stop_timers()

    def has_retired_pools(self) -> bool:
        return bool(self._retired)

    def _check_retired(self) -> None:
        self._retire_timer = None
        now = self._loop.time()
        keep = []
        for pool, deadline in self._retired:
            if pool.in_flight == 0 or now >= deadline:
                pool.close()
            else:
                keep.append((pool, deadline))
        self._retired = keep
        if keep:
            self._retire_timer = self._loop.call_later(RETIRE_CHECK_INTERVAL, self._check_retired)

    async def _resolve_loop(self) -> None:
        """strict_dns: resolve every endpoint's name now and every ``dns_refresh_rate``; each
        address found is a host (Envoy's STRICT_DNS). A failed lookup keeps the last
        answer for that name."""
        known: dict[Endpoint, list[Endpoint]] = {}
        while True:
            cfg = self.config
            known = {e: v for e, v in known.items() if e in cfg.endpoints}
            for e in cfg.endpoints:
                try:
                    infos = await self._loop.getaddrinfo(
                        e.address.host, e.address.port, type=socket.SOCK_STREAM
                    )
                except (OSError, UnicodeError) as exc:
                    log_event(log, logging.WARNING, "dns resolution failed", cluster=self.name,
                              host=e.address.host, error=str(exc))
                    continue
                found: dict[Address, Endpoint] = {}
                for _, _, _, _, sockaddr in infos:
                    a = Address(str(sockaddr[0]), e.address.port)
                    found.setdefault(a, replace(e, address=a))
                known[e] = list(found.values())
            resolved: dict[Address, Endpoint] = {}
            for e in cfg.endpoints:
                for r in known.get(e, [e]):
                    resolved.setdefault(r.address, r)
            if tuple(resolved.values()) != tuple(Endpoint(h.address, h.weight) for h in self.hosts):
                self._set_hosts(tuple(resolved.values()))
            await asyncio.sleep(cfg.dns_refresh_rate)

    @property
    def _sans(self) -> tuple[str, ...]:
        return self.config.tls.subject_alt_names if self.config.tls else ()

    def peer_mismatch(self, transport: Any) -> str | None:
        """Why a TLS connection's server is not one ``tls.subject_alt_names`` allows, or None
        (also None when the cluster sets no identities: the host name was checked)."""
        sans = self._sans
        if not sans:
            return None
        return san_mismatch(transport.get_extra_info("ssl_object") if transport else None, sans)

    def connect_args(self, host: str) -> dict[str, Any]:
        """``create_connection`` keyword arguments for a connection to ``host`` (tcp_proxy
        and the pools): TLS, and the local address to bind."""
        out: dict[str, Any] = {}
        if self.config.source_address:
            out["local_addr"] = (self.config.source_address, 0)
        tls = self.config.tls
        if self.ssl is not None and tls is not None:
            out["ssl"] = self.ssl
            out["server_hostname"] = tls.sni or host
        return out

    # --- passive health ----------------------------------------------------------------------
    def report_connect_success(self, host: Host) -> None:
        host.consecutive_connect_failures = 0

    def report_connect_failure(self, host: Host) -> None:
        """Count a failed connect; eject the host when the run reaches the threshold."""
        host.consecutive_connect_failures += 1
        od = self.config.outlier_detection
        n = od.consecutive_connect_failures
        if n and not host.ejected and host.consecutive_connect_failures >= n:
            host.ejected = True
            host.ejections += 1
            duration = min(od.ejection_time * host.ejections, od.max_ejection_time)
            self._unejectors[host] = self._loop.call_later(duration, self._uneject, host)
            self._rebuild_lb()

    def _uneject(self, host: Host) -> None:
        self._unejectors.pop(host, None)
        host.ejected = False
        host.consecutive_connect_failures = 0
        self._rebuild_lb()

    def _rebuild_lb(self) -> None:
        healthy = [h for h in self.hosts if not h.ejected]
        # Panic mode: with every host ejected, balancing over all beats refusing everything.
        self.lb = self._lb_cls(healthy or self.hosts)

    def _schedule_sweep(self) -> None:
        interval = max(0.05, min(self.config.idle_timeout or 1.0, 20.0) / 4)
        self._sweeper = self._loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        """Close upstream connections idle (no request in flight, no bytes) for
        ``idle_timeout``; the pool opens a new one on the next request."""
        timeout = self.config.idle_timeout
        assert timeout
        now = self._loop.time()
        for pool in self._pools.values():
            for conn in list(pool.conns):
                if conn.streams:
                    conn.idle_mark = None
                    continue
                mark = conn.idle_mark
                if mark is None or mark[0] != conn.activity:
                    conn.idle_mark = (conn.activity, now)
                elif now - mark[1] >= timeout:
                    pool.remove(conn)
                    conn.close()
        self._schedule_sweep()

    def _stop_timers(self) -> None:
        for timer in self._unejectors.values():
            timer.cancel()
        self._unejectors.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._dns_task is not None:
            self._dns_task.cancel()
            self._dns_task = None

    def close(self) -> None:
        self._stop_timers()
        if self._retire_timer is not None:
            self._retire_timer.cancel()
            self._retire_timer = None
        for p in self._pools.values():
            p.close()
        self._pools.clear()
        for p, _ in self._retired:
            p.close()
        self._retired.clear()
