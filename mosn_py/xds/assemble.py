"""xDS state -> one config snapshot: the static part of the bootstrap file plus every warm
dynamic listener, route config and cluster, validated by the same loader as a YAML file.

Warming (reference/xds.md §1.5): a listener whose routes come by RDS takes effect once its
RouteConfiguration arrived, an EDS cluster once its ClusterLoadAssignment arrived. Until then
the version that was live before (if any) stays live: ``Assembler.live_*`` remember the parts
of the last snapshot that was applied.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mosn_py.config.loader import parse_config
from mosn_py.config.model import Config
from mosn_py.errors import ConfigError
from mosn_py.xds.convert import ClusterPart, ListenerPart

P = TypeVar("P")
D = TypeVar("D")


@dataclass
class Assembly:
    """A candidate snapshot and what it was made of (kept as ``live_*`` once applied)."""

    config: Config
    listeners: dict[str, tuple[ListenerPart, dict[str, Any] | None]]
    clusters: dict[str, tuple[ClusterPart, list[dict[str, Any]] | None]]
    warming: list[str] = field(default_factory=list)  # "listener x: waiting for RDS y"


@dataclass
class Assembler:
    static: dict[str, Any]  # the bootstrap YAML document (its listeners/routes/clusters stay)
    known_filters: Collection[str] | None = None
    translations: Mapping[tuple[str, str], Any] | Collection[tuple[str, str]] = ()
    live_listeners: dict[str, tuple[ListenerPart, dict[str, Any] | None]] = field(
        default_factory=dict
    )
    live_clusters: dict[str, tuple[ClusterPart, list[dict[str, Any]] | None]] = field(
        default_factory=dict
    )

    def build(
        self,
        listeners: Mapping[str, ListenerPart],
        routes: Mapping[str, dict[str, Any]],
        clusters: Mapping[str, ClusterPart],
        endpoints: Mapping[str, list[dict[str, Any]]],
    ) -> Assembly:
        """Assemble and validate; raises ``ConfigError`` whose lines name the xDS resource
        (``Listener 'x': listeners[2].max_body_size: ...``)."""
        warming: list[str] = []
        use_l = _warm(listeners, routes, self.live_listeners, warming,
                      "listener", "RouteConfiguration", lambda p: p.rds)
        use_c = _warm(clusters, endpoints, self.live_clusters, warming,
                      "cluster", "ClusterLoadAssignment", lambda p: p.eds)
        doc, owners = self._document(use_l, use_c)
        try:
            config = parse_config(
                doc,
                source="xDS",
                known_filters=self.known_filters,
                translations=self.translations,
                dynamic=True,
            )
        except ConfigError as e:
            raise ConfigError([_owned(line, owners) for line in e.errors]) from None
        return Assembly(config, use_l, use_c, warming)

    def commit(self, assembly: Assembly) -> None:
        self.live_listeners = assembly.listeners
        self.live_clusters = assembly.clusters

    def _document(
        self,
        listeners: Mapping[str, tuple[ListenerPart, dict[str, Any] | None]],
        clusters: Mapping[str, tuple[ClusterPart, list[dict[str, Any]] | None]],
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The YAML document, and path prefix -> xDS resource, to name it in errors."""
        doc = dict(self.static)
        out_l: list[Any] = list(doc.get("listeners") or [])
        out_r: list[Any] = list(doc.get("routes") or [])
        out_c: list[Any] = list(doc.get("clusters") or [])
        owners: dict[str, str] = {}
        implied: dict[str, str] = {}
        seen_routes: dict[str, int] = {}
        for name, (part, rds_route) in listeners.items():
            owners[f"listeners[{len(out_l)}]"] = f"Listener {name!r}"
            out_l.append(part.listener)
            for route, what in ((part.route, f"Listener {name!r}"),
                                (rds_route, f"RouteConfiguration {part.rds!r}")):
                if route is None:
                    continue
                rname = str(route.get("name", ""))
                if rname in seen_routes:
                    first = out_r[seen_routes[rname]]
                    if first is not route and first != route:
                        owner = owners[f"routes[{seen_routes[rname]}]"]
                        raise ConfigError(f"{what}: route config {rname!r} differs from the one"
                                          f" of {owner} of the same name")
                    continue  # listeners sharing one RouteConfiguration
                seen_routes[rname] = len(out_r)
                owners[f"routes[{len(out_r)}]"] = what
                out_r.append(route)
                for cluster in _cluster_refs(route):
                    implied.setdefault(cluster, "http1" if "virtual_hosts" in route else "")
            for cluster, proto in part.cluster_protocols.items():
                if proto:
                    implied[cluster] = proto
        for name, (cpart, eps) in clusters.items():
            c = dict(cpart.cluster)
            if eps is not None:
                c["endpoints"] = eps
            if "protocol" not in c:
                c["protocol"] = implied.get(name) or "tcp"
            owners[f"clusters[{len(out_c)}]"] = f"Cluster {name!r}"
            out_c.append(c)
        doc["listeners"], doc["routes"], doc["clusters"] = out_l, out_r, out_c
        return doc, owners


def _warm(
    parts: Mapping[str, P],
    deps: Mapping[str, D],
    live: Mapping[str, tuple[P, D | None]],
    warming: list[str],
    kind: str,
    dep_kind: str,
    dep_of: Callable[[P], str | None],
) -> dict[str, tuple[P, D | None]]:
    """Each part with what it depends on (a listener's RDS routes, a cluster's EDS
    endpoints): a part whose dependency has not arrived is warming, and the version that was
    live before (if any) stays."""
    out: dict[str, tuple[P, D | None]] = {}
    for name, part in parts.items():
        dep = dep_of(part)
        if dep is None:
            out[name] = (part, None)
        elif dep in deps:
            out[name] = (part, deps[dep])
        else:
            warming.append(f"{kind} {name!r}: waiting for {dep_kind} {dep!r}")
            if name in live:
                out[name] = live[name]
    return out


def _owned(line: str, owners: Mapping[str, str]) -> str:
    head = line.split(".", 1)[0].split(":", 1)[0]
    owner = owners.get(head)
    return f"{owner}: {line}" if owner else line


def _cluster_refs(obj: Any) -> Iterator[str]:
    """Every cluster a YAML route config names (rules, virtual hosts, weighted clusters,
    mirrors)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("cluster", "mirror") and isinstance(value, str):
                yield value
            else:
                yield from _cluster_refs(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _cluster_refs(item)
