"""Envoy HTTP resources -> our YAML schema: ``RouteConfiguration`` -> a route config with
``virtual_hosts`` (``config/http_schema.py``), and the ``HttpConnectionManager`` network
filter -> the keys of an HTTP listener.

Matchers our schema has no word for but a full-match regex can say exactly (a header
``prefix``/``suffix``/``contains``, ``ignore_case``) become ``regex``; everything else our
schema cannot express is refused with the field path (docs/xds.md lists both).
"""

from __future__ import annotations

import re
from typing import Any

from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from mosn_py.xds import resources
from mosn_py.xds.convert_common import (
    Where,
    access_log,
    check_fields,
    config_source,
    data_source_text,
    join,
    optional_duration,
    refuse_if,
    struct_to_data,
    type_name,
    typed_struct,
    unpack,
)

__all__ = ["CODECS", "ROUTER", "hcm_listener", "route_clusters", "route_config", "unpack_hcm"]

ROUTER = "envoy.extensions.filters.http.router.v3.Router"
# HttpConnectionManager.CodecType -> listener protocol (HTTP3 is refused)
CODECS = {0: "http", 1: "http1", 2: "http2"}
_CODEC_NAMES = {3: "HTTP3"}
_REDIRECT_CODES = {0: 301, 1: 302, 2: 303, 3: 307, 4: 308}
_RETRY_ON = ("connect-failure", "reset")
_PREVIOUS_HOSTS = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
_APPEND_ACTIONS = {0: True, 2: False}  # APPEND_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS_OR_ADD
_APPEND_ACTION_NAMES = {1: "ADD_IF_ABSENT", 3: "OVERWRITE_IF_EXISTS"}


# ---------------------------------------------------------------------------- route configs


def route_config(where: Where, path: str, msg: Any, default_name: str = "") -> dict[str, Any]:
    """A ``RouteConfiguration`` -> ``{"name", "virtual_hosts": [...]}`` (an empty name takes
    ``default_name``: inline route configs are named after their listener)."""
    check_fields(
        where,
        path,
        msg,
        ("name", "virtual_hosts"),
        ("validate_clusters", "max_direct_response_body_size_bytes", "metadata"),
    )
    refuse_if(where, path, msg, ("ignore_port_in_host_matching",), True)
    hosts = [
        _virtual_host(where, f"{join(path, 'virtual_hosts')}[{i}]", vh)
        for i, vh in enumerate(msg.virtual_hosts)
    ]
    return {"name": str(msg.name) or default_name, "virtual_hosts": hosts}


def route_clusters(route: dict[str, Any]) -> list[str]:
    """Every cluster a YAML route mapping (ours, maybe from a Struct) names: rules' and
    virtual-host rules' ``cluster``, ``mirror`` and ``weighted_clusters``; malformed parts
    are skipped (the loader reports them)."""
    out: list[str] = []
    rules: list[Any] = []
    if isinstance(route.get("rules"), list):
        rules.extend(route["rules"])
    hosts = route.get("virtual_hosts")
    for vh in hosts if isinstance(hosts, list) else ():
        if isinstance(vh, dict) and isinstance(vh.get("rules"), list):
            rules.extend(vh["rules"])
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        for key in ("cluster", "mirror"):
            if isinstance(rule.get(key), str):
                out.append(rule[key])
        weighted = rule.get("weighted_clusters")
        for w in weighted if isinstance(weighted, list) else ():
            if isinstance(w, dict) and isinstance(w.get("cluster"), str):
                out.append(w["cluster"])
    return out


def _virtual_host(where: Where, path: str, msg: Any) -> dict[str, Any]:
    check_fields(
        where,
        path,
        msg,
        (
            "name",
            "domains",
            "routes",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "retry_policy",
        ),
        (
            "virtual_clusters",
            "per_request_buffer_limit_bytes",
            "request_body_buffer_limit",
            "metadata",
        ),
    )
    out: dict[str, Any] = {"name": str(msg.name), "domains": [str(d) for d in msg.domains]}
    _mutations(where, path, msg, out)
    default_retry = None
    if msg.HasField("retry_policy"):  # Envoy: used by routes that have no retry_policy
        default_retry = _retry(where, join(path, "retry_policy"), msg.retry_policy)
    out["rules"] = [
        _route(where, f"{join(path, 'routes')}[{i}]", r, default_retry)
        for i, r in enumerate(msg.routes)
    ]
    return out


