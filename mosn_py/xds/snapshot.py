"""Snapshots for the control plane: one consistent set of xDS resources, versioned per type.

A ``Snapshot`` is immutable. It is built from ``{type URL: {name: Envoy message}}`` (what
``xds.render.render(config)`` returns) and from the previous snapshot of the same source,
so that versions stay per type (reference/xds.md §1.4.5, §5 #5): a type's version is bumped
only when that type's resources changed, compared by their deterministic serialization.
Versions are decimal counters, ``"1"``, ``"2"`` ...; they start at ``"1"`` for every type.

Before it is published a snapshot must be *consistent* (reference/xds.md §1.5, after
go-control-plane's ``Snapshot.Consistent``): every RouteConfiguration an HttpConnectionManager
names over RDS, every Cluster a route, tcp_proxy or redis_proxy route names, and every
ClusterLoadAssignment an EDS Cluster names must be in the snapshot. A client that gets a
route before its cluster drops traffic (routes are not warmed), and a SotW LDS/CDS set with
a hole in it deletes the missing resource (§1.7, §5 #7), so an inconsistent set is never
published: ``build`` raises ``ConfigError`` and the caller keeps the previous snapshot.

``SnapshotCache`` holds the current snapshot of each profile (one resources file) and wakes
the streams that watch it; ``Profiles`` says which profile a client's node gets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from google.protobuf import any_pb2

from mosn_py.errors import ConfigError
from mosn_py.xds import resources as rt

# What ``render`` returns: type URL -> resource name -> Envoy message.
Resources = Mapping[str, Mapping[str, Any]]

_PREFIX = "type.googleapis.com/envoy.extensions.filters.network."
_HCM = _PREFIX + "http_connection_manager.v3.HttpConnectionManager"
_TCP_PROXY = _PREFIX + "tcp_proxy.v3.TcpProxy"
_REDIS_PROXY = _PREFIX + "redis_proxy.v3.RedisProxy"
_CLUSTER_EDS = 3  # envoy.config.cluster.v3.Cluster.DiscoveryType.EDS


@dataclass(frozen=True, slots=True)
class TypeResources:
    """One type's resources in a snapshot: packed once, shared by every stream."""

    type_url: str
    version: str
    names: tuple[str, ...]  # in the order render gave them (responses keep it)
    packed: Mapping[str, any_pb2.Any]
    digests: Mapping[str, bytes]  # name -> hash of the deterministic serialization

    def __contains__(self, name: object) -> bool:
        return name in self.packed


class Snapshot:
    """An immutable, consistent set of resources of every type, with per-type versions.

    ``eds_names``: Cluster name -> the ClusterLoadAssignment name it takes its endpoints
    from (EDS clusters only; ``eds_cluster_config.service_name`` or else the cluster name).
    """

    __slots__ = ("_types", "eds_names")

    def __init__(self, types: Mapping[str, TypeResources], eds_names: Mapping[str, str]) -> None:
        self._types = MappingProxyType(dict(types))
        self.eds_names = MappingProxyType(dict(eds_names))

    @classmethod
    def build(cls, resources: Resources, previous: Snapshot | None = None) -> Snapshot:
        """A new snapshot of ``resources``, versioned against ``previous``.

        Every type in ``resources.PUSH_ORDER`` is present (empty if ``resources`` has none).
        Raises ``ConfigError`` (one line per problem) if the set is not consistent or a
        resource's name differs from its key; nothing is built then.
        """
        errors = list(consistency_errors(resources))
        if errors:
            raise ConfigError(errors)
        types: dict[str, TypeResources] = {}
        for type_url in _type_order(resources):
            msgs = resources.get(type_url, {})
            packed: dict[str, any_pb2.Any] = {}
            digests: dict[str, bytes] = {}
            for name, msg in msgs.items():
                a = any_pb2.Any()
                a.Pack(msg, deterministic=True)
                packed[name] = a
                digests[name] = hashlib.blake2b(a.value, digest_size=16).digest()
            old = previous.get(type_url) if previous is not None else None
            if old is None:
                version = "1"
            elif dict(old.digests) == digests:  # order does not matter to a client
                version = old.version
            else:
                version = str(int(old.version) + 1)
            types[type_url] = TypeResources(
                type_url, version, tuple(msgs), MappingProxyType(packed), MappingProxyType(digests)
            )
        eds = {
            name: _eds_name(c)
            for name, c in resources.get(rt.CLUSTER, {}).items()
            if c.type == _CLUSTER_EDS
        }
        return cls(types, eds)

    def get(self, type_url: str) -> TypeResources | None:
        return self._types.get(type_url)

    def version(self, type_url: str) -> str:
        t = self._types.get(type_url)
        return t.version if t is not None else ""

    def versions(self) -> dict[str, str]:
        """Short type name (``LDS``...) -> version, for logs."""
        return {rt.SHORT_NAMES.get(u, u): t.version for u, t in self._types.items()}

    def counts(self) -> dict[str, int]:
        return {rt.SHORT_NAMES.get(u, u): len(t.names) for u, t in self._types.items()}

    def type_urls(self) -> Iterator[str]:
        return iter(self._types)


