"""Config model -> Envoy xDS v3 resources: what ``mosn-py control-plane`` serves.

``render(config)`` gives, by type URL, every Listener, RouteConfiguration, Cluster and
ClusterLoadAssignment the config implies. The resources are meant for three kinds of
client at once: mosn-py proxies (``convert.py`` turns them back into the same model, a
round trip the tests check), Envoy, and proxyless gRPC (reference/xds.md §4.2):

- a ``static`` cluster is an EDS Cluster (``eds_config: ads``) plus a ClusterLoadAssignment
  named after it (gRPC NACKs STATIC); ``strict_dns`` is STRICT_DNS with its endpoints
  inline; ``original_dst`` is ORIGINAL_DST with lb CLUSTER_PROVIDED;
- HTTP listeners are an HttpConnectionManager with RDS over ADS (an ``api_listener`` is a
  socket-less Listener named exactly like the gRPC target); tcp is TcpProxy; redis with
  plain key-prefix rules is RedisProxy; other L7 listeners are TypedStruct
  ``mosn_py.config.v1.Proxy`` with their route config inline;
- keys Envoy has no field for ride in TypedStruct ``ClusterOptions`` (a cluster's
  ``typed_extension_protocol_options["mosn_py"]``, always present: it says the protocol)
  and ``ListenerOptions`` (a listener's ``metadata.typed_filter_metadata["mosn_py"]``).

Only route configs that HTTP listeners name become RDS resources; admin, workers, log,
demo_upstreams and xds are not rendered. Mapping reference: docs/xds.md.
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.redis_proxy.v3 import redis_proxy_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo_pb2
from google.protobuf.message import Message

from mosn_py.config.model import (
    HTTP_LISTENER_PROTOCOLS,
    Address,
    ClusterConfig,
    ClusterTlsConfig,
    Config,
    Endpoint,
    ListenerConfig,
    RouteConfig,
    RouteMatch,
    TlsConfig,
)
from mosn_py.xds import resources
from mosn_py.xds.render_http import (
    access_logs,
    ads_source,
    duration,
    http_connection_manager,
    packed,
    route_configuration,
    typed_struct,
)
from mosn_py.xds.render_yaml import cluster_yaml, listener_yaml, route_yaml

__all__ = ["render"]

_LB = {"round_robin": 0, "least_request": 1, "random": 3}
_TLS_VERSIONS = {"1.2": 3, "1.3": 4}  # TlsParameters.TlsProtocol
_HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_REDIS_OPTIONS_KEY = "envoy.filters.network.redis_proxy"
_HTTP2_CLUSTERS = ("http2", "grpc")
_SAN_URI = 3  # SubjectAltNameMatcher.SanType.URI
_SAN_DNS = 2


def render(config: Config) -> dict[str, dict[str, Message]]:
    """``resources.LISTENER/ROUTE/CLUSTER/ENDPOINT`` -> resource name -> Envoy message, in
    config order (every key present, maybe empty).

    Raises ``ValueError`` if free-form options (a filter's ``config``, a rule's
    ``translate``) hold a value a ``google.protobuf.Struct`` cannot carry (only JSON types).
    """
    out: dict[str, dict[str, Message]] = {
        resources.LISTENER: {},
        resources.ROUTE: {},
        resources.CLUSTER: {},
        resources.ENDPOINT: {},
    }
    for c in config.clusters:
        cluster, cla = _cluster(c)
        out[resources.CLUSTER][c.name] = cluster
        if cla is not None:
            out[resources.ENDPOINT][c.name] = cla
    routes = {r.name: r for r in config.routes}
    for ln in config.listeners:
        route = routes.get(ln.route) if ln.route else None
        out[resources.LISTENER][ln.name] = _listener(ln, route)
        is_http = ln.protocol in HTTP_LISTENER_PROTOCOLS
        if route is not None and is_http and route.name not in out[resources.ROUTE]:
            out[resources.ROUTE][route.name] = route_configuration(route)
    return out


# ----------------------------------------------------------------------------- clusters


def _cluster(c: ClusterConfig) -> tuple[cluster_pb2.Cluster, Any]:
    """The Cluster, and for a static cluster the ClusterLoadAssignment EDS serves."""
    msg = cluster_pb2.Cluster(name=c.name)
    msg.connect_timeout.CopyFrom(duration(c.connect_timeout))
    if c.source_address:
        msg.upstream_bind_config.source_address.address = c.source_address
    native_bind = {"source_address"} if c.source_address else set()
    native = {"name", "type", "endpoints", "connect_timeout", "max_requests",
              "outlier_detection"} | native_bind  # fmt: skip
    cla = None
    if c.type == "original_dst":
        msg.type = cluster_pb2.Cluster.ORIGINAL_DST
        msg.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    else:
        msg.lb_policy = _LB[c.lb]
        native.add("lb")
        if c.type == "strict_dns":
            msg.type = cluster_pb2.Cluster.STRICT_DNS
            msg.load_assignment.CopyFrom(_assignment(c.name, c.endpoints))
            msg.dns_refresh_rate.CopyFrom(duration(c.dns_refresh_rate))
            native.add("dns_refresh_rate")
        else:
            msg.type = cluster_pb2.Cluster.EDS
            msg.eds_cluster_config.eds_config.CopyFrom(ads_source())
            cla = _assignment(c.name, c.endpoints)
    msg.circuit_breakers.thresholds.append(
        circuit_breaker_pb2.CircuitBreakers.Thresholds(priority=base_pb2.DEFAULT)
    )
    msg.circuit_breakers.thresholds[0].max_requests.value = c.max_requests
    msg.outlier_detection.CopyFrom(_outlier(c))
    if c.tls is not None and c.tls.alpn != ():
        msg.transport_socket.CopyFrom(_transport_socket(_upstream_tls(c.tls)))
        native.add("tls")
    options = msg.typed_extension_protocol_options
    if c.protocol in ("http1", *_HTTP2_CLUSTERS):
        http = hpo_pb2.HttpProtocolOptions()
        if c.protocol == "http1":
            http.explicit_http_config.http_protocol_options.SetInParent()
        else:
            http.explicit_http_config.http2_protocol_options.SetInParent()
        if c.idle_timeout is not None:
            http.common_http_protocol_options.idle_timeout.CopyFrom(duration(c.idle_timeout))
            native.add("idle_timeout")
        options[_HTTP_OPTIONS_KEY].Pack(http)
    elif c.protocol == "redis":
        redis = redis_proxy_pb2.RedisProtocolOptions()
        if c.password is not None:
            redis.auth_password.inline_string = c.password
            native.add("password")
        options[_REDIS_OPTIONS_KEY].Pack(redis)
    extras = {k: v for k, v in cluster_yaml(c).items() if k not in native}
    options[resources.MOSN_EXTENSION_NAME].CopyFrom(
        typed_struct(f"cluster {c.name!r}", resources.MOSN_CLUSTER_OPTIONS, extras)
    )
    return msg, cla


def _socket_address(address: Address) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address.host, port_value=address.port)
    )


def _assignment(name: str, endpoints: tuple[Endpoint, ...]) -> endpoint_pb2.ClusterLoadAssignment:
    """One locality (weight 1, priority 0: gRPC skips a locality without a weight)."""
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    if endpoints:
        locality = cla.endpoints.add(priority=0)
        # gRPC refuses a locality without the field ("field not present"), even empty
        locality.locality.SetInParent()
        locality.load_balancing_weight.value = 1
        for e in endpoints:
            lb = locality.lb_endpoints.add(
                endpoint=ec_pb2.Endpoint(address=_socket_address(e.address))
            )
            lb.load_balancing_weight.value = e.weight
    return cla


def _outlier(c: ClusterConfig) -> outlier_detection_pb2.OutlierDetection:
    """Connect failures only: Envoy's 5xx and success-rate detectors are turned off."""
    od = c.outlier_detection
    out = outlier_detection_pb2.OutlierDetection(split_external_local_origin_errors=True)
    out.consecutive_local_origin_failure.value = od.consecutive_connect_failures
    out.enforcing_consecutive_local_origin_failure.value = (
        100 if od.consecutive_connect_failures else 0
    )
    out.enforcing_consecutive_5xx.value = 0
    out.enforcing_success_rate.value = 0
    out.max_ejection_percent.value = 100
    out.base_ejection_time.CopyFrom(duration(od.ejection_time))
    out.max_ejection_time.CopyFrom(duration(od.max_ejection_time))
    return out


