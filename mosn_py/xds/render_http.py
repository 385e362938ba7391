"""HTTP parts of ``render``: a route config with ``virtual_hosts`` -> ``RouteConfiguration``,
and an HTTP listener -> ``HttpConnectionManager`` (RDS over ADS, our stream filters as
TypedStruct, the router last, as gRPC requires).

The inverse is ``convert_http.py``; every field set here is one that it reads back.
"""

from __future__ import annotations

from typing import Any

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.config.route.v3 import route_components_pb2 as rc_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2

from mosn_py.config.model import (
    HeaderMatcher,
    HeaderMutation,
    HttpRouteMatch,
    HttpRouteRule,
    ListenerConfig,
    QueryMatcher,
    RetryPolicy,
    RouteConfig,
)
from mosn_py.xds import resources

__all__ = [
    "CODEC_TYPES",
    "access_logs",
    "ads_source",
    "duration",
    "http_connection_manager",
    "packed",
    "retry_policy",
    "route_configuration",
    "struct",
    "typed_struct",
]

# listener protocol -> HttpConnectionManager.CodecType (grpc is HTTP/2 under its own name)
CODEC_TYPES = {"http": 0, "http1": 1, "http2": 2, "grpc": 2}
_REDIRECT_CODES = {301: 0, 302: 1, 303: 2, 307: 3, 308: 4}
_OVERWRITE = 2  # HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_ROUTER_NAME = "envoy.filters.http.router"


def duration(seconds: float | None) -> duration_pb2.Duration:
    """Float seconds as a Duration, whole nanoseconds; None (no limit) as 0s."""
    out = duration_pb2.Duration()
    out.FromNanoseconds(round((seconds or 0.0) * 1e9))
    return out


def ads_source() -> config_source_pb2.ConfigSource:
    """``ConfigSource{ads: {}, resource_api_version: V3}``: fetch over the same ADS stream."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def struct(where: str, value: dict[str, Any]) -> struct_pb2.Struct:
    """``value`` (YAML data) as a Struct; ``ValueError`` naming ``where`` if some value
    cannot be one (a Struct holds only JSON types)."""
    out = struct_pb2.Struct()
    try:
        out.update(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: cannot travel as a protobuf Struct ({exc})") from None
    return out


def typed_struct(where: str, type_url: str, value: dict[str, Any]) -> any_pb2.Any:
    """``resources.typed_struct``, with the ``ValueError`` of ``struct``."""
    struct(where, value)  # checks the value; raises ValueError naming ``where``
    return resources.typed_struct(type_url, value)


def packed(msg: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out


# ---------------------------------------------------------------------------------- HCM


def http_connection_manager(listener: ListenerConfig) -> hcm_pb2.HttpConnectionManager:
    """The HCM of an HTTP listener (``max_header_size`` only when it is whole KiB: the
    caller sends it in the ListenerOptions otherwise). Filters of an ``api_listener`` are
    ``is_optional``: a proxyless gRPC client cannot run them and would NACK otherwise."""
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=listener.name,
        codec_type=CODEC_TYPES[listener.protocol],
        rds=hcm_pb2.Rds(config_source=ads_source(), route_config_name=listener.route or ""),
    )
    for f in listener.filters:
        hcm.http_filters.append(
            hcm_pb2.HttpFilter(
                name=f"mosn_py.{f.name}",
                typed_config=typed_struct(
                    f"listener {listener.name!r} filter {f.name!r}",
                    resources.MOSN_FILTER_PREFIX + f.name,
                    f.as_dict(),
                ),
                is_optional=listener.api_listener,
            )
        )
    hcm.http_filters.append(
        hcm_pb2.HttpFilter(name=_ROUTER_NAME, typed_config=packed(router_pb2.Router()))
    )
    if listener.max_header_size % 1024 == 0:
        hcm.max_request_headers_kb.value = listener.max_header_size // 1024
    hcm.common_http_protocol_options.max_headers_count.value = listener.max_header_count
    hcm.http2_protocol_options.max_concurrent_streams.value = listener.max_concurrent_streams
    if not listener.api_listener:
        hcm.common_http_protocol_options.idle_timeout.CopyFrom(duration(listener.idle_timeout))
        hcm.access_log.extend(access_logs(listener))
    return hcm


def access_logs(listener: ListenerConfig) -> list[accesslog_pb2.AccessLog]:
    """The listener's access log: ``-`` (stdout) as a StdoutAccessLog, a path as a
    FileAccessLog; no format (mosn-py writes its own JSON lines)."""
    if listener.access_log is None:
        return []
    if listener.access_log.path == "-":
        return [
            accesslog_pb2.AccessLog(
                name="envoy.access_loggers.stdout",
                typed_config=packed(stream_pb2.StdoutAccessLog()),
            )
        ]
    return [
        accesslog_pb2.AccessLog(
            name="envoy.access_loggers.file",
            typed_config=packed(file_pb2.FileAccessLog(path=listener.access_log.path)),
        )
    ]


# ------------------------------------------------------------------------------- routes


def route_configuration(route: RouteConfig) -> route_pb2.RouteConfiguration:
    """A route config with ``virtual_hosts`` as an Envoy RouteConfiguration.

    Raises ``ValueError`` if a rule's ``translate`` options cannot travel as a Struct."""
    out = route_pb2.RouteConfiguration(name=route.name)
    for vh in route.virtual_hosts:
        host = rc_pb2.VirtualHost(name=vh.name, domains=list(vh.domains))
        _mutations(host, vh.request_headers, vh.response_headers)
        for rule in vh.rules:
            host.routes.append(_route(f"route {route.name!r}", rule))
        out.virtual_hosts.append(host)
    return out


