"""The cache proxy: Redis and memcached clients in front of a sharded cluster (twemproxy's and
Envoy redis_proxy's job), on the same connections, pools, timers and codecs as the rest.

Per downstream connection: the server codec decodes pipelined commands; each becomes a
``CacheRequest`` (or several upstream fragments when it must be split); replies go back
through the codec, which puts them in request order whatever order the shards answered in.

Per command (the protocol's ``Adapter`` says which): answered here (PING, AUTH, version...),
refused with an error that says why, routed by its key -- route rules by ``key_prefix`` /
``commands``, then ketama over the cluster's endpoints (``upstream/ketama.py``) -- or split
per shard and merged (MGET, DEL, multi-key get...). Writes also go to the rule's ``mirror``
cluster, whose replies are dropped.

Upstream connections are pipelined and shared by every client (``connections_per_host``,
default 1), responses matched in order by the client codec. A shard that is down answers
its requests at once (connect failure -> error reply) while the others keep serving; the
next request to it tries to connect again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Frame, Role
from mosn_py.config.model import RouteConfig, RouteRule
from mosn_py.errors import ProtocolError, ProxyStatus, ResetReason
from mosn_py.observability.log import log_event
from mosn_py.server.connection import PAUSE_FLOW, PAUSE_STREAMS, BaseConnection
from mosn_py.upstream.ketama import KetamaRing

if TYPE_CHECKING:
    from mosn_py.server.listener import ListenerContext
    from mosn_py.upstream.cluster import Cluster
    from mosn_py.upstream.host import Host

log = logging.getLogger("mosn_py.proxy")

MAX_IN_FLIGHT = 4096  # per client connection: stop reading beyond this many commands


# --- routing -------------------------------------------------------------------------------


class CacheRouteTable:
    """First rule (in order) whose ``key_prefix`` and ``commands`` hold for a command."""

    __slots__ = ("rules",)

    def __init__(self, route: RouteConfig) -> None:
        self.rules = tuple(
            (r.match.key_prefix.encode() if r.match.key_prefix else None,
             frozenset(r.match.commands), r)
            for r in route.rules
        )

    def match(self, command: str, key: bytes | None) -> RouteRule | None:
        for prefix, commands, rule in self.rules:
            if commands and command not in commands:
                continue
            if prefix is not None and (key is None or not key.startswith(prefix)):
                continue
            return rule
        return None


class Shards:
    """A cluster's endpoints as shards: a ketama ring, rebuilt if the cluster object or its
    hosts change (a live update)."""

    __slots__ = ("cluster", "hosts", "ring")

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.hosts = cluster.hosts
        tag = cluster.config.hash_tag
        self.ring: KetamaRing[Host] = KetamaRing(
            [(str(h.address), h.weight, h) for h in cluster.hosts],
            hash_tag=tag.encode() if tag else None,
        )

    def host(self, key: bytes) -> Host:
        return self.ring.get(key)


# --- requests --------------------------------------------------------------------------------


class Fragment:
    """One upstream request of a command (the whole command, or one shard's part of a split
    one): the upstream callbacks of the pool."""

    __slots__ = ("owner", "index", "upstream", "upstream_id", "host", "cluster", "done")

    def __init__(self, owner: CacheRequest, index: int) -> None:
        self.owner = owner
        self.index = index
        self.upstream: Any = None
        self.upstream_id = -1
        self.host: Host | None = None
        self.cluster: Cluster | None = None
        self.done = False

    def _release(self) -> None:
        self.done = True
        if self.cluster is not None:
            self.cluster.rq_active -= 1
            self.cluster = None
        if self.host is not None:
            self.host.rq_active -= 1
            self.host = None

    def on_upstream_response(self, frame: Frame) -> None:
        if self.done:
            return
        self._release()
        self.owner.fragment_done(self.index, frame, None)

    def on_upstream_reset(self, reason: ResetReason) -> None:
        if self.done:
            return
        host = self.host
        if host is not None:
            host.rq_error += 1
        self._release()
        self.owner.fragment_done(self.index, None, reason)

    def on_upstream_data(self, df: Any) -> None:  # pipelined cache protocols: whole replies
        pass

    def on_upstream_trailers(self, tf: Any) -> None:
        pass

    def cancel(self) -> None:
        if not self.done:
            if self.upstream is not None:
                self.upstream.cancel(self.upstream_id)
            self._release()


class CacheRequest:
    """One downstream command in flight: its fragments, its deadline, its reply."""

    __slots__ = ("conn", "request", "fragments", "results", "errors", "merge", "timer", "done",
                 "pending", "variant")

    def __init__(self, conn: CacheProxyConnection, request: Frame) -> None:
        self.conn = conn
        self.request = request
        self.fragments: list[Fragment] = []
        self.results: list[Frame | None] = []
        self.errors: list[ResetReason | None] = []
        # merge(results) -> the reply Frame; None: pass the single reply through
        self.merge: Callable[[list[Frame]], Frame] | None = None
        self.timer: int | None = None
        self.done = False
        self.pending = 0
        self.variant = ""  # the upstream pool variant (Redis: "resp3" after HELLO 3)

    def send(self, parts: Sequence[tuple[Cluster, Host, Frame]], timeout: float | None,
             merge: Callable[[list[Frame]], Frame] | None) -> None:
        """Send each part to its shard; reply when every one has answered."""
        conn = self.conn
        ctx = conn.ctx
        self.merge = merge
        n = len(parts)
        self.results = [None] * n
        self.errors = [None] * n
        self.pending = n
        conn.in_flight[self.request.request_id] = self
        if timeout:
            self.timer = ctx.timers.schedule(self, timeout)
        for i, (cluster, host, frame) in enumerate(parts):
            frag = Fragment(self, i)
            self.fragments.append(frag)
            if cluster.rq_active >= cluster.max_requests:
                cluster.rq_overflow += 1
                frag.done = True
                self.fragment_done(i, None, ResetReason.OVERFLOW)
                continue
            cluster.rq_active += 1
            cluster.rq_total += 1
            host.rq_active += 1
            host.rq_total += 1
            frag.cluster, frag.host = cluster, host
            up = cluster.pool(host, self.variant).acquire()
            frag.upstream = up
            frag.upstream_id = up.send_request(frame, frag)
            if self.done:
                return

    def fragment_done(self, index: int, frame: Frame | None, error: ResetReason | None) -> None:
        if self.done:
            return
        self.results[index] = frame
        self.errors[index] = error
        self.pending -= 1
        if self.pending:
            return
        for err in self.errors:
            if err is not None:
                status = err.to_status()
                self.local_reply(status, _reset_text(err))
                return
        frames = [f for f in self.results if f is not None]
        if self.merge is not None:
            reply = self.merge(frames)
        else:
            reply = frames[0].with_request_id(self.request.request_id)
        self._finish(reply)

    def on_deadline(self) -> None:
        self.timer = None
        if self.done:
            return
        self.conn.ctx.stats.rq_timeout += 1
        for frag in self.fragments:
            frag.cancel()
        self.local_reply(ProxyStatus.TIMEOUT, "upstream timeout")
        self.conn.ctx.batcher.flush()  # a timer is no I/O event: nothing else would flush

    def local_reply(self, status: ProxyStatus, message: str) -> None:
        self.conn.ctx.stats.local_reply(status)
        self._finish(self.conn.codec.local_reply(self.request, status, message))

    def _finish(self, reply: Frame) -> None:
        if self.done:
            return
        self.done = True
        conn = self.conn
        if self.timer is not None:
            conn.ctx.timers.cancel(self, self.timer)
            self.timer = None
        conn.in_flight.pop(self.request.request_id, None)
        conn.respond(reply)

    def abandon(self) -> None:
        """The client went away."""
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.conn.ctx.timers.cancel(self, self.timer)
            self.timer = None
        for frag in self.fragments:
            frag.cancel()


def _reset_text(reason: ResetReason) -> str:
    return {
        ResetReason.CONNECT_FAILURE: "upstream connect failed",
        ResetReason.OVERFLOW: "upstream overflow (max_requests)",
        ResetReason.CODEC_ERROR: "upstream protocol error",
    }.get(reason, "upstream connection reset")


# --- the downstream connection ---------------------------------------------------------------


class Adapter:
    """What differs between Redis and memcached: how one command is handled."""

    def __init__(self, conn: CacheProxyConnection) -> None:
        self.conn = conn

    def handle(self, frame: Frame) -> None:
        raise NotImplementedError


class CacheProxyConnection(BaseConnection):
    __slots__ = ("ctx", "codec", "adapter", "in_flight", "half_closed", "peer_addr",
                 "_closing", "_pumping")

    adapters: ClassVar[dict[str, Callable[[CacheProxyConnection], Adapter]]] = {}

    def __init__(self, ctx: ListenerContext) -> None:
        super().__init__(ctx.batcher, ctx.loop)
        self.ctx = ctx
        self.codec: Any = ctx.codec_cls(Role.SERVER, limits=ctx.limits)
        self.adapter = self.adapters[ctx.config.protocol](self)
        self.in_flight: dict[int, CacheRequest] = {}
        self.half_closed = False
        self.peer_addr = ""
        self._closing = False  # QUIT: close once every earlier reply is out
        self._pumping = False

    # --- events ----------------------------------------------------------------------------
    def on_connected(self) -> None:
        self.peer_addr = self.peername()
        self.ctx.track(self)

    @property
    def streams(self) -> dict[int, CacheRequest]:
        return self.in_flight  # the listener's drain and idle logic count these

    def drain(self) -> None:
        """SIGTERM: read no more commands; close once the ones in flight are answered."""
        self.pause(PAUSE_FLOW)
        if not self.in_flight:
            self.close()

    def on_data(self, data: memoryview) -> None:
        codec = self.codec
        codec.receive_data(data)
        self._pump()

    def _pump(self) -> None:
        codec = self.codec
        adapter = self.adapter
        self._pumping = True
        try:
            while not self.closed and not self._closing:
                ev = codec.next_event()
                if ev is NEED_DATA:
                    break
                if ev is ConnectionEvent.CLOSED:
                    self._on_peer_eof()
                    break
                self.ctx.stats.rq_total += 1
                adapter.handle(ev)
        except ProtocolError as e:
            self.ctx.stats.codec_errors += 1
            log_event(log, logging.DEBUG, "bad request", listener=self.ctx.config.name,
                      peer=self.peer_addr, error=str(e))
            reply = codec.error_reply_for(e)
            if reply:
                self.write(reply)
            self._closing = True
            self._maybe_close()
            return
        finally:
            self._pumping = False
        if len(self.in_flight) >= MAX_IN_FLIGHT:
            self.pause(PAUSE_STREAMS)

    def respond(self, reply: Frame) -> None:
        if self.closed:
            return
        try:
            out = self.codec.send(reply)
        except ProtocolError as e:
            log_event(log, logging.ERROR, "cannot encode reply", error=str(e))
            self.close()
            return
        if out:
            self.write(out)
        if not self._pumping and self.codec.buffered:
            self._pump()  # the reorder buffer was full: decode what waited
        if len(self.in_flight) < MAX_IN_FLIGHT // 2:
            self.resume(PAUSE_STREAMS)
        self._maybe_close()

    def quit(self) -> None:
        """QUIT: the replies before it (and its own, already sent) go out, then close."""
        self._closing = True
        self._maybe_close()

    def _maybe_close(self) -> None:
        if (
            (self._closing or self.half_closed or self.ctx.draining)
            and not self.in_flight
            and self.codec.pending_replies() == 0
        ):
            self.close()

    def on_eof(self) -> bool | None:
        self.codec.receive_data(b"")
        try:
            self._pump()
        except ProtocolError:
            pass
        self._on_peer_eof()
        return True if not self.closed else None

    def _on_peer_eof(self) -> None:
        self.half_closed = True
        self._maybe_close()

    def on_closed(self, exc: Exception | None) -> None:
        self.ctx.untrack(self)
        requests, self.in_flight = self.in_flight, {}
        for r in requests.values():
            r.abandon()

    # --- helpers for adapters ----------------------------------------------------------------
    def clusters(self) -> Any:
        return self.ctx.clusters()

    def shards(self, cluster: Cluster) -> Shards:
        cache: dict[int, Shards] = self.ctx.shards
        found = cache.get(id(cluster))
        if found is None or found.cluster is not cluster or found.hosts is not cluster.hosts:
            found = cache[id(cluster)] = Shards(cluster)
        return found

    def new_request(self, request: Frame) -> CacheRequest:
        """A ``CacheRequest`` for ``request``: for handlers outside this layer (the
        ``translate/`` modules may not import filters, ``tests/unit/test_layering.py``)."""
        return CacheRequest(self, request)

    def local(self, request: Frame, status: ProxyStatus, message: str) -> None:
        self.ctx.stats.local_reply(status)
        self.respond(self.codec.local_reply(request, status, message))


def make_cache_protocol(ctx: ListenerContext) -> CacheProxyConnection:
    return CacheProxyConnection(ctx)
