"""The YAML loader: a full config into the model, and one exact error line per mistake."""

from __future__ import annotations

import copy
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from mosn_py.config import (
    DEFAULT_CONFIG_PATH,
    check_protocol_compatibility,
    load_config,
    load_default_config,
    parse_config,
)
from mosn_py.config.model import (
    AccessLogConfig,
    Address,
    Config,
    Endpoint,
    FilterConfig,
    HeaderMatcher,
    RetryPolicy,
    RouteMatch,
)
from mosn_py.errors import ConfigError
from tests.pki import Pki

# A small valid config; each error test breaks exactly one thing in a copy of it.
BASE = """
listeners:
  - name: bolt_in
    address: 127.0.0.1:12200
    protocol: bolt
    route: bolt_routes
  - name: tcp_in
    address: 127.0.0.1:12300
    cluster: echo
routes:
  - name: bolt_routes
    rules:
      - match: {service: com.example.EchoService:1.0}
        cluster: bolt_backend
clusters:
  - name: bolt_backend
    protocol: bolt
    endpoints: [127.0.0.1:12201]
  - name: echo
    endpoints: [127.0.0.1:12301]
"""


def base() -> dict[str, Any]:
    data = yaml.safe_load(BASE)
    assert isinstance(data, dict)
    return data


def errors_of(data: object, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, **kwargs)
    return exc.value.errors


DELETE = object()


def edited(path: str, value: object) -> dict[str, Any]:
    """A copy of BASE with ``value`` at dotted ``path`` (list indices as numbers)."""
    data = copy.deepcopy(base())
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    elif isinstance(node, list) and key == len(node):
        node.append(value)
    else:
        node[key] = value
    return data


def test_base_is_valid() -> None:
    config = parse_config(base())
    assert [ln.name for ln in config.listeners] == ["bolt_in", "tcp_in"]


# ------------------------------------------------------------------------------ round trip


def test_full_config_round_trip(tmp_path: Path, pki: Pki) -> None:
    cert, key = pki.issue("round-trip", dns=("localhost",))
    ca = pki.ca
    text = textwrap.dedent(
        f"""
        admin: {{address: "[::1]:34901"}}
        workers: 4
        drain_timeout: 2.5s
        log: {{level: debug, format: json}}
        demo_upstreams:
          - {{name: demo_bolt, protocol: bolt, address: 127.0.0.1:12201}}
        listeners:
          - name: bolt_in
            address: 0.0.0.0:12200
            protocol: bolt
            transparent: true
            tls: {{cert: {cert}, key: {key}, ca: {ca}, require_client_cert: yes}}
            filters:
              - name: fault
                config: {{delay: 1s, percent: 10}}
              - name: headers
            route: bolt_routes
            idle_timeout: 0
            max_frame_size: 1MiB
            access_log: /tmp/access.log
            backlog: 128
          - name: tcp_in
            address: 127.0.0.1:12300
            cluster: passthrough
            idle_timeout: 90s
            access_log: true
        routes:
          - name: bolt_routes
            rules:
              - match:
                  service: com.example.EchoService:1.0
                  method: echo
                  headers:
                    zone: gz00a
                    version: {{regex: "1\\\\..*"}}
                    trace: {{present: true}}
                    x-exact: {{exact: abc}}
                cluster: bolt_backend
                timeout: 250ms
                retry: {{attempts: 2, on: [connect-failure, reset]}}
              - cluster: bolt_backend
        clusters:
          - name: bolt_backend
            protocol: bolt
            endpoints:
              - 127.0.0.1:12201
              - {{address: "[::1]:12202", weight: 3}}
            lb: least_request
            connect_timeout: 500ms
            connections_per_host: 2
            max_requests: 100
            max_frame_size: 64KiB
            idle_timeout: 1m
          - name: passthrough
            type: original_dst
        """
    )
    path = tmp_path / "mosn.yaml"
    path.write_text(text)
    config = load_config(path, known_filters={"fault", "headers"})

    assert isinstance(config, Config)
    assert config.admin is not None and config.admin.address == Address("::1", 34901)
    assert (config.workers, config.drain_timeout) == (4, 2.5)
    assert (config.log.level, config.log.format) == ("debug", "json")
    assert config.demo_upstreams[0].address == Address("127.0.0.1", 12201)

    bolt_in, tcp_in = config.listeners
    assert bolt_in.address == Address("0.0.0.0", 12200)
    assert (bolt_in.protocol, bolt_in.transparent, bolt_in.route) == ("bolt", True, "bolt_routes")
    assert bolt_in.cluster is None
    assert bolt_in.tls is not None
    assert (bolt_in.tls.cert, bolt_in.tls.key, bolt_in.tls.ca) == (str(cert), str(key), str(ca))
    assert bolt_in.tls.require_client_cert is True
    assert bolt_in.filters == (
        FilterConfig("fault", (("delay", "1s"), ("percent", 10))),
        FilterConfig("headers", ()),
    )
    assert bolt_in.filters[0].as_dict() == {"delay": "1s", "percent": 10}
    assert bolt_in.idle_timeout is None  # 0 = no idle timeout
    assert (bolt_in.max_frame_size, bolt_in.backlog) == (1 << 20, 128)
    assert bolt_in.access_log == AccessLogConfig("/tmp/access.log")

    # defaults
    assert (tcp_in.protocol, tcp_in.transparent, tcp_in.tls, tcp_in.filters) == (
        "tcp",
        False,
        None,
        (),
    )
    assert (tcp_in.cluster, tcp_in.route, tcp_in.idle_timeout) == ("passthrough", None, 90.0)
    assert (tcp_in.max_frame_size, tcp_in.backlog) == (16 << 20, 1024)
    assert tcp_in.access_log == AccessLogConfig("-")

    (route,) = config.routes
    first, second = route.rules
    assert first.match == RouteMatch(
        service="com.example.EchoService:1.0",
        method="echo",
        headers=(
            HeaderMatcher("zone", exact="gz00a"),
            HeaderMatcher("version", regex="1\\..*"),
            HeaderMatcher("trace"),
            HeaderMatcher("x-exact", exact="abc"),
        ),
    )
    assert (first.cluster, first.timeout) == ("bolt_backend", 0.25)
    assert first.retry == RetryPolicy(attempts=2, on=("connect-failure", "reset"))
    assert (second.match, second.timeout, second.retry) == (RouteMatch(), None, None)

    backend, passthrough = config.clusters
    assert backend.endpoints == (
        Endpoint(Address("127.0.0.1", 12201), 1),
        Endpoint(Address("::1", 12202), 3),
    )
    assert (backend.lb, backend.connect_timeout, backend.connections_per_host) == (
        "least_request",
        0.5,
        2,
    )
    assert (backend.max_requests, backend.max_frame_size, backend.idle_timeout) == (
        100,
        65536,
        60.0,
    )
    assert (passthrough.type, passthrough.endpoints, passthrough.protocol) == (
        "original_dst",
        (),
        "tcp",
    )
    assert (passthrough.lb, passthrough.connect_timeout, passthrough.max_requests) == (
        "round_robin",
        1.0,
        10000,
    )
    assert config.cluster("passthrough") is passthrough
    assert config.route("bolt_routes") is route
    for seq in (config.listeners, config.routes, config.clusters, route.rules, backend.endpoints):
        assert isinstance(seq, tuple)


