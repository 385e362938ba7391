"""render(config) -> Envoy resources: the shapes Envoy and proxyless gRPC need, and the
round trip render -> Any -> decode -> assemble -> parse_config giving the same model."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.redis_proxy.v3 import redis_proxy_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from mosn_py.config.loader import _CLUSTER_KEYS, _LISTENER_KEYS, load_config
from mosn_py.config.model import (
    Address,
    ClusterConfig,
    Config,
    Endpoint,
    FilterConfig,
    ListenerConfig,
    RouteConfig,
    RouteMatch,
    RouteRule,
)
from mosn_py.xds import resources
from mosn_py.xds.render import render
from tests.pki import Pki
from tests.unit.xds.configs import (
    KNOWN_FILTERS,
    TRANSLATIONS,
    canonical,
    load,
    rich_config,
    round_trip,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = [  # mosn-py configs (examples/kubernetes holds Kubernetes manifests)
    *sorted(p for p in (ROOT / "examples").rglob("*.yaml") if "kubernetes" not in p.parts),
    ROOT / "mosn_py/defaults/default.yaml",
]


@pytest.fixture(scope="module")
def rich(pki: Pki) -> Config:
    return load(rich_config(pki))


def _with_test_certificates(doc: dict[str, Any], pki: Pki) -> bool:
    """TLS files the repository does not ship (examples/gateway and examples/sidecar: made
    by hand, see their headers) -> test ones. Returns whether any was replaced."""
    replaced = False
    cert, key = pki.issue("example", dns=("gw.example",))
    files = {"cert": str(cert), "key": str(key), "ca": str(pki.ca)}
    tls_blocks = [ln.get("tls") for ln in doc.get("listeners") or []]
    tls_blocks += [c.get("tls") for c in doc.get("clusters") or []]
    for tls in tls_blocks:
        if not isinstance(tls, dict):
            continue
        for k, v in files.items():
            if k in tls and not Path(str(tls[k])).exists():
                tls[k] = v
                replaced = True
    return replaced


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_round_trip(path: Path, pki: Pki) -> None:
    doc = yaml.safe_load(path.read_text())
    if not _with_test_certificates(doc, pki):  # as shipped, loaded as `mosn-py run` does
        assert load_config(path, known_filters=KNOWN_FILTERS, translations=TRANSLATIONS) == (
            load(doc)
        )
    config = load(doc)
    assert canonical(round_trip(config)) == canonical(config)


def test_rich_config_round_trip(rich: Config) -> None:
    back = round_trip(rich)
    assert canonical(back) == canonical(rich)
    assert [ln.name for ln in back.listeners] == [ln.name for ln in rich.listeners]
    assert "unused" not in {r.name for r in back.routes}  # only routes a listener uses


def test_rich_config_sets_every_key(pki: Pki) -> None:
    """The round trip above proves something only if the config uses every key."""
    doc = rich_config(pki)
    listener_keys = {k for ln in doc["listeners"] for k in ln}
    assert listener_keys == set(_LISTENER_KEYS)
    cluster_keys = {k for c in doc["clusters"] for k in c}
    assert cluster_keys == set(_CLUSTER_KEYS)
    vh_rules = [
        r for route in doc["routes"] for vh in route.get("virtual_hosts", []) for r in vh["rules"]
    ]
    rule_keys = {k for r in vh_rules for k in r}
    assert rule_keys >= {
        "match",
        "cluster",
        "weighted_clusters",
        "direct_response",
        "redirect",
        "prefix_rewrite",
        "host_rewrite",
        "timeout",
        "retry",
        "request_headers",
        "response_headers",
        "translate",
    }
    match_keys = {k for r in vh_rules for k in r.get("match", {})}
    assert match_keys == {"prefix", "path", "regex", "case_sensitive", "headers", "query", "grpc"}
    redirect_keys = {k for r in vh_rules for k in r.get("redirect", {})}
    assert redirect_keys == {
        "scheme",
        "host",
        "port",
        "path",
        "prefix_rewrite",
        "code",
        "strip_query",
    }
    rules = [r for route in doc["routes"] for r in route.get("rules", [])]
    assert {k for r in rules for k in r} == {
        "match",
        "cluster",
        "timeout",
        "retry",
        "mirror",
        "translate",
    }
    assert {k for r in rules for k in r.get("match", {})} == {
        "service",
        "method",
        "headers",
        "key_prefix",
        "commands",
    }


def test_static_cluster_is_eds_over_ads_with_an_assignment(rich: Config) -> None:
    out = render(rich)
    web = out[resources.CLUSTER]["web"]
    assert isinstance(web, cluster_pb2.Cluster)
    assert web.type == cluster_pb2.Cluster.EDS
    assert web.eds_cluster_config.eds_config.HasField("ads")
    assert web.eds_cluster_config.eds_config.resource_api_version == 2  # V3
    assert web.eds_cluster_config.service_name == ""  # EDS name = the cluster name
    assert web.lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
    cla = out[resources.ENDPOINT]["web"]
    assert isinstance(cla, endpoint_pb2.ClusterLoadAssignment)
    assert json_format.MessageToDict(cla) == {
        "clusterName": "web",
        "endpoints": [
            {
                "locality": {},  # gRPC refuses a locality without it
                "loadBalancingWeight": 1,  # gRPC skips a locality without one
                "lbEndpoints": [
                    {
                        "endpoint": {
                            "address": {
                                "socketAddress": {"address": "127.0.0.1", "portValue": 18001}
                            }
                        },
                        "loadBalancingWeight": 1,
                    },
                    {
                        "endpoint": {
                            "address": {"socketAddress": {"address": "::1", "portValue": 18001}}
                        },
                        "loadBalancingWeight": 3,
                    },
                ],
            }
        ],
    }
    assert set(out[resources.ENDPOINT]) == {c.name for c in rich.clusters if c.type == "static"}


def test_strict_dns_and_original_dst_clusters(rich: Config) -> None:
    out = render(rich)[resources.CLUSTER]
    dns = out["dns_backend"]
    assert dns.type == cluster_pb2.Cluster.STRICT_DNS
    assert [
        e.endpoint.address.socket_address.address
        for e in dns.load_assignment.endpoints[0].lb_endpoints
    ] == ["localhost", "backend.test"]
    assert dns.dns_refresh_rate.seconds == 7
    od = out["passthrough"]
    assert od.type == cluster_pb2.Cluster.ORIGINAL_DST
    assert od.lb_policy == cluster_pb2.Cluster.CLUSTER_PROVIDED
    assert not od.HasField("load_assignment")


def _options(cluster: Any) -> dict[str, Any]:
    found = resources.unpack_typed_struct(
        cluster.typed_extension_protocol_options[resources.MOSN_EXTENSION_NAME]
    )
    assert found is not None and found[0] == resources.MOSN_CLUSTER_OPTIONS
    return found[1]


def test_cluster_protocol_options(rich: Config) -> None:
    out = render(rich)[resources.CLUSTER]
    for name, explicit in (
        ("web", "http_protocol_options"),
        ("web_h2", "http2_protocol_options"),
        ("grpc_backend", "http2_protocol_options"),
    ):
        http = http_protocol_options_pb2.HttpProtocolOptions()
        packed = out[name].typed_extension_protocol_options[
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        ]
        assert packed.Unpack(http)
        assert http.explicit_http_config.WhichOneof("protocol_config") == explicit
    http.Clear()
    out["web"].typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ].Unpack(http)
    assert http.common_http_protocol_options.idle_timeout.seconds == 30
    redis = redis_proxy_pb2.RedisProtocolOptions()
    out["shards"].typed_extension_protocol_options["envoy.filters.network.redis_proxy"].Unpack(
        redis
    )
    assert redis.auth_password.inline_string == "upstream-secret"
    # The ClusterOptions always say the protocol, and carry what Envoy has no field for.
    assert _options(out["grpc_backend"]) == {"protocol": "grpc"}
    assert _options(out["shards"]) == {
        "protocol": "redis",
        "hash_tag": "{}",
        "idle_timeout": 600,
        "connections_per_host": 2,
    }
    assert _options(out["passthrough"]) == {"protocol": "tcp", "lb": "random"}
    assert _options(out["web"]) == {
        "protocol": "http1",
        "connections_per_host": 4,
        "max_frame_size": 8 << 20,
    }


def test_cluster_tls(rich: Config) -> None:
    out = render(rich)[resources.CLUSTER]
    ctx = tls_pb2.UpstreamTlsContext()
    out["web"].transport_socket.typed_config.Unpack(ctx)
    assert ctx.sni == "web.test"
    vc = ctx.common_tls_context.validation_context
    assert vc.trusted_ca.filename.endswith("-ca.pem")
    assert [m.matcher.exact for m in vc.match_typed_subject_alt_names] == ["web.test"]
    assert list(ctx.common_tls_context.alpn_protocols) == ["http/1.1"]
    assert ctx.common_tls_context.tls_params.tls_minimum_protocol_version == 4  # TLSv1_3
    ctx.Clear()
    out["web_h2"].transport_socket.typed_config.Unpack(ctx)
    assert not ctx.common_tls_context.HasField("validation_context")  # Envoy: no checks
    ctx.Clear()
    out["grpc_backend"].transport_socket.typed_config.Unpack(ctx)
    assert ctx.common_tls_context.validation_context.HasField("system_root_certs")
    # alpn: [] (offer none) has no Envoy spelling: the whole tls goes in the options
    assert not out["bolt_backend"].HasField("transport_socket")
    assert _options(out["bolt_backend"])["tls"] == {
        "sni": "bolt.test",
        "ca": rich.cluster("bolt_backend").tls.ca,
        "alpn": [],
        "subject_alt_names": ["spiffe://cluster.local/ns/a/sa/bolt",
                              "spiffe://cluster.local/ns/b/*", "bolt.test"],
    }


def _hcm(listener: Any) -> Any:
    hcm = hcm_pb2.HttpConnectionManager()
    if listener.HasField("api_listener"):
        assert listener.api_listener.api_listener.Unpack(hcm)
    else:
        assert listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    return hcm


def test_api_listener_is_what_a_proxyless_grpc_client_needs(rich: Config) -> None:
    """reference/xds.md §4.2: a Listener named exactly like the target, no socket,
    api_listener = HCM with RDS over ADS, the router last; then an EDS cluster."""
    out = render(rich)
    ln = out[resources.LISTENER]["greeter.test"]
    assert isinstance(ln, listener_pb2.Listener)
    assert not ln.HasField("address") and not ln.filter_chains
    hcm = _hcm(ln)
    assert hcm.rds.config_source.HasField("ads")
    assert hcm.rds.route_config_name == "grpc_routes"
    assert hcm.codec_type == hcm_pb2.HttpConnectionManager.HTTP2
    assert hcm.http_filters[-1].typed_config.type_url == (
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    )
    assert hcm.http_filters[-1].name == "envoy.filters.http.router"
    assert [(f.typed_config.type_url, f.is_optional) for f in hcm.http_filters[:-1]] == [
        ("type.googleapis.com/xds.type.v3.TypedStruct", True)
    ]  # gRPC skips ours
    assert not hcm.common_http_protocol_options.HasField("idle_timeout")  # no socket
    route = out[resources.ROUTE]["grpc_routes"]
    assert route.virtual_hosts[0].domains == ["*"]
    assert route.virtual_hosts[0].routes[0].route.cluster == "grpc_backend"
    assert out[resources.CLUSTER]["grpc_backend"].type == cluster_pb2.Cluster.EDS


def test_http_listener(rich: Config) -> None:
    ln = render(rich)[resources.LISTENER]["gateway"]
    hcm = _hcm(ln)
    assert hcm.codec_type == hcm_pb2.HttpConnectionManager.AUTO
    assert [f.name for f in hcm.http_filters] == [
        "mosn_py.fault",
        "mosn_py.fault",
        "envoy.filters.http.router",
    ]
    found = resources.unpack_typed_struct(hcm.http_filters[0].typed_config)
    assert found == (
        resources.MOSN_FILTER_PREFIX + "fault",
        {"delay": {"duration": "10ms", "percentage": 12.5}},
    )
    assert not hcm.http_filters[0].is_optional
    assert hcm.http_filters[-1].typed_config.Unpack(router_pb2.Router())
    assert hcm.max_request_headers_kb.value == 32
    assert hcm.common_http_protocol_options.max_headers_count.value == 50
    assert hcm.common_http_protocol_options.HasField("idle_timeout")
    assert hcm.common_http_protocol_options.idle_timeout.seconds == 0  # none: 0s in Envoy
    assert hcm.http2_protocol_options.max_concurrent_streams.value == 10
    assert hcm.access_log[0].typed_config.type_url.endswith("StdoutAccessLog")
    ctx = tls_pb2.DownstreamTlsContext()
    assert ln.filter_chains[0].transport_socket.typed_config.Unpack(ctx)
    assert len(ctx.common_tls_context.tls_certificates) == 2
    extras = resources.unpack_typed_struct(
        ln.metadata.typed_filter_metadata[resources.MOSN_EXTENSION_NAME]
    )
    assert extras is not None and extras[0] == resources.MOSN_LISTENER_OPTIONS
    # Several certificates chosen by server_names, and the body limit: in the options.
    assert set(extras[1]) == {"tls", "max_body_size"}
    web1 = render(rich)[resources.LISTENER]["web1"]
    extras = resources.unpack_typed_struct(
        web1.metadata.typed_filter_metadata[resources.MOSN_EXTENSION_NAME]
    )
    assert extras == (resources.MOSN_LISTENER_OPTIONS, {"max_header_size": 10000})


def test_tcp_listener(rich: Config) -> None:
    ln = render(rich)[resources.LISTENER]["tcp_in"]
    assert ln.transparent.value is True and ln.tcp_backlog_size.value == 77
    tcp = tcp_proxy_pb2.TcpProxy()
    assert ln.filter_chains[0].filters[0].typed_config.Unpack(tcp)
    assert (tcp.cluster, tcp.idle_timeout.seconds) == ("passthrough", 120)
    assert tcp.access_log[0].typed_config.type_url.endswith("FileAccessLog")
    ctx = tls_pb2.DownstreamTlsContext()
    assert ln.filter_chains[0].transport_socket.typed_config.Unpack(ctx)
    assert ctx.require_client_certificate.value is True
    assert ctx.common_tls_context.tls_params.tls_minimum_protocol_version == 4


def test_redis_listener_is_a_redis_proxy_when_its_rules_fit(rich: Config) -> None:
    out = render(rich)[resources.LISTENER]
    proxy = redis_proxy_pb2.RedisProxy()
    assert out["redis_in"].filter_chains[0].filters[0].typed_config.Unpack(proxy)
    assert [(r.prefix, r.cluster) for r in proxy.prefix_routes.routes] == [
        ("session:", "shards"),
        ("user:", "shards"),
    ]
    assert proxy.prefix_routes.catch_all_route.cluster == "shards"
    assert proxy.settings.op_timeout.nanos == 200_000_000
    assert proxy.downstream_auth_passwords[0].inline_string == "client-secret"
    # command matches have no RedisProxy spelling: our own Proxy filter, route inline
    found = resources.unpack_typed_struct(
        out["redis_cmds"].filter_chains[0].filters[0].typed_config
    )
    assert found is not None and found[0] == resources.MOSN_PROXY
    assert found[1]["protocol"] == "redis" and found[1]["route"]["name"] == "redis_cmds"


def _redis_config(rules: list[dict[str, Any]]) -> Config:
    return load(
        {
            "listeners": [
                {"name": "r", "address": "127.0.0.1:6379", "protocol": "redis", "route": "r"}
            ],
            "routes": [{"name": "r", "rules": rules}],
            "clusters": [
                {"name": "a", "protocol": "redis", "endpoints": ["127.0.0.1:7000"]},
                {"name": "b", "protocol": "redis", "endpoints": ["127.0.0.1:7001"]},
            ],
        }
    )


@pytest.mark.parametrize(
    ("rules", "fits"),
    [
        (
            [
                {"match": {"key_prefix": "a"}, "cluster": "a", "timeout": 1},
                {"match": {"key_prefix": "ab"}, "cluster": "b", "timeout": 1},
            ],
            False,
        ),  # shadowed
        (
            [
                {"match": {"key_prefix": "ab"}, "cluster": "b", "timeout": 1},
                {"match": {"key_prefix": "a"}, "cluster": "a", "timeout": 1},
            ],
            True,
        ),
        (
            [
                {"match": {"key_prefix": "a"}, "cluster": "a", "timeout": 1},
                {"cluster": "b", "timeout": 2},
            ],
            False,
        ),  # two timeouts, one op_timeout
        ([{"cluster": "a"}], False),  # no timeout: op_timeout is required
        (
            [
                {"cluster": "a", "timeout": 1},
                {"match": {"key_prefix": "x"}, "cluster": "b", "timeout": 1},
            ],
            False,
        ),  # catch-all first
        (
            [
                {
                    "match": {"key_prefix": "a"},
                    "cluster": "a",
                    "timeout": 1,
                    "retry": {"attempts": 1},
                }
            ],
            False,
        ),
        (
            [{"match": {"key_prefix": "a", "commands": ["get"]}, "cluster": "a", "timeout": 1}],
            False,
        ),
    ],
)
def test_redis_proxy_only_when_envoy_routes_the_same(
    rules: list[dict[str, Any]], fits: bool
) -> None:
    config = _redis_config(rules)
    typed = render(config)[resources.LISTENER]["r"].filter_chains[0].filters[0].typed_config
    assert typed.type_url.endswith("RedisProxy") is fits
    assert canonical(round_trip(config)) == canonical(config)


def test_only_http_route_configs_are_rds_resources(rich: Config) -> None:
    out = render(rich)
    assert list(out[resources.ROUTE]) == ["gw", "grpc_routes"]  # each once, in order
    assert list(out) == [resources.LISTENER, resources.ROUTE, resources.CLUSTER, resources.ENDPOINT]
    assert list(out[resources.LISTENER]) == [ln.name for ln in rich.listeners]


def test_render_of_an_empty_config() -> None:
    assert render(Config()) == {
        resources.LISTENER: {},
        resources.ROUTE: {},
        resources.CLUSTER: {},
        resources.ENDPOINT: {},
    }


def test_values_a_struct_cannot_carry_are_a_value_error() -> None:
    config = Config(
        listeners=(
            ListenerConfig(
                "b",
                Address("127.0.0.1", 1),
                protocol="bolt",
                route="r",
                filters=(FilterConfig("fault", (("when", datetime.date(2020, 1, 1)),)),),
            ),
        ),
        routes=(RouteConfig("r", rules=(RouteRule(RouteMatch(), "c"),)),),
        clusters=(
            ClusterConfig("c", protocol="bolt", endpoints=(Endpoint(Address("127.0.0.1", 2)),)),
        ),
    )
    with pytest.raises(ValueError, match=r"listener 'b'.*cannot travel as a protobuf Struct"):
        render(config)
