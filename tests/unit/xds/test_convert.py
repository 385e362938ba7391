"""Envoy resources -> our YAML schema: hand-written resources as control planes send them
(JSON through ``json_format.ParseDict``), the refusals with their exact messages, and a
property: whatever the bytes, ``decode`` raises only ``ConversionError``, and what it
returns either parses or raises ``ConfigError``."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.proxy_protocol.v3 import proxy_protocol_pb2
from envoy.extensions.filters.network.echo.v3 import echo_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosn_py.config.model import (
    Address,
    Endpoint,
    HeaderMatcher,
    QueryMatcher,
    Redirect,
    RetryPolicy,
    RouteMatch,
    RouteRule,
)
from mosn_py.errors import ConfigError
from mosn_py.xds import resources
from mosn_py.xds.convert import (
    ClusterPart,
    ConversionError,
    ListenerPart,
    cluster_from_proto,
    decode,
    endpoints_from_proto,
    listener_from_proto,
    route_from_proto,
)
from mosn_py.xds.render import render
from tests.pki import Pki
from tests.unit.xds.configs import assemble, decode_all, load, pack, rich_config

T = "type.googleapis.com/"
HCM = T + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = T + "envoy.extensions.filters.http.router.v3.Router"
TCP = T + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
REDIS = T + "envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"
DOWNSTREAM_TLS = T + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = T + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
HTTP_OPTIONS = T + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FILE_LOG = T + "envoy.extensions.access_loggers.file.v3.FileAccessLog"
ROUND_ROBIN = T + "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"
# json_format resolves the Any types of a JSON document by the descriptors imported
_JSON_TYPES = (cors_pb2, original_dst_pb2, proxy_protocol_pb2, echo_pb2)
CLASSES: dict[str, Any] = {
    resources.LISTENER: listener_pb2.Listener,
    resources.ROUTE: route_pb2.RouteConfiguration,
    resources.CLUSTER: cluster_pb2.Cluster,
    resources.ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
}


def parse(type_url: str, doc: dict[str, Any]) -> Message:
    """A resource as a control plane's JSON (proto3 JSON mapping)."""
    return json_format.ParseDict(doc, CLASSES[type_url]())  # type: ignore[no-any-return]


def decode_json(type_url: str, *docs: dict[str, Any]) -> dict[str, Any]:
    return decode(type_url, [pack(parse(type_url, d)) for d in docs])


def socket(host: str, port: int) -> dict[str, Any]:
    return {"socketAddress": {"address": host, "portValue": port}}


# ------------------------------------------------------------ resources as CPs send them

# go-control-plane's example shape: HCM with RDS over ADS, an EDS cluster, its endpoints.
ENVOY_LDS = {
    "name": "listener_0",
    "address": socket("0.0.0.0", 10000),
    "filterChains": [
        {
            "filters": [
                {
                    "name": "envoy.filters.network.http_connection_manager",
                    "typedConfig": {
                        "@type": HCM,
                        "statPrefix": "http",
                        "codecType": "AUTO",
                        "rds": {
                            "configSource": {"ads": {}, "resourceApiVersion": "V3"},
                            "routeConfigName": "local_route",
                        },
                        "httpFilters": [{"name": "http-router", "typedConfig": {"@type": ROUTER}}],
                    },
                }
            ]
        }
    ],
}
ENVOY_RDS = {
    "name": "local_route",
    "virtualHosts": [
        {
            "name": "local_service",
            "domains": ["*"],
            "routes": [
                {
                    "match": {"prefix": "/"},
                    "route": {
                        "cluster": "example_proxy_cluster",
                        "hostRewriteLiteral": "www.envoyproxy.io",
                    },
                }
            ],
        }
    ],
}
ENVOY_CDS = {
    "name": "example_proxy_cluster",
    "connectTimeout": "5s",
    "type": "EDS",
    "lbPolicy": "ROUND_ROBIN",
    "edsClusterConfig": {"edsConfig": {"ads": {}, "resourceApiVersion": "V3"}},
}
ENVOY_EDS = {
    "clusterName": "example_proxy_cluster",
    "endpoints": [{"lbEndpoints": [{"endpoint": {"address": socket("127.0.0.1", 8080)}}]}],
}


def test_a_typical_envoy_setup_over_ads() -> None:
    decoded = {
        resources.LISTENER: decode_json(resources.LISTENER, ENVOY_LDS),
        resources.ROUTE: decode_json(resources.ROUTE, ENVOY_RDS),
        resources.CLUSTER: decode_json(resources.CLUSTER, ENVOY_CDS),
        resources.ENDPOINT: decode_json(resources.ENDPOINT, ENVOY_EDS),
    }
    part = decoded[resources.LISTENER]["listener_0"]
    assert part == ListenerPart(
        "listener_0",
        {
            "name": "listener_0",
            "address": "0.0.0.0:10000",
            "protocol": "http",
            "route": "local_route",
        },
        None,
        "local_route",
        {},
    )
    assert decoded[resources.CLUSTER]["example_proxy_cluster"] == ClusterPart(
        "example_proxy_cluster",
        {"name": "example_proxy_cluster", "connect_timeout": 5.0},
        "example_proxy_cluster",
    )
    config = load(assemble(decoded), dynamic=True)
    (ln,) = config.listeners
    assert (ln.protocol, ln.route, str(ln.address)) == ("http", "local_route", "0.0.0.0:10000")
    (rule,) = config.routes[0].virtual_hosts[0].rules
    assert (rule.cluster, rule.host_rewrite, rule.timeout) == (
        "example_proxy_cluster",
        "www.envoyproxy.io",
        15.0,
    )
    (cluster,) = config.clusters
    assert cluster.protocol == "http1"  # an HCM's upstream default, no options said otherwise
    assert cluster.endpoints == (Endpoint(Address("127.0.0.1", 8080)),)
    assert cluster.connect_timeout == 5.0