def test_minimal_config_defaults() -> None:
    config = parse_config({"listeners": []})
    assert config == Config()


def test_workers_auto() -> None:
    assert parse_config({"workers": "auto"}).workers == (os.cpu_count() or 1)


def test_yaml_11_booleans_are_accepted() -> None:
    data = edited("listeners.0.transparent", True)
    data = yaml.safe_load(yaml.safe_dump(data).replace("transparent: true", "transparent: on"))
    assert parse_config(data).listeners[0].transparent is True


def test_retry_on_key_survives_yaml_11() -> None:
    # YAML 1.1 reads a bare `on:` key as the boolean true.
    text = BASE.replace(
        "cluster: bolt_backend", "cluster: bolt_backend\n        retry: {attempts: 0, on: [reset]}"
    )
    data = yaml.safe_load(text)
    assert parse_config(data).routes[0].rules[0].retry == RetryPolicy(0, ("reset",))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (False, None),
        (True, "-"),
        ("/var/log/a.log", "/var/log/a.log"),
        ({}, "-"),
        ({"path": "x.log"}, "x.log"),
    ],
)
def test_access_log_forms(value: object, expected: str | None) -> None:
    log = parse_config(edited("listeners.0.access_log", value)).listeners[0].access_log
    assert (log.path if log else None) == expected


# ------------------------------------------------------------------- one line per mistake