def _mutations(where: Where, path: str, msg: Any, out: dict[str, Any]) -> None:
    """``{request,response}_headers_to_{add,remove}`` -> ``{request,response}_headers``."""
    for side in ("request", "response"):
        add = [
            h
            for i, opt in enumerate(getattr(msg, f"{side}_headers_to_add"))
            if (h := _header_value(where, f"{join(path, side)}_headers_to_add[{i}]", opt))
        ]
        remove = [str(n) for n in getattr(msg, f"{side}_headers_to_remove")]
        mutation: dict[str, Any] = {}
        if add:
            mutation["add"] = add
        if remove:
            mutation["remove"] = remove
        if mutation:
            out[f"{side}_headers"] = mutation


def _header_value(where: Where, path: str, msg: Any) -> dict[str, Any] | None:
    check_fields(where, path, msg, ("header", "append", "append_action", "keep_empty_value"))
    hpath = join(path, "header")
    check_fields(where, hpath, msg.header, ("key", "value", "raw_value"))
    if msg.HasField("append") and msg.append_action:
        raise where.error(f"{path}: give append or append_action, not both")
    if msg.HasField("append"):
        append = bool(msg.append.value)
    elif int(msg.append_action) in _APPEND_ACTIONS:
        append = _APPEND_ACTIONS[int(msg.append_action)]
    else:
        action = int(msg.append_action)
        raise where.unsupported(
            f"{join(path, 'append_action')} {_APPEND_ACTION_NAMES.get(action, action)}",
            "expected APPEND_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS_OR_ADD",
        )
    value = str(msg.header.value)
    if msg.header.raw_value:
        if value:
            raise where.error(f"{hpath}: give value or raw_value, not both")
        try:
            value = bytes(msg.header.raw_value).decode("utf-8")
        except UnicodeDecodeError:
            raise where.error(f"{join(hpath, 'raw_value')}: not UTF-8 text") from None
    if not value and not msg.keep_empty_value:
        return None  # Envoy adds nothing for an empty value unless keep_empty_value
    out: dict[str, Any] = {"name": str(msg.header.key), "value": value}
    if not append:
        out["append"] = False
    return out


def _route(
    where: Where, path: str, msg: Any, default_retry: dict[str, Any] | None
) -> dict[str, Any]:
    check_fields(
        where,
        path,
        msg,
        (
            "match",
            "route",
            "redirect",
            "direct_response",
            "metadata",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
        ),
        (
            "name",
            "decorator",
            "tracing",
            "per_request_buffer_limit_bytes",
            "stat_prefix",
            "request_body_buffer_limit",
        ),
    )
    out: dict[str, Any] = {"match": _match(where, join(path, "match"), msg.match)}
    action = msg.WhichOneof("action")
    apath = join(path, str(action))
    if action == "route":
        out.update(_route_action(where, apath, msg.route, default_retry))
    elif action == "redirect":
        out["redirect"] = _redirect(where, apath, msg.redirect)
    elif action == "direct_response":
        out["direct_response"] = _direct_response(where, apath, msg.direct_response)
    elif action is None:
        raise where.error(f"{path}: no action (route, redirect or direct_response)")
    else:
        raise where.unsupported(apath)
    _mutations(where, path, msg, out)
    if msg.HasField("metadata"):
        out.update(_route_metadata(where, join(path, "metadata"), msg.metadata))
    return out


def _route_metadata(where: Where, path: str, msg: Any) -> dict[str, Any]:
    """``filter_metadata["mosn_py"]`` = ``{"translate": {...}}``: the rule's translation
    options; other metadata is nobody's business here."""
    if resources.MOSN_EXTENSION_NAME in msg.typed_filter_metadata:
        raise where.unsupported(
            f"{join(path, 'typed_filter_metadata')}['{resources.MOSN_EXTENSION_NAME}']",
            f"route options go in filter_metadata['{resources.MOSN_EXTENSION_NAME}']",
        )
    if resources.MOSN_EXTENSION_NAME not in msg.filter_metadata:
        return {}
    mpath = f"{join(path, 'filter_metadata')}['{resources.MOSN_EXTENSION_NAME}']"
    data = struct_to_data(where, mpath, msg.filter_metadata[resources.MOSN_EXTENSION_NAME])
    for key in data:
        if key != "translate":
            raise where.unsupported(f"{mpath}[{key!r}]", "expected translate")
    return data