def test_an_envoy_static_cluster_with_inline_endpoints_and_tcp_proxy() -> None:
    cluster = cluster_from_proto(
        parse(
            resources.CLUSTER,
            {
                "name": "db",
                "type": "STATIC",
                "connectTimeout": "0.25s",
                "lbPolicy": "RANDOM",
                "loadAssignment": {
                    "clusterName": "db",
                    "endpoints": [
                        {
                            "lbEndpoints": [
                                {
                                    "endpoint": {"address": socket("10.0.0.1", 5432)},
                                    "loadBalancingWeight": 2,
                                },
                                {"endpoint": {"address": socket("fd00::1", 5432)}},
                            ]
                        }
                    ],
                },
                "circuitBreakers": {
                    "thresholds": [{"maxRequests": 50}, {"priority": "HIGH", "maxRequests": 9}]
                },
                "outlierDetection": {
                    "consecutiveLocalOriginFailure": 4,
                    "baseEjectionTime": "3s",
                    "maxEjectionTime": "30s",
                    "splitExternalLocalOriginErrors": True,
                    "enforcingConsecutive5xx": 0,
                    "consecutive5xx": 7,
                },
            },
        )
    )
    assert cluster == ClusterPart(
        "db",
        {
            "name": "db",
            "lb": "random",
            "connect_timeout": 0.25,
            "max_requests": 50,
            "endpoints": [
                {"address": "10.0.0.1:5432", "weight": 2},
                {"address": "[fd00::1]:5432", "weight": 1},
            ],
            "outlier_detection": {
                "consecutive_connect_failures": 4,
                "ejection_time": 3.0,
                "max_ejection_time": 30.0,
            },
        },
        None,
    )
    listener = listener_from_proto(
        parse(
            resources.LISTENER,
            {
                "name": "pg",
                "address": socket("::", 5432),
                "transparent": True,
                "listenerFilters": [
                    {
                        "name": "envoy.filters.listener.original_dst",
                        "typedConfig": {
                            "@type": T + "envoy.extensions.filters.listener"
                            ".original_dst.v3.OriginalDst"
                        },
                    }
                ],
                "filterChains": [
                    {
                        "filters": [
                            {
                                "name": "tcp",
                                "typedConfig": {
                                    "@type": TCP,
                                    "statPrefix": "pg",
                                    "cluster": "db",
                                    "idleTimeout": "0s",
                                    "accessLog": [
                                        {
                                            "name": "f",
                                            "typedConfig": {
                                                "@type": FILE_LOG,
                                                "path": "/dev/stdout",
                                            },
                                        }
                                    ],
                                },
                            }
                        ]
                    }
                ],
            },
        )
    )
    assert listener == ListenerPart(
        "pg",
        {
            "name": "pg",
            "address": "[::]:5432",
            "transparent": True,
            "protocol": "tcp",
            "cluster": "db",
            "idle_timeout": None,
            "access_log": {"path": "-"},
        },
        None,
        None,
        {"db": "tcp"},
    )
    config = load(
        {"listeners": [listener.listener], "clusters": [{**cluster.cluster, "protocol": "tcp"}]}
    )
    assert config.listeners[0].idle_timeout is None


# reference/xds.md §4.2: what a CP serves a proxyless gRPC client for xds:///greeter.test
GRPC_LISTENER = {
    "name": "greeter.test",
    "apiListener": {
        "apiListener": {
            "@type": HCM,
            "routeConfig": {
                "name": "greeter.test-route",
                "virtualHosts": [
                    {
                        "name": "greeter",
                        "domains": ["*"],
                        "routes": [
                            {"match": {"prefix": ""}, "route": {"cluster": "greeter.test-cluster"}}
                        ],
                    }
                ],
            },
            "httpFilters": [{"name": "router", "typedConfig": {"@type": ROUTER}}],
        }
    },
}
GRPC_CLUSTER = {
    "name": "greeter.test-cluster",
    "type": "EDS",
    "edsClusterConfig": {"edsConfig": {"self": {}}, "serviceName": "greeter-eds"},
    "loadBalancingPolicy": {
        "policies": [
            {
                "typedExtensionConfig": {
                    "name": "x",
                    "typedConfig": {
                        "@type": T + "xds.type.v3.TypedStruct",
                        "typeUrl": "acme.lb.v1.Unknown",
                    },
                }
            },
            {
                "typedExtensionConfig": {
                    "name": "wrr",
                    "typedConfig": {
                        "@type": T
                        + "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality",
                        "endpointPickingPolicy": {
                            "policies": [
                                {
                                    "typedExtensionConfig": {
                                        "name": "rr",
                                        "typedConfig": {"@type": ROUND_ROBIN},
                                    }
                                }
                            ]
                        },
                    },
                }
            },
        ]
    },
}
GRPC_CLA = {
    "clusterName": "greeter-eds",
    "endpoints": [
        {
            "locality": {"region": "local", "zone": "a"},
            "loadBalancingWeight": 1,
            "lbEndpoints": [
                {"endpoint": {"address": socket("127.0.0.1", 50051)}},
                {"endpoint": {"address": socket("127.0.0.1", 50052)}, "healthStatus": "HEALTHY"},
            ],
        }
    ],
}


def test_grpc_proxyless_resources() -> None:
    (part,) = decode_json(resources.LISTENER, GRPC_LISTENER).values()
    assert part.listener == {
        "name": "greeter.test",
        "api_listener": True,
        "protocol": "http",
        "route": "greeter.test-route",
    }
    assert part.rds is None
    assert part.route == {
        "name": "greeter.test-route",
        "virtual_hosts": [
            {
                "name": "greeter",
                "domains": ["*"],
                "rules": [{"match": {"prefix": "/"}, "cluster": "greeter.test-cluster"}],
            }
        ],
    }
    assert part.cluster_protocols == {"greeter.test-cluster": "http1"}
    (cluster,) = decode_json(resources.CLUSTER, GRPC_CLUSTER).values()
    assert cluster == ClusterPart(
        "greeter.test-cluster", {"name": "greeter.test-cluster", "lb": "round_robin"}, "greeter-eds"
    )
    endpoints = decode_json(resources.ENDPOINT, GRPC_CLA)
    assert endpoints == {
        "greeter-eds": [
            {"address": "127.0.0.1:50051", "weight": 1},
            {"address": "127.0.0.1:50052", "weight": 1},
        ]
    }
    config = load(
        assemble(
            {
                resources.LISTENER: {"greeter.test": part},
                resources.CLUSTER: {cluster.name: cluster},
                resources.ENDPOINT: endpoints,
            }
        ),
        dynamic=True,
    )
    assert config.listeners[0].api_listener
    assert len(config.clusters[0].endpoints) == 2


def test_the_same_listener_with_rds() -> None:
    doc = copy.deepcopy(GRPC_LISTENER)
    hcm = doc["apiListener"]["apiListener"]
    del hcm["routeConfig"]
    hcm["rds"] = {"configSource": {"ads": {}}, "routeConfigName": "greeter.test-route"}
    hcm["codecType"] = "HTTP2"
    (part,) = decode_json(resources.LISTENER, doc).values()
    assert (part.rds, part.route, part.listener["protocol"]) == (
        "greeter.test-route",
        None,
        "http2",
    )


# reference/xds.md §2.2, verbatim (without an address it is no listener of ours: add one)
REDIS_JSON = (
    '{"name":"redis_listener","filterChains":[{"filters":[{"name":'
    '"envoy.filters.network.redis_proxy","typedConfig":{"@type":"type.googleapis.com/envoy.'
    'extensions.filters.network.redis_proxy.v3.RedisProxy","statPrefix":"redis","settings":'
    '{"opTimeout":"1s"},"prefixRoutes":{"catchAllRoute":{"cluster":"redis_cluster"}}}}]}]}'
)


def test_redis_proxy_of_the_reference() -> None:
    doc = json.loads(REDIS_JSON)
    with pytest.raises(ConversionError) as exc:
        decode_json(resources.LISTENER, doc)
    assert str(exc.value) == "Listener 'redis_listener': address is required (or api_listener)"
    doc["address"] = socket("127.0.0.1", 6379)
    (part,) = decode_json(resources.LISTENER, doc).values()
    assert part == ListenerPart(
        "redis_listener",
        {
            "name": "redis_listener",
            "address": "127.0.0.1:6379",
            "protocol": "redis",
            "route": "redis_listener",
        },
        {"name": "redis_listener", "rules": [{"cluster": "redis_cluster", "timeout": 1.0}]},
        None,
        {"redis_cluster": "redis"},
    )
    config = load(
        assemble(
            {
                resources.LISTENER: {"redis_listener": part},
                resources.CLUSTER: {
                    "redis_cluster": ClusterPart(
                        "redis_cluster", {"name": "redis_cluster"}, "redis_cluster"
                    )
                },
                resources.ENDPOINT: {"redis_cluster": [{"address": "127.0.0.1:7000", "weight": 1}]},
            }
        ),
        dynamic=True,
    )
    assert config.clusters[0].protocol == "redis"
    assert config.routes[0].rules == (RouteRule(RouteMatch(), "redis_cluster", timeout=1.0),)


