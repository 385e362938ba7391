"""memcached text commands through the cache proxy (``cache_proxy.py``).

- Requests the codec already answered (bad line, key or value over the limits, unknown
  command): that reply, in order, nothing forwarded.
- ``version``: answered here (``VERSION mosn-py <version>``); ``verbosity``: ``OK`` here.
- ``flush_all``: sent to every shard of the cluster; ``OK`` when all said OK.
- ``get/gets/gat/gats`` with keys on several shards: one request per shard, the hits merged
  in the order of the keys asked for, then ``END``.
- Everything else routes by its key. ``noreply`` commands are sent without waiting for
  anything (memcached sends nothing back for them).

A command is routed by the rule its first key matches (``key_prefix``, ``commands``); the
keys of a multi-get all go to that rule's cluster.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import TYPE_CHECKING, Any

from mosn_py import __version__
from mosn_py.codecs.base import Frame, StreamType
from mosn_py.codecs.memcache import (
    RETRIEVAL,
    STORAGE,
    MemcacheItem,
    make_get,
    status_reply,
    value_reply,
    version_reply,
)
from mosn_py.errors import ProxyStatus
from mosn_py.filters.network.cache_proxy import Adapter, CacheProxyConnection, CacheRequest

if TYPE_CHECKING:
    from mosn_py.upstream.cluster import Cluster
    from mosn_py.upstream.host import Host

_WRITES = frozenset({*STORAGE, "delete", "incr", "decr", "touch"})


class MemcacheAdapter(Adapter):
    __slots__ = ("to_redis",)

    def __init__(self, conn: CacheProxyConnection) -> None:
        super().__init__(conn)
        self.to_redis: Any = None  # translate.memcache_redis.MemcacheToRedis, when needed

    def handle(self, frame: Frame) -> None:
        conn = self.conn
        cmd = frame.extra
        if cmd.reply is not None:  # the codec answered it (per-request error)
            reply = conn.codec.reply_for(frame)
            if reply is not None:
                conn.respond(reply)
            return
        name: str = cmd.name
        oneway = frame.stream_type is StreamType.ONEWAY
        if name == "version":
            conn.respond(version_reply(frame.request_id, f"mosn-py {__version__}"))
            return
        if name == "verbosity":
            if not oneway:
                conn.respond(status_reply(frame.request_id, "OK"))
            return
        keys: list[bytes] = cmd.keys
        rule = conn.ctx.route_table.match(name, keys[0] if keys else None)
        if rule is None:
            if not oneway:
                conn.local(frame, ProxyStatus.ROUTE_NOT_FOUND, "no route for this key")
            return
        cluster = conn.clusters().get(rule.cluster)
        if cluster is None:
            if not oneway:
                conn.local(frame, ProxyStatus.NO_HEALTHY_UPSTREAM,
                           f"cluster {rule.cluster!r} not found")
            return
        if cluster.config.protocol == "redis":  # memcached clients, Redis servers
            if self.to_redis is None:
                from mosn_py.translate.memcache_redis import MemcacheToRedis

                self.to_redis = MemcacheToRedis(conn)
            self.to_redis.handle(frame, rule, cluster)
            return
        if name == "flush_all":
            self.fan_out(frame, cluster, rule.timeout, oneway)
            return
        if rule.mirror and name in _WRITES:
            mirror = conn.clusters().get(rule.mirror)
            if mirror is not None:
                host = conn.shards(mirror).host(keys[0])
                mirror.pool(host).acquire().send_request(frame, None)
        shards = conn.shards(cluster)
        if oneway:
            host = shards.host(keys[0])
            cluster.pool(host).acquire().send_request(frame, None)
            return
        req = CacheRequest(conn, frame)
        if name in RETRIEVAL and len(keys) > 1:
            groups: dict[int, tuple[Host, list[bytes]]] = {}
            for k in keys:
                h = shards.host(k)
                groups.setdefault(id(h), (h, []))[1].append(k)
            if len(groups) > 1:
                self.multi_get(req, cluster, frame, name, cmd.exptime, keys,
                               list(groups.values()), rule.timeout)
                return
        req.send([(cluster, shards.host(keys[0]), frame)], rule.timeout, None)

    def multi_get(self, req: CacheRequest, cluster: Cluster, frame: Frame, name: str,
                  exptime: int, keys: list[bytes], groups: list[tuple[Host, list[bytes]]],
                  timeout: float | None) -> None:
        parts = [(cluster, host, make_get(0, name, ks, exptime)) for host, ks in groups]
        rid = frame.request_id

        def merge(replies: list[Frame]) -> Frame:
            for r in replies:
                if r.extra.status != "END":  # an error reply from a shard: pass it on
                    return r.with_request_id(rid)
            hits: dict[bytes, deque[MemcacheItem]] = defaultdict(deque)
            for r in replies:
                for item in r.extra.items:
                    hits[bytes(item.key)].append(item)
            out: list[Any] = []
            for k in keys:  # the order the client asked in (duplicates answered twice)
                q = hits.get(k)
                if q:
                    item = q.popleft() if len(q) > 1 else q[0]
                    out.append((item.key, item.flags, item.value, item.cas))
            return value_reply(rid, out)

        req.send(parts, timeout, merge)

    def fan_out(self, frame: Frame, cluster: Cluster, timeout: float | None,
                oneway: bool) -> None:
        hosts = list(cluster.hosts)
        if oneway:
            for h in hosts:
                cluster.pool(h).acquire().send_request(frame, None)
            return
        rid = frame.request_id

        def merge(replies: list[Frame]) -> Frame:
            for r in replies:
                if r.extra.status != "OK":
                    return r.with_request_id(rid)
            return status_reply(rid, "OK")

        CacheRequest(self.conn, frame).send([(cluster, h, frame) for h in hosts], timeout,
                                            merge)
