"""``register_builtin(registries)``: the ONLY place built-in extensions are registered.

Third-party packages add theirs through the ``mosn_py.extensions`` entry-point group: each
entry point names a callable taking the ``Registries`` object.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from mosn_py.registry import Registries

log = logging.getLogger("mosn_py.extensions")


def register_builtin(reg: Registries) -> Registries:
    from mosn_py.codecs.bolt import BoltCodec
    from mosn_py.codecs.http1 import Http1Codec
    from mosn_py.codecs.http2 import Http2Codec
    from mosn_py.filters.stream.fault import FaultFilterFactory
    from mosn_py.upstream.lb import BUILTIN_LBS

    reg.codecs.register("bolt", BoltCodec)
    reg.codecs.register("http1", Http1Codec)
    reg.codecs.register("http2", Http2Codec)
    reg.codecs.register("grpc", Http2Codec)  # gRPC is HTTP/2 (its replies by content-type)
    _register_cache(reg)
    from mosn_py.translate import register_translators

    register_translators(reg)  # bolt<->grpc, http<->bolt
    for lb in BUILTIN_LBS:
        reg.lb_policies.register(lb.name, lb)
    reg.stream_filters.register(FaultFilterFactory.name, FaultFilterFactory)
    reg.cluster_types.register("static", object)
    reg.cluster_types.register("original_dst", object)
    return reg


def _register_cache(reg: Registries) -> None:
    """Redis (and memcached): codecs, the cache proxy's per-protocol command handling, and
    what a new upstream connection sends first."""
    from mosn_py.codecs.memcache import MemcacheCodec
    from mosn_py.codecs.redis import RedisCodec
    from mosn_py.filters.network.cache_proxy import CacheProxyConnection
    from mosn_py.filters.network.memcache_adapter import MemcacheAdapter
    from mosn_py.filters.network.redis_adapter import RedisAdapter, redis_connection_setup
    from mosn_py.translate.memcache_redis import MemcacheToRedis
    from mosn_py.upstream.cluster import Cluster

    reg.codecs.register("redis", RedisCodec)
    reg.codecs.register("memcache", MemcacheCodec)
    CacheProxyConnection.adapters["redis"] = RedisAdapter
    CacheProxyConnection.adapters["memcache"] = MemcacheAdapter
    Cluster.pool_setups["redis"] = redis_connection_setup
    # memcached clients -> Redis servers (memcache_adapter hands such commands to it)
    reg.translators.register("memcache->redis", MemcacheToRedis)


def load_entry_points(reg: Registries) -> None:
    for ep in entry_points(group="mosn_py.extensions"):
        log.info("loading extension %s", ep.name)
        ep.load()(reg)


def default_registries() -> Registries:
    reg = register_builtin(Registries())
    load_entry_points(reg)
    return reg