def _match(where: Where, path: str, msg: Any) -> dict[str, Any]:
    check_fields(
        where,
        path,
        msg,
        ("prefix", "path", "safe_regex", "case_sensitive", "headers", "query_parameters", "grpc"),
    )
    kind = msg.WhichOneof("path_specifier")
    out: dict[str, Any] = {}
    if kind == "prefix":
        out["prefix"] = str(msg.prefix) or "/"  # Envoy's "" (gRPC's usual) is any path
    elif kind == "path":
        out["path"] = str(msg.path)
    elif kind == "safe_regex":
        out["regex"] = _regex(where, join(path, "safe_regex"), msg.safe_regex)
    elif kind is None:
        raise where.error(f"{path}: no path specifier (prefix, path or safe_regex)")
    # case_sensitive does not apply to safe_regex in Envoy either
    if kind != "safe_regex" and msg.HasField("case_sensitive") and not msg.case_sensitive.value:
        out["case_sensitive"] = False
    headers: dict[str, Any] = {}
    for i, h in enumerate(msg.headers):
        hp = f"{join(path, 'headers')}[{i}]"
        name = str(h.name)
        if name.lower() in headers:
            raise where.unsupported(hp, f"a second condition on header {name!r}")
        headers[name.lower()] = _header_matcher(where, hp, h)
    if headers:
        out["headers"] = headers
    query: dict[str, Any] = {}
    for i, q in enumerate(msg.query_parameters):
        qp = f"{join(path, 'query_parameters')}[{i}]"
        check_fields(where, qp, q, ("name", "string_match", "present_match"))
        name = str(q.name)
        if name in query:
            raise where.unsupported(qp, f"a second condition on query parameter {name!r}")
        which = q.WhichOneof("query_parameter_match_specifier")
        if which == "string_match":
            query[name] = _string_matcher(where, join(qp, "string_match"), q.string_match)
        elif which == "present_match" and not q.present_match:
            raise where.unsupported(join(qp, "present_match") + " false")
        else:
            query[name] = {"present": True}
    if query:
        out["query"] = query
    if msg.HasField("grpc"):
        check_fields(where, join(path, "grpc"), msg.grpc, ())
        out["grpc"] = True
    return out


def _regex(where: Where, path: str, msg: Any) -> str:
    check_fields(where, path, msg, ("regex",), ("google_re2",))
    return str(msg.regex)


def _header_matcher(where: Where, path: str, msg: Any) -> Any:
    """An Envoy HeaderMatcher -> our condition: a string (exact), ``{regex}``,
    ``{present: true}``."""
    check_fields(
        where,
        path,
        msg,
        (
            "name",
            "exact_match",
            "safe_regex_match",
            "present_match",
            "prefix_match",
            "suffix_match",
            "contains_match",
            "string_match",
        ),
    )
    which = msg.WhichOneof("header_match_specifier")
    if which is None:
        return {"present": True}  # Envoy: no specifier = the header is present
    if which == "present_match":
        if not msg.present_match:
            raise where.unsupported(join(path, "present_match") + " false")
        return {"present": True}
    if which == "exact_match":
        return str(msg.exact_match)
    if which == "safe_regex_match":
        return {"regex": _regex(where, join(path, which), msg.safe_regex_match)}
    if which == "string_match":
        return _string_matcher(where, join(path, which), msg.string_match)
    text = re.escape(str(getattr(msg, which)))
    pattern = {
        "prefix_match": f"{text}.*",
        "suffix_match": f".*{text}",
        "contains_match": f".*{text}.*",
    }[which]
    return {"regex": pattern}


def _string_matcher(where: Where, path: str, msg: Any) -> Any:
    """A StringMatcher as our condition; prefix/suffix/contains and ignore_case become an
    equivalent full-match regex (``ignore_case`` does not apply to safe_regex in Envoy)."""
    check_fields(
        where, path, msg, ("exact", "prefix", "suffix", "safe_regex", "contains", "ignore_case")
    )
    which = msg.WhichOneof("match_pattern")
    if which is None:
        raise where.error(f"{path}: no match pattern")
    if which == "safe_regex":
        return {"regex": _regex(where, join(path, which), msg.safe_regex)}
    text = str(getattr(msg, which))
    if which == "exact" and not msg.ignore_case:
        return text
    esc = re.escape(text)
    pattern = {"exact": esc, "prefix": f"{esc}.*", "suffix": f".*{esc}", "contains": f".*{esc}.*"}[
        which
    ]
    return {"regex": f"(?i){pattern}" if msg.ignore_case else pattern}


