"""Envoy ``Cluster`` -> ``ClusterPart``; ``ClusterLoadAssignment`` -> endpoint list.

Cluster types: STATIC (endpoints from ``load_assignment``), EDS (endpoints from a
ClusterLoadAssignment over ADS), STRICT_DNS (``type: strict_dns``), ORIGINAL_DST
(``type: original_dst``). The protocol comes from ``typed_extension_protocol_options``:
``HttpProtocolOptions`` (explicit HTTP/1.1 or HTTP/2), ``RedisProtocolOptions`` (redis, with
the upstream password), and TypedStruct ``mosn_py.config.v1.ClusterOptions`` (a Struct of
YAML cluster keys Envoy has no field for, which override the converted ones).

Unset Envoy fields take mosn-py's defaults (docs/config.md), not Envoy's; docs/xds.md lists
where the two differ.
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.network.redis_proxy.v3 import redis_proxy_pb2
from envoy.extensions.load_balancing_policies.least_request.v3 import least_request_pb2
from envoy.extensions.load_balancing_policies.random.v3 import random_pb2
from envoy.extensions.load_balancing_policies.round_robin.v3 import round_robin_pb2
from envoy.extensions.load_balancing_policies.wrr_locality.v3 import wrr_locality_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from mosn_py.xds import resources
from mosn_py.xds.convert_common import (
    ClusterPart,
    Where,
    check_fields,
    config_source,
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
from mosn_py.xds.convert_tls import upstream_tls

__all__ = ["cluster_from_proto", "endpoints_from_proto", "load_assignment"]

_TYPES = {0: "STATIC", 1: "STRICT_DNS", 2: "LOGICAL_DNS", 3: "EDS", 4: "ORIGINAL_DST"}
_LB = {0: "round_robin", 1: "least_request", 3: "random"}
_LB_NAMES = {2: "RING_HASH", 5: "MAGLEV", 6: "CLUSTER_PROVIDED", 7: "LOAD_BALANCING_POLICY_CONFIG"}
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_REDIS_OPTIONS = "envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions"
_LB_POLICIES: dict[str, tuple[str, Any]] = {
    "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin": (
        "round_robin",
        round_robin_pb2.RoundRobin,
    ),
    "envoy.extensions.load_balancing_policies.random.v3.Random": ("random", random_pb2.Random),
    "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest": (
        "least_request",
        least_request_pb2.LeastRequest,
    ),
}
_WRR_LOCALITY = "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality"
_USABLE_HEALTH = (0, 1)  # UNKNOWN, HEALTHY (as gRPC: others are left out)

_CLUSTER_HANDLED = (
    "name",
    "type",
    "eds_cluster_config",
    "connect_timeout",
    "lb_policy",
    "load_assignment",
    "circuit_breakers",
    "outlier_detection",
    "transport_socket",
    "typed_extension_protocol_options",
    "common_http_protocol_options",
    "http_protocol_options",
    "http2_protocol_options",
    "dns_refresh_rate",
    "least_request_lb_config",
    "load_balancing_policy",
    "respect_dns_ttl",
    "close_connections_on_host_health_failure",
    "connection_pool_per_downstream_connection",
    "upstream_bind_config",
)
# Harmless: statistics, buffer sizes, warming and cleanup timing, DNS retry pacing.
_CLUSTER_IGNORED = (
    "alt_stat_name",
    "per_connection_buffer_limit_bytes",
    "metadata",
    "wait_for_warm_on_init",
    "cleanup_interval",
    "ignore_health_on_host_removal",
    "track_timeout_budgets",
    "track_cluster_stats",
    "dns_jitter",
    "dns_failure_refresh_rate",
)
# Outlier detectors mosn-py does not have: a threshold is taken only with its enforcement
# explicitly 0 (off); an enforcement other than 0 is refused.
_DETECTORS = {
    "consecutive_5xx": "enforcing_consecutive_5xx",
    "consecutive_gateway_failure": "enforcing_consecutive_gateway_failure",
    "success_rate_minimum_hosts": "enforcing_success_rate",
    "success_rate_request_volume": "enforcing_success_rate",
    "success_rate_stdev_factor": "enforcing_success_rate",
    "failure_percentage_threshold": "enforcing_failure_percentage",
    "failure_percentage_minimum_hosts": "enforcing_failure_percentage",
    "failure_percentage_request_volume": "enforcing_failure_percentage",
}
_ENFORCING_OFF = (
    "enforcing_consecutive_5xx",
    "enforcing_success_rate",
    "enforcing_consecutive_gateway_failure",
    "enforcing_local_origin_success_rate",
    "enforcing_failure_percentage",
    "enforcing_failure_percentage_local_origin",
)


def cluster_from_proto(msg: Any) -> ClusterPart:
    """An ``envoy.config.cluster.v3.Cluster`` -> ``ClusterPart``.

    Raises ``ConversionError`` (``Cluster '<name>': <field path> ...``) for any set field
    whose behaviour mosn-py does not have (health checks, subsets, ring hash, ...).
    """
    name = str(msg.name)
    where = Where("Cluster", name)
    if not name:
        raise where.error("name must not be empty")
    check_fields(where, "", msg, _CLUSTER_HANDLED, _CLUSTER_IGNORED)
    refuse_if(
        where,
        "",
        msg,
        (
            "respect_dns_ttl",
            "close_connections_on_host_health_failure",
            "connection_pool_per_downstream_connection",
        ),
        True,
    )
    options = _options(where, msg)
    out: dict[str, Any] = {"name": name}
    eds = _discovery(where, msg, out)
    lb = _lb(where, msg, out.get("type"))
    if lb is not None:
        out["lb"] = lb
    if msg.HasField("connect_timeout"):
        out["connect_timeout"] = duration(where, "connect_timeout", msg.connect_timeout)
    if msg.HasField("upstream_bind_config"):
        bind = msg.upstream_bind_config
        check_fields(where, "upstream_bind_config", bind, ("source_address",))
        src = bind.source_address
        check_fields(where, "upstream_bind_config.source_address", src,
                     ("address", "port_value"))
        if src.port_value:
            raise where.unsupported("upstream_bind_config.source_address.port_value",
                                    "mosn-py binds the address with any port")
        out["source_address"] = str(src.address)
    if msg.HasField("circuit_breakers"):
        _circuit_breakers(where, "circuit_breakers", msg.circuit_breakers, out)
    if msg.HasField("outlier_detection"):
        out["outlier_detection"] = _outlier(where, "outlier_detection", msg.outlier_detection)
    if msg.HasField("transport_socket") and "tls" not in options:
        tls = upstream_tls(where, "transport_socket", msg.transport_socket)
        if tls is not None:
            out["tls"] = tls
    _protocols(where, msg, out)
    out.update(options)
    return ClusterPart(name, out, eds)


def _options(where: Where, msg: Any) -> dict[str, Any]:
    """The ClusterOptions TypedStruct among typed_extension_protocol_options (or ``{}``)."""
    found: dict[str, Any] = {}
    for key in sorted(msg.typed_extension_protocol_options):
        path = f"typed_extension_protocol_options[{key!r}]"
        ours = typed_struct(where, path, msg.typed_extension_protocol_options[key])
        if ours is None:
            continue
        if ours[0] != resources.MOSN_CLUSTER_OPTIONS:
            raise where.unsupported(
                f"{path} {ours[0]}", f"expected {resources.MOSN_CLUSTER_OPTIONS}"
            )
        for bad in ("name", "endpoints"):
            if bad in ours[1]:
                raise where.unsupported(
                    f"{path}.value[{bad!r}]",
                    "the name is the Cluster's"
                    if bad == "name"
                    else "endpoints come from load_assignment or EDS",
                )
        found.update(ours[1])
    return found


def _discovery(where: Where, msg: Any, out: dict[str, Any]) -> str | None:
    """Cluster type -> YAML ``type`` and ``endpoints``; returns the EDS name (EDS only)."""
    if msg.WhichOneof("cluster_discovery_type") == "cluster_type":
        raise where.unsupported("cluster_type", "custom and aggregate clusters")
    kind = int(msg.type)
    if kind not in (0, 1, 3, 4):
        raise where.unsupported(
            f"type {_TYPES.get(kind, kind)}", "expected STATIC, STRICT_DNS, EDS or ORIGINAL_DST"
        )
    if kind == 3:  # EDS
        if not msg.HasField("eds_cluster_config"):
            raise where.error("eds_cluster_config: required for an EDS cluster")
        check_fields(
            where, "eds_cluster_config", msg.eds_cluster_config, ("eds_config", "service_name")
        )
        config_source(where, "eds_cluster_config.eds_config", msg.eds_cluster_config.eds_config)
        if msg.HasField("load_assignment"):
            raise where.unsupported("load_assignment with type EDS")
        return str(msg.eds_cluster_config.service_name) or str(msg.name)
    if msg.HasField("eds_cluster_config"):
        raise where.unsupported(f"eds_cluster_config with type {_TYPES.get(kind, kind)}")
    if kind in (0, 1):  # STATIC, STRICT_DNS
        if kind == 1:
            out["type"] = "strict_dns"
            if msg.HasField("dns_refresh_rate"):
                out["dns_refresh_rate"] = duration(where, "dns_refresh_rate", msg.dns_refresh_rate)
        if msg.HasField("load_assignment"):
            out["endpoints"] = load_assignment(where, "load_assignment", msg.load_assignment)
        return None
    out["type"] = "original_dst"  # ORIGINAL_DST
    if msg.HasField("load_assignment"):
        raise where.unsupported("load_assignment with type ORIGINAL_DST")
    return None


def _lb(where: Where, msg: Any, ctype: str | None) -> str | None:
    """lb_policy (or load_balancing_policy) -> YAML ``lb``; None = the default."""
    policy = int(msg.lb_policy)
    if msg.HasField("least_request_lb_config"):
        if policy != 1:
            raise where.unsupported("least_request_lb_config without lb_policy LEAST_REQUEST")
        _least_request(where, "least_request_lb_config", msg.least_request_lb_config)
    if msg.HasField("load_balancing_policy"):
        return _lb_policy_config(where, "load_balancing_policy", msg.load_balancing_policy)
    if ctype == "original_dst":
        if policy not in (0, 6):  # unset or CLUSTER_PROVIDED: the original destination
            raise where.unsupported(
                f"lb_policy {_LB_NAMES.get(policy, policy)} with ORIGINAL_DST",
                "expected CLUSTER_PROVIDED",
            )
        return None
    if policy not in _LB:
        raise where.unsupported(
            f"lb_policy {_LB_NAMES.get(policy, policy)}",
            "expected ROUND_ROBIN, RANDOM or LEAST_REQUEST",
        )
    return _LB[policy] if policy else None


def _least_request(where: Where, path: str, msg: Any) -> None:
    """mosn-py's least_request is the power of two choices, Envoy's default choice_count."""
    check_fields(where, path, msg, ("choice_count",), ("locality_lb_config",))
    if msg.HasField("choice_count") and msg.choice_count.value != 2:
        raise where.unsupported(
            f"{join(path, 'choice_count')} {msg.choice_count.value}",
            "mosn-py picks the better of 2",
        )


def _lb_policy_config(where: Where, path: str, msg: Any) -> str:
    """The first policy of a known type, as gRPC does (locality weights are folded into the
    endpoint weights, so WrrLocality is its child policy)."""
    check_fields(where, path, msg, ("policies",))
    for i, p in enumerate(msg.policies):
        ppath = f"{join(path, 'policies')}[{i}].typed_extension_config"
        check_fields(where, ppath, p.typed_extension_config, ("typed_config",), ("name",))
        cfg = p.typed_extension_config.typed_config
        cpath = join(ppath, "typed_config")
        kind = type_name(cfg)
        if kind == _WRR_LOCALITY:
            wrr = unpack(where, cpath, cfg, wrr_locality_pb2.WrrLocality)
            check_fields(where, cpath, wrr, ("endpoint_picking_policy",))
            return _lb_policy_config(
                where, join(cpath, "endpoint_picking_policy"), wrr.endpoint_picking_policy
            )
        if kind in _LB_POLICIES:
            lb, cls = _LB_POLICIES[kind]
            config = unpack(where, cpath, cfg, cls)
            if lb == "least_request":
                _least_request(where, cpath, config)
            else:
                check_fields(where, cpath, config, (), ("locality_lb_config",))
            return lb
    raise where.unsupported(path, "no RoundRobin, Random or LeastRequest policy in it")


def _circuit_breakers(where: Where, path: str, msg: Any, out: dict[str, Any]) -> None:
    check_fields(where, path, msg, ("thresholds",))
    for i, t in enumerate(msg.thresholds):
        if t.priority != 0:
            continue  # HIGH: only for high-priority routes, which mosn-py does not have
        tpath = f"{join(path, 'thresholds')}[{i}]"
        check_fields(where, tpath, t, ("priority", "max_requests"), ("track_remaining",))
        if t.HasField("max_requests"):
            out["max_requests"] = int(t.max_requests.value)


def _outlier(where: Where, path: str, msg: Any) -> dict[str, Any]:
    """Only consecutive local-origin (connect) failures eject in mosn-py."""
    handled = (
        "consecutive_local_origin_failure",
        "enforcing_consecutive_local_origin_failure",
        "base_ejection_time",
        "max_ejection_time",
        "max_ejection_percent",
        "split_external_local_origin_errors",
        "always_eject_one_host",
        *_DETECTORS,
        *_ENFORCING_OFF,
    )
    check_fields(
        where,
        path,
        msg,
        handled,
        ("interval", "max_ejection_time_jitter", "successful_active_health_check_uneject_host"),
    )
    refuse_if(where, path, msg, ("always_eject_one_host",), True)
    for enforcing in _ENFORCING_OFF:
        if msg.HasField(enforcing) and getattr(msg, enforcing).value != 0:
            raise where.unsupported(
                f"{join(path, enforcing)} {getattr(msg, enforcing).value}",
                "mosn-py ejects on connect failures only; expected 0",
            )
    for threshold, enforcing in _DETECTORS.items():
        if msg.HasField(threshold) and not msg.HasField(enforcing):
            raise where.unsupported(
                join(path, threshold),
                f"mosn-py ejects on connect failures only; set {enforcing} to 0",
            )
    if msg.HasField("max_ejection_percent") and msg.max_ejection_percent.value != 100:
        raise where.unsupported(
            f"{join(path, 'max_ejection_percent')} {msg.max_ejection_percent.value}",
            "mosn-py may eject every host, then uses them all (panic mode); expected 100",
        )
    out: dict[str, Any] = {}
    if msg.HasField("consecutive_local_origin_failure"):
        out["consecutive_connect_failures"] = int(msg.consecutive_local_origin_failure.value)
    if msg.HasField("enforcing_consecutive_local_origin_failure"):
        enforce = int(msg.enforcing_consecutive_local_origin_failure.value)
        if enforce not in (0, 100):
            raise where.unsupported(
                f"{join(path, 'enforcing_consecutive_local_origin_failure')} {enforce}",
                "expected 100 (eject) or 0 (never)",
            )
        if enforce == 0:
            out["consecutive_connect_failures"] = 0
    if msg.HasField("base_ejection_time"):
        out["ejection_time"] = duration(
            where, join(path, "base_ejection_time"), msg.base_ejection_time
        )
    if msg.HasField("max_ejection_time"):
        out["max_ejection_time"] = duration(
            where, join(path, "max_ejection_time"), msg.max_ejection_time
        )
    return out


def _protocols(where: Where, msg: Any, out: dict[str, Any]) -> None:
    """The protocol (and its settings) from the protocol options; none given, none set."""
    said: list[tuple[str, str]] = []  # (protocol, the field that says it)
    if msg.HasField("http2_protocol_options"):  # deprecated spellings of the options below
        _h2_options(where, "http2_protocol_options", msg.http2_protocol_options)
        said.append(("http2", "http2_protocol_options"))
    if msg.HasField("http_protocol_options"):
        check_fields(where, "http_protocol_options", msg.http_protocol_options, ())
        said.append(("http1", "http_protocol_options"))
    if msg.HasField("common_http_protocol_options"):
        _common_http(where, "common_http_protocol_options", msg.common_http_protocol_options, out)
    for key in sorted(msg.typed_extension_protocol_options):
        path = f"typed_extension_protocol_options[{key!r}]"
        cfg = msg.typed_extension_protocol_options[key]
        kind = type_name(cfg)
        if kind == _HTTP_OPTIONS:
            proto = _http_options(
                where,
                path,
                unpack(where, path, cfg, http_protocol_options_pb2.HttpProtocolOptions),
                out,
            )
            if proto is not None:
                said.append((proto, path))
        elif kind == _REDIS_OPTIONS:
            opts = unpack(where, path, cfg, redis_proxy_pb2.RedisProtocolOptions)
            check_fields(where, path, opts, ("auth_password",))
            if opts.HasField("auth_password"):
                out["password"] = data_source_text(
                    where, join(path, "auth_password"), opts.auth_password, want="inline"
                )
            said.append(("redis", path))
        elif typed_struct(where, path, cfg) is None:  # ours: read by _options
            raise where.unsupported(
                f"{path} {kind or 'without a type'}",
                "expected HttpProtocolOptions or RedisProtocolOptions",
            )
    for proto, field in said[1:]:
        if proto != said[0][0]:
            raise where.error(f"{field} says {proto} but {said[0][1]} says {said[0][0]}")
    if said:
        out["protocol"] = said[0][0]


def _http_options(where: Where, path: str, msg: Any, out: dict[str, Any]) -> str | None:
    check_fields(where, path, msg, ("explicit_http_config", "common_http_protocol_options"))
    if msg.HasField("common_http_protocol_options"):
        _common_http(
            where, join(path, "common_http_protocol_options"), msg.common_http_protocol_options, out
        )
    if not msg.HasField("explicit_http_config"):
        return None
    epath = join(path, "explicit_http_config")
    which = msg.explicit_http_config.WhichOneof("protocol_config")
    if which == "http_protocol_options":
        check_fields(where, join(epath, which), msg.explicit_http_config.http_protocol_options, ())
        return "http1"
    if which == "http2_protocol_options":
        _h2_options(where, join(epath, which), msg.explicit_http_config.http2_protocol_options)
        return "http2"
    raise where.unsupported(join(epath, str(which)), "expected HTTP/1.1 or HTTP/2")


def _h2_options(where: Where, path: str, msg: Any) -> None:
    check_fields(
        where,
        path,
        msg,
        (),
        ("hpack_table_size", "initial_stream_window_size", "initial_connection_window_size"),
    )


def _common_http(where: Where, path: str, msg: Any, out: dict[str, Any]) -> None:
    check_fields(where, path, msg, ("idle_timeout",))
    if msg.HasField("idle_timeout"):
        out["idle_timeout"] = optional_duration(where, join(path, "idle_timeout"), msg.idle_timeout)


# ------------------------------------------------------------------------------ endpoints


def endpoints_from_proto(msg: Any) -> list[dict[str, Any]]:
    """An ``envoy.config.endpoint.v3.ClusterLoadAssignment`` -> ``[{"address", "weight"}]``.

    The endpoints of the lowest priority that has a usable one (health_status HEALTHY or
    UNKNOWN; others are left out, as gRPC does); weight = endpoint weight x locality weight
    (each 1 when unset; a locality of weight 0 is unused). Raises ``ConversionError`` for
    a duplicate address anywhere in the assignment, drop_overloads, named endpoints.
    """
    where = Where("ClusterLoadAssignment", str(msg.cluster_name))
    if not msg.cluster_name:
        raise where.error("cluster_name must not be empty")
    return load_assignment(where, "", msg)


def load_assignment(where: Where, path: str, msg: Any) -> list[dict[str, Any]]:
    """A ClusterLoadAssignment (an EDS resource, or a cluster's inline ``load_assignment``)
    -> YAML endpoints, under ``where``/``path`` for errors."""
    check_fields(where, path, msg, ("endpoints", "policy"), ("cluster_name",))
    if msg.HasField("policy"):
        ppath = join(path, "policy")
        check_fields(
            where,
            ppath,
            msg.policy,
            (),
            ("overprovisioning_factor", "endpoint_stale_after", "weighted_priority_health"),
        )
    first_seen: dict[str, str] = {}
    by_priority: dict[int, list[dict[str, Any]]] = {}
    for i, locality in enumerate(msg.endpoints):
        lpath = f"{join(path, 'endpoints')}[{i}]"
        check_fields(
            where,
            lpath,
            locality,
            ("lb_endpoints", "load_balancer_endpoints", "load_balancing_weight", "priority"),
            ("locality", "metadata", "proximity"),
        )
        scale = (
            int(locality.load_balancing_weight.value)
            if locality.HasField("load_balancing_weight")
            else 1
        )
        items = [
            (f"{join(lpath, 'lb_endpoints')}[{j}]", e) for j, e in enumerate(locality.lb_endpoints)
        ]
        items += [
            (f"{join(lpath, 'load_balancer_endpoints.lb_endpoints')}[{j}]", e)
            for j, e in enumerate(locality.load_balancer_endpoints.lb_endpoints)
        ]
        bucket = by_priority.setdefault(int(locality.priority), [])
        for epath, lb_endpoint in items:
            entry = _lb_endpoint(where, epath, lb_endpoint, first_seen)
            if entry is not None and scale > 0:
                entry["weight"] *= scale
                bucket.append(entry)
    for priority in sorted(by_priority):
        if by_priority[priority]:
            return by_priority[priority]
    return []


def _lb_endpoint(
    where: Where, path: str, msg: Any, first_seen: dict[str, str]
) -> dict[str, Any] | None:
    """One LbEndpoint as ``{address, weight}``; None if its health makes it unusable."""
    check_fields(
        where, path, msg, ("endpoint", "health_status", "load_balancing_weight"), ("metadata",)
    )
    if not msg.HasField("endpoint"):
        raise where.error(f"{path}: no endpoint")
    epath = join(path, "endpoint")
    check_fields(where, epath, msg.endpoint, ("address",), ("health_check_config", "hostname"))
    address = socket_address(where, join(epath, "address"), msg.endpoint.address)
    key = address.lower()
    if key in first_seen:
        raise where.error(f"{path}: duplicate endpoint {address} (first at {first_seen[key]})")
    first_seen[key] = path
    weight = 1
    if msg.HasField("load_balancing_weight"):
        weight = int(msg.load_balancing_weight.value)
        if weight < 1:
            raise where.error(f"{join(path, 'load_balancing_weight')}: must be >= 1, got 0")
    if int(msg.health_status) not in _USABLE_HEALTH:
        return None
    return {"address": address, "weight": weight}