def test_redis_prefix_routes_are_ordered_longest_first() -> None:
    """Envoy picks the longest prefix; mosn-py the first rule: shadowed rules move up."""
    doc = {
        "name": "r",
        "address": socket("127.0.0.1", 6379),
        "filterChains": [
            {
                "filters": [
                    {
                        "name": "redis",
                        "typedConfig": {
                            "@type": REDIS,
                            "statPrefix": "r",
                            "settings": {"opTimeout": "0.5s"},
                            "downstreamAuthPasswords": [{"inlineString": "pw"}],
                            "prefixRoutes": {
                                "routes": [
                                    {"prefix": "a", "cluster": "c1"},
                                    {
                                        "prefix": "b",
                                        "cluster": "c2",
                                        "requestMirrorPolicy": [
                                            {"cluster": "m", "excludeReadCommands": True}
                                        ],
                                    },
                                    {"prefix": "ab", "cluster": "c3"},
                                ]
                            },
                        },
                    }
                ]
            }
        ],
    }
    part = listener_from_proto(parse(resources.LISTENER, doc))
    assert part.route is not None
    assert [(r["match"]["key_prefix"], r["cluster"]) for r in part.route["rules"]] == [
        ("ab", "c3"),
        ("a", "c1"),
        ("b", "c2"),
    ]
    assert part.route["rules"][2]["mirror"] == "m"
    assert part.listener["password"] == "pw"
    assert part.cluster_protocols == {"c1": "redis", "c2": "redis", "m": "redis", "c3": "redis"}


def test_udpa_typed_struct_spelling_and_our_proxy_filter() -> None:
    """Our L7 listener (bolt) as TypedStruct Proxy, in the legacy udpa spelling."""
    doc = {
        "name": "bolt",
        "address": socket("127.0.0.1", 12200),
        "filterChains": [
            {
                "filters": [
                    {
                        "name": "anything",
                        "typedConfig": {
                            "@type": T + "udpa.type.v1.TypedStruct",
                            "typeUrl": resources.MOSN_PROXY,
                            "value": {
                                "protocol": "bolt",
                                "max_frame_size": "4MiB",
                                "filters": [
                                    {"name": "fault", "config": {"delay": {"duration": "1ms"}}}
                                ],
                                "route": {
                                    "name": "b",
                                    "rules": [
                                        {
                                            "match": {"service": ".*"},
                                            "cluster": "bolt_backend",
                                            "timeout": 3,
                                        }
                                    ],
                                },
                            },
                        },
                    }
                ],
            }
        ],
    }
    part = listener_from_proto(parse(resources.LISTENER, doc))
    assert part.listener == {
        "name": "bolt",
        "address": "127.0.0.1:12200",
        "protocol": "bolt",
        "max_frame_size": "4MiB",
        "route": "b",
        "filters": [{"name": "fault", "config": {"delay": {"duration": "1ms"}}}],
    }
    assert part.cluster_protocols == {"bolt_backend": "bolt"}
    config = load(
        {
            "listeners": [part.listener],
            "routes": [part.route],
            "clusters": [
                {"name": "bolt_backend", "protocol": "bolt", "endpoints": ["127.0.0.1:1"]}
            ],
        }
    )
    assert config.listeners[0].max_frame_size == 4 << 20
    # and an HTTP filter of ours in the udpa spelling, next to an optional unknown one
    hcm_doc = copy.deepcopy(ENVOY_LDS)
    filters = hcm_doc["filterChains"][0]["filters"][0]["typedConfig"]["httpFilters"]
    filters[:0] = [
        {
            "name": "f",
            "typedConfig": {
                "@type": T + "udpa.type.v1.TypedStruct",
                "typeUrl": resources.MOSN_FILTER_PREFIX + "fault",
                "value": {"abort": {"status": "timeout"}},
            },
        },
        {
            "name": "cors",
            "isOptional": True,
            "typedConfig": {"@type": T + "envoy.extensions.filters.http.cors.v3.Cors"},
        },
        {
            "name": "off",
            "disabled": True,
            "typedConfig": {"@type": T + "envoy.extensions.filters.http.cors.v3.Cors"},
        },
    ]
    part = listener_from_proto(parse(resources.LISTENER, hcm_doc))
    assert part.listener["filters"] == [
        {"name": "fault", "config": {"abort": {"status": "timeout"}}}
    ]


def test_listener_options_override_and_tls(pki: Pki) -> None:
    cert, key = pki.issue("conv", dns=("conv.test",))
    doc = copy.deepcopy(ENVOY_LDS)
    chain = doc["filterChains"][0]
    chain["transportSocket"] = {
        "name": "tls",
        "typedConfig": {
            "@type": DOWNSTREAM_TLS,
            "requireClientCertificate": True,
            "commonTlsContext": {
                "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_3"},
                "tlsCertificates": [
                    {
                        "certificateChain": {"filename": str(cert)},
                        "privateKey": {"filename": str(key)},
                    }
                ],
                "validationContext": {"trustedCa": {"filename": str(pki.ca)}},
                "alpnProtocols": ["h2"],
            },
        },
    }
    hcm = chain["filters"][0]["typedConfig"]
    hcm.update(
        {
            "codecType": "HTTP2",
            "maxRequestHeadersKb": 16,
            "commonHttpProtocolOptions": {"idleTimeout": "90s", "maxHeadersCount": 20},
            "http2ProtocolOptions": {"maxConcurrentStreams": 33, "initialStreamWindowSize": 65536},
        }
    )
    doc["metadata"] = {
        "typedFilterMetadata": {
            "mosn_py": {
                "@type": T + "xds.type.v3.TypedStruct",
                "typeUrl": resources.MOSN_LISTENER_OPTIONS,
                "value": {"protocol": "grpc", "max_body_size": "1MiB"},
            }
        }
    }
    part = listener_from_proto(parse(resources.LISTENER, doc))
    assert part.listener == {
        "name": "listener_0",
        "address": "0.0.0.0:10000",
        "protocol": "grpc",
        "route": "local_route",
        "max_header_size": 16384,
        "max_header_count": 20,
        "idle_timeout": 90.0,
        "max_concurrent_streams": 33,
        "max_body_size": "1MiB",
        "tls": {
            "cert": str(cert),
            "key": str(key),
            "ca": str(pki.ca),
            "require_client_cert": True,
            "min_version": "1.3",
        },
    }
    config = load(
        {
            "listeners": [part.listener],
            "routes": [
                {
                    "name": "local_route",
                    "virtual_hosts": [
                        {
                            "name": "a",
                            "domains": ["*"],
                            "rules": [{"direct_response": {"status": 200}}],
                        }
                    ],
                }
            ],
        }
    )
    assert config.listeners[0].tls is not None
    assert config.listeners[0].tls.require_client_cert