def _route_action(
    where: Where, path: str, msg: Any, default_retry: dict[str, Any] | None
) -> dict[str, Any]:
    check_fields(
        where,
        path,
        msg,
        (
            "cluster",
            "weighted_clusters",
            "prefix_rewrite",
            "host_rewrite_literal",
            "timeout",
            "retry_policy",
            "auto_host_rewrite",
            "include_vh_rate_limits",
        ),
    )
    refuse_if(where, path, msg, ("auto_host_rewrite", "include_vh_rate_limits"), True)
    out: dict[str, Any] = {}
    which = msg.WhichOneof("cluster_specifier")
    if which == "cluster":
        out["cluster"] = str(msg.cluster)
    elif which == "weighted_clusters":
        out["weighted_clusters"] = _weighted(where, join(path, which), msg.weighted_clusters)
    elif which is None:
        raise where.error(f"{path}: no cluster or weighted_clusters")
    if msg.prefix_rewrite:
        out["prefix_rewrite"] = str(msg.prefix_rewrite)
    if msg.HasField("host_rewrite_literal"):
        out["host_rewrite"] = str(msg.host_rewrite_literal)
    if msg.HasField("timeout"):  # unset: Envoy's 15s, our default too
        out["timeout"] = optional_duration(where, join(path, "timeout"), msg.timeout)
    retry = (
        _retry(where, join(path, "retry_policy"), msg.retry_policy)
        if msg.HasField("retry_policy")
        else default_retry
    )
    if retry is not None:
        out["retry"] = retry
    return out


def _weighted(where: Where, path: str, msg: Any) -> list[dict[str, Any]]:
    check_fields(where, path, msg, ("clusters", "total_weight"))
    out: list[dict[str, Any]] = []
    for i, cw in enumerate(msg.clusters):
        cp = f"{join(path, 'clusters')}[{i}]"
        check_fields(where, cp, cw, ("name", "weight"))
        out.append({"cluster": str(cw.name), "weight": int(cw.weight.value)})
    total = sum(w["weight"] for w in out)
    if msg.HasField("total_weight") and int(msg.total_weight.value) != total:
        raise where.unsupported(
            join(path, "total_weight"),
            f"{msg.total_weight.value} is not the sum of the"
            f" weights ({total}); mosn-py shares by weight / sum of weights",
        )
    return out


def _retry(where: Where, path: str, msg: Any) -> dict[str, Any] | None:
    """A RetryPolicy -> ``{attempts, on}``; None when ``retry_on`` names no condition (Envoy
    then retries only when a request header asks, which mosn-py does not do)."""
    check_fields(
        where,
        path,
        msg,
        ("retry_on", "num_retries", "retry_host_predicate"),
        ("host_selection_retry_max_attempts",),
    )
    for i, pred in enumerate(msg.retry_host_predicate):
        pp = f"{join(path, 'retry_host_predicate')}[{i}]"
        check_fields(where, pp, pred, ("typed_config",), ("name",))
        if type_name(pred.typed_config) != _PREVIOUS_HOSTS:  # what mosn-py does anyway
            raise where.unsupported(pp, "only previous_hosts: a retry prefers untried hosts")
    on: list[str] = []
    for reason in str(msg.retry_on).split(","):
        reason = reason.strip()
        if not reason or reason in on:
            continue
        if reason not in _RETRY_ON:
            raise where.unsupported(
                f"{join(path, 'retry_on')} {reason!r}", "expected connect-failure or reset"
            )
        on.append(reason)
    if not on:
        return None
    attempts = int(msg.num_retries.value) if msg.HasField("num_retries") else 1
    return {"attempts": attempts, "on": on}


def _redirect(where: Where, path: str, msg: Any) -> dict[str, Any]:
    check_fields(
        where,
        path,
        msg,
        (
            "https_redirect",
            "scheme_redirect",
            "host_redirect",
            "port_redirect",
            "path_redirect",
            "prefix_rewrite",
            "response_code",
            "strip_query",
        ),
    )
    out: dict[str, Any] = {}
    scheme = msg.WhichOneof("scheme_rewrite_specifier")
    if scheme == "https_redirect" and msg.https_redirect:
        out["scheme"] = "https"
    elif scheme == "scheme_redirect":
        out["scheme"] = str(msg.scheme_redirect)
    if msg.host_redirect:
        out["host"] = str(msg.host_redirect)
    if msg.port_redirect:
        out["port"] = int(msg.port_redirect)
    rewrite = msg.WhichOneof("path_rewrite_specifier")
    if rewrite == "path_redirect":
        out["path"] = str(msg.path_redirect)
    elif rewrite == "prefix_rewrite":
        out["prefix_rewrite"] = str(msg.prefix_rewrite)
    code = int(msg.response_code)
    if code not in _REDIRECT_CODES:
        raise where.unsupported(f"{join(path, 'response_code')} {code}")
    if code:
        out["code"] = _REDIRECT_CODES[code]
    if msg.strip_query:
        out["strip_query"] = True
    return out


