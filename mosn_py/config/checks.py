"""Pass 3 of config loading: cross checks over the parsed sections (unique names, unique
addresses, references to routes and clusters, protocol compatibility)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from mosn_py.config.model import (
    CACHE_PROTOCOLS,
    HTTP_LISTENER_PROTOCOLS,
    Address,
    ClusterConfig,
    Config,
    RouteConfig,
)
from mosn_py.config.shape import _Errors, _join, _Parsed, _unknown_name
from mosn_py.errors import ConfigError

# -------------------------------------------------------------------------------- cross checks


def _unique_names(
    errs: _Errors, kind: str, items: Iterable[tuple[str, Any]]
) -> tuple[dict[str, tuple[str, Any]], bool]:
    """name -> (path, obj) for the first of each name; duplicates reported.

    The flag says whether every name is known: when some name is bad, a reference to an
    undefined name may well mean that one, so the caller does not report it.
    """
    by_name: dict[str, tuple[str, Any]] = {}
    complete = True
    for path, obj in items:
        name_path = _join(path, "name")
        if errs.is_bad(name_path):
            complete = False
            continue
        if obj.name in by_name:
            first = by_name[obj.name][0]
            errs.add(name_path, f"duplicate {kind} name {obj.name!r} (first at {first})")
        else:
            by_name[obj.name] = (path, obj)
    return by_name, complete


def _check_addresses(errs: _Errors, p: _Parsed) -> None:
    """No two sockets we bind (admin, listeners, demo servers) may share host and port."""
    users: list[tuple[str, Address, str]] = []  # (path of the address, address, its user)
    if p.admin is not None:
        users.append(("admin.address", p.admin.address, "the admin API (admin.address)"))
    for path, demo in p.demos:
        user = f"demo upstream {demo.name!r} ({path})"
        users.append((_join(path, "address"), demo.address, user))
    virtual: dict[tuple[str, int, str], str] = {}
    for path, ln in p.listeners:
        if ln.api_listener:
            continue
        if not ln.bind_to_port:
            # Virtual listeners share an address when sniffing tells them apart.
            vkey = (ln.address.host.lower(), ln.address.port, ln.protocol)
            if vkey in virtual and not errs.is_bad(_join(path, "address")):
                errs.add(_join(path, "address"), f"address {ln.address} with protocol"
                         f" {ln.protocol} is already used by {virtual[vkey]}")
            virtual.setdefault(vkey, f"listener {ln.name!r} ({path})")
            continue
        users.append((_join(path, "address"), ln.address, f"listener {ln.name!r} ({path})"))
    taken: dict[tuple[str, int], str] = {}
    for path, address, user in users:
        if errs.is_bad(path) or address.port == 0:
            continue
        key = (address.host.lower(), address.port)
        if key in taken:
            errs.add(path, f"address {address} is already used by {taken[key]}")
        else:
            taken[key] = user


def _protocol_errors(
    errs: _Errors,
    p: _Parsed,
    routes: dict[str, tuple[str, Any]],
    clusters: dict[str, tuple[str, Any]],
    translations: Collection[tuple[str, str]],
) -> None:
    rule_paths_of = {path: rule_paths for path, _, rule_paths in p.routes}

    def speaks(name: str) -> ClusterConfig | None:
        found = clusters.get(name)
        if found is None or errs.is_bad(_join(found[0], "protocol")):
            return None
        cluster: ClusterConfig = found[1]
        return cluster

    def compatible(down: str, up: str) -> bool:
        return down == up or (down, up) in translations

    def http_compatible(down: str, up: str) -> bool:
        # HTTP heads are the same in every HTTP version (HTTP/2 pseudo-headers, see
        # codecs/base.py), so an HTTP listener reaches any HTTP cluster without a translator.
        return compatible(down, up) or up in HTTP_LISTENER_PROTOCOLS

    for lpath, listener in p.listeners:
        if errs.is_bad(_join(lpath, "protocol")) or errs.is_bad(_join(lpath, "name")):
            continue
        if listener.protocol == "tcp":
            cluster = speaks(listener.cluster) if listener.cluster else None
            if cluster is not None and not compatible("tcp", cluster.protocol):
                errs.add(
                    _join(lpath, "cluster"),
                    f"cluster {cluster.name!r} speaks {cluster.protocol} but listener"
                    f" {listener.name!r} (tcp) relays raw bytes to it; a tcp listener needs"
                    " a tcp cluster",
                )
            continue
        found = routes.get(listener.route) if listener.route else None
        if found is None:
            continue
        route_path, route = found
        kind = p.route_kinds.get(route_path)
        is_http = listener.protocol in HTTP_LISTENER_PROTOCOLS
        if kind == "virtual_hosts" and not is_http:
            errs.add(
                route_path,
                f"virtual_hosts are HTTP routing; listener {listener.name!r}"
                f" ({listener.protocol}) needs rules",
            )
            continue
        if kind == "rules" and is_http:
            errs.add(
                route_path,
                f"rules are for single-frame protocols such as bolt; listener"
                f" {listener.name!r} ({listener.protocol}) needs virtual_hosts",
            )
            continue
        for cpath, name in p.http_clusters.get(route_path, ()):
            cluster = speaks(name)
            if cluster is not None and not http_compatible(listener.protocol, cluster.protocol):
                errs.add(
                    cpath,
                    f"cluster {cluster.name!r} speaks {cluster.protocol} but listener"
                    f" {listener.name!r} ({listener.protocol}) routes to it and no translator"
                    f" from {listener.protocol} to {cluster.protocol} exists",
                )
            elif cluster is not None and cluster.type == "original_dst":
                errs.add(
                    cpath,
                    f"cluster {cluster.name!r} is original_dst, which only tcp listeners can"
                    f" use; listener {listener.name!r} ({listener.protocol}) routes to it",
                )
        is_cache = listener.protocol in CACHE_PROTOCOLS
        for rule_path, rule in zip(rule_paths_of[route_path], route.rules, strict=True):
            m = rule.match
            mpath = _join(rule_path, "match")
            if is_cache and (m.service or m.method or m.headers):
                errs.add(mpath, f"listener {listener.name!r} ({listener.protocol}) matches"
                         " commands by key_prefix and commands, not service/method/headers")
            if not is_cache and (m.key_prefix is not None or m.commands):
                errs.add(mpath, f"key_prefix and commands match redis/memcache commands;"
                         f" listener {listener.name!r} is {listener.protocol}")
            if rule.mirror and not is_cache:
                errs.add(_join(rule_path, "mirror"), "mirror applies to redis/memcache"
                         f" listeners only; listener {listener.name!r} is {listener.protocol}")
            elif rule.mirror:
                shadow = speaks(rule.mirror)
                main = speaks(rule.cluster)
                if shadow is not None and main is not None and shadow.protocol != main.protocol:
                    errs.add(_join(rule_path, "mirror"), f"cluster {shadow.name!r} speaks"
                             f" {shadow.protocol}, the rule's cluster {main.protocol}")
            cluster = speaks(rule.cluster)
            if cluster is not None and rule.translate:
                _check_translate(errs, _join(rule_path, "translate"), listener.protocol,
                                 cluster.protocol, dict(rule.translate), translations)
            if cluster is not None and not compatible(listener.protocol, cluster.protocol):
                errs.add(
                    _join(rule_path, "cluster"),
                    f"cluster {cluster.name!r} speaks {cluster.protocol} but listener"
                    f" {listener.name!r} ({listener.protocol}) routes to it and no translator"
                    f" from {listener.protocol} to {cluster.protocol} exists",
                )
            elif cluster is not None and cluster.type == "original_dst":
                errs.add(
                    _join(rule_path, "cluster"),
                    f"cluster {cluster.name!r} is original_dst, which only tcp listeners can"
                    f" use; listener {listener.name!r} ({listener.protocol}) routes to it",
                )


def _cross_check(
    errs: _Errors, p: _Parsed, translations: Collection[tuple[str, str]], dynamic: bool = False
) -> None:
    _unique_names(errs, "listener", p.listeners)
    _unique_names(errs, "demo upstream", p.demos)
    routes, routes_complete = _unique_names(
        errs, "route config", [(path, route) for path, route, _ in p.routes]
    )
    clusters, clusters_complete = _unique_names(errs, "cluster", p.clusters)
    route_names, cluster_names = list(routes), list(clusters)

    def dangling(name: str | None, path: str, defined: dict[str, Any], complete: bool) -> bool:
        if dynamic and defined is clusters:
            return False  # xDS: a route may name a cluster before it arrives
        return bool(name) and name not in defined and complete and not errs.is_bad(path)

    for lpath, listener in p.listeners:
        rpath, cpath = _join(lpath, "route"), _join(lpath, "cluster")
        if listener.route and dangling(listener.route, rpath, routes, routes_complete):
            errs.add(rpath, _unknown_name("route config", listener.route, route_names))
        if listener.cluster and dangling(listener.cluster, cpath, clusters, clusters_complete):
            errs.add(cpath, _unknown_name("cluster", listener.cluster, cluster_names))
    for _, route, rule_paths in p.routes:
        for rule_path, rule in zip(rule_paths, route.rules, strict=True):
            cpath = _join(rule_path, "cluster")
            if dangling(rule.cluster, cpath, clusters, clusters_complete):
                errs.add(cpath, _unknown_name("cluster", rule.cluster, cluster_names))
            mpath = _join(rule_path, "mirror")
            if rule.mirror and dangling(rule.mirror, mpath, clusters, clusters_complete):
                errs.add(mpath, _unknown_name("cluster", rule.mirror, cluster_names))
    for refs in p.http_clusters.values():
        for cpath, name in refs:
            if dangling(name, cpath, clusters, clusters_complete):
                errs.add(cpath, _unknown_name("cluster", name, cluster_names))
    _check_addresses(errs, p)
    _protocol_errors(errs, p, routes, clusters, translations)


def check_protocol_compatibility(
    config: Config, translations: Collection[tuple[str, str]] = ()
) -> list[str]:
    """Error lines for every listener -> cluster hop whose protocols do not fit.

    A hop fits when both sides speak the same protocol or ``(downstream, upstream)`` is in
    ``translations`` (the pairs for which a translator is registered). A tcp listener's
    cluster must speak tcp (or be allowed by a ``("tcp", x)`` pair). A listener of
    ``HTTP_LISTENER_PROTOCOLS`` needs a route config with ``virtual_hosts`` and reaches any
    HTTP cluster; every other L7 listener needs one with ``rules``. Paths are positions in
    ``config``'s tuples, which the loader keeps in file order.
    """
    errs = _Errors()
    p = _Parsed(
        listeners=[(f"listeners[{i}]", ln) for i, ln in enumerate(config.listeners)],
        routes=[
            (f"routes[{i}]", r, tuple(f"routes[{i}].rules[{j}]" for j in range(len(r.rules))))
            for i, r in enumerate(config.routes)
        ],
        clusters=[(f"clusters[{i}]", c) for i, c in enumerate(config.clusters)],
    )
    for i, r in enumerate(config.routes):
        path = f"routes[{i}]"
        if r.virtual_hosts:
            p.route_kinds[path] = "virtual_hosts"
            p.http_clusters[path] = _http_cluster_refs(path, r)
        elif r.rules:
            p.route_kinds[path] = "rules"
    routes = {r.name: (path, r) for path, r, _ in reversed(p.routes)}
    clusters = {c.name: (path, c) for path, c in reversed(p.clusters)}
    _protocol_errors(errs, p, routes, clusters, translations)
    return errs.lines


def _http_cluster_refs(path: str, route: RouteConfig) -> list[tuple[str, str]]:
    """(path, name) of every cluster the virtual hosts of ``route`` (at ``path``) name."""
    refs: list[tuple[str, str]] = []
    for i, vh in enumerate(route.virtual_hosts):
        for j, rule in enumerate(vh.rules):
            rule_path = f"{path}.virtual_hosts[{i}].rules[{j}]"
            if rule.cluster is not None:
                refs.append((f"{rule_path}.cluster", rule.cluster))
            for k, w in enumerate(rule.weighted_clusters):
                refs.append((f"{rule_path}.weighted_clusters[{k}].cluster", w.cluster))
    return refs


def _check_translate(
    errs: _Errors, path: str, down: str, up: str, options: dict[str, Any],
    translations: Collection[tuple[str, str]],
) -> None:
    """A rule's ``translate`` options: only where a translator runs, and valid for it."""
    if down == up:
        errs.add(path, f"the listener and the cluster both speak {down}: nothing to translate")
        return
    if (down, up) not in translations:
        return  # reported as a protocol mismatch
    cls = translations[(down, up)] if isinstance(translations, Mapping) else None
    if cls is None:
        return
    try:
        cls.from_options(options)
    except ConfigError as exc:
        for line in exc.errors:
            errs.add(path, line)