def _mutations(msg: Any, request: HeaderMutation, response: HeaderMutation) -> None:
    for side, mutation in (("request", request), ("response", response)):
        adds = getattr(msg, f"{side}_headers_to_add")
        for h in mutation.add:
            adds.append(
                base_pb2.HeaderValueOption(
                    header=base_pb2.HeaderValue(key=h.name, value=h.value),
                    append_action=0 if h.append else _OVERWRITE,
                    keep_empty_value=not h.value,
                )
            )
        getattr(msg, f"{side}_headers_to_remove").extend(mutation.remove)


def _route(where: str, rule: HttpRouteRule) -> rc_pb2.Route:
    out = rc_pb2.Route(match=_match(rule.match))
    if rule.direct_response is not None:
        out.direct_response.status = rule.direct_response.status
        if rule.direct_response.body:
            out.direct_response.body.inline_string = rule.direct_response.body
    elif rule.redirect is not None:
        out.redirect.CopyFrom(_redirect(rule))
    else:
        out.route.CopyFrom(_action(rule))
    _mutations(out, rule.request_headers, rule.response_headers)
    if rule.translate:
        out.metadata.filter_metadata[resources.MOSN_EXTENSION_NAME].CopyFrom(
            struct(f"{where} translate", {"translate": dict(rule.translate)})
        )
    return out


def _match(m: HttpRouteMatch) -> rc_pb2.RouteMatch:
    out = rc_pb2.RouteMatch()
    if m.path is not None:
        out.path = m.path
    elif m.regex is not None:
        out.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=m.regex))
    else:
        out.prefix = m.prefix if m.prefix is not None else "/"
    if not m.case_sensitive:
        out.case_sensitive.value = False
    for h in m.headers:
        out.headers.append(_header_matcher(h))
    for q in m.query:
        out.query_parameters.append(_query_matcher(q))
    if m.grpc:
        out.grpc.SetInParent()
    return out


def _string_matcher(exact: str | None, regex: str | None) -> string_pb2.StringMatcher | None:
    if exact is not None:
        return string_pb2.StringMatcher(exact=exact)
    if regex is not None:
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=regex))
    return None


def _header_matcher(h: HeaderMatcher) -> rc_pb2.HeaderMatcher:
    sm = _string_matcher(h.exact, h.regex)
    if sm is None:
        return rc_pb2.HeaderMatcher(name=h.name, present_match=True)
    return rc_pb2.HeaderMatcher(name=h.name, string_match=sm)


def _query_matcher(q: QueryMatcher) -> rc_pb2.QueryParameterMatcher:
    sm = _string_matcher(q.exact, q.regex)
    if sm is None:
        return rc_pb2.QueryParameterMatcher(name=q.name, present_match=True)
    return rc_pb2.QueryParameterMatcher(name=q.name, string_match=sm)


def retry_policy(retry: RetryPolicy) -> rc_pb2.RetryPolicy:
    out = rc_pb2.RetryPolicy(retry_on=",".join(retry.on))
    out.num_retries.value = retry.attempts
    return out


def _action(rule: HttpRouteRule) -> rc_pb2.RouteAction:
    out = rc_pb2.RouteAction()
    if rule.cluster is not None:
        out.cluster = rule.cluster
    else:
        for w in rule.weighted_clusters:
            cw = out.weighted_clusters.clusters.add(name=w.cluster)
            cw.weight.value = w.weight
    if rule.prefix_rewrite is not None:
        out.prefix_rewrite = rule.prefix_rewrite
    if rule.host_rewrite is not None:
        out.host_rewrite_literal = rule.host_rewrite
    out.timeout.CopyFrom(duration(rule.timeout))
    if rule.retry is not None:
        out.retry_policy.CopyFrom(retry_policy(rule.retry))
    return out


def _redirect(rule: HttpRouteRule) -> rc_pb2.RedirectAction:
    r = rule.redirect
    assert r is not None  # the caller checked
    out = rc_pb2.RedirectAction(response_code=_REDIRECT_CODES[r.code], strip_query=r.strip_query)
    if r.scheme is not None:
        out.scheme_redirect = r.scheme
    if r.host is not None:
        out.host_redirect = r.host
    if r.port is not None:
        out.port_redirect = r.port
    if r.path is not None:
        out.path_redirect = r.path
    elif r.prefix_rewrite is not None:
        out.prefix_rewrite = r.prefix_rewrite
    return out