def test_upstream_tls_and_protocol_options(pki: Pki) -> None:
    cert, key = pki.issue("up", dns=("up.test",))
    doc = {
        "name": "up",
        "type": "EDS",
        "edsClusterConfig": {"edsConfig": {"ads": {}}},
        "transportSocket": {
            "name": "tls",
            "typedConfig": {
                "@type": UPSTREAM_TLS,
                "sni": "up.test",
                "commonTlsContext": {
                    "tlsCertificates": [
                        {
                            "certificateChain": {"filename": str(cert)},
                            "privateKey": {"filename": str(key)},
                        }
                    ],
                    "validationContext": {
                        "trustedCa": {"filename": str(pki.ca)},
                        "matchTypedSubjectAltNames": [
                            {"sanType": "DNS", "matcher": {"exact": "up.test"}}
                        ],
                    },
                    "alpnProtocols": ["h2"],
                },
            },
        },
        "typedExtensionProtocolOptions": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_OPTIONS,
                "commonHttpProtocolOptions": {"idleTimeout": "30s"},
                "explicitHttpConfig": {"http2ProtocolOptions": {}},
            }
        },
    }
    part = cluster_from_proto(parse(resources.CLUSTER, doc))
    assert part.cluster == {
        "name": "up",
        "protocol": "http2",
        "idle_timeout": 30.0,
        "tls": {
            "sni": "up.test",
            "cert": str(cert),
            "key": str(key),
            "ca": str(pki.ca),
            "alpn": ["h2"],
        },
    }
    # ACCEPT_UNTRUSTED, or no validation context at all: Envoy checks nothing
    vc = doc["transportSocket"]["typedConfig"]["commonTlsContext"]["validationContext"]
    vc["trustChainVerification"] = "ACCEPT_UNTRUSTED"
    assert cluster_from_proto(parse(resources.CLUSTER, doc)).cluster["tls"]["verify"] is False
    del doc["transportSocket"]["typedConfig"]["commonTlsContext"]["validationContext"]
    tls = cluster_from_proto(parse(resources.CLUSTER, doc)).cluster["tls"]
    assert tls["verify"] is False and "ca" not in tls
    # the deprecated spelling of HTTP/2 upstreams, and redis options
    old = {
        "name": "old",
        "type": "EDS",
        "edsClusterConfig": {"edsConfig": {"ads": {}}},
        "http2ProtocolOptions": {},
    }
    assert cluster_from_proto(parse(resources.CLUSTER, old)).cluster["protocol"] == "http2"
    redis = {
        "name": "r",
        "type": "EDS",
        "edsClusterConfig": {"edsConfig": {"ads": {}}},
        "typedExtensionProtocolOptions": {
            "envoy.filters.network.redis_proxy": {
                "@type": T + "envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions",
                "authPassword": {"inlineString": "s3"},
            }
        },
    }
    assert cluster_from_proto(parse(resources.CLUSTER, redis)).cluster == {
        "name": "r",
        "password": "s3",
        "protocol": "redis",
    }


def test_cluster_options_override() -> None:
    doc = {
        "name": "c",
        "type": "STRICT_DNS",
        "dnsRefreshRate": "2s",
        "loadAssignment": {
            "endpoints": [{"lbEndpoints": [{"endpoint": {"address": socket("db.test", 5432)}}]}]
        },
        "typedExtensionProtocolOptions": {
            "mosn_py": {
                "@type": T + "xds.type.v3.TypedStruct",
                "typeUrl": resources.MOSN_CLUSTER_OPTIONS,
                "value": {"protocol": "memcache", "hash_tag": "{}", "connections_per_host": 3},
            }
        },
    }
    part = cluster_from_proto(parse(resources.CLUSTER, doc))
    assert part == ClusterPart(
        "c",
        {
            "name": "c",
            "type": "strict_dns",
            "dns_refresh_rate": 2.0,
            "endpoints": [{"address": "db.test:5432", "weight": 1}],
            "protocol": "memcache",
            "hash_tag": "{}",
            "connections_per_host": 3,
        },
        None,
    )


def test_routes_of_every_kind() -> None:
    doc = {
        "name": "r",
        "virtualHosts": [
            {
                "name": "vh",
                "domains": ["a.test", "*.b.test"],
                "retryPolicy": {"retryOn": "connect-failure", "numRetries": 4},
                "requestHeadersToAdd": [
                    {
                        "header": {"key": "x-a", "value": "1"},
                        "appendAction": "OVERWRITE_IF_EXISTS_OR_ADD",
                    },
                    {"header": {"key": "x-dropped", "value": ""}},  # Envoy adds no empty value...
                    {"header": {"key": "x-kept", "value": ""}, "keepEmptyValue": True},  # ...unless
                    {"header": {"key": "x-old", "value": "2"}, "append": False},
                ],
                "responseHeadersToRemove": ["server"],
                "routes": [
                    {
                        "match": {
                            "prefix": "/p",
                            "caseSensitive": False,
                            "headers": [
                                {"name": "x-e", "exactMatch": "1"},
                                {"name": "x-p", "prefixMatch": "a.b"},
                                {"name": "x-s", "stringMatch": {"suffix": "z", "ignoreCase": True}},
                                {"name": "x-c", "stringMatch": {"contains": "mid"}},
                                {"name": "x-r", "safeRegexMatch": {"regex": "v[0-9]"}},
                                {"name": "x-any"},
                            ],
                            "queryParameters": [
                                {"name": "q", "stringMatch": {"exact": "1"}},
                                {"name": "flag", "presentMatch": True},
                            ],
                        },
                        "route": {
                            "weightedClusters": {
                                "clusters": [
                                    {"name": "a", "weight": 3},
                                    {"name": "b", "weight": 1},
                                ],
                                "totalWeight": 4,
                            },
                            "timeout": "0s",
                            "prefixRewrite": "/",
                        },
                        "metadata": {
                            "filterMetadata": {
                                "mosn_py": {"translate": {"version": "1.0"}},
                                "other": {"x": 1},
                            }
                        },
                    },
                    {
                        "match": {
                            "safeRegex": {"googleRe2": {}, "regex": "/r/.*"},
                            "caseSensitive": False,
                        },
                        "route": {
                            "cluster": "a",
                            "retryPolicy": {"retryOn": "reset,connect-failure"},
                        },
                    },
                    {
                        "match": {"path": "/x", "grpc": {}},
                        "redirect": {"httpsRedirect": True, "responseCode": "FOUND"},
                    },
                    {
                        "match": {"prefix": "/"},
                        "directResponse": {"status": 503, "body": {"inlineBytes": "b2s="}},
                    },
                ],
            }
        ],
    }
    route = route_from_proto(parse(resources.ROUTE, doc))
    config = load(
        {
            "routes": [route],
            "listeners": [
                {"name": "l", "address": "127.0.0.1:0", "protocol": "http", "route": "r"}
            ],
            "clusters": [
                {"name": n, "protocol": "http1", "endpoints": ["127.0.0.1:1"]} for n in ("a", "b")
            ],
        }
    )
    (vh,) = config.routes[0].virtual_hosts
    assert [h.name for h in vh.request_headers.add] == ["x-a", "x-kept", "x-old"]
    assert [h.append for h in vh.request_headers.add] == [False, True, False]
    first, regex, redirect, direct = vh.rules
    assert first.match.case_sensitive is False
    assert first.match.headers == (
        HeaderMatcher("x-e", exact="1"),
        HeaderMatcher("x-p", regex="a\\.b.*"),
        HeaderMatcher("x-s", regex="(?i).*z"),
        HeaderMatcher("x-c", regex=".*mid.*"),
        HeaderMatcher("x-r", regex="v[0-9]"),
        HeaderMatcher("x-any"),
    )
    assert first.match.query == (QueryMatcher("q", exact="1"), QueryMatcher("flag"))
    assert [(w.cluster, w.weight) for w in first.weighted_clusters] == [("a", 3), ("b", 1)]
    assert (first.timeout, first.prefix_rewrite) == (None, "/")
    assert first.retry == RetryPolicy(4, ("connect-failure",))  # the virtual host's
    assert first.translate == (("version", "1.0"),)
    assert regex.match.regex == "/r/.*" and regex.match.case_sensitive  # n/a to regex
    assert regex.retry == RetryPolicy(1, ("reset", "connect-failure"))  # Envoy's default: 1
    assert redirect.redirect == Redirect(scheme="https", code=302)
    assert redirect.match.grpc and redirect.match.path == "/x"
    assert direct.direct_response is not None and direct.direct_response.body == "ok"