def _direct_response(where: Where, path: str, msg: Any) -> dict[str, Any]:
    check_fields(where, path, msg, ("status", "body"))
    out: dict[str, Any] = {"status": int(msg.status)}
    if msg.HasField("body"):
        out["body"] = data_source_text(where, join(path, "body"), msg.body, want="inline")
    return out


# ------------------------------------------------------------------ the connection manager

_HCM_HANDLED = (
    "codec_type",
    "rds",
    "route_config",
    "http_filters",
    "common_http_protocol_options",
    "http_protocol_options",
    "http2_protocol_options",
    "max_request_headers_kb",
    "access_log",
    "generate_request_id",
    "normalize_path",
    "add_user_agent",
    "skip_xff_append",
    "upgrade_configs",
)
# Harmless: statistics, drain and flush timing, XFF trust (mosn-py always appends the
# client address and makes no internal/external decision), wire tolerance switches.
_HCM_IGNORED = (
    "stat_prefix",
    "drain_timeout",
    "delayed_close_timeout",
    "access_log_flush_interval",
    "flush_access_log_on_new_request",
    "access_log_options",
    "use_remote_address",
    "xff_num_trusted_hops",
    "internal_address_config",
    "preserve_external_request_id",
    "represent_ipv4_remote_address_as_ipv4_mapped_ipv6",
    "proxy_100_continue",
    "stream_error_on_invalid_http_message",
    "add_proxy_protocol_connection_state",
)
# Http2ProtocolOptions: window sizes, HPACK table and flood limits are tuning, not behaviour.
_H2_IGNORED = (
    "hpack_table_size",
    "initial_stream_window_size",
    "initial_connection_window_size",
    "max_outbound_frames",
    "max_outbound_control_frames",
    "max_consecutive_inbound_frames_with_empty_payload",
    "max_inbound_priority_frames_per_stream",
    "max_inbound_window_update_frames_per_data_frame_sent",
    "stream_error_on_invalid_http_messaging",
    "override_stream_error_on_invalid_http_message",
    "use_oghttp2_codec",
    "max_metadata_size",
)


