"""YAML file -> validated ``Config`` (the model in ``config/model.py``).

Validation happens once, here, and reports every problem it can find in one
``ConfigError``, one line each, every line starting with the path of the offending key::

    listeners[0].address: 'abc' is not host:port
    listeners[0].protocl: unknown key (did you mean 'protocol'?)
    clusters[1].lb: unknown value 'round_robbin' (did you mean 'round_robin'?); expected one of ...
    routes[0].rules[2].cluster: no cluster named 'grpc_backnd' (did you mean 'grpc_backend'?)

Three passes: (1) read the YAML (syntax errors and duplicate keys name file, line and
column); (2) check each section's shape and values, building model objects with defaults
standing in for bad values; (3) cross-check names, addresses and protocols. Pass 3 skips
any check whose inputs were already reported bad in pass 2, so one mistake gives one line,
not a cascade. HTTP route configs (``routes[i].virtual_hosts``) are parsed in
``config/http_schema.py``, ``tls`` sections in ``config/tls_schema.py``; the YAML itself is
read by ``config/yaml_read.py``.

Relative file names (TLS certificates and keys) are relative to the working directory,
as in Envoy.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from mosn_py.config.checks import _cross_check, check_protocol_compatibility
from mosn_py.config.http_schema import parse_virtual_hosts
from mosn_py.config.model import (
    CACHE_PROTOCOLS,
    CLUSTER_PROTOCOLS,
    CLUSTER_TYPES,
    HTTP_LISTENER_PROTOCOLS,
    LB_POLICIES,
    LISTENER_PROTOCOLS,
    LOG_FORMATS,
    LOG_LEVELS,
    AccessLogConfig,
    Address,
    AdminConfig,
    ClusterConfig,
    Config,
    DemoUpstream,
    Endpoint,
    FilterConfig,
    HeaderMatcher,
    ListenerConfig,
    LogConfig,
    OutlierDetection,
    RouteConfig,
    RouteMatch,
    RouteRule,
    VirtualHost,
    XdsConfig,
)
from mosn_py.config.shape import (
    _Errors,
    _field,
    _join,
    _list,
    _mapping,
    _matchers,
    _Parsed,
    _retry,
    translate_options,
)
from mosn_py.config.tls_schema import _cluster_tls, _tls
from mosn_py.config.values import (
    describe,
    int_at_least,
    int_between,
    one_of,
    parse_address,
    parse_bool,
    parse_duration,
    parse_name,
    parse_optional_duration,
    parse_positive_duration,
    parse_positive_size,
    parse_size,
    parse_string,
    parse_workers,
    size_between,
    suggest,
)
from mosn_py.config.yaml_read import _read_yaml
from mosn_py.errors import ConfigError
from mosn_py.tls import ALPN_BY_PROTOCOL

__all__ = ["DEMO_PROTOCOLS", "check_protocol_compatibility", "load_config", "parse_config"]

T = TypeVar("T")

# The built-in demo servers (mosn_py/demo) that ``demo_upstreams`` may start.
DEMO_PROTOCOLS: tuple[str, ...] = ("bolt", "tcp")

# fmt: off
_TOP_KEYS = (
    "admin", "workers", "drain_timeout", "log", "demo_upstreams", "listeners", "routes",
    "clusters", "xds",
)
_LISTENER_KEYS = (
    "name", "address", "protocol", "transparent", "tls", "filters", "route", "cluster",
    "idle_timeout", "max_frame_size", "access_log", "backlog", "max_header_size",
    "max_header_count", "max_body_size", "max_concurrent_streams", "password", "api_listener",
    "use_original_dst", "bind_to_port", "sniff_timeout", "forward_client_cert",
)
_HTTP_LIMIT_KEYS = ("max_header_size", "max_header_count", "max_body_size",
                    "max_concurrent_streams")
_CLUSTER_KEYS = (
    "name", "protocol", "type", "endpoints", "lb", "connect_timeout", "connections_per_host",
    "max_requests", "max_frame_size", "idle_timeout", "outlier_detection", "tls", "password",
    "hash_tag", "dns_refresh_rate", "source_address",
)
# fmt: on
_ROUTE_KEYS = ("name", "rules", "virtual_hosts")
# A parsed route config: the model, the paths of its rules, which of rules/virtual_hosts it
# has (None: both or neither, already reported) and the clusters its virtual hosts name.
_ParsedRoute = tuple[RouteConfig, tuple[str, ...], str | None, list[tuple[str, str]]]

_PLACEHOLDER_ADDRESS = Address("0.0.0.0", 0)  # stands in for a bad address; never returned


# ------------------------------------------------------------------------------------ sections


def _admin(errs: _Errors, path: str, raw: object) -> AdminConfig | None:
    d = _mapping(errs, path, raw, ("address",), required=("address",))
    if d is None:
        return None
    return AdminConfig(_field(errs, d, path, "address", parse_address, _PLACEHOLDER_ADDRESS))


def _log(errs: _Errors, path: str, raw: object) -> LogConfig:
    d = _mapping(errs, path, raw, ("level", "format"))
    if d is None:
        return LogConfig()
    return LogConfig(
        level=_field(errs, d, path, "level", one_of(LOG_LEVELS), LogConfig().level),
        format=_field(errs, d, path, "format", one_of(LOG_FORMATS), LogConfig().format),
    )


def _demo(errs: _Errors, path: str, raw: object) -> DemoUpstream | None:
    keys = ("name", "protocol", "address")
    d = _mapping(errs, path, raw, keys, required=keys)
    if d is None:
        return None
    return DemoUpstream(
        name=_field(errs, d, path, "name", parse_name, ""),
        protocol=_field(errs, d, path, "protocol", one_of(DEMO_PROTOCOLS), "tcp"),
        address=_field(errs, d, path, "address", parse_address, _PLACEHOLDER_ADDRESS),
    )


_XDS_KEYS = (
    "address", "node", "connect_timeout", "initial_fetch_timeout", "initial_backoff",
    "max_backoff",
)


def _xds(errs: _Errors, path: str, raw: object) -> XdsConfig | None:
    d = _mapping(errs, path, raw, _XDS_KEYS, required=("address", "node"))
    if d is None:
        return None
    node = (
        _mapping(errs, _join(path, "node"), d["node"], ("id", "cluster"), required=("id",))
        if "node" in d else None
    )
    defaults = XdsConfig(_PLACEHOLDER_ADDRESS, "")
    out = XdsConfig(
        address=_field(errs, d, path, "address", parse_address, _PLACEHOLDER_ADDRESS),
        node_id=_field(errs, node, _join(path, "node"), "id", parse_name, "") if node else "",
        node_cluster=(
            _field(errs, node, _join(path, "node"), "cluster", parse_name, "") if node else ""
        ),
        connect_timeout=_field(
            errs, d, path, "connect_timeout", parse_positive_duration, defaults.connect_timeout
        ),
        initial_fetch_timeout=_field(
            errs, d, path, "initial_fetch_timeout", parse_positive_duration,
            defaults.initial_fetch_timeout,
        ),
        initial_backoff=_field(
            errs, d, path, "initial_backoff", parse_positive_duration, defaults.initial_backoff
        ),
        max_backoff=_field(
            errs, d, path, "max_backoff", parse_positive_duration, defaults.max_backoff
        ),
    )
    if out.max_backoff < out.initial_backoff and not errs.has_under(path):
        errs.add(_join(path, "max_backoff"), f"must be >= initial_backoff ({out.initial_backoff}s)")
    return out


def _filters(
    errs: _Errors, path: str, raw: object, known: Collection[str] | None
) -> tuple[FilterConfig, ...]:
    out: list[FilterConfig] = []
    for i, item in enumerate(_list(errs, path, raw)):
        p = f"{path}[{i}]"
        d = _mapping(errs, p, item, ("name", "config"), required=("name",))
        if d is None:
            continue
        name = _field(errs, d, p, "name", parse_name, "")
        if name and known is not None and name not in known:
            names = sorted(known)
            hint = suggest(name, names)
            listing = f"; known: {', '.join(names)}" if names else "; no filters are registered"
            errs.add(_join(p, "name"), f"unknown filter {describe(name)}{hint}{listing}")
        options: dict[str, Any] = {}
        if d.get("config") is not None:
            options = _mapping(errs, _join(p, "config"), d["config"], None) or {}
        # ``known`` may map each name to its factory: then the options are validated here,
        # once, by the factory itself (``from_config`` raises ConfigError lines).
        factory = known.get(name) if isinstance(known, Mapping) and name else None
        if factory is not None:
            try:
                factory.from_config(dict(options))
            except ConfigError as exc:
                for line in exc.errors:
                    errs.add(_join(p, "config"), line)
        out.append(FilterConfig(name, tuple(options.items())))
    return tuple(out)


def _access_log(errs: _Errors, path: str, raw: object) -> AccessLogConfig | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        return AccessLogConfig("-")
    if isinstance(raw, str):
        try:
            return AccessLogConfig(parse_name(raw))
        except ValueError as exc:
            errs.add(path, str(exc))
            return None
    if isinstance(raw, dict):
        d = _mapping(errs, path, raw, ("path",))
        return AccessLogConfig(_field(errs, d or {}, path, "path", parse_name, "-"))
    errs.add(path, f"expected true, a file path or {{path: ...}}, got {describe(raw)}")
    return None


def _listener(
    errs: _Errors, path: str, raw: object, known_filters: Collection[str] | None
) -> ListenerConfig | None:
    api = isinstance(raw, dict) and raw.get("api_listener") is True
    required = ("name",) if api else ("name", "address")
    d = _mapping(errs, path, raw, _LISTENER_KEYS, required=required)
    if d is None:
        return None
    defaults = ListenerConfig("", _PLACEHOLDER_ADDRESS)
    protocol = _field(errs, d, path, "protocol", one_of(LISTENER_PROTOCOLS), "tcp")
    if api:
        _api_listener_checks(errs, path, d, protocol)
    listener = ListenerConfig(
        name=_field(errs, d, path, "name", parse_name, ""),
        address=_field(errs, d, path, "address", parse_address, _PLACEHOLDER_ADDRESS),
        protocol=protocol,
        transparent=_field(errs, d, path, "transparent", parse_bool, False),
        tls=(
            _tls(errs, _join(path, "tls"), d["tls"], ALPN_BY_PROTOCOL.get(protocol))
            if d.get("tls") is not None
            else None
        ),
        filters=_filters(errs, _join(path, "filters"), d.get("filters"), known_filters),
        route=_field(errs, d, path, "route", parse_name, None),
        cluster=_field(errs, d, path, "cluster", parse_name, None),
        idle_timeout=_field(
            errs, d, path, "idle_timeout", parse_optional_duration, defaults.idle_timeout
        ),
        max_frame_size=_field(
            errs, d, path, "max_frame_size", parse_positive_size, defaults.max_frame_size
        ),
        access_log=_access_log(errs, _join(path, "access_log"), d.get("access_log")),
        backlog=_field(errs, d, path, "backlog", int_at_least(1), defaults.backlog),
        password=_field(errs, d, path, "password", parse_name, None),
        max_header_size=_field(
            errs, d, path, "max_header_size", size_between(1 << 10, 1 << 20),
            defaults.max_header_size,
        ),
        max_header_count=_field(
            errs, d, path, "max_header_count", int_between(1, 10000), defaults.max_header_count
        ),
        max_body_size=_field(errs, d, path, "max_body_size", parse_size, defaults.max_body_size),
        max_concurrent_streams=_field(
            errs, d, path, "max_concurrent_streams", int_between(1, 1 << 20),
            defaults.max_concurrent_streams,
        ),
        api_listener=_field(errs, d, path, "api_listener", parse_bool, False),
        use_original_dst=_field(errs, d, path, "use_original_dst", parse_bool, False),
        bind_to_port=_field(errs, d, path, "bind_to_port", parse_bool, True),
        sniff_timeout=_field(
            errs, d, path, "sniff_timeout", parse_positive_duration, defaults.sniff_timeout
        ),
        forward_client_cert=_field(
            errs, d, path, "forward_client_cert", one_of(("sanitize", "sanitize_set")),
            defaults.forward_client_cert,
        ),
    )
    _interception_checks(errs, path, d, listener)
    if not errs.is_bad(_join(path, "protocol")) and protocol not in HTTP_LISTENER_PROTOCOLS:
        for key in _HTTP_LIMIT_KEYS:
            if key in d:
                errs.add(_join(path, key), f"applies to HTTP listeners only, not {protocol}")
    if "password" in d and not errs.is_bad(_join(path, "protocol")) and protocol != "redis":
        errs.add(_join(path, "password"), f"applies to redis listeners only, not {protocol}")
    if not errs.is_bad(_join(path, "protocol")):
        # tcp relays bytes to one cluster; every other protocol decodes requests and routes.
        wanted, unwanted = ("cluster", "route") if protocol == "tcp" else ("route", "cluster")
        if wanted not in d:
            errs.add(_join(path, wanted), f"required for a {protocol} listener")
        if unwanted in d:
            errs.add(
                _join(path, unwanted),
                f"not allowed on a {protocol} listener (it takes {wanted!r})",
            )
        if protocol == "tcp" and listener.filters:
            errs.add(
                _join(path, "filters"),
                "stream filters need an L7 protocol; a tcp listener relays raw bytes",
            )
    return listener


def _interception_checks(
    errs: _Errors, path: str, d: dict[str, Any], listener: ListenerConfig
) -> None:
    if listener.use_original_dst:
        if listener.protocol != "tcp" and not errs.is_bad(_join(path, "protocol")):
            errs.add(_join(path, "use_original_dst"),
                     "needs protocol tcp: the listener it hands a connection to decodes it;"
                     " its own cluster is the passthrough for the rest")
        if not listener.bind_to_port:
            errs.add(_join(path, "bind_to_port"), "a use_original_dst listener must bind")
    elif "sniff_timeout" in d:
        errs.add(_join(path, "sniff_timeout"), "applies to use_original_dst listeners only")
    if not listener.bind_to_port:
        for key in ("tls", "transparent", "backlog"):
            if key in d:
                errs.add(_join(path, key), "not allowed with bind_to_port: false (the"
                         " use_original_dst listener that hands connections over has them)")
    if "forward_client_cert" in d and listener.protocol not in HTTP_LISTENER_PROTOCOLS:
        errs.add(_join(path, "forward_client_cert"), "applies to HTTP listeners only")


def _api_listener_checks(errs: _Errors, path: str, d: dict[str, Any], protocol: str) -> None:
    """``api_listener: true``: a Listener for proxyless gRPC clients; it has no socket."""
    if protocol not in HTTP_LISTENER_PROTOCOLS:
        errs.add(_join(path, "api_listener"), f"applies to HTTP listeners only, not {protocol}")
    for key in ("address", "transparent", "tls", "backlog", "idle_timeout", "access_log"):
        if key in d:
            errs.add(_join(path, key), "not allowed on an api_listener (it has no socket)")


def _header_matchers(errs: _Errors, path: str, raw: object) -> tuple[HeaderMatcher, ...]:
    return tuple(HeaderMatcher(n, e, r) for n, e, r in _matchers(errs, path, raw))


def _hash_tag(value: object) -> str:
    text = parse_name(value)
    if len(text) != 2 or text[0] == text[1]:
        raise ValueError(f"expected two different characters such as '{{}}', got {describe(value)}")
    return text


def _commands(errs: _Errors, path: str, raw: object) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(_list(errs, path, raw)):
        try:
            out.append(parse_name(item).lower())
        except ValueError as exc:
            errs.add(f"{path}[{i}]", str(exc))
    return tuple(out)


def _match(errs: _Errors, path: str, raw: object) -> RouteMatch:
    if raw is None:
        return RouteMatch()
    d = _mapping(errs, path, raw, ("service", "method", "headers", "key_prefix", "commands"))
    if d is None:
        return RouteMatch()
    return RouteMatch(
        service=_field(errs, d, path, "service", parse_name, None),
        method=_field(errs, d, path, "method", parse_name, None),
        headers=_header_matchers(errs, _join(path, "headers"), d.get("headers")),
        key_prefix=_field(errs, d, path, "key_prefix", parse_string, None),
        commands=_commands(errs, _join(path, "commands"), d.get("commands")),
    )


def _rule(errs: _Errors, path: str, raw: object) -> RouteRule | None:
    keys = ("match", "cluster", "timeout", "retry", "mirror", "translate")
    d = _mapping(errs, path, raw, keys, required=("cluster",))
    if d is None:
        return None
    return RouteRule(
        match=_match(errs, _join(path, "match"), d.get("match")),
        cluster=_field(errs, d, path, "cluster", parse_name, ""),
        timeout=_field(errs, d, path, "timeout", parse_optional_duration, None),
        retry=_retry(errs, _join(path, "retry"), d.get("retry")),
        mirror=_field(errs, d, path, "mirror", parse_name, None),
        translate=translate_options(errs, _join(path, "translate"), d.get("translate")),
    )


def _route(errs: _Errors, path: str, raw: object) -> _ParsedRoute | None:
    d = _mapping(errs, path, raw, _ROUTE_KEYS, required=("name",))
    if d is None:
        return None
    has_rules, has_hosts = "rules" in d, "virtual_hosts" in d
    kind: str | None = None
    if has_rules and has_hosts:
        errs.add(
            _join(path, "virtual_hosts"),
            "not allowed together with rules; a route config has rules (bolt and other"
            " single-frame protocols) or virtual_hosts (HTTP), not both",
        )
    elif has_hosts:
        kind = "virtual_hosts"
    elif has_rules:
        kind = "rules"
    else:
        errs.add(_join(path, "rules"), "missing required key")
    rules_path = _join(path, "rules")
    rules: list[RouteRule] = []
    rule_paths: list[str] = []
    if has_rules:
        items = _list(errs, rules_path, d["rules"])
        if not items and not errs.is_bad(rules_path):
            errs.add(rules_path, "must not be empty (a route config needs at least one rule)")
        for i, item in enumerate(items):
            rule = _rule(errs, f"{rules_path}[{i}]", item)
            if rule is not None:
                rules.append(rule)
                rule_paths.append(f"{rules_path}[{i}]")
    hosts: tuple[VirtualHost, ...] = ()
    cluster_refs: list[tuple[str, str]] = []
    if has_hosts:
        hosts, cluster_refs = parse_virtual_hosts(
            errs, _join(path, "virtual_hosts"), d["virtual_hosts"]
        )
    route = RouteConfig(
        name=_field(errs, d, path, "name", parse_name, ""),
        rules=tuple(rules),
        virtual_hosts=hosts,
    )
    return route, tuple(rule_paths), kind, cluster_refs


def _endpoints(errs: _Errors, path: str, raw: object) -> tuple[Endpoint, ...]:
    out: list[Endpoint] = []
    first_seen: dict[tuple[str, int], str] = {}
    for i, item in enumerate(_list(errs, path, raw)):
        p = f"{path}[{i}]"
        addr_path = p
        if isinstance(item, dict):
            d = _mapping(errs, p, item, ("address", "weight"), required=("address",))
            if d is None or "address" not in d:
                continue
            weight = _field(errs, d, p, "weight", int_at_least(1), 1)
            addr_path = _join(p, "address")
            raw_address: object = d["address"]
        else:
            weight, raw_address = 1, item
        try:
            address = parse_address(raw_address)
        except ValueError as exc:
            errs.add(addr_path, str(exc))
            continue
        if address.port == 0:
            errs.add(addr_path, f"{describe(raw_address)}: port 0 cannot be connected to")
            continue
        key = (address.host.lower(), address.port)
        if key in first_seen:
            errs.add(addr_path, f"duplicate endpoint {address} (first at {first_seen[key]})")
            continue
        first_seen[key] = p
        out.append(Endpoint(address, weight))
    return tuple(out)


def _cluster(
    errs: _Errors, path: str, raw: object, dynamic: bool = False
) -> ClusterConfig | None:
    d = _mapping(errs, path, raw, _CLUSTER_KEYS, required=("name",))
    if d is None:
        return None
    defaults = ClusterConfig("")
    ctype = _field(errs, d, path, "type", one_of(CLUSTER_TYPES), defaults.type)
    endpoints_path = _join(path, "endpoints")
    endpoints = _endpoints(errs, endpoints_path, d.get("endpoints"))
    if not errs.is_bad(_join(path, "type")) and not errs.is_bad(endpoints_path):
        if ctype in ("static", "strict_dns") and not endpoints and not dynamic and (
            not errs.has_under(endpoints_path)
        ):
            errs.add(endpoints_path, f"a {ctype} cluster needs at least one endpoint")
        if ctype == "original_dst" and d.get("endpoints"):
            errs.add(
                endpoints_path,
                "an original_dst cluster connects to each connection's original destination"
                " and takes no endpoints",
            )

    def get(key: str, convert: Callable[[object], T], default: T) -> T:
        return _field(errs, d, path, key, convert, default)

    for key, allowed in (("password", ("redis",)), ("hash_tag", CACHE_PROTOCOLS)):
        proto = d.get("protocol", defaults.protocol)
        if key in d and isinstance(proto, str) and proto in CLUSTER_PROTOCOLS and (
            proto not in allowed
        ):
            errs.add(_join(path, key), f"applies to {' and '.join(allowed)} clusters only,"
                     f" not {proto}")
    protocol = get("protocol", one_of(CLUSTER_PROTOCOLS), defaults.protocol)
    return ClusterConfig(
        name=get("name", parse_name, ""),
        protocol=protocol,
        type=ctype,
        endpoints=endpoints,
        lb=get("lb", one_of(LB_POLICIES), defaults.lb),
        connect_timeout=get("connect_timeout", parse_positive_duration, defaults.connect_timeout),
        connections_per_host=get("connections_per_host", int_at_least(1), 1),
        max_requests=get("max_requests", int_at_least(1), defaults.max_requests),
        max_frame_size=get("max_frame_size", parse_positive_size, defaults.max_frame_size),
        idle_timeout=get("idle_timeout", parse_optional_duration, defaults.idle_timeout),
        outlier_detection=_outlier(
            errs, _join(path, "outlier_detection"), d.get("outlier_detection")
        ),
        tls=_cluster_tls(errs, _join(path, "tls"), d.get("tls"), protocol),
        password=get("password", parse_name, None),
        hash_tag=get("hash_tag", _hash_tag, None),
        dns_refresh_rate=get("dns_refresh_rate", parse_positive_duration, 5.0),
        source_address=get("source_address", _ip_literal, None),
    )


def _ip_literal(value: object) -> str:
    text = parse_name(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"expected an IP address such as 127.0.0.6, got {describe(value)}")\
            from None


def _outlier(errs: _Errors, path: str, raw: object) -> OutlierDetection:
    if raw is None:
        return OutlierDetection()
    d = _mapping(
        errs, path, raw, ("consecutive_connect_failures", "ejection_time", "max_ejection_time")
    )
    if d is None:
        return OutlierDetection()
    dflt = OutlierDetection()
    out = OutlierDetection(
        consecutive_connect_failures=_field(
            errs,
            d,
            path,
            "consecutive_connect_failures",
            int_at_least(0),
            dflt.consecutive_connect_failures,
        ),
        ejection_time=_field(
            errs, d, path, "ejection_time", parse_positive_duration, dflt.ejection_time
        ),
        max_ejection_time=_field(
            errs, d, path, "max_ejection_time", parse_positive_duration, dflt.max_ejection_time
        ),
    )
    if out.max_ejection_time < out.ejection_time:
        errs.add(
            _join(path, "max_ejection_time"), f"must be >= ejection_time ({out.ejection_time}s)"
        )
    return out


def _section(
    errs: _Errors, key: str, raw: object, parse: Callable[[str, object], T | None]
) -> list[tuple[str, T]]:
    out: list[tuple[str, T]] = []
    for i, item in enumerate(_list(errs, key, raw)):
        path = f"{key}[{i}]"
        obj = parse(path, item)
        if obj is not None:
            out.append((path, obj))
    return out


def _parse_sections(
    errs: _Errors, top: dict[str, Any], known_filters: Collection[str] | None,
    dynamic: bool = False,
) -> _Parsed:
    p = _Parsed()
    if top.get("admin") is not None:
        p.admin = _admin(errs, "admin", top["admin"])
    p.workers = _field(errs, top, "", "workers", parse_workers, 1)
    p.drain_timeout = _field(errs, top, "", "drain_timeout", parse_duration, 10.0)
    if top.get("log") is not None:
        p.log = _log(errs, "log", top["log"])
    p.demos = _section(
        errs, "demo_upstreams", top.get("demo_upstreams"), lambda a, b: _demo(errs, a, b)
    )
    p.listeners = _section(
        errs, "listeners", top.get("listeners"), lambda a, b: _listener(errs, a, b, known_filters)
    )
    routes = _section(errs, "routes", top.get("routes"), lambda a, b: _route(errs, a, b))
    for path, (route, rule_paths, kind, cluster_refs) in routes:
        p.routes.append((path, route, rule_paths))
        if kind is not None:
            p.route_kinds[path] = kind
        if kind == "virtual_hosts":
            p.http_clusters[path] = cluster_refs
    p.clusters = _section(
        errs, "clusters", top.get("clusters"), lambda a, b: _cluster(errs, a, b, dynamic)
    )
    if top.get("xds") is not None:
        p.xds = _xds(errs, "xds", top["xds"])
    return p


# ------------------------------------------------------------------------------------ entries


def _parse(
    data: object,
    source: str,
    known_filters: Collection[str] | None,
    translations: Collection[tuple[str, str]],
    dynamic: bool = False,
) -> tuple[Config | None, list[str]]:
    errs = _Errors()
    if data is None:
        return None, [f"{source}: empty config"]
    if not isinstance(data, dict):
        keys = ", ".join(_TOP_KEYS)
        return None, [
            f"{source}: expected a mapping of top-level keys ({keys}), got {describe(data)}"
        ]
    top = _mapping(errs, "", data, _TOP_KEYS)
    assert top is not None  # data is a dict
    parsed = _parse_sections(errs, top, known_filters, dynamic)
    pairs = translations if isinstance(translations, Mapping) else frozenset(translations)
    _cross_check(errs, parsed, pairs, dynamic)
    if errs.lines:
        return None, errs.lines
    config = Config(
        listeners=tuple(ln for _, ln in parsed.listeners),
        routes=tuple(r for _, r, _ in parsed.routes),
        clusters=tuple(c for _, c in parsed.clusters),
        admin=parsed.admin,
        workers=parsed.workers,
        drain_timeout=parsed.drain_timeout,
        log=parsed.log,
        demo_upstreams=tuple(d for _, d in parsed.demos),
        xds=parsed.xds,
    )
    return config, []


def parse_config(
    data: object,
    *,
    source: str = "<config>",
    known_filters: Collection[str] | None = None,
    translations: Collection[tuple[str, str]] = (),
    dynamic: bool = False,
) -> Config:
    """Validate already-parsed YAML/JSON data and build the ``Config`` model.

    ``known_filters``: the registered stream filter names (``None``: accept any name).
    ``translations``: ``(downstream, upstream)`` protocol pairs a translator exists for.
    ``dynamic``: the config was assembled from xDS resources, where a route may name a
    cluster that has not arrived (yet): such requests get "no healthy upstream", as in
    Envoy, and an EDS cluster may have no endpoints.
    Raises ``ConfigError`` listing every problem found (``source`` names the document in
    whole-document errors such as "empty config"); raises nothing else.
    """
    config, errors = _parse(data, source, known_filters, translations, dynamic)
    if config is None:
        raise ConfigError(errors)
    return config


def load_config(
    path: str | os.PathLike[str],
    *,
    known_filters: Collection[str] | None = None,
    translations: Collection[tuple[str, str]] = (),
) -> Config:
    """Read the YAML file at ``path`` and validate it (see ``parse_config``).

    Raises ``ConfigError`` when the file cannot be read, is not valid YAML (the line names
    file, line and column), repeats a key, or fails validation.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{source}: cannot read config: no such file") from None
    except OSError as exc:
        raise ConfigError(
            f"{source}: cannot read config: {(exc.strerror or str(exc)).lower()}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    data, duplicates = _read_yaml(text, source)
    config, errors = _parse(data, source, known_filters, translations)
    if duplicates or config is None:
        raise ConfigError(duplicates + errors)
    return config