SINGLE_ERRORS = [
    # --- type errors
    ("listeners.0.transparent", "yes", "listeners[0].transparent: expected a boolean, got 'yes'"),
    ("workers", True, "workers: expected an integer, got true"),
    ("workers", 0, "workers: must be >= 1, got 0"),
    ("workers", "many", "workers: expected an integer >= 1 or 'auto', got 'many'"),
    ("listeners.0.backlog", 1.5, "listeners[0].backlog: expected an integer, got 1.5"),
    ("listeners.0.backlog", False, "listeners[0].backlog: expected an integer, got false"),
    ("listeners.0.name", 7, "listeners[0].name: expected a string, got 7"),
    ("listeners.0.name", "", "listeners[0].name: must not be empty"),
    ("listeners", {"a": 1}, "listeners: expected a list, got a mapping"),
    ("listeners.1", "tcp_in", "listeners[1]: expected a mapping, got 'tcp_in'"),
    ("admin", [1], "admin: expected a mapping, got a list"),
    (
        "listeners.0.filters",
        [{"name": "f", "config": [1]}],
        "listeners[0].filters[0].config: expected a mapping, got a list",
    ),
    (
        "listeners.0.access_log",
        5,
        "listeners[0].access_log: expected true, a file path or {path: ...}, got 5",
    ),
    # --- unknown keys, with and without a suggestion
    ("listeners.0.protocl", "bolt", "listeners[0].protocl: unknown key (did you mean 'protocol'?)"),
    ("listner", [], "listner: unknown key (did you mean 'listeners'?)"),
    (
        "clusters.0.zzz",
        1,
        (
            "clusters[0].zzz: unknown key; expected name, protocol, type, endpoints, lb, "
            "connect_timeout, connections_per_host, max_requests, max_frame_size, idle_timeout, "
            "outlier_detection, tls, password, hash_tag, dns_refresh_rate, source_address"
        ),
    ),
    (
        "xds",
        {"address": "127.0.0.1:18000"},
        "xds.node: missing required key",
    ),
    # --- enums
    (
        "clusters.0.lb",
        "round_robbin",
        (
            "clusters[0].lb: unknown value 'round_robbin' (did you mean 'round_robin'?); "
            "expected one of round_robin, random, least_request"
        ),
    ),
    (
        "clusters.0.type",
        "strict",
        (
            "clusters[0].type: unknown value 'strict' (did you mean 'strict_dns'?); "
            "expected one of static, strict_dns, original_dst"
        ),
    ),
    (
        "log",
        {"level": "INFO"},
        (
            "log.level: unknown value 'INFO' (did you mean 'info'?); "
            "expected one of debug, info, warning, error"
        ),
    ),
    ("log", {"format": "yaml"}, "log.format: unknown value 'yaml'; expected one of json, text"),
    (
        "clusters.0.protocol",
        5,
        "clusters[0].protocol: expected one of tcp, bolt, http1, http2, grpc, redis, memcache,"
        " got 5",
    ),
    # --- missing keys
    ("listeners.0.name", DELETE, "listeners[0].name: missing required key"),
    ("listeners.0.address", DELETE, "listeners[0].address: missing required key"),
    ("routes.0.rules", DELETE, "routes[0].rules: missing required key"),
    ("routes.0.rules.0.cluster", DELETE, "routes[0].rules[0].cluster: missing required key"),
    ("admin", {}, "admin.address: missing required key"),
    # --- values
    ("listeners.0.address", "abc", "listeners[0].address: 'abc' is not host:port"),
    (
        "listeners.0.idle_timeout",
        "5 minutes",
        (
            "listeners[0].idle_timeout: '5 minutes' is not a duration (use e.g. 250ms, 3s, 1.5s, "
            "2m, 1h)"
        ),
    ),
    (
        "listeners.0.max_frame_size",
        "0B",
        "listeners[0].max_frame_size: must be greater than 0, got '0B'",
    ),
    ("clusters.0.connect_timeout", 0, "clusters[0].connect_timeout: must be greater than 0, got 0"),
    ("clusters.0.connections_per_host", 0, "clusters[0].connections_per_host: must be >= 1, got 0"),
    ("clusters.0.max_requests", -5, "clusters[0].max_requests: must be >= 1, got -5"),
    ("drain_timeout", "-1s", "drain_timeout: negative duration '-1s'"),
    (
        "routes.0.rules.0.timeout",
        "3",
        ("routes[0].rules[0].timeout: duration '3' has no unit (use e.g. 250ms, 3s, 1.5s, 2m, 1h)"),
    ),
    # --- route configs
    (
        "routes.0.rules",
        [],
        "routes[0].rules: must not be empty (a route config needs at least one rule)",
    ),
    (
        "routes.0.rules.0.match.headers",
        {"v": {"regex": "("}},
        (
            "routes[0].rules[0].match.headers.v.regex: invalid regular expression '(': "
            "missing ), unterminated subpattern at position 0"
        ),
    ),
    (
        "routes.0.rules.0.match.headers",
        {"v": {"present": False}},
        "routes[0].rules[0].match.headers.v.present: only 'present: true' is supported",
    ),
    (
        "routes.0.rules.0.match.headers",
        {"v": {"exact": "a", "regex": "b"}},
        "routes[0].rules[0].match.headers.v: give exactly one of exact, regex, present (got 2)",
    ),
    (
        "routes.0.rules.0.match.headers",
        {"v": 3},
        (
            "routes[0].rules[0].match.headers.v: expected a string or a mapping of "
            "exact/regex/present, got 3"
        ),
    ),
    (
        "routes.0.rules.0.match.headers",
        {"a.b": 3},
        (
            "routes[0].rules[0].match.headers['a.b']: expected a string or a mapping of "
            "exact/regex/present, got 3"
        ),
    ),
    (
        "routes.0.rules.0.retry",
        {"attempts": -1},
        "routes[0].rules[0].retry.attempts: must be >= 0, got -1",
    ),
    (
        "routes.0.rules.0.retry",
        {"on": ["reset", "timeout"]},
        (
            "routes[0].rules[0].retry.on[1]: unknown value 'timeout'; expected one of "
            "connect-failure, reset"
        ),
    ),
    (
        "routes.0.rules.0.retry",
        {"on": []},
        "routes[0].rules[0].retry.on: must not be empty; expected some of connect-failure, reset",
    ),
    # --- listener shape by protocol
    (
        "listeners.1.route",
        "bolt_routes",
        "listeners[1].route: not allowed on a tcp listener (it takes 'cluster')",
    ),
    (
        "listeners.0.cluster",
        "echo",
        "listeners[0].cluster: not allowed on a bolt listener (it takes 'route')",
    ),
    ("listeners.0.route", DELETE, "listeners[0].route: required for a bolt listener"),
    ("listeners.1.cluster", DELETE, "listeners[1].cluster: required for a tcp listener"),
    (
        "listeners.1.filters",
        [{"name": "fault"}],
        "listeners[1].filters: stream filters need an L7 protocol; a tcp listener relays raw bytes",
    ),
    # --- clusters
    (
        "clusters.1.endpoints",
        [],
        "clusters[1].endpoints: a static cluster needs at least one endpoint",
    ),
    (
        "clusters.1.endpoints",
        DELETE,
        "clusters[1].endpoints: a static cluster needs at least one endpoint",
    ),
    (
        "clusters.1.type",
        "original_dst",
        (
            "clusters[1].endpoints: an original_dst cluster connects to each connection's original "
            "destination and takes no endpoints"
        ),
    ),
    (
        "clusters.1.endpoints",
        ["127.0.0.1:0"],
        "clusters[1].endpoints[0]: '127.0.0.1:0': port 0 cannot be connected to",
    ),
    (
        "clusters.1.endpoints",
        ["a:1", {"address": "a:2", "weight": 0}],
        "clusters[1].endpoints[1].weight: must be >= 1, got 0",
    ),
    (
        "clusters.1.endpoints",
        ["a:1", {"weight": 2}],
        "clusters[1].endpoints[1].address: missing required key",
    ),
    (
        "clusters.1.endpoints",
        ["a:1", "A:1"],
        "clusters[1].endpoints[1]: duplicate endpoint A:1 (first at clusters[1].endpoints[0])",
    ),
    ("clusters.1.endpoints", ["a:1", "nope"], "clusters[1].endpoints[1]: 'nope' is not host:port"),
    # --- references, with and without a suggestion
    (
        "listeners.0.route",
        "bolt_route",
        "listeners[0].route: no route config named 'bolt_route' (did you mean 'bolt_routes'?)",
    ),
    (
        "listeners.1.cluster",
        "zzz",
        "listeners[1].cluster: no cluster named 'zzz'; defined: bolt_backend, echo",
    ),
    (
        "routes.0.rules.0.cluster",
        "bolt_backnd",
        "routes[0].rules[0].cluster: no cluster named 'bolt_backnd' (did you mean 'bolt_backend'?)",
    ),
    # --- duplicates
    (
        "listeners.1.name",
        "bolt_in",
        "listeners[1].name: duplicate listener name 'bolt_in' (first at listeners[0])",
    ),
    (
        "clusters.2",
        {"name": "bolt_backend", "endpoints": ["a:1"]},
        "clusters[2].name: duplicate cluster name 'bolt_backend' (first at clusters[0])",
    ),
    (
        "listeners.1.address",
        "127.0.0.1:12200",
        (
            "listeners[1].address: address 127.0.0.1:12200 is already used by listener 'bolt_in' "
            "(listeners[0])"
        ),
    ),
    (
        "admin",
        {"address": "127.0.0.1:12300"},
        (
            "listeners[1].address: address 127.0.0.1:12300 is already used by the admin API "
            "(admin.address)"
        ),
    ),
    (
        "demo_upstreams",
        [{"name": "d", "protocol": "tcp", "address": "127.0.0.1:12200"}],
        (
            "listeners[0].address: address 127.0.0.1:12200 is already used by demo upstream 'd' "
            "(demo_upstreams[0])"
        ),
    ),
    (
        "demo_upstreams",
        [{"name": "d", "protocol": "http", "address": "127.0.0.1:1"}],
        "demo_upstreams[0].protocol: unknown value 'http'; expected one of bolt, tcp",
    ),
    # --- protocols
    (
        "clusters.0.protocol",
        "tcp",
        (
            "routes[0].rules[0].cluster: cluster 'bolt_backend' speaks tcp but listener "
            "'bolt_in' (bolt) "
            "routes to it and no translator from bolt to tcp exists"
        ),
    ),
    (
        "clusters.1.protocol",
        "bolt",
        (
            "listeners[1].cluster: cluster 'echo' speaks bolt but listener 'tcp_in' (tcp) "
            "relays raw "
            "bytes to it; a tcp listener needs a tcp cluster"
        ),
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "line"), SINGLE_ERRORS, ids=[e[2] for e in SINGLE_ERRORS]
)
def test_single_error(path: str, value: object, line: str) -> None:
    assert errors_of(edited(path, value)) == (line,)