def test_endpoints_by_priority_health_and_locality_weight() -> None:
    doc = {
        "clusterName": "c",
        "policy": {"overprovisioningFactor": 140},
        "endpoints": [
            {
                "priority": 0,
                "lbEndpoints": [
                    {"endpoint": {"address": socket("10.0.0.1", 80)}, "healthStatus": "UNHEALTHY"},
                    {"endpoint": {"address": socket("10.0.0.2", 80)}, "healthStatus": "DRAINING"},
                ],
            },
            {
                "priority": 1,
                "loadBalancingWeight": 3,
                "lbEndpoints": [
                    {"endpoint": {"address": socket("10.0.1.1", 80)}, "loadBalancingWeight": 2},
                    {"endpoint": {"address": socket("10.0.1.2", 80)}, "healthStatus": "DEGRADED"},
                    {"endpoint": {"address": socket("10.0.1.3", 80)}, "healthStatus": "HEALTHY"},
                ],
            },
            {
                "priority": 1,
                "loadBalancingWeight": 0,
                "lbEndpoints": [  # an unused locality
                    {"endpoint": {"address": socket("10.0.1.4", 80)}}
                ],
            },
            {
                "priority": 1,
                "lbEndpoints": [
                    {"endpoint": {"address": socket("2001:db8::1", 80)}, "healthStatus": "UNKNOWN"}
                ],
            },
            {"priority": 2, "lbEndpoints": [{"endpoint": {"address": socket("10.0.2.1", 80)}}]},
        ],
    }
    assert endpoints_from_proto(parse(resources.ENDPOINT, doc)) == [
        {"address": "10.0.1.1:80", "weight": 6},
        {"address": "10.0.1.3:80", "weight": 3},
        {"address": "[2001:db8::1]:80", "weight": 1},
    ]
    for item in doc["endpoints"][1:4]:
        for ep in item["lbEndpoints"]:
            ep["healthStatus"] = "TIMEOUT"
    assert endpoints_from_proto(parse(resources.ENDPOINT, doc)) == [
        {"address": "10.0.2.1:80", "weight": 1}
    ]
    assert endpoints_from_proto(parse(resources.ENDPOINT, {"clusterName": "empty"})) == []


# --------------------------------------------------------------------------------- decode


def test_decode_accepts_resource_wrappers_and_keeps_order() -> None:
    plain = pack(parse(resources.CLUSTER, ENVOY_CDS))
    other = parse(resources.CLUSTER, {**ENVOY_CDS, "name": "second"})
    wrapped = pack(discovery_pb2.Resource(name="second", version="7", resource=pack(other)))
    out = decode(resources.CLUSTER, [wrapped, plain])
    assert list(out) == ["second", "example_proxy_cluster"]
    assert out["second"].eds == "second"


@pytest.mark.parametrize(
    ("type_url", "items", "message"),
    [
        (
            resources.CLUSTER,
            lambda: [pack(parse(resources.ENDPOINT, ENVOY_EDS))],
            "resources[0]: envoy.config.endpoint.v3.ClusterLoadAssignment in a Cluster response"
            " (expected envoy.config.cluster.v3.Cluster)",
        ),
        (
            resources.CLUSTER,
            lambda: [pack(parse(resources.CLUSTER, ENVOY_CDS))] * 2,
            "Cluster 'example_proxy_cluster': duplicate name (resources[0] and resources[1])",
        ),
        (
            resources.LISTENER,
            lambda: [any_pb2.Any(type_url=resources.LISTENER, value=b"\xff")],
            "resources[0]: invalid envoy.config.listener.v3.Listener (Error parsing message",
        ),
        (
            resources.CLUSTER,
            lambda: [pack(discovery_pb2.Resource(name="x"))],
            "resources[0]: a Resource wrapper without a resource",
        ),
        (
            resources.CLUSTER,
            lambda: [
                pack(
                    discovery_pb2.Resource(
                        name="x", resource=pack(parse(resources.CLUSTER, ENVOY_CDS))
                    )
                )
            ],
            "Cluster 'example_proxy_cluster': the Resource wrapper is named 'x'",
        ),
        (  # names come from the wire: escaped, the message stays one line
            resources.LISTENER,
            lambda: [pack(listener_pb2.Listener(name="bad\nname\x00"))],
            "Listener 'bad\\nname\\x00': address is required (or api_listener)",
        ),
        (
            T + "envoy.extensions.transport_sockets.tls.v3.Secret",
            lambda: [],
            "resource type type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
            " is not supported",
        ),
    ],
)
def test_decode_refuses(type_url: str, items: Any, message: str) -> None:
    with pytest.raises(ConversionError) as exc:
        decode(type_url, items())
    assert str(exc.value).startswith(message)  # the parser's own words may follow


# ------------------------------------------------------------------------------- refusals