def _type_order(resources: Resources) -> list[str]:
    return [*rt.PUSH_ORDER, *(u for u in resources if u not in rt.PUSH_ORDER)]


def _eds_name(cluster: Any) -> str:
    return str(cluster.eds_cluster_config.service_name or cluster.name)


# --- profiles and the snapshot cache ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profiles:
    """Which profile (resources file) a node gets: its id wins over its cluster, and a
    node that matches neither gets ``default``."""

    default: str
    by_id: Mapping[str, str]
    by_cluster: Mapping[str, str]

    def key_for(self, node: Any) -> str:
        key = self.by_id.get(node.id)
        if key is None:
            key = self.by_cluster.get(node.cluster, self.default)
        return key

    def files(self) -> list[str]:
        return list(dict.fromkeys([self.default, *self.by_id.values(), *self.by_cluster.values()]))


class SnapshotCache:
    """The current snapshot of each profile, and the streams to wake when it changes."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._watchers: dict[str, set[Callable[[], None]]] = {}

    def get(self, key: str) -> Snapshot | None:
        return self._snapshots.get(key)

    def set(self, key: str, snapshot: Snapshot) -> None:
        """Publish ``snapshot`` for ``key`` and wake every stream watching it."""
        self._snapshots[key] = snapshot
        for wake in list(self._watchers.get(key, ())):
            wake()

    def update(self, key: str, resources: Resources) -> Snapshot:
        """Build a snapshot of ``resources`` versioned against the current one and publish
        it. Raises ``ConfigError`` (nothing published) if it is not consistent."""
        snap = Snapshot.build(resources, self._snapshots.get(key))
        self.set(key, snap)
        return snap

    def watch(self, key: str, wake: Callable[[], None]) -> None:
        self._watchers.setdefault(key, set()).add(wake)

    def unwatch(self, key: str, wake: Callable[[], None]) -> None:
        self._watchers.get(key, set()).discard(wake)


# --- consistency -----------------------------------------------------------------------------


def consistency_errors(resources: Resources) -> Iterator[str]:
    """One line per dangling reference or misnamed resource in ``resources`` (none: it is
    consistent). Lines name the referring resource, then what it names that is missing."""
    listeners = resources.get(rt.LISTENER, {})
    routes = resources.get(rt.ROUTE, {})
    clusters = resources.get(rt.CLUSTER, {})
    endpoints = resources.get(rt.ENDPOINT, {})
    for type_url, msgs in resources.items():
        field = "cluster_name" if type_url == rt.ENDPOINT else "name"
        for key, msg in msgs.items():
            actual = getattr(msg, field, key)
            if actual != key:
                short = rt.SHORT_NAMES.get(type_url, type_url)
                yield f"{short} resource {key!r}: its {field} is {actual!r}"
    for lname, listener in listeners.items():
        where = f"listener {lname!r}"
        for kind, ref in _listener_refs(listener):
            if kind == "route" and ref not in routes:
                yield f"{where}: route config {ref!r} (RDS) is not defined"
            elif kind == "cluster" and ref not in clusters:
                yield f"{where}: cluster {ref!r} is not defined"
    for rname, route in routes.items():
        for ref in _route_config_clusters(route):
            if ref not in clusters:
                yield f"route config {rname!r}: cluster {ref!r} is not defined"
    for cname, cluster in clusters.items():
        if cluster.type == _CLUSTER_EDS and _eds_name(cluster) not in endpoints:
            yield (
                f"cluster {cname!r}: endpoints {_eds_name(cluster)!r} (EDS ClusterLoadAssignment)"
                " are not defined"
            )


def _listener_refs(listener: Any) -> Iterator[tuple[str, str]]:
    """("route", RDS name) and ("cluster", name) pairs a Listener refers to."""
    configs: list[any_pb2.Any] = []
    if listener.HasField("api_listener"):
        configs.append(listener.api_listener.api_listener)
    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    for chain in chains:
        configs.extend(f.typed_config for f in chain.filters if f.HasField("typed_config"))
    for cfg in configs:
        yield from _filter_refs(cfg)


def _filter_refs(cfg: any_pb2.Any) -> Iterator[tuple[str, str]]:
    if cfg.type_url == _HCM:
        from envoy.extensions.filters.network.http_connection_manager.v3 import (
            http_connection_manager_pb2 as hcm_pb2,
        )

        hcm = hcm_pb2.HttpConnectionManager()
        cfg.Unpack(hcm)
        if hcm.HasField("rds"):
            yield "route", hcm.rds.route_config_name
        elif hcm.HasField("route_config"):
            yield from (("cluster", c) for c in _route_config_clusters(hcm.route_config))
    elif cfg.type_url == _TCP_PROXY:
        from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

        tcp = tcp_proxy_pb2.TcpProxy()
        cfg.Unpack(tcp)
        if tcp.cluster:
            yield "cluster", tcp.cluster
        yield from (("cluster", w.name) for w in tcp.weighted_clusters.clusters)
    elif cfg.type_url == _REDIS_PROXY:
        from envoy.extensions.filters.network.redis_proxy.v3 import redis_proxy_pb2

        redis = redis_proxy_pb2.RedisProxy()
        cfg.Unpack(redis)
        pr = redis.prefix_routes
        routes = [*pr.routes, pr.catch_all_route] if pr.HasField("catch_all_route") else pr.routes
        for r in routes:
            if r.cluster:
                yield "cluster", r.cluster
            yield from (("cluster", m.cluster) for m in r.request_mirror_policy if m.cluster)
    else:
        inner = rt.unpack_typed_struct(cfg)
        if inner is not None and inner[0] == rt.MOSN_PROXY:
            yield from _proxy_refs(inner[1])


def _proxy_refs(proxy: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Our own L7 listeners (TypedStruct ``mosn_py.config.v1.Proxy``, see render.py): the
    route config rides inline in the YAML shape, ``{name, rules: [{cluster, mirror}]}``
    (a plain string would name one delivered over RDS)."""
    route = proxy.get("route")
    if isinstance(route, str):
        yield "route", route
    elif isinstance(route, Mapping):
        for rule in route.get("rules") or ():
            for key in ("cluster", "mirror"):
                if isinstance(rule, Mapping) and isinstance(rule.get(key), str):
                    yield "cluster", rule[key]
    cluster = proxy.get("cluster")
    if isinstance(cluster, str):
        yield "cluster", cluster


def _route_config_clusters(route_config: Any) -> Iterator[str]:
    """Every cluster a RouteConfiguration's routes send (or mirror) requests to."""
    for vh in route_config.virtual_hosts:
        for r in vh.routes:
            if not r.HasField("route"):
                continue
            yield from _action_clusters(r.route)


def _action_clusters(action: Any) -> Iterable[str]:
    out: list[str] = []
    if action.cluster:
        out.append(action.cluster)
    out.extend(w.name for w in action.weighted_clusters.clusters)
    out.extend(m.cluster for m in action.request_mirror_policies if m.cluster)
    return out
