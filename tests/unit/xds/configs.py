"""Configs and helpers shared by the xDS conversion tests (test_render.py, test_convert.py).

``rich_config(pki)`` is a YAML document that sets every listener, route and cluster key the
loader knows, with values other than the defaults; ``round_trip(config)`` renders a model,
packs each resource into an ``Any``, decodes it back and assembles a YAML document the way
an ADS client does (a small, independent version of ``xds/assemble.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import Message

from mosn_py.cli import translator_pairs
from mosn_py.config.loader import parse_config
from mosn_py.config.model import Config, HeaderMatcher, RouteConfig
from mosn_py.extensions import default_registries
from mosn_py.xds import resources
from mosn_py.xds.convert import ClusterPart, ListenerPart, decode
from mosn_py.xds.convert_http import route_clusters
from mosn_py.xds.render import render
from tests.pki import Pki

_REGISTRIES = default_registries()
KNOWN_FILTERS = _REGISTRIES.stream_filters.as_dict()
TRANSLATIONS = translator_pairs(_REGISTRIES)


def load(doc: dict[str, Any], *, dynamic: bool = False) -> Config:
    """``parse_config`` with the built-in filters and translators, as ``mosn-py run``."""
    return parse_config(
        doc, known_filters=KNOWN_FILTERS, translations=TRANSLATIONS, dynamic=dynamic
    )


def pack(msg: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def assemble(decoded: dict[str, dict[str, Any]], *, strict: bool = True) -> dict[str, Any]:
    """Decoded LDS/RDS/CDS/EDS (``decode`` results by type URL) -> one YAML document.

    Inline and RDS route configs are added once each (``strict``: two different ones of
    one name are a test failure; else the first wins); an EDS cluster gets its endpoints
    from the assignment its ``eds`` names; a cluster that says no protocol takes the one
    its listeners imply (``cluster_protocols``, and HTTP/1.1 for the clusters of RDS route
    configs), else ``tcp``.
    """
    listeners: list[dict[str, Any]] = []
    routes: dict[str, dict[str, Any]] = {}
    implied: dict[str, str] = {}
    for part in decoded.get(resources.LISTENER, {}).values():
        assert isinstance(part, ListenerPart)
        listeners.append(part.listener)
        rds = decoded.get(resources.ROUTE, {}).get(part.rds or "")
        for route in (part.route, rds):
            if route is not None:
                assert not strict or routes.get(route["name"], route) == route, "two routes"
                routes.setdefault(route["name"], route)
        if rds is not None:  # an HCM's upstreams speak HTTP/1.1 unless their cluster says
            implied.update(dict.fromkeys(route_clusters(rds), "http1"))
        implied.update(part.cluster_protocols)
    clusters: list[dict[str, Any]] = []
    for cpart in decoded.get(resources.CLUSTER, {}).values():
        assert isinstance(cpart, ClusterPart)
        cluster = dict(cpart.cluster)
        if cpart.eds is not None:
            cluster["endpoints"] = decoded.get(resources.ENDPOINT, {}).get(cpart.eds, [])
        cluster.setdefault("protocol", implied.get(cpart.name, "tcp"))
        clusters.append(cluster)
    return {"listeners": listeners, "routes": list(routes.values()), "clusters": clusters}


def decode_all(rendered: dict[str, dict[str, Message]]) -> dict[str, dict[str, Any]]:
    """Every rendered resource through ``Any`` and ``decode``, one response per type."""
    return {
        type_url: decode(type_url, [pack(m) for m in items.values()])
        for type_url, items in rendered.items()
    }


def round_trip(config: Config) -> Config:
    """render -> Any -> decode -> assemble -> parse_config(dynamic=True)."""
    return load(assemble(decode_all(render(config))), dynamic=True)


def used_routes(config: Config) -> dict[str, Any]:
    """The route configs some listener names, by name (the ones that are rendered)."""
    names = {ln.route for ln in config.listeners if ln.route}
    return {r.name: r for r in config.routes if r.name in names}


def rich_config(pki: Pki) -> dict[str, Any]:
    """A YAML document setting every listener, route and cluster key, with TLS files made by
    ``pki`` (several certificates chosen by SNI, mutual TLS, cluster TLS in all forms)."""
    server = pki.issue("server", dns=("server.test",))
    api = pki.issue("api", dns=("api.test", "*.api.test"))
    client = pki.issue("client", dns=("client.test",))
    ca = str(pki.ca)
    return {
        "admin": {"address": "127.0.0.1:0"},
        "log": {"level": "debug", "format": "text"},
        "workers": 2,
        "listeners": [
            {
                "name": "tcp_in",
                "address": "127.0.0.1:15000",
                "protocol": "tcp",
                "cluster": "passthrough",
                "transparent": True,
                "idle_timeout": "2m",
                "access_log": "/tmp/mosn-py-tcp.log",
                "backlog": 77,
                "max_frame_size": "1MiB",
                "tls": {
                    "cert": str(server[0]),
                    "key": str(server[1]),
                    "ca": ca,
                    "require_client_cert": True,
                    "min_version": "1.3",
                },
            },
            {
                "name": "dns_in",
                "address": "[::1]:15001",
                "protocol": "tcp",
                "cluster": "dns_backend",
                "idle_timeout": 0,
            },
            {
                "name": "gateway",
                "address": "0.0.0.0:8443",
                "protocol": "http",
                "route": "gw",
                "max_header_size": "32KiB",
                "max_header_count": 50,
                "max_body_size": "1MiB",
                "max_concurrent_streams": 10,
                "idle_timeout": 0,
                "access_log": True,
                "filters": [
                    {
                        "name": "fault",
                        "config": {"delay": {"duration": "10ms", "percentage": 12.5}},
                    },
                    {"name": "fault"},
                ],
                "tls": {
                    "certificates": [
                        {"cert": str(server[0]), "key": str(server[1])},
                        {
                            "cert": str(api[0]),
                            "key": str(api[1]),
                            "server_names": ["api.test", "*.api.test"],
                        },
                    ],
                    "ca": ca,
                },
            },
            {
                "name": "web1",
                "address": "127.0.0.1:8080",
                "protocol": "http1",
                "route": "gw",
                "max_header_size": 10000,
            },
            {
                "name": "outbound",
                "address": "0.0.0.0:15011",
                "protocol": "tcp",
                "cluster": "passthrough",
                "use_original_dst": True,
                "sniff_timeout": "250ms",
            },
            {
                "name": "out_http_9080",
                "address": "0.0.0.0:9080",
                "bind_to_port": False,
                "protocol": "http1",
                "route": "gw",
                "forward_client_cert": "sanitize_set",
            },
            {
                "name": "greeter.test",
                "protocol": "grpc",
                "api_listener": True,
                "route": "grpc_routes",
                "max_concurrent_streams": 7,
                "filters": [
                    {"name": "fault", "config": {"abort": {"status": "timeout", "percentage": 1}}}
                ],
            },
            {
                "name": "h2c",
                "address": "127.0.0.1:8082",
                "protocol": "http2",
                "route": "grpc_routes",
                "max_frame_size": "2MiB",
            },
            {
                "name": "grpc_in",
                "address": "127.0.0.1:8083",
                "protocol": "grpc",
                "route": "grpc_routes",
            },
            {
                "name": "bolt_in",
                "address": "127.0.0.1:12200",
                "protocol": "bolt",
                "route": "bolt_routes",
                "max_frame_size": "4MiB",
                "idle_timeout": "30s",
                "access_log": {"path": "-"},
                "filters": [{"name": "fault", "config": {"delay": {"duration": "1ms"}}}],
            },
            {
                "name": "redis_in",
                "address": "127.0.0.1:6380",
                "protocol": "redis",
                "route": "redis_routes",
                "password": "client-secret",
                "idle_timeout": "1h",
            },
            {
                "name": "redis_cmds",
                "address": "127.0.0.1:6381",
                "protocol": "redis",
                "route": "redis_cmds",
            },
            {
                "name": "mc",
                "address": "127.0.0.1:11211",
                "protocol": "memcache",
                "route": "mc_routes",
                "tls": {"cert": str(server[0]), "key": str(server[1])},
            },
        ],
        "routes": [
            {
                "name": "gw",
                "virtual_hosts": [
                    {
                        "name": "api",
                        "domains": ["api.test", "*.api.test", "api.*", "api.test:8443"],
                        "request_headers": {
                            "add": [
                                {"name": "x-gw", "value": "1", "append": False},
                                {"name": "x-empty", "value": ""},
                            ],
                            "remove": ["x-internal"],
                        },
                        "response_headers": {
                            "add": [{"name": "x-served-by", "value": "gw"}],
                            "remove": ["server"],
                        },
                        "rules": [
                            {
                                "match": {
                                    "prefix": "/v1/",
                                    "case_sensitive": False,
                                    "headers": {
                                        "x-canary": "1",
                                        ":method": {"regex": "GET|HEAD"},
                                        "x-trace": {"present": True},
                                    },
                                    "query": {
                                        "debug": {"present": True},
                                        "v": "2",
                                        "id": {"regex": "[0-9]+"},
                                    },
                                },
                                "weighted_clusters": [
                                    {"cluster": "web", "weight": 90},
                                    {"cluster": "web_h2", "weight": 10},
                                ],
                                "prefix_rewrite": "/",
                                "host_rewrite": "backend.internal:8080",
                                "timeout": "5s",
                                "retry": {"attempts": 3, "on": ["connect-failure", "reset"]},
                                "request_headers": {"add": [{"name": "x-rule", "value": "a"}]},
                                "response_headers": {"remove": ["x-secret"]},
                            },
                            {
                                "match": {"path": "/healthz"},
                                "direct_response": {"status": 200, "body": "ok\n"},
                            },
                            {"match": {"path": "/gone"}, "direct_response": {"status": 410}},
                            {
                                "match": {"regex": "/old/.*"},
                                "redirect": {
                                    "scheme": "https",
                                    "host": "new.test",
                                    "port": 8443,
                                    "path": "/new?x=1",
                                    "code": 308,
                                    "strip_query": True,
                                },
                            },
                            {
                                "match": {"prefix": "/moved/"},
                                "redirect": {"prefix_rewrite": "/here/", "code": 302},
                            },
                            {
                                "match": {"prefix": "/rpc/"},
                                "cluster": "bolt_backend",
                                "timeout": None,
                                "translate": {
                                    "version": "2.0",
                                    "codec": "hessian2",
                                    "drop_headers": ["x-a", "x-b"],
                                },
                            },
                            {
                                "match": {"grpc": True},
                                "cluster": "grpc_backend",
                                "retry": {"attempts": 0},
                            },
                            {"cluster": "web"},
                        ],
                    },
                    {
                        "name": "fallback",
                        "domains": ["*"],
                        "rules": [{"direct_response": {"status": 404, "body": "no host\n"}}],
                    },
                ],
            },
            {
                "name": "grpc_routes",
                "virtual_hosts": [
                    {
                        "name": "all",
                        "domains": ["*"],
                        "rules": [
                            {"match": {"prefix": "/"}, "cluster": "grpc_backend", "timeout": "3s"}
                        ],
                    }
                ],
            },
            {
                "name": "bolt_routes",
                "rules": [
                    {
                        "match": {
                            "service": "com.example.Echo:1.0",
                            "method": "echo",
                            "headers": {
                                "zone": "gz00a",
                                "version": {"regex": "1\\..*"},
                                "trace": {"present": True},
                            },
                        },
                        "cluster": "bolt_backend",
                        "timeout": "500ms",
                        "retry": {"attempts": 2, "on": ["reset"]},
                    },
                    {
                        "match": {"service": "com.example.Greeter:1.0"},
                        "cluster": "grpc_backend",
                        "translate": {"services": {"com.example.Greeter:1.0": "example.Greeter"}},
                    },
                    {"match": {"service": ".*"}, "cluster": "bolt_backend"},
                ],
            },
            {
                "name": "redis_routes",
                "rules": [
                    {
                        "match": {"key_prefix": "session:"},
                        "cluster": "shards",
                        "mirror": "shadow",
                        "timeout": "200ms",
                    },
                    {"match": {"key_prefix": "user:"}, "cluster": "shards", "timeout": "200ms"},
                    {"cluster": "shards", "mirror": "shadow", "timeout": "200ms"},
                ],
            },
            {
                "name": "redis_cmds",
                "rules": [
                    {
                        "match": {"commands": ["get", "mget"]},
                        "cluster": "shards",
                        "timeout": "1s",
                        "retry": {"attempts": 1},
                    },
                    {"match": {"key_prefix": ""}, "cluster": "shards"},
                ],
            },
            {
                "name": "mc_routes",
                "rules": [
                    {"cluster": "mc_shards", "timeout": "500ms"},
                ],
            },
            {"name": "unused", "rules": [{"cluster": "shards"}]},
        ],
        "clusters": [
            {
                "name": "web",
                "protocol": "http1",
                "lb": "least_request",
                "endpoints": ["127.0.0.1:18001", {"address": "[::1]:18001", "weight": 3}],
                "connect_timeout": "250ms",
                "connections_per_host": 4,
                "max_requests": 99,
                "max_frame_size": "8MiB",
                "idle_timeout": "30s",
                "outlier_detection": {
                    "consecutive_connect_failures": 5,
                    "ejection_time": "2s",
                    "max_ejection_time": "20s",
                },
                "tls": {
                    "sni": "web.test",
                    "ca": ca,
                    "cert": str(client[0]),
                    "key": str(client[1]),
                    "alpn": ["http/1.1"],
                    "min_version": "1.3",
                },
            },
            {
                "name": "web_h2",
                "protocol": "http2",
                "endpoints": ["127.0.0.1:18002"],
                "tls": {"verify": False},
            },
            {
                "name": "grpc_backend",
                "protocol": "grpc",
                "lb": "random",
                "endpoints": ["127.0.0.1:50051", "127.0.0.2:50051"],
                "tls": True,
                "outlier_detection": {"consecutive_connect_failures": 0},
            },
            {
                "name": "bolt_backend",
                "protocol": "bolt",
                "endpoints": [{"address": "127.0.0.1:12201", "weight": 2}],
                "idle_timeout": "1m",
                "tls": {"sni": "bolt.test", "ca": ca, "alpn": [],
                        "subject_alt_names": ["spiffe://cluster.local/ns/a/sa/bolt",
                                              "spiffe://cluster.local/ns/b/*", "bolt.test"]},
            },
            {
                "name": "shards",
                "protocol": "redis",
                "password": "upstream-secret",
                "hash_tag": "{}",
                "idle_timeout": "10m",
                "connections_per_host": 2,
                "endpoints": ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"],
            },
            {"name": "shadow", "protocol": "redis", "endpoints": ["127.0.0.1:7101"]},
            {
                "name": "mc_shards",
                "protocol": "memcache",
                "hash_tag": "[]",
                "endpoints": ["127.0.0.1:11301", "127.0.0.1:11302"],
            },
            {
                "name": "dns_backend",
                "type": "strict_dns",
                "dns_refresh_rate": "7s",
                "endpoints": ["localhost:6000", {"address": "backend.test:6001", "weight": 2}],
            },
            {
                "name": "passthrough",
                "type": "original_dst",
                "lb": "random",
                "connect_timeout": "2s",
                "source_address": "127.0.0.6",
            },
        ],
    }


def canonical(config: Config) -> tuple[Any, Any, Any]:
    """(listeners, route configs by name, clusters) of ``config``, for comparing a round
    trip with its original: only the route configs listeners use (the rendered ones), and
    the model tuples that hold a YAML *mapping* (a bolt rule's header conditions, translate
    options, a filter's config keys) sorted by key, because a ``google.protobuf.Struct``
    is a protobuf map and does not keep key order. Everything else compares as it is."""
    listeners = tuple(
        replace(ln, filters=tuple(replace(f, config=_sorted(f.config)) for f in ln.filters))
        for ln in config.listeners
    )
    routes: dict[str, RouteConfig] = {}
    for name, route in used_routes(config).items():
        rules = tuple(
            replace(
                r,
                match=replace(r.match, headers=tuple(sorted(r.match.headers, key=_name))),
                translate=_sorted(r.translate),
            )
            for r in route.rules
        )
        hosts = tuple(
            replace(vh, rules=tuple(replace(r, translate=_sorted(r.translate)) for r in vh.rules))
            for vh in route.virtual_hosts
        )
        routes[name] = replace(route, rules=rules, virtual_hosts=hosts)
    return listeners, routes, config.clusters


def _sorted(items: tuple[tuple[str, object], ...]) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(items, key=lambda kv: kv[0]))


def _name(h: HeaderMatcher) -> str:
    return h.name