def _edit(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with ``value`` at ``path`` (dots; digits index lists)."""
    out = copy.deepcopy(base)
    node: Any = out
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


_F = "filterChains.0.filters.0.typedConfig"
_TCP_LDS = {
    "name": "t",
    "address": socket("127.0.0.1", 9000),
    "filterChains": [
        {
            "filters": [
                {"name": "tcp", "typedConfig": {"@type": TCP, "statPrefix": "t", "cluster": "c"}}
            ]
        }
    ],
}
_REDIS_LDS = _edit(
    _TCP_LDS,
    _F,
    {
        "@type": REDIS,
        "statPrefix": "r",
        "settings": {"opTimeout": "1s"},
        "prefixRoutes": {"routes": [{"prefix": "a", "cluster": "c"}]},
    },
)
_ROUTE = "virtualHosts.0.routes.0"
_TLS_CERT = {
    "tlsCertificates": [
        {"certificateChain": {"inlineString": "-----BEGIN"}, "privateKey": {"filename": "k.pem"}}
    ]
}

_FILES = {"certificateChain": {"filename": "c.pem"}, "privateKey": {"filename": "k.pem"}}


def _tls_lds(common: dict[str, Any]) -> dict[str, Any]:
    return _edit(
        _TCP_LDS,
        "filterChains.0.transportSocket",
        {"name": "tls", "typedConfig": {"@type": DOWNSTREAM_TLS, "commonTlsContext": common}},
    )


REFUSALS = [
    (
        resources.CLUSTER,
        _edit(ENVOY_CDS, "lbPolicy", "MAGLEV"),
        "Cluster 'example_proxy_cluster': lb_policy MAGLEV is not supported (expected ROUND_ROBIN,"
        " RANDOM or LEAST_REQUEST)",
    ),
    (
        resources.CLUSTER,
        _edit(ENVOY_CDS, "lbPolicy", "RING_HASH"),
        "Cluster 'example_proxy_cluster': lb_policy RING_HASH is not supported (expected"
        " ROUND_ROBIN, RANDOM or LEAST_REQUEST)",
    ),
    (
        resources.CLUSTER,
        _edit(ENVOY_CDS, "type", "LOGICAL_DNS"),
        "Cluster 'example_proxy_cluster': type LOGICAL_DNS is not supported (expected STATIC,"
        " STRICT_DNS, EDS or ORIGINAL_DST)",
    ),
    (
        resources.CLUSTER,
        _edit(
            ENVOY_CDS, "healthChecks", [{"timeout": "1s", "interval": "1s", "tcpHealthCheck": {}}]
        ),
        "Cluster 'example_proxy_cluster': health_checks is not supported",
    ),
    (
        resources.CLUSTER,
        _edit(ENVOY_CDS, "edsClusterConfig.edsConfig", {"path": "/etc/eds"}),
        "Cluster 'example_proxy_cluster': eds_cluster_config.eds_config: must be ads or self"
        " (mosn-py fetches over its ADS stream)",
    ),
    (
        resources.CLUSTER,
        _edit(ENVOY_CDS, "outlierDetection", {"consecutive5xx": 3}),
        "Cluster 'example_proxy_cluster': outlier_detection.consecutive_5xx is not supported"
        " (mosn-py ejects on connect failures only; set enforcing_consecutive_5xx to 0)",
    ),
    (
        resources.CLUSTER,
        _edit(ENVOY_CDS, "outlierDetection", {"maxEjectionPercent": 10}),
        "Cluster 'example_proxy_cluster': outlier_detection.max_ejection_percent 10 is not"
        " supported (mosn-py may eject every host, then uses them all (panic mode); expected"
        " 100)",
    ),
    (
        resources.CLUSTER,
        _edit(
            ENVOY_CDS,
            "typedExtensionProtocolOptions",
            {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": HTTP_OPTIONS,
                    "explicitHttpConfig": {"http3ProtocolOptions": {}},
                }
            },
        ),
        "Cluster 'example_proxy_cluster': typed_extension_protocol_options['envoy.extensions"
        ".upstreams.http.v3.HttpProtocolOptions'].explicit_http_config.http3_protocol_options"
        " is not supported (expected HTTP/1.1 or HTTP/2)",
    ),
    (
        resources.CLUSTER,
        _edit(
            ENVOY_CDS,
            "transportSocket",
            {
                "name": "tls",
                "typedConfig": {
                    "@type": UPSTREAM_TLS,
                    "sni": "a.test",
                    "commonTlsContext": {
                        "validationContext": {
                            "trustedCa": {"filename": "ca.pem"},
                            "matchTypedSubjectAltNames": [
                                {"sanType": "URI", "matcher": {"exact": "spiffe://x"}},
                                {"sanType": "IP_ADDRESS", "matcher": {"exact": "10.0.0.1"}},
                            ],
                        }
                    },
                },
            },
        ),
        "Cluster 'example_proxy_cluster': transport_socket.typed_config.common_tls_context"
        ".validation_context.match_typed_subject_alt_names[1] is not supported (mosn-py"
        " matches URI or DNS names, exactly or by prefix, case-sensitive)",
    ),
    (
        resources.LISTENER,
        {**_TCP_LDS, "filterChains": _TCP_LDS["filterChains"] * 2},
        "Listener 't': 2 filter chains is not supported (mosn-py takes exactly one per listener)",
    ),
    (
        resources.LISTENER,
        _edit(_TCP_LDS, "filterChains.0.filterChainMatch", {"serverNames": ["a.test"]}),
        "Listener 't': filter_chains[0].filter_chain_match.server_names is not supported",
    ),
    (
        resources.LISTENER,
        _edit(
            _TCP_LDS,
            "listenerFilters",
            [
                {
                    "name": "pp",
                    "typedConfig": {
                        "@type": T
                        + "envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"
                    },
                }
            ],
        ),
        "Listener 't': listener_filters[0].typed_config envoy.extensions.filters.listener"
        ".proxy_protocol.v3.ProxyProtocol is not supported (only tls_inspector, http_inspector"
        " and original_dst)",
    ),
    (
        resources.LISTENER,
        _edit(
            _TCP_LDS,
            "filterChains.0.transportSocket",
            {
                "name": "tls",
                "typedConfig": {"@type": DOWNSTREAM_TLS, "commonTlsContext": _TLS_CERT},
            },
        ),
        "Listener 't': filter_chains[0].transport_socket.typed_config.common_tls_context"
        ".tls_certificates[0].certificate_chain.inline_string is not supported (mosn-py reads"
        " certificates and keys from files; give filename)",
    ),
    (
        resources.LISTENER,
        _edit(_TCP_LDS, _F, {"@type": T + "envoy.extensions.filters.network.echo.v3.Echo"}),
        "Listener 't': filter_chains[0].filters[0].typed_config envoy.extensions.filters.network"
        ".echo.v3.Echo is not supported (expected TcpProxy, HttpConnectionManager, RedisProxy or"
        " TypedStruct type.googleapis.com/mosn_py.config.v1.Proxy)",
    ),
    (
        resources.LISTENER,
        _edit(
            _TCP_LDS,
            _F,
            {
                "@type": TCP,
                "statPrefix": "t",
                "weightedClusters": {"clusters": [{"name": "a", "weight": 1}]},
            },
        ),
        "Listener 't': filter_chains[0].filters[0].typed_config.weighted_clusters is not supported",
    ),
    (
        resources.LISTENER,
        _edit(
            ENVOY_LDS,
            f"{_F}.httpFilters",
            [
                {
                    "name": "cors",
                    "typedConfig": {"@type": T + "envoy.extensions.filters.http.cors.v3.Cors"},
                },
                {"name": "router", "typedConfig": {"@type": ROUTER}},
            ],
        ),
        "Listener 'listener_0': filter_chains[0].filters[0].typed_config.http_filters[0]"
        " envoy.extensions.filters.http.cors.v3.Cors is not supported (mosn-py filters are"
        " TypedStruct type.googleapis.com/mosn_py.filters.v1.<name>; mark other filters"
        " is_optional to skip them)",
    ),
    (
        resources.LISTENER,
        _edit(
            ENVOY_LDS,
            f"{_F}.httpFilters",
            [
                {"name": "router", "typedConfig": {"@type": ROUTER}},
                {"name": "router2", "typedConfig": {"@type": ROUTER}, "isOptional": True},
                {
                    "name": "f",
                    "typedConfig": {
                        "@type": T + "xds.type.v3.TypedStruct",
                        "typeUrl": resources.MOSN_FILTER_PREFIX + "fault",
                    },
                },
            ],
        ),
        "Listener 'listener_0': filter_chains[0].filters[0].typed_config.http_filters: the last"
        " filter must be the router (envoy.extensions.filters.http.router.v3.Router)",
    ),
    (
        resources.LISTENER,
        _edit(ENVOY_LDS, f"{_F}.rds.configSource", {"path": "/etc/rds"}),
        "Listener 'listener_0': filter_chains[0].filters[0].typed_config.rds.config_source: must"
        " be ads or self (mosn-py fetches over its ADS stream)",
    ),
    (
        resources.LISTENER,
        _edit(ENVOY_LDS, f"{_F}.codecType", "HTTP3"),
        "Listener 'listener_0': filter_chains[0].filters[0].typed_config.codec_type HTTP3 is not"
        " supported (expected AUTO, HTTP1 or HTTP2)",
    ),
    (
        resources.LISTENER,
        _edit(ENVOY_LDS, f"{_F}.tracing", {}),
        "Listener 'listener_0': filter_chains[0].filters[0].typed_config.tracing is not supported",
    ),
    (
        resources.LISTENER,
        _edit(_REDIS_LDS, f"{_F}.settings.enableHashtagging", True),
        "Listener 't': filter_chains[0].filters[0].typed_config.settings.enable_hashtagging is"
        " not supported (hash tags are a cluster setting in mosn-py: set hash_tag in the"
        " cluster's type.googleapis.com/mosn_py.config.v1.ClusterOptions)",
    ),
    (
        resources.LISTENER,
        _edit(_REDIS_LDS, f"{_F}.prefixRoutes.routes.0.removePrefix", True),
        "Listener 't': filter_chains[0].filters[0].typed_config.prefix_routes.routes[0]"
        ".remove_prefix true is not supported",
    ),
    (
        resources.LISTENER,
        _edit(_REDIS_LDS, f"{_F}.prefixRoutes.routes.0.requestMirrorPolicy", [{"cluster": "m"}]),
        "Listener 't': filter_chains[0].filters[0].typed_config.prefix_routes.routes[0]"
        ".request_mirror_policy[0].exclude_read_commands false is not supported (mosn-py"
        " mirrors write commands only; set exclude_read_commands)",
    ),
    (
        resources.LISTENER,
        _edit(_REDIS_LDS, f"{_F}.faults", [{"faultType": "ERROR"}]),
        "Listener 't': filter_chains[0].filters[0].typed_config.faults is not supported",
    ),
    (
        resources.LISTENER,
        _edit(_TCP_LDS, "freebind", True),
        "Listener 't': freebind true is not supported",
    ),
    (
        resources.ROUTE,
        _edit(ENVOY_RDS, f"{_ROUTE}.route.hashPolicy", [{"header": {"headerName": "x"}}]),
        "RouteConfiguration 'local_route': virtual_hosts[0].routes[0].route.hash_policy is not"
        " supported",
    ),
    (
        resources.ROUTE,
        _edit(ENVOY_RDS, f"{_ROUTE}.route.retryPolicy", {"retryOn": "5xx"}),
        "RouteConfiguration 'local_route': virtual_hosts[0].routes[0].route.retry_policy.retry_on"
        " '5xx' is not supported (expected connect-failure or reset)",
    ),
    (
        resources.ROUTE,
        _edit(
            ENVOY_RDS,
            f"{_ROUTE}.match.headers",
            [{"name": "x", "exactMatch": "1", "invertMatch": True}],
        ),
        "RouteConfiguration 'local_route': virtual_hosts[0].routes[0].match.headers[0]"
        ".invert_match is not supported",
    ),
    (
        resources.ROUTE,
        _edit(ENVOY_RDS, "requestHeadersToAdd", [{"header": {"key": "a", "value": "1"}}]),
        "RouteConfiguration 'local_route': request_headers_to_add is not supported",
    ),
    (
        resources.ROUTE,
        _edit(
            ENVOY_RDS,
            "virtualHosts.0.requestHeadersToAdd",
            [{"header": {"key": "a", "value": "1"}, "appendAction": "ADD_IF_ABSENT"}],
        ),
        "RouteConfiguration 'local_route': virtual_hosts[0].request_headers_to_add[0]"
        ".append_action ADD_IF_ABSENT is not supported (expected APPEND_IF_EXISTS_OR_ADD or"
        " OVERWRITE_IF_EXISTS_OR_ADD)",
    ),
    (
        resources.ROUTE,
        _edit(ENVOY_RDS, f"{_ROUTE}.match", {"prefix": "/", "runtimeFraction": {}}),
        "RouteConfiguration 'local_route': virtual_hosts[0].routes[0].match.runtime_fraction is"
        " not supported",
    ),
    (
        resources.ROUTE,
        _edit(ENVOY_RDS, f"{_ROUTE}.match", {"connectMatcher": {}}),
        "RouteConfiguration 'local_route': virtual_hosts[0].routes[0].match.connect_matcher is"
        " not supported",
    ),
    (
        resources.ENDPOINT,
        _edit(ENVOY_EDS, "policy", {"dropOverloads": [{"category": "x"}]}),
        "ClusterLoadAssignment 'example_proxy_cluster': policy.drop_overloads is not supported",
    ),
    (
        resources.ENDPOINT,
        {**ENVOY_EDS, "endpoints": ENVOY_EDS["endpoints"] * 2},
        "ClusterLoadAssignment 'example_proxy_cluster': endpoints[1].lb_endpoints[0]: duplicate"
        " endpoint 127.0.0.1:8080 (first at endpoints[0].lb_endpoints[0])",
    ),
    (
        resources.ENDPOINT,
        _edit(
            ENVOY_EDS, "endpoints.0.lbEndpoints.0.endpoint.address", {"pipe": {"path": "/tmp/s"}}
        ),
        "ClusterLoadAssignment 'example_proxy_cluster': endpoints[0].lb_endpoints[0].endpoint"
        ".address.pipe is not supported (only socket_address)",
    ),
    (
        resources.LISTENER,
        _tls_lds({"tlsCertificates": [_FILES], "alpnProtocols": ["h2"]}),
        "Listener 't': filter_chains[0].transport_socket.typed_config.common_tls_context"
        ".alpn_protocols ['h2'] is not supported (a tcp listener offers no ALPN)",
    ),
    (
        resources.LISTENER,
        _tls_lds({"tlsCertificates": [_FILES, _FILES]}),
        "Listener 't': filter_chains[0].transport_socket.typed_config.common_tls_context"
        ".tls_certificates[1] is not supported (several certificates are chosen by SNI with"
        " tls.certificates[].server_names in the listener's mosn_py ListenerOptions)",
    ),
    (
        resources.LISTENER,
        _tls_lds(
            {"tlsCertificates": [_FILES], "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_1"}}
        ),
        "Listener 't': filter_chains[0].transport_socket.typed_config.common_tls_context"
        ".tls_params.tls_minimum_protocol_version TLSv1_1 is not supported (expected TLSv1_2"
        " or TLSv1_3)",
    ),
]


@pytest.mark.parametrize(
    ("type_url", "doc", "message"), REFUSALS, ids=[str(i) for i in range(len(REFUSALS))]
)
def test_refusals_name_the_resource_and_field(
    type_url: str, doc: dict[str, Any], message: str
) -> None:
    msg = parse(type_url, doc)
    with pytest.raises(ConversionError) as exc:
        decode(type_url, [pack(msg)])
    assert str(exc.value) == message


def test_the_refusals_differ_from_their_accepted_base() -> None:
    """Each refusal is one change to a resource that converts: the change is refused."""
    for kind, base in (
        (resources.CLUSTER, ENVOY_CDS),
        (resources.LISTENER, _TCP_LDS),
        (resources.LISTENER, ENVOY_LDS),
        (resources.LISTENER, _REDIS_LDS),
        (resources.ROUTE, ENVOY_RDS),
        (resources.ENDPOINT, ENVOY_EDS),
    ):
        assert decode(kind, [pack(parse(kind, base))])
    assert len({m for _, _, m in REFUSALS}) == len(REFUSALS) >= 15


# ------------------------------------------------------------------------------ property

_MESSAGES = list(CLASSES.items())
_POOL = descriptor_pool.Default()


@pytest.fixture(scope="module")
def samples(pki: Pki) -> tuple[list[tuple[str, bytes]], dict[str, dict[str, Any]]]:
    """(type URL, serialized resource) pairs to mutate: everything the rich config renders
    and the hand-written resources above; and the rich config decoded, as the rest of the
    config a mutated resource lands in."""
    rendered = render(load(rich_config(pki)))
    out = [(t, m.SerializeToString()) for t, items in rendered.items() for m in items.values()]
    for t, doc in (
        (resources.LISTENER, ENVOY_LDS),
        (resources.ROUTE, ENVOY_RDS),
        (resources.CLUSTER, GRPC_CLUSTER),
        (resources.ENDPOINT, GRPC_CLA),
        (resources.LISTENER, GRPC_LISTENER),
        (resources.LISTENER, _REDIS_LDS),
    ):
        out.append((t, parse(t, doc).SerializeToString()))
    return out, decode_all(rendered)


def _mutate(msg: Message, data: st.DataObject, depth: int = 0) -> None:
    """Change one thing somewhere in ``msg``: mostly deep inside what is already set (typed
    configs in ``Any`` included, unpacked and packed again), else a random field of this
    message set to a random value of its type."""
    present = [fd for fd, _ in msg.ListFields() if fd.message_type is not None]
    if present and depth < 10 and data.draw(st.integers(0, 9)) < 7:
        fd = data.draw(st.sampled_from(present))
        target: Any = getattr(msg, fd.name)
        if fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            if value_fd.message_type is None:
                return
            element = target[data.draw(st.sampled_from(sorted(target)))]
        elif fd.is_repeated:
            element = target[data.draw(st.integers(0, len(target) - 1))]
        else:
            element = target
        if element.DESCRIPTOR.full_name == "google.protobuf.Any":
            _mutate_any(element, data, depth)
        else:
            _mutate(element, data, depth + 1)
        return
    fields = msg.DESCRIPTOR.fields
    if not fields:
        return
    fd = fields[data.draw(st.integers(0, len(fields) - 1))]
    target = getattr(msg, fd.name)
    if fd.message_type is not None:
        if fd.message_type.GetOptions().map_entry:
            return
        element = target.add() if fd.is_repeated else target
        element.SetInParent()
        if depth < 10 and data.draw(st.booleans()):
            _mutate(element, data, depth + 1)
    elif fd.is_repeated:
        target.append(data.draw(_scalar(fd)))
    else:
        setattr(msg, fd.name, data.draw(_scalar(fd)))


def _mutate_any(packed: any_pb2.Any, data: st.DataObject, depth: int) -> None:
    name = packed.type_url.rpartition("/")[2]
    try:
        cls = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(name))
    except KeyError:
        packed.type_url = data.draw(st.sampled_from([packed.type_url, "", T + "x.Y"]))
        return
    inner = cls()
    try:
        inner.ParseFromString(packed.value)
    except DecodeError:  # an earlier mutation broke its bytes
        return
    _mutate(inner, data, depth + 1)
    packed.value = inner.SerializeToString()


def _scalar(fd: Any) -> st.SearchStrategy[Any]:
    if fd.enum_type is not None:
        return st.sampled_from([v.number for v in fd.enum_type.values])
    if fd.type == fd.TYPE_BOOL:
        return st.booleans()
    if fd.type == fd.TYPE_STRING:
        return st.sampled_from(["", "a", "/", "*", "x:1", "1s", "h2", "{}", "envoy.x"]) | st.text(
            max_size=8
        )
    if fd.type == fd.TYPE_BYTES:
        return st.binary(max_size=8)
    if fd.type in (fd.TYPE_DOUBLE, fd.TYPE_FLOAT):
        return st.floats(allow_nan=False, width=32)
    signed = fd.type in (
        fd.TYPE_INT32,
        fd.TYPE_SINT32,
        fd.TYPE_SFIXED32,
        fd.TYPE_INT64,
        fd.TYPE_SINT64,
        fd.TYPE_SFIXED64,
    )
    bits = (
        64
        if fd.type
        in (fd.TYPE_INT64, fd.TYPE_UINT64, fd.TYPE_SINT64, fd.TYPE_FIXED64, fd.TYPE_SFIXED64)
        else 32
    )
    low = -(1 << (bits - 1)) if signed else 0
    high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return st.integers(0, 3) | st.integers(low, high)


def _check(type_url: str, packed: list[any_pb2.Any], others: dict[str, dict[str, Any]]) -> None:
    """The property: decode raises only ConversionError; a result, put in place of its
    namesake in the rest of the config, parses or raises ConfigError."""
    try:
        decoded = decode(type_url, packed)
    except ConversionError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    merged = {t: dict(items) for t, items in others.items()}
    merged.setdefault(type_url, {}).update(decoded)
    try:
        load(assemble(merged, strict=False), dynamic=True)
    except ConfigError:
        pass


_PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_PROPERTY
@given(data=st.data())
def test_mutated_fields_give_a_conversion_or_config_error(samples: Any, data: Any) -> None:
    items, others = samples
    type_url, raw = data.draw(st.sampled_from(items))
    msg = CLASSES[type_url]()
    msg.ParseFromString(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(msg, data)
    _check(type_url, [pack(msg)], others)


@_PROPERTY
@given(data=st.data())
def test_mutated_bytes_give_a_conversion_or_config_error(samples: Any, data: Any) -> None:
    items, others = samples
    type_url, raw = data.draw(st.sampled_from(items))
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip" and buf:
            buf[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "insert":
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif buf:
            del buf[at]
    _check(type_url, [any_pb2.Any(type_url=type_url, value=bytes(buf))], others)


@settings(max_examples=100, deadline=None)
@given(type_url=st.sampled_from([t for t, _ in _MESSAGES]), raw=st.binary(max_size=64))
def test_random_bytes_give_a_conversion_or_config_error(type_url: str, raw: bytes) -> None:
    _check(type_url, [any_pb2.Any(type_url=type_url, value=raw)], {})