def test_port_zero_listeners_may_share_an_address() -> None:
    data = edited("listeners.0.address", "127.0.0.1:0")
    data["listeners"][1]["address"] = "127.0.0.1:0"
    parse_config(data)


def test_ipv6_duplicate_addresses_compare_canonically() -> None:
    data = edited("listeners.0.address", "[::1]:80")
    data["listeners"][1]["address"] = "[0:0::1]:80"
    assert errors_of(data) == (
        (
            "listeners[1].address: address [::1]:80 is already used by listener 'bolt_in' "
            "(listeners[0])"
        ),
    )


def test_duplicate_route_config_name() -> None:
    data = base()
    data["routes"].append(copy.deepcopy(data["routes"][0]))
    assert errors_of(data) == (
        "routes[1].name: duplicate route config name 'bolt_routes' (first at routes[0])",
    )


def test_reference_with_no_definitions() -> None:
    data = base()
    data["routes"] = []
    assert errors_of(data) == (
        "listeners[0].route: no route config named 'bolt_routes'; none is defined",
    )


def test_translation_pairs_allow_a_protocol_hop() -> None:
    data = edited("clusters.0.protocol", "tcp")
    assert errors_of(data)
    config = parse_config(data, translations={("bolt", "tcp")})
    assert config.clusters[0].protocol == "tcp"
    assert check_protocol_compatibility(config) == [
        (
            "routes[0].rules[0].cluster: cluster 'bolt_backend' speaks tcp but listener 'bolt_in' "
            "(bolt) routes to it and no translator from bolt to tcp exists"
        )
    ]
    assert check_protocol_compatibility(config, {("bolt", "tcp")}) == []