def _upstream_tls(tls: ClusterTlsConfig) -> tls_pb2.UpstreamTlsContext:
    out = tls_pb2.UpstreamTlsContext(sni=tls.sni or "")
    common = out.common_tls_context
    common.tls_params.tls_minimum_protocol_version = _TLS_VERSIONS[tls.min_version]
    if tls.cert is not None and tls.key is not None:
        cert = common.tls_certificates.add()
        cert.certificate_chain.filename = tls.cert
        cert.private_key.filename = tls.key
    if tls.verify:  # without a validation context Envoy verifies nothing
        vc = common.validation_context
        if tls.ca is not None:
            vc.trusted_ca.filename = tls.ca
        else:
            vc.system_root_certs.SetInParent()
        for want in tls.subject_alt_names:
            kind = _SAN_URI if "://" in want else _SAN_DNS
            san = vc.match_typed_subject_alt_names.add(san_type=kind)
            if want.endswith("*"):
                san.matcher.prefix = want[:-1]
            else:
                san.matcher.exact = want
        if tls.sni and not tls.subject_alt_names:
            san = vc.match_typed_subject_alt_names.add(san_type=_SAN_DNS)
            san.matcher.exact = tls.sni
    if tls.alpn:
        common.alpn_protocols.extend(tls.alpn)
    return out


