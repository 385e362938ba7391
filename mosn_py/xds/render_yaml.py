"""Config model -> YAML-schema mappings (the inverse of ``config/loader.py``), for what
travels to the proxy as a ``google.protobuf.Struct``: the listener and cluster keys Envoy
has no field for, and the inline route configs of non-HTTP listeners.

Each mapping holds only the keys whose value differs from the loader's default (plus the
required ones and ``protocol``), so that a Struct carries only what matters, and
``parse_config`` of the result builds an equal model. Durations are float seconds (the
loader reads a bare number as seconds), sizes int bytes, addresses ``host:port`` strings.
"""

from __future__ import annotations

from typing import Any

from mosn_py.config.model import (
    Address,
    ClusterConfig,
    ClusterTlsConfig,
    HeaderMatcher,
    ListenerConfig,
    OutlierDetection,
    RetryPolicy,
    RouteConfig,
    RouteMatch,
    RouteRule,
    TlsConfig,
)

__all__ = [
    "cluster_tls_yaml",
    "cluster_yaml",
    "header_condition",
    "listener_yaml",
    "outlier_yaml",
    "retry_yaml",
    "route_yaml",
    "tls_yaml",
]

_LISTENER_DEFAULTS = ListenerConfig("", Address("0.0.0.0", 0))
_CLUSTER_DEFAULTS = ClusterConfig("")
_CLUSTER_TLS_DEFAULTS = ClusterTlsConfig()


def listener_yaml(listener: ListenerConfig) -> dict[str, Any]:
    """The YAML listener mapping of ``listener`` (non-default keys only)."""
    out: dict[str, Any] = {"name": listener.name}
    if not listener.api_listener:
        out["address"] = str(listener.address)
    out["protocol"] = listener.protocol
    if listener.tls is not None:
        out["tls"] = tls_yaml(listener.tls)
    if listener.filters:
        out["filters"] = [
            {"name": f.name, "config": f.as_dict()} if f.config else {"name": f.name}
            for f in listener.filters
        ]
    for key in (
        "transparent", "route", "cluster", "idle_timeout", "max_frame_size", "max_header_size",
        "max_header_count", "max_body_size", "max_concurrent_streams", "password", "backlog",
        "api_listener", "use_original_dst", "bind_to_port", "sniff_timeout", "forward_client_cert",
    ):  # fmt: skip
        value = getattr(listener, key)
        if value != getattr(_LISTENER_DEFAULTS, key):
            out[key] = value
    if listener.access_log is not None:
        out["access_log"] = {"path": listener.access_log.path}
    return out


def tls_yaml(tls: TlsConfig) -> dict[str, Any]:
    """A listener's ``tls``: every certificate in order under ``certificates``."""
    certs: list[dict[str, Any]] = []
    for c in tls.certificates:
        item: dict[str, Any] = {"cert": c.cert, "key": c.key}
        if c.server_names:
            item["server_names"] = list(c.server_names)
        certs.append(item)
    out: dict[str, Any] = {"certificates": certs}
    if tls.ca is not None:
        out["ca"] = tls.ca
    if tls.require_client_cert:
        out["require_client_cert"] = True
    if tls.min_version != "1.2":
        out["min_version"] = tls.min_version
    return out


def cluster_tls_yaml(tls: ClusterTlsConfig) -> dict[str, Any]:
    """A cluster's ``tls`` (``{}`` = TLS with every default)."""
    out: dict[str, Any] = {}
    for key in ("sni", "ca", "cert", "key", "verify", "min_version"):
        value = getattr(tls, key)
        if value != getattr(_CLUSTER_TLS_DEFAULTS, key):
            out[key] = value
    if tls.alpn is not None:
        out["alpn"] = list(tls.alpn)
    if tls.subject_alt_names:
        out["subject_alt_names"] = list(tls.subject_alt_names)
    return out


def cluster_yaml(cluster: ClusterConfig) -> dict[str, Any]:
    """The YAML cluster mapping of ``cluster`` (non-default keys, plus ``protocol``)."""
    out: dict[str, Any] = {"name": cluster.name, "protocol": cluster.protocol}
    if cluster.endpoints:
        out["endpoints"] = [
            {"address": str(e.address), "weight": e.weight} for e in cluster.endpoints
        ]
    for key in (
        "type", "lb", "connect_timeout", "connections_per_host", "max_requests",
        "max_frame_size", "idle_timeout", "password", "hash_tag", "dns_refresh_rate",
        "source_address",
    ):  # fmt: skip
        value = getattr(cluster, key)
        if value != getattr(_CLUSTER_DEFAULTS, key):
            out[key] = value
    if cluster.outlier_detection != OutlierDetection():
        out["outlier_detection"] = outlier_yaml(cluster.outlier_detection)
    if cluster.tls is not None:
        out["tls"] = cluster_tls_yaml(cluster.tls)
    return out


def outlier_yaml(od: OutlierDetection) -> dict[str, Any]:
    return {
        "consecutive_connect_failures": od.consecutive_connect_failures,
        "ejection_time": od.ejection_time,
        "max_ejection_time": od.max_ejection_time,
    }


def route_yaml(route: RouteConfig) -> dict[str, Any]:
    """A route config with ``rules`` (bolt, redis, memcache) as a YAML mapping."""
    return {"name": route.name, "rules": [_rule(r) for r in route.rules]}


def _rule(rule: RouteRule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.match != RouteMatch():
        out["match"] = _match(rule.match)
    out["cluster"] = rule.cluster
    if rule.timeout is not None:
        out["timeout"] = rule.timeout
    if rule.retry is not None:
        out["retry"] = retry_yaml(rule.retry)
    if rule.mirror is not None:
        out["mirror"] = rule.mirror
    if rule.translate:
        out["translate"] = dict(rule.translate)
    return out


def retry_yaml(retry: RetryPolicy) -> dict[str, Any]:
    return {"attempts": retry.attempts, "on": list(retry.on)}


def _match(m: RouteMatch) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if m.service is not None:
        out["service"] = m.service
    if m.method is not None:
        out["method"] = m.method
    if m.headers:
        out["headers"] = {h.name: header_condition(h) for h in m.headers}
    if m.key_prefix is not None:
        out["key_prefix"] = m.key_prefix
    if m.commands:
        out["commands"] = list(m.commands)
    return out


def header_condition(h: HeaderMatcher) -> Any:
    """A header (or query) condition: ``{exact}``, ``{regex}`` or ``{present: true}``."""
    if h.exact is not None:
        return {"exact": h.exact}
    if h.regex is not None:
        return {"regex": h.regex}
    return {"present": True}