def test_unknown_filter_with_suggestion() -> None:
    data = edited("listeners.0.filters", [{"name": "faul"}, {"name": "headers"}])
    assert errors_of(data, known_filters=["fault", "headers"]) == (
        (
            "listeners[0].filters[0].name: unknown filter 'faul' (did you mean 'fault'?); "
            "known: fault, headers"
        ),
    )
    assert errors_of(data, known_filters=[]) == (
        "listeners[0].filters[0].name: unknown filter 'faul'; no filters are registered",
        "listeners[0].filters[1].name: unknown filter 'headers'; no filters are registered",
    )
    parse_config(data)  # known_filters=None: any name


# ---------------------------------------------------------------------------------- TLS


def test_tls_missing_file(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("k")
    missing = tmp_path / "missing.pem"
    data = edited("listeners.0.tls", {"cert": str(missing), "key": str(key)})
    assert errors_of(data) == (f"listeners[0].tls.cert: cannot read '{missing}': no such file",)


def test_tls_directory_and_missing_keys(tmp_path: Path) -> None:
    data = edited("listeners.0.tls", {"cert": str(tmp_path)})
    assert errors_of(data) == (
        "listeners[0].tls.key: missing required key",
        f"listeners[0].tls.cert: cannot read '{tmp_path}': not a regular file",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_tls_unreadable_file(tmp_path: Path) -> None:
    secret = tmp_path / "key.pem"
    secret.write_text("k")
    secret.chmod(0)
    data = edited("listeners.0.tls", {"cert": str(secret), "key": str(secret)})
    assert errors_of(data)[0] == f"listeners[0].tls.cert: cannot read '{secret}': permission denied"


def test_tls_client_cert_needs_ca(pki: Pki) -> None:
    cert, key = pki.issue("needs-ca")
    data = edited(
        "listeners.0.tls", {"cert": str(cert), "key": str(key), "require_client_cert": True}
    )
    assert errors_of(data) == (
        (
            "listeners[0].tls.ca: required when require_client_cert is true "
            "(the CA that signs client certificates)"
        ),
    )
    data["listeners"][0]["tls"]["require_client_cert"] = "yes"
    assert errors_of(data) == (
        "listeners[0].tls.require_client_cert: expected a boolean, got 'yes'",
    )


def test_tls_not_pem_is_reported_at_load(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    data = edited("listeners.0.tls", {"cert": str(junk), "key": str(junk)})
    (err,) = errors_of(data)
    assert err.startswith(f"listeners[0].tls: cannot use certificate '{junk}' with key '{junk}'")
    assert "not PEM, or the key does not match the certificate" in err


def test_tls_key_of_another_certificate(pki: Pki) -> None:
    cert, _ = pki.issue("mismatch-a")
    _, other_key = pki.issue("mismatch-b")
    data = edited("listeners.0.tls", {"cert": str(cert), "key": str(other_key)})
    (err,) = errors_of(data)
    assert err.startswith("listeners[0].tls: cannot use certificate")
    assert "KEY_VALUES_MISMATCH" in err or "key values mismatch" in err


def test_tls_bad_ca_file(pki: Pki, tmp_path: Path) -> None:
    cert, key = pki.issue("bad-ca")
    junk = tmp_path / "ca.pem"
    junk.write_text("junk")
    data = edited("listeners.0.tls", {"cert": str(cert), "key": str(key), "ca": str(junk)})
    (err,) = errors_of(data)
    assert err.startswith(f"listeners[0].tls: cannot use CA file '{junk}'")


def test_tls_certificates_by_sni(pki: Pki) -> None:
    a, ak = pki.issue("sni-a", dns=("a.example",))
    b, bk = pki.issue("sni-b", dns=("*.b.example",))
    data = edited(
        "listeners.0.tls",
        {
            "cert": str(a), "key": str(ak), "min_version": 1.3,
            "certificates": [{"cert": str(b), "key": str(bk), "server_names": ["*.B.example"]}],
        },
    )
    tls = parse_config(data).listeners[0].tls
    assert tls is not None
    assert [(c.cert, c.server_names) for c in tls.certificates] == [
        (str(a), ()), (str(b), ("*.b.example",))
    ]
    assert (tls.cert, tls.key, tls.min_version) == (str(a), str(ak), "1.3")


def test_tls_certificate_list_errors(pki: Pki) -> None:
    a, ak = pki.issue("sni-errors")
    data = edited(
        "listeners.0.tls",
        {"certificates": [{"cert": str(a), "key": str(ak), "server_names": ["a.*", ""]},
                          {"cert": str(a)}],
         "min_version": "1.1"},
    )
    assert errors_of(data) == (
        "listeners[0].tls.certificates[0].server_names[0]: expected a host name or *.suffix,"
        " got 'a.*'",
        "listeners[0].tls.certificates[0].server_names[1]: must not be empty",
        "listeners[0].tls.certificates[1].key: missing required key",
        "listeners[0].tls.min_version: unknown value '1.1' (did you mean '1.3'?);"
        " expected one of 1.2, 1.3",
    )
    data = edited("listeners.0.tls", {"ca": str(pki.ca)})
    assert errors_of(data) == (
        "listeners[0].tls: needs a certificate: cert and key, or a certificates list",
    )


def test_cluster_tls(pki: Pki) -> None:
    cert, key = pki.issue("cluster-client")
    data = edited(
        "clusters.0.tls",
        {"sni": "api.internal", "ca": str(pki.ca), "cert": str(cert), "key": str(key),
         "alpn": ["h2"]},
    )
    tls = parse_config(data).clusters[0].tls
    assert tls is not None
    assert (tls.sni, tls.ca, tls.cert, tls.key, tls.verify, tls.alpn) == (
        "api.internal", str(pki.ca), str(cert), str(key), True, ("h2",)
    )
    assert parse_config(edited("clusters.0.tls", True)).clusters[0].tls is not None
    assert parse_config(base()).clusters[0].tls is None


def test_cluster_tls_errors(pki: Pki, tmp_path: Path) -> None:
    cert, _key = pki.issue("cluster-errors")
    junk = tmp_path / "junk.pem"
    junk.write_text("junk")
    data = edited("clusters.0.tls", {"cert": str(cert), "verify": False, "ca": str(pki.ca)})
    assert errors_of(data) == (
        "clusters[0].tls.key: required with cert (a client certificate needs both)",
        "clusters[0].tls.ca: has no effect with verify: false; remove one of them",
    )
    data = edited("clusters.0.tls", {"ca": str(junk), "sni": "bad name", "verfy": True})
    assert errors_of(data)[0].startswith("clusters[0].tls.verfy: unknown key")
    assert "clusters[0].tls.sni: expected a host name or *.suffix, got 'bad name'" in errors_of(
        data
    )
    data = edited("clusters.0.tls", {"ca": str(junk)})
    assert errors_of(data) == (
        f"clusters[0].tls: cannot use CA file '{junk}': NO_CERTIFICATE_OR_CRL_FOUND (not PEM)",
    )


def test_http_limits() -> None:
    data = edited("listeners.0.protocol", "http1")
    data["listeners"][0]["route"] = "http_routes"
    data["routes"].append({"name": "http_routes", "virtual_hosts": [
        {"name": "all", "domains": ["*"], "rules": [{"match": {"prefix": "/"},
                                                     "direct_response": {"status": 200}}]}]})
    lst = data["listeners"][0]
    lst.update(max_header_size="8KiB", max_header_count=50, max_body_size="1MiB",
               max_concurrent_streams=10)
    cfg = parse_config(data).listeners[0]
    assert (cfg.max_header_size, cfg.max_header_count, cfg.max_body_size,
            cfg.max_concurrent_streams) == (8192, 50, 1 << 20, 10)
    lst.update(max_header_size="100B", max_header_count=0, max_body_size=-1,
               max_concurrent_streams="x")
    assert errors_of(data) == (
        "listeners[0].max_header_size: must be from 1024 to 1048576 bytes, got '100B'",
        "listeners[0].max_header_count: must be from 1 to 10000, got 0",
        "listeners[0].max_body_size: negative size -1",
        "listeners[0].max_concurrent_streams: expected an integer, got 'x'",
    )
    tcp = edited("listeners.1.max_body_size", "1KiB")
    assert errors_of(tcp) == (
        "listeners[1].max_body_size: applies to HTTP listeners only, not tcp",
    )


# ------------------------------------------------------------------- many mistakes at once


def test_five_mistakes_five_lines() -> None:
    data = base()
    data["listeners"][0]["protocl"] = "bolt"  # 1: typo'd key
    data["listeners"][1]["address"] = "abc"  # 2: bad address
    data["routes"][0]["rules"][0]["cluster"] = "bolt_backnd"  # 3: dangling reference
    data["clusters"][0]["lb"] = "round_robbin"  # 4: enum typo
    data["clusters"].append({"name": "echo", "endpoints": ["a:1"]})  # 5: duplicate name
    assert sorted(errors_of(data)) == sorted(
        [
            "listeners[0].protocl: unknown key (did you mean 'protocol'?)",
            "listeners[1].address: 'abc' is not host:port",
            (
                "routes[0].rules[0].cluster: no cluster named 'bolt_backnd' "
                "(did you mean 'bolt_backend'?)"
            ),
            (
                "clusters[0].lb: unknown value 'round_robbin' (did you mean 'round_robin'?); "
                "expected one of round_robin, random, least_request"
            ),
            "clusters[2].name: duplicate cluster name 'echo' (first at clusters[1])",
        ]
    )


def test_bad_values_do_not_cascade() -> None:
    # A bad cluster name must not also produce "no cluster named ..." for its users,
    # and a bad protocol must not produce a protocol mismatch.
    data = edited("clusters.1.name", 5)
    data["clusters"][0]["protocol"] = "bolt2"
    assert errors_of(data) == (
        (
            "clusters[0].protocol: unknown value 'bolt2' (did you mean 'bolt'?); expected one of "
            "tcp, bolt, http1, http2, grpc, redis, memcache"
        ),
        "clusters[1].name: expected a string, got 5",
    )


def test_errors_come_in_one_config_error_with_all_lines() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"workers": 0, "drain_timeout": "x", "log": {"level": "loud"}})
    assert len(exc.value.errors) == 3
    assert str(exc.value) == "\n".join(exc.value.errors)


# ---------------------------------------------------------------------- whole documents


def test_empty_config() -> None:
    assert errors_of(None) == ("<config>: empty config",)


def test_top_level_not_a_mapping() -> None:
    assert errors_of([1, 2], source="x.yaml") == (
        (
            "x.yaml: expected a mapping of top-level keys (admin, workers, drain_timeout, log, "
            "demo_upstreams, listeners, routes, clusters, xds), got a list"
        ),
    )


def test_non_string_keys() -> None:
    assert errors_of({1: "x"}) == ("top level: key 1 is not a string",)
    assert errors_of({"log": {None: "x"}}) == ("log: key null is not a string",)


def load_errors(tmp_path: Path, text: str) -> tuple[str, ...]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return tuple(line.replace(str(path), "c.yaml") for line in exc.value.errors)


def test_load_empty_file(tmp_path: Path) -> None:
    assert load_errors(tmp_path, "# nothing here\n") == ("c.yaml: empty config",)


def test_load_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = "listeners:\n  - name: a\n    address: [1, 2\n"
    (line,) = load_errors(tmp_path, text)
    assert line.startswith("c.yaml:4:1: invalid YAML: ")


def test_load_yaml_bad_indentation(tmp_path: Path) -> None:
    text = "listeners:\n  - name: a\n   address: x\n"
    assert load_errors(tmp_path, text) == (
        (
            "c.yaml:3:4: invalid YAML: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block collection)"
        ),
    )


def test_load_duplicate_yaml_keys(tmp_path: Path) -> None:
    text = BASE.replace("    cluster: echo\n", "    cluster: echo\n    cluster: echo\n")
    assert load_errors(tmp_path, text) == (
        "c.yaml:10:5: duplicate key 'cluster' (first at line 9)",
    )


def test_load_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = BASE.replace(
        "clusters:\n",
        "clusters:\n  - &tmpl {name: t, endpoints: [a:1]}\n  - <<: *tmpl\n    name: t2\n",
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert [c.name for c in load_config(path).clusters][:2] == ["t", "t2"]


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "nope.yaml")
    assert exc.value.errors == (f"{tmp_path / 'nope.yaml'}: cannot read config: no such file",)


def test_load_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"workers: \xff\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.errors == (f"{path}: not UTF-8 text (byte 9)",)


def test_load_errors_combine_yaml_and_schema_lines(tmp_path: Path) -> None:
    assert load_errors(tmp_path, "workers: 1\nworkers: 0\n") == (
        "c.yaml:2:1: duplicate key 'workers' (first at line 1)",
        "workers: must be >= 1, got 0",
    )


# ----------------------------------------------------------------------------- default.yaml


def test_default_config_loads() -> None:
    assert DEFAULT_CONFIG_PATH.is_file()
    config = load_default_config()
    assert config == load_config(DEFAULT_CONFIG_PATH)
    assert config.admin is not None and str(config.admin.address) == "127.0.0.1:34901"
    assert config.log.format == "text"
    assert {(d.name, d.protocol, str(d.address)) for d in config.demo_upstreams} == {
        ("demo_bolt", "bolt", "127.0.0.1:12201"),
        ("demo_echo", "tcp", "127.0.0.1:12301"),
    }
    bolt_in, tcp_in = config.listeners
    assert (bolt_in.name, bolt_in.protocol, str(bolt_in.address), bolt_in.route) == (
        "bolt_in",
        "bolt",
        "127.0.0.1:12200",
        "demo_routes",
    )
    assert (tcp_in.name, tcp_in.protocol, str(tcp_in.address), tcp_in.cluster) == (
        "tcp_in",
        "tcp",
        "127.0.0.1:12300",
        "echo",
    )
    (rule,) = config.routes[0].rules
    assert rule.match.service == "com.alipay.rpc.common.service.facade.pb.SampleServicePb:1.0"
    assert (rule.cluster, rule.timeout) == ("bolt_demo", 3.0)
    assert {(c.name, c.protocol, str(c.endpoints[0].address)) for c in config.clusters} == {
        ("bolt_demo", "bolt", "127.0.0.1:12201"),
        ("echo", "tcp", "127.0.0.1:12301"),
    }


# ------------------------------------------------------------------------- redis / memcache

REDIS = """
listeners:
  - {name: cache, address: 127.0.0.1:6380, protocol: redis, route: keys, password: s3cret}
routes:
  - name: keys
    rules:
      - match: {key_prefix: "user:", commands: [GET, set]}
        cluster: users
        mirror: shadow
        timeout: 250ms
      - cluster: users
clusters:
  - name: users
    protocol: redis
    endpoints: [127.0.0.1:7001, 127.0.0.1:7002]
    password: up
    hash_tag: "{}"
  - {name: shadow, protocol: redis, endpoints: [127.0.0.1:7003]}
"""


def test_redis_config() -> None:
    cfg = parse_config(yaml.safe_load(REDIS))
    lst = cfg.listeners[0]
    assert (lst.protocol, lst.password) == ("redis", "s3cret")
    rule = cfg.routes[0].rules[0]
    assert (rule.match.key_prefix, rule.match.commands, rule.mirror, rule.timeout) == (
        "user:", ("get", "set"), "shadow", 0.25)
    users = cfg.clusters[0]
    assert (users.password, users.hash_tag) == ("up", "{}")


def test_redis_config_errors() -> None:
    data = yaml.safe_load(REDIS)
    data["clusters"][0]["hash_tag"] = "{{"
    data["routes"][0]["rules"][0]["mirror"] = "nowhere"
    data["routes"][0]["rules"][1]["match"] = {"service": "x"}
    assert errors_of(data) == (
        "clusters[0].hash_tag: expected two different characters such as '{}', got '{{'",
        "routes[0].rules[0].mirror: no cluster named 'nowhere'; defined: users, shadow",
        "routes[0].rules[1].match: listener 'cache' (redis) matches commands by key_prefix and"
        " commands, not service/method/headers",
    )
    other = base()
    other["listeners"][1]["password"] = "x"
    other["clusters"][1]["hash_tag"] = "{}"
    other["routes"][0]["rules"][0]["match"]["key_prefix"] = "a"
    assert errors_of(other) == (
        "listeners[1].password: applies to redis listeners only, not tcp",
        "clusters[1].hash_tag: applies to redis and memcache clusters only, not tcp",
        "routes[0].rules[0].match: key_prefix and commands match redis/memcache commands;"
        " listener 'bolt_in' is bolt",
    )


def test_translate_options_checked_by_the_translator() -> None:
    from mosn_py.cli import translator_pairs
    from mosn_py.extensions import default_registries

    pairs = translator_pairs(default_registries())
    data = base()
    data["clusters"][0]["protocol"] = "grpc"
    data["routes"][0]["rules"][0]["translate"] = {"services": {"a.B:1.0": "a.B"}}
    cfg = parse_config(data, translations=pairs)
    assert dict(cfg.routes[0].rules[0].translate) == {"services": {"a.B:1.0": "a.B"}}
    data["routes"][0]["rules"][0]["translate"] = {"servics": {}}
    (err,) = errors_of(data, translations=pairs)
    assert err.startswith("routes[0].rules[0].translate: servics: unknown bolt->grpc option")
    same = base()
    same["routes"][0]["rules"][0]["translate"] = {"services": {}}
    assert errors_of(same, translations=pairs) == (
        "routes[0].rules[0].translate: the listener and the cluster both speak bolt: nothing"
        " to translate",
    )
    assert "no translator" in errors_of(
        edited("clusters.0.protocol", "redis"), translations=pairs)[0]