def _downstream_tls(tls: TlsConfig) -> tls_pb2.DownstreamTlsContext:
    out = tls_pb2.DownstreamTlsContext()
    if tls.require_client_cert:
        out.require_client_certificate.value = True
    common = out.common_tls_context
    common.tls_params.tls_minimum_protocol_version = _TLS_VERSIONS[tls.min_version]
    for c in tls.certificates:
        cert = common.tls_certificates.add()
        cert.certificate_chain.filename = c.cert
        cert.private_key.filename = c.key
    if tls.ca is not None:
        common.validation_context.CopyFrom(
            common_pb2.CertificateValidationContext(trusted_ca=base_pb2.DataSource(filename=tls.ca))
        )
    return out


def _transport_socket(ctx: Message) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=packed(ctx))


# ---------------------------------------------------------------------------- listeners


def _listener(ln: ListenerConfig, route: RouteConfig | None) -> listener_pb2.Listener:
    msg = listener_pb2.Listener(name=ln.name)
    native = {"name", "protocol"}
    if ln.protocol in HTTP_LISTENER_PROTOCOLS:
        hcm = http_connection_manager(ln)
        native |= {"route", "filters", "max_header_count", "max_concurrent_streams",
                   "api_listener", "idle_timeout", "access_log"}  # fmt: skip
        if ln.max_header_size % 1024 == 0:
            native.add("max_header_size")
        if ln.protocol == "grpc":
            native.discard("protocol")  # the codec says http2
        if ln.api_listener:
            msg.api_listener.api_listener.Pack(hcm)
            _options(msg, ln, native)
            return msg
        network: Message = hcm
        name = "envoy.filters.network.http_connection_manager"
    elif ln.protocol == "tcp":
        network = tcp_proxy_pb2.TcpProxy(stat_prefix=ln.name, cluster=ln.cluster or "")
        network.idle_timeout.CopyFrom(duration(ln.idle_timeout))
        network.access_log.extend(access_logs(ln))
        native |= {"cluster", "idle_timeout", "access_log"}
        name = "envoy.filters.network.tcp_proxy"
    elif ln.protocol == "redis" and route is not None and _redis_fits(route):
        network = _redis_proxy(ln, route)
        native |= {"password"} | ({"route"} if route.name == ln.name else set())
        name = "envoy.filters.network.redis_proxy"
    else:  # our Proxy filter: the YAML listener, route config inline, less the socket keys
        socket = {"name", "address", "transparent", "backlog"}
        if ln.tls is None or _native_tls(ln.tls):
            socket.add("tls")
        proxy = {k: v for k, v in listener_yaml(ln).items() if k not in socket}
        if route is not None:
            proxy["route"] = route_yaml(route)
        network = typed_struct(f"listener {ln.name!r}", resources.MOSN_PROXY, proxy)
        name = "mosn_py.proxy"
        native = set(listener_yaml(ln))  # nothing left for the ListenerOptions
    msg.address.CopyFrom(_socket_address(ln.address))
    if ln.transparent:
        msg.transparent.value = True
    if ln.use_original_dst:
        msg.use_original_dst.value = True
        msg.listener_filters_timeout.CopyFrom(duration(ln.sniff_timeout))
        native |= {"use_original_dst", "sniff_timeout"}
    if not ln.bind_to_port:
        msg.bind_to_port.value = False
        native.add("bind_to_port")
    if ln.bind_to_port:
        msg.tcp_backlog_size.value = ln.backlog
    chain = msg.filter_chains.add()
    chain.filters.append(lc_pb2.Filter(name=name, typed_config=_any(network)))
    if ln.tls is not None:
        chain.transport_socket.CopyFrom(_transport_socket(_downstream_tls(ln.tls)))
    native |= {"address", "transparent", "backlog"}
    if ln.tls is not None and _native_tls(ln.tls):
        native.add("tls")
    _options(msg, ln, native)
    return msg