def hcm_listener(
    where: Where, path: str, msg: Any, *, api: bool, listener_name: str
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """An ``HttpConnectionManager`` (already unpacked) -> (the HTTP listener's YAML keys,
    an inline route config or None, the RDS route name or None).

    ``api``: it is a Listener's ``api_listener`` (a proxyless gRPC client's; no socket), so
    the socket-only settings, idle_timeout and access_log, do not apply and are not read.
    """
    check_fields(where, path, msg, _HCM_HANDLED, _HCM_IGNORED)
    refuse_if(where, path, msg, ("generate_request_id",), False)
    refuse_if(where, path, msg, ("normalize_path", "add_user_agent", "skip_xff_append"), True)
    codec = int(msg.codec_type)
    if codec not in CODECS:
        raise where.unsupported(
            f"{join(path, 'codec_type')} {_CODEC_NAMES.get(codec, codec)}",
            "expected AUTO, HTTP1 or HTTP2",
        )
    out: dict[str, Any] = {"protocol": CODECS[codec]}
    route: dict[str, Any] | None = None
    rds: str | None = None
    which = msg.WhichOneof("route_specifier")
    if which == "rds":
        rpath = join(path, "rds")
        check_fields(where, rpath, msg.rds, ("config_source", "route_config_name"))
        config_source(where, join(rpath, "config_source"), msg.rds.config_source)
        rds = str(msg.rds.route_config_name)
        if not rds:
            raise where.error(f"{join(rpath, 'route_config_name')}: must not be empty")
        out["route"] = rds
    elif which == "route_config":
        route = route_config(where, join(path, "route_config"), msg.route_config, listener_name)
        out["route"] = route["name"]
    elif which is None:
        raise where.error(f"{path}: no rds or route_config")
    else:
        raise where.unsupported(join(path, which))
    filters = _http_filters(where, join(path, "http_filters"), msg.http_filters, api=api)
    if filters:
        out["filters"] = filters
    _limits(where, path, msg, out, api=api)
    for i, up in enumerate(msg.upgrade_configs):
        up_path = f"{join(path, 'upgrade_configs')}[{i}]"
        check_fields(where, up_path, up, ("upgrade_type", "enabled"))
        refuse_if(where, up_path, up, ("enabled",), False)  # mosn-py passes every Upgrade
    if msg.HasField("http_protocol_options"):
        check_fields(where, join(path, "http_protocol_options"), msg.http_protocol_options, ())
    if not api:
        log = access_log(where, join(path, "access_log"), msg.access_log)
        if log is not None:
            out["access_log"] = log
    return out, route, rds


def _limits(where: Where, path: str, msg: Any, out: dict[str, Any], *, api: bool) -> None:
    if msg.HasField("max_request_headers_kb"):
        out["max_header_size"] = int(msg.max_request_headers_kb.value) * 1024
    if msg.HasField("common_http_protocol_options"):
        cpath = join(path, "common_http_protocol_options")
        common = msg.common_http_protocol_options
        check_fields(where, cpath, common, ("idle_timeout", "max_headers_count"))
        if common.HasField("max_headers_count"):
            out["max_header_count"] = int(common.max_headers_count.value)
        if common.HasField("idle_timeout") and not api:
            out["idle_timeout"] = optional_duration(
                where, join(cpath, "idle_timeout"), common.idle_timeout
            )
    if msg.HasField("http2_protocol_options"):
        hpath = join(path, "http2_protocol_options")
        h2 = msg.http2_protocol_options
        check_fields(
            where,
            hpath,
            h2,
            ("max_concurrent_streams", "allow_connect", "allow_metadata"),
            _H2_IGNORED,
        )
        refuse_if(where, hpath, h2, ("allow_connect", "allow_metadata"), True)
        if h2.HasField("max_concurrent_streams"):
            out["max_concurrent_streams"] = int(h2.max_concurrent_streams.value)


def _http_filters(where: Where, path: str, items: Any, *, api: bool) -> list[dict[str, Any]]:
    """Our stream filters (TypedStruct ``mosn_py.filters.v1.<name>``), then the router, which
    must come last (as gRPC requires). A filter of another type is refused unless
    ``is_optional``; a ``disabled`` filter (enabled per route in Envoy, which mosn-py does
    not do) is left out."""
    if not items or type_name(items[-1].typed_config) != ROUTER:
        raise where.error(f"{path}: the last filter must be the router ({ROUTER})")
    out: list[dict[str, Any]] = []
    last = len(items) - 1
    for i, f in enumerate(items):
        fp = f"{path}[{i}]"
        check_fields(where, fp, f, ("typed_config", "is_optional", "disabled"), ("name",))
        if not f.HasField("typed_config"):
            raise where.error(f"{fp}: no typed_config")
        cpath = join(fp, "typed_config")
        kind = type_name(f.typed_config)
        if kind == ROUTER:
            if i != last:
                raise where.error(f"{fp}: the router must be the last filter")
            router = unpack(where, cpath, f.typed_config, router_pb2.Router)
            check_fields(
                where,
                cpath,
                router,
                (),
                (
                    "dynamic_stats",
                    "start_child_span",
                    "suppress_envoy_headers",
                    "strict_check_headers",
                    "respect_expected_rq_timeout",
                    "suppress_grpc_request_failure_code_stats",
                    "upstream_log_options",
                ),
            )
            continue
        if f.disabled:
            continue
        ours = typed_struct(where, cpath, f.typed_config)
        if ours is not None and ours[0].startswith(resources.MOSN_FILTER_PREFIX):
            name = ours[0][len(resources.MOSN_FILTER_PREFIX) :]
            entry: dict[str, Any] = {"name": name}
            if ours[1]:
                entry["config"] = ours[1]
            out.append(entry)
        elif not f.is_optional:
            inner = ours[0] if ours is not None else kind
            raise where.unsupported(
                f"{fp} {inner or 'without a type'}",
                f"mosn-py filters are TypedStruct {resources.MOSN_FILTER_PREFIX}<name>;"
                " mark other filters is_optional to skip them",
            )
    return out


def unpack_hcm(where: Where, path: str, msg: Any) -> Any:
    """The HttpConnectionManager an Any holds."""
    return unpack(where, path, msg, hcm_pb2.HttpConnectionManager)
