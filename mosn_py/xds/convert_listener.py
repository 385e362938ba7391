"""Envoy ``Listener`` -> ``ListenerPart`` (a YAML listener mapping, its inline route config
or RDS name, and the protocols its clusters are implied to speak).

A listener is one socket with one filter chain holding one network filter, chosen by its
``typed_config`` type (never by name):

- ``TcpProxy`` -> ``protocol: tcp`` and its ``cluster``;
- ``HttpConnectionManager`` -> an HTTP listener (``convert_http.py``);
- ``RedisProxy`` -> ``protocol: redis`` with an inline route config of ``key_prefix`` rules;
- TypedStruct ``mosn_py.config.v1.Proxy`` -> any L7 listener of ours (bolt, memcache, ...):
  its Struct is the YAML listener, with the route config inline under ``route``.

Or it is an ``api_listener`` (an HttpConnectionManager for proxyless gRPC clients, no
socket) -> ``api_listener: true``. Keys Envoy has no field for travel in
``metadata.typed_filter_metadata["mosn_py"]`` = TypedStruct ``mosn_py.config.v1
.ListenerOptions`` (a Struct of YAML listener keys), which override the converted ones.
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.network.redis_proxy.v3 import redis_proxy_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from mosn_py.config.model import HTTP_LISTENER_PROTOCOLS
from mosn_py.tls import ALPN_BY_PROTOCOL
from mosn_py.xds import resources
from mosn_py.xds.convert_common import (
    ListenerPart,
    Where,
    access_log,
    check_fields,
    data_source_text,
    duration,
    join,
    optional_duration,
    refuse_if,
    socket_address,
    type_name,
    typed_struct,
    unpack,
)
from mosn_py.xds.convert_http import hcm_listener, route_clusters, unpack_hcm
from mosn_py.xds.convert_tls import downstream_tls

__all__ = ["listener_from_proto"]

_TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_REDIS_PROXY = "envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"
# Listener filters whose work mosn-py does anyway (TLS/HTTP sniffing, original destination),
# by type and by their legacy names (a name-only entry).
_LISTENER_FILTERS = (
    "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
    "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
)
_LISTENER_FILTER_NAMES = (
    "envoy.filters.listener.tls_inspector",
    "envoy.filters.listener.http_inspector",
    "envoy.filters.listener.original_dst",
)

_LISTENER_HANDLED = (
    "name",
    "address",
    "filter_chains",
    "default_filter_chain",
    "listener_filters",
    "transparent",
    "freebind",
    "use_original_dst",
    "bind_to_port",
    "api_listener",
    "tcp_backlog_size",
    "listener_filters_timeout",
    "metadata",
)
# Harmless: statistics, buffer and accept tuning, drain style, worker balancing (mosn-py
# balances with SO_REUSEPORT across its workers), direction hints.
_LISTENER_IGNORED = (
    "stat_prefix",
    "per_connection_buffer_limit_bytes",
    "drain_type",
    "continue_on_listener_filters_timeout",
    "traffic_direction",
    "tcp_fast_open_queue_length",
    "connection_balance_config",
    "reuse_port",
    "enable_reuse_port",
    "max_connections_to_accept_per_socket_event",
    "ignore_global_conn_limit",
    "bypass_overload_manager",
)


def listener_from_proto(msg: Any) -> ListenerPart:
    """An ``envoy.config.listener.v3.Listener`` -> ``ListenerPart``.

    Raises ``ConversionError`` (``Listener '<name>': <field path> ...``) for any set field
    whose behaviour mosn-py does not have, and for shapes it cannot take (several filter
    chains, chain matching, an unknown network filter).
    """
    name = str(msg.name)
    where = Where("Listener", name)
    if not name:
        raise where.error("name must not be empty")
    check_fields(where, "", msg, _LISTENER_HANDLED, _LISTENER_IGNORED)
    refuse_if(where, "", msg, ("freebind",), True)
    options = _options(where, msg)
    if msg.HasField("api_listener"):
        return _api_listener(where, msg, options)
    if not msg.HasField("address"):
        raise where.error("address is required (or api_listener)")
    listener: dict[str, Any] = {
        "name": name,
        "address": socket_address(where, "address", msg.address),
    }
    if msg.HasField("transparent") and msg.transparent.value:
        listener["transparent"] = True
    # Interception (docs/sidecar.md): the capture listener hands connections to the
    # listeners that do not bind, by original destination; the listener filters' timeout
    # bounds the sniffing.
    if msg.HasField("use_original_dst") and msg.use_original_dst.value:
        listener["use_original_dst"] = True
        if msg.HasField("listener_filters_timeout"):
            listener["sniff_timeout"] = duration(
                where, "listener_filters_timeout", msg.listener_filters_timeout
            )
    if msg.HasField("bind_to_port") and not msg.bind_to_port.value:
        listener["bind_to_port"] = False
    if msg.HasField("tcp_backlog_size"):
        listener["backlog"] = int(msg.tcp_backlog_size.value)
    _listener_filters(where, msg.listener_filters)
    path, chain = _one_chain(where, msg)
    check_fields(
        where,
        path,
        chain,
        ("filters", "transport_socket", "filter_chain_match"),
        ("name", "metadata"),
    )
    if chain.HasField("filter_chain_match"):  # an empty match is "everything": fine
        check_fields(where, join(path, "filter_chain_match"), chain.filter_chain_match, ())
    if len(chain.filters) != 1:
        raise where.error(
            f"{join(path, 'filters')}: expected one network filter, got {len(chain.filters)}"
        )
    fpath = f"{join(path, 'filters')}[0]"
    network = chain.filters[0]
    check_fields(where, fpath, network, ("typed_config",), ("name",))
    if not network.HasField("typed_config"):
        raise where.error(f"{fpath}: no typed_config")
    keys, route, rds, implied = _network_filter(
        where, join(fpath, "typed_config"), network.typed_config, name, options
    )
    listener.update(keys)
    if chain.HasField("transport_socket") and "tls" not in options and "tls" not in keys:
        tls = downstream_tls(where, join(path, "transport_socket"), chain.transport_socket)
        if tls is not None:
            listener["tls"] = tls[0]
            _check_alpn(where, path, tls[1], options.get("protocol", listener.get("protocol")))
    listener.update(options)
    return ListenerPart(name, listener, route, rds, implied)


def _options(where: Where, msg: Any) -> dict[str, Any]:
    """The ListenerOptions in ``metadata.typed_filter_metadata["mosn_py"]`` (or ``{}``)."""
    key = resources.MOSN_EXTENSION_NAME
    if key in msg.metadata.filter_metadata:
        raise where.unsupported(
            f"metadata.filter_metadata['{key}']",
            f"ListenerOptions go in typed_filter_metadata['{key}']",
        )
    if key not in msg.metadata.typed_filter_metadata:
        return {}
    path = f"metadata.typed_filter_metadata['{key}']"
    found = typed_struct(where, path, msg.metadata.typed_filter_metadata[key])
    if found is None or found[0] != resources.MOSN_LISTENER_OPTIONS:
        raise where.error(f"{path}: expected a TypedStruct of {resources.MOSN_LISTENER_OPTIONS}")
    if "name" in found[1]:
        raise where.unsupported(f"{path}.value['name']", "the name is the Listener's")
    return found[1]


def _api_listener(where: Where, msg: Any, options: dict[str, Any]) -> ListenerPart:
    """A Listener for proxyless gRPC clients: ``api_listener`` holds an HCM."""
    present = {
        "address": msg.HasField("address"),
        "filter_chains": len(msg.filter_chains) > 0,
        "default_filter_chain": msg.HasField("default_filter_chain"),
        "listener_filters": len(msg.listener_filters) > 0,
    }
    for field, given in present.items():
        if given:
            raise where.unsupported(f"{field} with api_listener", "an api_listener has no socket")
    check_fields(where, "api_listener", msg.api_listener, ("api_listener",))
    path = "api_listener.api_listener"
    kind = type_name(msg.api_listener.api_listener)
    if kind != _HCM:
        raise where.unsupported(f"{path} {kind or 'without a type'}", f"expected {_HCM}")
    hcm = unpack_hcm(where, path, msg.api_listener.api_listener)
    keys, route, rds = hcm_listener(where, path, hcm, api=True, listener_name=where.name)
    listener: dict[str, Any] = {"name": where.name, "api_listener": True, **keys, **options}
    return ListenerPart(where.name, listener, route, rds, _implied(route, "http1"))


def _listener_filters(where: Where, items: Any) -> None:
    for i, lf in enumerate(items):
        path = f"listener_filters[{i}]"
        check_fields(where, path, lf, ("typed_config",), ("name",))
        if lf.HasField("typed_config"):
            kind = type_name(lf.typed_config)
            if kind not in _LISTENER_FILTERS:
                raise where.unsupported(
                    f"{join(path, 'typed_config')} {kind or 'without a type'}",
                    "only tls_inspector, http_inspector and original_dst",
                )
        elif str(lf.name) not in _LISTENER_FILTER_NAMES:
            raise where.unsupported(f"{path} {str(lf.name)!r}")


def _one_chain(where: Where, msg: Any) -> tuple[str, Any]:
    chains = [(f"filter_chains[{i}]", c) for i, c in enumerate(msg.filter_chains)]
    if msg.HasField("default_filter_chain"):
        chains.append(("default_filter_chain", msg.default_filter_chain))
    if len(chains) != 1:
        raise (
            where.unsupported(
                f"{len(chains)} filter chains", "mosn-py takes exactly one per listener"
            )
            if chains
            else where.error("filter_chains: a listener needs one filter chain")
        )
    return chains[0]


def _check_alpn(where: Where, path: str, alpn: list[str], protocol: object) -> None:
    """Envoy offers the ALPN list given; mosn-py offers ALPN by listener protocol. Taken when
    ours includes every protocol Envoy would offer."""
    if not alpn:
        return
    ours = ALPN_BY_PROTOCOL.get(protocol, []) if isinstance(protocol, str) else []
    if not set(alpn) <= set(ours):
        raise where.unsupported(
            f"{join(path, 'transport_socket.typed_config.common_tls_context.alpn_protocols')}"
            f" {alpn}",
            f"a {protocol} listener offers {ours or 'no ALPN'}",
        )


def _implied(route: dict[str, Any] | None, protocol: str) -> dict[str, str]:
    return {c: protocol for c in route_clusters(route)} if route else {}


def _network_filter(
    where: Where, path: str, config: Any, name: str, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None, dict[str, str]]:
    """(listener keys, inline route, RDS name, implied cluster protocols) for the one
    network filter."""
    kind = type_name(config)
    if kind == _TCP_PROXY:
        keys = _tcp_proxy(where, path, unpack(where, path, config, tcp_proxy_pb2.TcpProxy))
        return keys, None, None, {keys["cluster"]: "tcp"}
    if kind == _HCM:
        hcm = unpack_hcm(where, path, config)
        keys, route, rds = hcm_listener(where, path, hcm, api=False, listener_name=name)
        return keys, route, rds, _implied(route, "http1")
    if kind == _REDIS_PROXY:
        proxy = unpack(where, path, config, redis_proxy_pb2.RedisProxy)
        route_name = options.get("route", name)
        if not isinstance(route_name, str):
            raise where.error(
                f"metadata.typed_filter_metadata['{resources.MOSN_EXTENSION_NAME}']"
                ".value['route']: expected the route config's name"
            )
        keys, route = _redis_proxy(where, path, proxy, route_name)
        return keys, route, None, _implied(route, "redis")
    ours = typed_struct(where, path, config)
    if ours is not None and ours[0] == resources.MOSN_PROXY:
        return _mosn_proxy(where, join(path, "value"), ours[1])
    inner = ours[0] if ours is not None else kind
    raise where.unsupported(
        f"{path} {inner or 'without a type'}",
        "expected TcpProxy, HttpConnectionManager, RedisProxy or TypedStruct"
        f" {resources.MOSN_PROXY}",
    )


def _tcp_proxy(where: Where, path: str, msg: Any) -> dict[str, Any]:
    check_fields(
        where,
        path,
        msg,
        ("cluster", "idle_timeout", "access_log"),
        (
            "stat_prefix",
            "access_log_flush_interval",
            "flush_access_log_on_connected",
            "access_log_options",
        ),
    )
    if not msg.cluster:
        raise where.error(f"{join(path, 'cluster')}: required")
    out: dict[str, Any] = {"protocol": "tcp", "cluster": str(msg.cluster)}
    if msg.HasField("idle_timeout"):
        out["idle_timeout"] = optional_duration(where, join(path, "idle_timeout"), msg.idle_timeout)
    log = access_log(where, join(path, "access_log"), msg.access_log)
    if log is not None:
        out["access_log"] = log
    return out


def _redis_proxy(
    where: Where, path: str, msg: Any, route_name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """RedisProxy -> (listener keys, inline route config of key_prefix rules).

    Envoy routes by the *longest* matching prefix, mosn-py by the first matching rule: the
    rules are ordered so that both agree (kept as given when they already do).
    """
    check_fields(
        where,
        path,
        msg,
        ("settings", "prefix_routes", "downstream_auth_password", "downstream_auth_passwords"),
        ("stat_prefix", "latency_in_micros"),
    )
    timeout: float | None = None
    if msg.HasField("settings"):
        timeout = _redis_settings(where, join(path, "settings"), msg.settings)
    out: dict[str, Any] = {"protocol": "redis", "route": route_name}
    passwords = (
        [(join(path, "downstream_auth_password"), msg.downstream_auth_password)]
        if (msg.HasField("downstream_auth_password"))
        else []
    )
    passwords += [
        (f"{join(path, 'downstream_auth_passwords')}[{i}]", p)
        for i, p in enumerate(msg.downstream_auth_passwords)
    ]
    if len(passwords) > 1:
        raise where.unsupported(passwords[1][0], "one client password")
    if passwords:
        out["password"] = data_source_text(where, passwords[0][0], passwords[0][1], want="inline")
    rules: list[dict[str, Any]] = []
    catch_all: dict[str, Any] | None = None
    if msg.HasField("prefix_routes"):
        rpath = join(path, "prefix_routes")
        pr = msg.prefix_routes
        check_fields(where, rpath, pr, ("routes", "catch_all_route", "case_insensitive"))
        refuse_if(where, rpath, pr, ("case_insensitive",), True)
        seen: set[str] = set()
        for i, r in enumerate(pr.routes):
            rule = _redis_route(where, f"{join(rpath, 'routes')}[{i}]", r, timeout)
            prefix = str(r.prefix)
            if prefix in seen:
                raise where.error(f"{join(rpath, 'routes')}[{i}]: duplicate prefix {prefix!r}")
            seen.add(prefix)
            rule["match"] = {"key_prefix": prefix}
            rules.append(rule)
        if pr.HasField("catch_all_route"):
            cpath = join(rpath, "catch_all_route")
            if pr.catch_all_route.prefix:
                raise where.error(f"{join(cpath, 'prefix')}: a catch-all route has no prefix")
            catch_all = _redis_route(where, cpath, pr.catch_all_route, timeout)
    prefixes = [str(r["match"]["key_prefix"]) for r in rules]
    shadowed = any(
        later.startswith(earlier)
        for i, earlier in enumerate(prefixes)
        for later in prefixes[i + 1 :]
    )
    if shadowed:  # longest prefix first; sorted() is stable, so ties keep their order
        rules = sorted(rules, key=lambda r: -len(r["match"]["key_prefix"]))
    if catch_all is not None:
        rules.append(catch_all)
    return out, {"name": route_name, "rules": rules}


def _redis_settings(where: Where, path: str, msg: Any) -> float | None:
    check_fields(
        where,
        path,
        msg,
        ("op_timeout", "read_policy", "enable_hashtagging"),
        (
            "max_buffer_size_before_flush",
            "buffer_flush_timeout",
            "max_upstream_unknown_connections",
            "enable_command_stats",
        ),
    )
    if msg.enable_hashtagging:
        raise where.unsupported(
            join(path, "enable_hashtagging"),
            "hash tags are a cluster setting in mosn-py: set hash_tag in the cluster's"
            f" {resources.MOSN_CLUSTER_OPTIONS}",
        )
    if msg.read_policy:
        raise where.unsupported(f"{join(path, 'read_policy')} {msg.read_policy}", "only MASTER")
    if not msg.HasField("op_timeout"):
        return None
    return optional_duration(where, join(path, "op_timeout"), msg.op_timeout)


def _redis_route(where: Where, path: str, msg: Any, timeout: float | None) -> dict[str, Any]:
    check_fields(where, path, msg, ("prefix", "cluster", "request_mirror_policy", "remove_prefix"))
    refuse_if(where, path, msg, ("remove_prefix",), True)
    if not msg.cluster:
        raise where.error(f"{join(path, 'cluster')}: required")
    rule: dict[str, Any] = {"cluster": str(msg.cluster)}
    if timeout is not None:
        rule["timeout"] = timeout
    mirrors = list(msg.request_mirror_policy)
    if len(mirrors) > 1:
        raise where.unsupported(f"{join(path, 'request_mirror_policy')}[1]", "one mirror")
    if mirrors:
        mpath = f"{join(path, 'request_mirror_policy')}[0]"
        check_fields(where, mpath, mirrors[0], ("cluster", "exclude_read_commands"))
        if not mirrors[0].exclude_read_commands:
            raise where.unsupported(
                join(mpath, "exclude_read_commands") + " false",
                "mosn-py mirrors write commands only; set exclude_read_commands",
            )
        rule["mirror"] = str(mirrors[0].cluster)
    return rule


def _mosn_proxy(
    where: Where, path: str, value: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None, dict[str, str]]:
    """TypedStruct ``mosn_py.config.v1.Proxy``: the YAML listener, route config inline."""
    keys = dict(value)
    if "name" in keys:
        raise where.unsupported(f"{path}['name']", "the name is the Listener's")
    route = keys.get("route")
    if not isinstance(route, dict) or not isinstance(route.get("name"), str):
        raise where.error(f"{path}['route']: expected the route config, a mapping with a name")
    keys["route"] = route["name"]
    protocol = keys.get("protocol")
    implied = protocol if isinstance(protocol, str) else "tcp"
    if implied in HTTP_LISTENER_PROTOCOLS:
        implied = "http1"
    return keys, route, None, _implied(route, implied)