def _any(msg: Message) -> Any:
    return msg if msg.DESCRIPTOR.full_name == "google.protobuf.Any" else packed(msg)


def _native_tls(tls: TlsConfig) -> bool:
    """One certificate for every SNI: Envoy's DownstreamTlsContext says it all."""
    return len(tls.certificates) == 1 and not tls.certificates[0].server_names


def _options(msg: listener_pb2.Listener, ln: ListenerConfig, native: set[str]) -> None:
    """What the Listener's own fields did not say: ListenerOptions in its metadata."""
    extras = {k: v for k, v in listener_yaml(ln).items() if k not in native}
    if extras:
        msg.metadata.typed_filter_metadata[resources.MOSN_EXTENSION_NAME].CopyFrom(
            typed_struct(f"listener {ln.name!r}", resources.MOSN_LISTENER_OPTIONS, extras)
        )


def _redis_fits(route: RouteConfig) -> bool:
    """Whether Envoy's RedisProxy says the same as these rules: key-prefix matches only, one
    timeout for all (op_timeout), no retries or translation, at most one catch-all and it
    comes last, and no rule shadowed by an earlier shorter prefix (Envoy takes the longest
    prefix, mosn-py the first rule that matches)."""
    rules = route.rules
    if not rules or len({r.timeout for r in rules}) != 1 or rules[0].timeout is None:
        return False
    prefixes: list[str] = []
    for i, r in enumerate(rules):
        if r.retry is not None or r.translate:
            return False
        if r.match == RouteMatch():
            if i != len(rules) - 1:
                return False
            continue
        if r.match != RouteMatch(key_prefix=r.match.key_prefix) or r.match.key_prefix is None:
            return False
        prefixes.append(r.match.key_prefix)
    return not any(
        later.startswith(earlier)
        for i, earlier in enumerate(prefixes)
        for later in prefixes[i + 1 :]
    )


def _redis_proxy(ln: ListenerConfig, route: RouteConfig) -> redis_proxy_pb2.RedisProxy:
    out = redis_proxy_pb2.RedisProxy(stat_prefix=ln.name)
    out.settings.op_timeout.CopyFrom(duration(route.rules[0].timeout))
    for rule in route.rules:
        if rule.match.key_prefix is None:
            target = out.prefix_routes.catch_all_route
        else:
            target = out.prefix_routes.routes.add(prefix=rule.match.key_prefix)
        target.cluster = rule.cluster
        if rule.mirror is not None:
            target.request_mirror_policy.add(cluster=rule.mirror, exclude_read_commands=True)
    if ln.password is not None:
        out.downstream_auth_passwords.add(inline_string=ln.password)
    return out
