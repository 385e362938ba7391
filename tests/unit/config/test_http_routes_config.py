"""HTTP route configs (``routes[i].virtual_hosts``): the full schema into the model, one exact
error line per mistake, and the cross checks against clusters and listeners."""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosn_py.config import check_protocol_compatibility, parse_config
from mosn_py.config.model import (
    CLUSTER_PROTOCOLS,
    DEFAULT_HTTP_ROUTE_TIMEOUT,
    HTTP_LISTENER_PROTOCOLS,
    LISTENER_PROTOCOLS,
    Address,
    ClusterConfig,
    Config,
    DirectResponse,
    Endpoint,
    HeaderMatcher,
    HeaderMutation,
    HeaderValue,
    HttpRouteMatch,
    HttpRouteRule,
    ListenerConfig,
    QueryMatcher,
    Redirect,
    RetryPolicy,
    RouteConfig,
    RouteMatch,
    RouteRule,
    VirtualHost,
    WeightedCluster,
)
from mosn_py.errors import ConfigError
from mosn_py.router.http_routes import HttpRouteTable

# A small valid HTTP route config; each error test breaks one thing in a copy of it.
BASE = """
routes:
  - name: gw
    virtual_hosts:
      - name: api
        domains: [api.example.com]
        rules:
          - match: {prefix: /v1/}
            cluster: api_v1
clusters:
  - {name: api_v1, protocol: bolt, endpoints: [127.0.0.1:12201]}
"""

VH = "routes[0].virtual_hosts[0]"
RULE = f"{VH}.rules[0]"


def base() -> dict[str, Any]:
    data = yaml.safe_load(BASE)
    assert isinstance(data, dict)
    return data


def errors_of(data: object, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, **kwargs)
    return exc.value.errors


def route(d: dict[str, Any]) -> dict[str, Any]:
    r: dict[str, Any] = d["routes"][0]
    return r


def vhost(d: dict[str, Any]) -> dict[str, Any]:
    v: dict[str, Any] = route(d)["virtual_hosts"][0]
    return v


def rule(d: dict[str, Any]) -> dict[str, Any]:
    r: dict[str, Any] = vhost(d)["rules"][0]
    return r


def act(**action: Any) -> Callable[[dict[str, Any]], object]:
    """An edit replacing the first rule's action (cluster) with ``action``."""

    def edit(d: dict[str, Any]) -> None:
        del rule(d)["cluster"]
        rule(d).update(action)

    return edit


def test_base_is_valid() -> None:
    (r,) = parse_config(base()).routes
    assert r == RouteConfig(
        "gw",
        virtual_hosts=(
            VirtualHost(
                "api",
                ("api.example.com",),
                (HttpRouteRule(HttpRouteMatch(prefix="/v1/"), cluster="api_v1"),),
            ),
        ),
    )
    assert r.rules == ()


# ------------------------------------------------------------------------------ full example

FULL = """
routes:
  - name: gw
    virtual_hosts:
      - name: api
        domains: [API.example.com, "*.example.com", "api.*", "*"]
        request_headers: {add: [{name: X-GW, value: "1", append: false}], remove: [X-Internal]}
        response_headers: {add: [{name: x-served-by, value: gw}], remove: [server]}
        rules:
          - match:
              prefix: /v1/
              case_sensitive: false
              headers: {x-canary: "1", ":method": {regex: "GET|HEAD"}, X-Trace: {present: true}}
              query: {debug: {present: true}, v: {exact: "2"}, id: {regex: "[0-9]+"}}
              grpc: false
            weighted_clusters: [{cluster: a, weight: 90}, {cluster: b, weight: 10}]
            prefix_rewrite: /
            host_rewrite: backend.internal
            timeout: 5s
            retry: {attempts: 2, "on": [connect-failure, reset]}
            request_headers: {add: [{name: x-route, value: v1}]}
            response_headers: {remove: [x-powered-by]}
          - match: {path: /healthz}
            direct_response: {status: 200, body: "ok\\n"}
          - match: {regex: "^/old/.*"}
            redirect: {scheme: https, host: new.example.com, port: 8443, path: /new, code: 308,
                       strip_query: true}
          - match: {prefix: /docs/}
            redirect: {prefix_rewrite: /manual/}
          - match: {grpc: true}
            cluster: a
            timeout: 0
          - cluster: b
      - name: web
        domains: [www.example.org]
        rules: [{cluster: b}]
clusters:
  - {name: a, protocol: bolt, endpoints: [127.0.0.1:12201]}
  - {name: b, protocol: bolt, endpoints: [127.0.0.1:12202]}
"""


def test_full_example_into_model() -> None:
    config = parse_config(yaml.safe_load(FULL))
    (r,) = config.routes
    api, web = r.virtual_hosts
    assert api.name == "api"
    assert api.domains == ("api.example.com", "*.example.com", "api.*", "*")  # lower case
    assert api.request_headers == HeaderMutation(
        add=(HeaderValue("x-gw", "1", append=False),), remove=("x-internal",)
    )
    assert api.response_headers == HeaderMutation(
        add=(HeaderValue("x-served-by", "gw"),), remove=("server",)
    )
    canary, health, old, docs, grpc, default = api.rules
    assert canary == HttpRouteRule(
        match=HttpRouteMatch(
            prefix="/v1/",
            case_sensitive=False,
            headers=(
                HeaderMatcher("x-canary", exact="1"),
                HeaderMatcher(":method", regex="GET|HEAD"),
                HeaderMatcher("x-trace"),
            ),
            query=(
                QueryMatcher("debug"),
                QueryMatcher("v", exact="2"),
                QueryMatcher("id", regex="[0-9]+"),
            ),
        ),
        weighted_clusters=(WeightedCluster("a", 90), WeightedCluster("b", 10)),
        prefix_rewrite="/",
        host_rewrite="backend.internal",
        timeout=5.0,
        retry=RetryPolicy(2, ("connect-failure", "reset")),
        request_headers=HeaderMutation(add=(HeaderValue("x-route", "v1"),)),
        response_headers=HeaderMutation(remove=("x-powered-by",)),
    )
    assert health == HttpRouteRule(
        HttpRouteMatch(path="/healthz"), direct_response=DirectResponse(200, "ok\n")
    )
    assert old == HttpRouteRule(
        HttpRouteMatch(regex="^/old/.*"),
        redirect=Redirect("https", "new.example.com", 8443, "/new", None, 308, True),
    )
    assert docs.redirect == Redirect(prefix_rewrite="/manual/")
    assert docs.redirect.code == 301  # the default
    assert grpc.match == HttpRouteMatch(prefix="/", grpc=True)  # no path condition = "/"
    assert grpc.timeout is None  # 0 = no timeout
    assert default == HttpRouteRule(HttpRouteMatch(prefix="/"), cluster="b")
    assert default.timeout == DEFAULT_HTTP_ROUTE_TIMEOUT == 15.0
    assert web == VirtualHost("web", ("www.example.org",), (default,))
    HttpRouteTable(r)  # the model compiles


# ---------------------------------------------------------------------------- error lines

ERRORS: list[tuple[str, Callable[[dict[str, Any]], object], tuple[str, ...]]] = [
    # route config: rules xor virtual_hosts
    (
        "rules and virtual_hosts",
        lambda d: route(d).update(rules=[{"cluster": "api_v1"}]),
        (
            "routes[0].virtual_hosts: not allowed together with rules; a route config has rules"
            " (bolt and other single-frame protocols) or virtual_hosts (HTTP), not both",
        ),
    ),
    (
        # virtual_hosts is reported bad, so what is under it is not cross-checked
        "rules and virtual_hosts, with unknown clusters",
        lambda d: (route(d).update(rules=[{"cluster": "bolt"}]), rule(d).update(cluster="api")),
        (
            "routes[0].virtual_hosts: not allowed together with rules; a route config has rules"
            " (bolt and other single-frame protocols) or virtual_hosts (HTTP), not both",
            "routes[0].rules[0].cluster: no cluster named 'bolt'; defined: api_v1",
        ),
    ),
    (
        "neither rules nor virtual_hosts",
        lambda d: route(d).pop("virtual_hosts"),
        ("routes[0].rules: missing required key",),
    ),
    (
        "misspelt virtual_hosts",
        lambda d: route(d).update(virtual_host=route(d).pop("virtual_hosts")),
        (
            "routes[0].virtual_host: unknown key (did you mean 'virtual_hosts'?)",
            "routes[0].rules: missing required key",
        ),
    ),
    (
        "empty virtual_hosts",
        lambda d: route(d).update(virtual_hosts=[]),
        ("routes[0].virtual_hosts: must not be empty (a route config needs at least one"
         " virtual host)",),
    ),
    (
        "virtual_hosts not a list",
        lambda d: route(d).update(virtual_hosts="api"),
        ("routes[0].virtual_hosts: expected a list, got 'api'",),
    ),
    # virtual hosts
    (
        "virtual host without keys",
        lambda d: route(d).update(virtual_hosts=[{}]),
        (
            f"{VH}.name: missing required key",
            f"{VH}.domains: missing required key",
            f"{VH}.rules: missing required key",
        ),
    ),
    (
        "misspelt domains",
        lambda d: vhost(d).update(domain=vhost(d).pop("domains")),
        (
            f"{VH}.domain: unknown key (did you mean 'domains'?)",
            f"{VH}.domains: missing required key",
        ),
    ),
    (
        "empty domains",
        lambda d: vhost(d).update(domains=[]),
        (f"{VH}.domains: must not be empty (a virtual host needs at least one domain;"
         " '*' = any)",),
    ),
    (
        "domains not a list",
        lambda d: vhost(d).update(domains="api.example.com"),
        (f"{VH}.domains: expected a list of domains, got 'api.example.com'",),
    ),
    (
        "inner wildcard",
        lambda d: vhost(d).update(domains=["api.*.com"]),
        (f"{VH}.domains[0]: 'api.*.com': a wildcard is one leading or trailing '*'"
         " (*.example.com, api.*) or '*' alone",),
    ),
    (
        "two wildcards",
        lambda d: vhost(d).update(domains=["*.example.*"]),
        (f"{VH}.domains[0]: '*.example.*': a wildcard is one leading or trailing '*'"
         " (*.example.com, api.*) or '*' alone",),
    ),
    (
        "space in a domain",
        lambda d: vhost(d).update(domains=["api example"]),
        (f"{VH}.domains[0]: 'api example' is not a domain (a host name, host:port or"
         " wildcard)",),
    ),
    (
        "empty domain",
        lambda d: vhost(d).update(domains=[""]),
        (f"{VH}.domains[0]: must not be empty",),
    ),
    (
        "domain in two virtual hosts (case-insensitive)",
        lambda d: route(d)["virtual_hosts"].append(
            {"name": "web", "domains": ["x.org", "API.Example.com"],
             "rules": [{"cluster": "api_v1"}]}
        ),
        ("routes[0].virtual_hosts[1].domains[1]: domain 'api.example.com' of virtual host 'web'"
         " is already used by virtual host 'api' (routes[0].virtual_hosts[0].domains[0])",),
    ),
    (
        "two virtual hosts with '*'",
        lambda d: (
            vhost(d).update(domains=["*"]),
            route(d)["virtual_hosts"].append(
                {"name": "web", "domains": ["*"], "rules": [{"cluster": "api_v1"}]}
            ),
        ),
        ("routes[0].virtual_hosts[1].domains[0]: domain '*' of virtual host 'web' is already"
         " used by virtual host 'api' (routes[0].virtual_hosts[0].domains[0])",),
    ),
    (
        "duplicate virtual host name",
        lambda d: route(d)["virtual_hosts"].append(
            {"name": "api", "domains": ["b.org"], "rules": [{"cluster": "api_v1"}]}
        ),
        ("routes[0].virtual_hosts[1].name: duplicate virtual host name 'api' (first at"
         " routes[0].virtual_hosts[0])",),
    ),
    (
        "empty rules",
        lambda d: vhost(d).update(rules=[]),
        (f"{VH}.rules: must not be empty (a virtual host needs at least one rule)",),
    ),
    # actions
    (
        "no action",
        lambda d: rule(d).pop("cluster"),
        (f"{RULE}: give exactly one of cluster, weighted_clusters, direct_response, redirect"
         " (got 0)",),
    ),
    (
        "two actions",
        lambda d: rule(d).update(direct_response={"status": 200}),
        (f"{RULE}: give exactly one of cluster, weighted_clusters, direct_response, redirect"
         " (got 2)",),
    ),
    (
        "misspelt action (one line, not two)",
        lambda d: rule(d).update(clustr=rule(d).pop("cluster")),
        (f"{RULE}.clustr: unknown key (did you mean 'cluster'?)",),
    ),
    # match
    (
        "prefix and path",
        lambda d: rule(d)["match"].update(path="/v1/x"),
        (f"{RULE}.match: give at most one of prefix, path, regex (got 2)",),
    ),
    (
        "prefix without a slash",
        lambda d: rule(d)["match"].update(prefix="v1/"),
        (f"{RULE}.match.prefix: must start with '/', got 'v1/'",),
    ),
    (
        "path with a query",
        lambda d: rule(d).update(match={"path": "/a?b=1"}),
        (f"{RULE}.match.path: '/a?b=1': paths are matched without the query string (match"
         " query parameters with 'query')",),
    ),
    (
        "path with a space",
        lambda d: rule(d).update(match={"path": "/a b"}),
        (f"{RULE}.match.path: '/a b': no spaces, control characters or '#' in a path",),
    ),
    (
        "bad regex",
        lambda d: rule(d).update(match={"regex": "/(v1"}),
        (f"{RULE}.match.regex: invalid regular expression '/(v1': missing ), unterminated"
         " subpattern at position 1",),
    ),
    (
        "case_sensitive with regex",
        lambda d: rule(d).update(match={"regex": "/v1/.*", "case_sensitive": False}),
        (f"{RULE}.match.case_sensitive: applies to prefix and path only; write (?i) in the"
         " regex instead",),
    ),
    (
        "misspelt match key",
        lambda d: rule(d)["match"].update(prefx="/"),
        (f"{RULE}.match.prefx: unknown key (did you mean 'prefix'?)",),
    ),
    (
        "bad header name",
        lambda d: rule(d)["match"].update(headers={"X Canary": "1"}),
        (f"{RULE}.match.headers['X Canary']: 'X Canary' is not a valid header name (letters,"
         " digits and !#$%&'*+-.^_`|~)",),
    ),
    (
        "unknown pseudo-header",
        lambda d: rule(d)["match"].update(headers={":methd": "GET"}),
        (f"{RULE}.match.headers[':methd']: unknown pseudo-header ':methd' (did you mean"
         " ':method'?); expected one of :method, :scheme, :authority, :path, :protocol",),
    ),
    (
        "header matcher with two forms",
        lambda d: rule(d)["match"].update(headers={"x": {"exact": "1", "regex": "1"}}),
        (f"{RULE}.match.headers.x: give exactly one of exact, regex, present (got 2)",),
    ),
    (
        "query present: false",
        lambda d: rule(d)["match"].update(query={"debug": {"present": False}}),
        (f"{RULE}.match.query.debug.present: only 'present: true' is supported",),
    ),
    (
        "query bad regex",
        lambda d: rule(d)["match"].update(query={"id": {"regex": "["}}),
        (f"{RULE}.match.query.id.regex: invalid regular expression '[': unterminated"
         " character set at position 0",),
    ),
    (
        "empty query parameter name",
        lambda d: rule(d)["match"].update(query={"": "x"}),
        (f"{RULE}.match.query['']: query parameter name must not be empty",),
    ),
    (
        "query value not a string",
        lambda d: rule(d)["match"].update(query={"v": 2}),
        (f"{RULE}.match.query.v: expected a string or a mapping of exact/regex/present, got 2",),
    ),
    (
        "grpc not a boolean",
        lambda d: rule(d)["match"].update(grpc="yes"),
        (f"{RULE}.match.grpc: expected a boolean, got 'yes'",),
    ),
    # weighted clusters
    (
        "empty weighted_clusters",
        act(weighted_clusters=[]),
        (f"{RULE}.weighted_clusters: must not be empty (give at least one {{cluster, weight}})",),
    ),
    (
        "weight 0",
        act(weighted_clusters=[{"cluster": "api_v1", "weight": 0}]),
        (f"{RULE}.weighted_clusters[0].weight: must be >= 1, got 0",),
    ),
    (
        "weight missing",
        act(weighted_clusters=[{"cluster": "api_v1"}]),
        (f"{RULE}.weighted_clusters[0].weight: missing required key",),
    ),
    (
        "weighted cluster twice",
        act(weighted_clusters=[{"cluster": "api_v1", "weight": 1},
                               {"cluster": "api_v1", "weight": 2}]),
        (f"{RULE}.weighted_clusters[1].cluster: duplicate cluster 'api_v1' (first at"
         f" {RULE}.weighted_clusters[0])",),
    ),
    # direct responses
    (
        "status 100",
        act(direct_response={"status": 100}),
        (f"{RULE}.direct_response.status: must be from 200 to 599, got 100",),
    ),
    (
        "status as a string",
        act(direct_response={"status": "200"}),
        (f"{RULE}.direct_response.status: expected an integer, got '200'",),
    ),
    (
        "status missing",
        act(direct_response={"body": "ok"}),
        (f"{RULE}.direct_response.status: missing required key",),
    ),
    (
        "body with 204",
        act(direct_response={"status": 204, "body": "x"}),
        (f"{RULE}.direct_response.body: a 204 response has no body",),
    ),
    (
        "direct_response not a mapping",
        act(direct_response="ok"),
        (f"{RULE}.direct_response: expected a mapping, got 'ok'",),
    ),
    # redirects
    (
        "redirect code 300",
        act(redirect={"host": "a.org", "code": 300}),
        (f"{RULE}.redirect.code: must be one of 301, 302, 303, 307, 308, got 300",),
    ),
    (
        "redirect that changes nothing",
        act(redirect={"code": 302}),
        (f"{RULE}.redirect: a redirect must change something: give scheme, host, port, path,"
         " prefix_rewrite or strip_query",),
    ),
    (
        "redirect path and prefix_rewrite",
        act(redirect={"path": "/a", "prefix_rewrite": "/b"}),
        (f"{RULE}.redirect.prefix_rewrite: not allowed together with path; give one",),
    ),
    (
        "redirect prefix_rewrite with a path match",
        lambda d: (act(redirect={"prefix_rewrite": "/b/"})(d),
                   rule(d).update(match={"path": "/a"})),
        (f"{RULE}.redirect.prefix_rewrite: only with a prefix match (match.prefix)",),
    ),
    (
        "misspelt scheme",
        act(redirect={"scheme": "htps"}),
        (f"{RULE}.redirect.scheme: unknown value 'htps' (did you mean 'https'?); expected one"
         " of http, https",),
    ),
    (
        "redirect port out of range",
        act(redirect={"port": 70000}),
        (f"{RULE}.redirect.port: must be from 1 to 65535, got 70000",),
    ),
    (
        "redirect host with a port, and a port",
        act(redirect={"host": "a.org:8080", "port": 8443}),
        (f"{RULE}.redirect.host: 'a.org:8080' has a port, and so does redirect.port",),
    ),
    (
        "redirect host with a path",
        act(redirect={"host": "a.org/x"}),
        (f"{RULE}.redirect.host: 'a.org/x' is not a host or host:port",),
    ),
    (
        "redirect path without a slash",
        act(redirect={"path": "new"}),
        (f"{RULE}.redirect.path: must start with '/', got 'new'",),
    ),
    # forwarding options
    (
        "prefix_rewrite with a path match",
        lambda d: rule(d).update(match={"path": "/v1"}, prefix_rewrite="/v2"),
        (f"{RULE}.prefix_rewrite: only with a prefix match (match.prefix)",),
    ),
    (
        "prefix_rewrite without a slash",
        lambda d: rule(d).update(prefix_rewrite="v2/"),
        (f"{RULE}.prefix_rewrite: must start with '/', got 'v2/'",),
    ),
    (
        "host_rewrite with a scheme",
        lambda d: rule(d).update(host_rewrite="http://backend"),
        (f"{RULE}.host_rewrite: 'http://backend' is not a host or host:port",),
    ),
    (
        "timeout without a unit",
        lambda d: rule(d).update(timeout="5"),
        (f"{RULE}.timeout: duration '5' has no unit (use e.g. 250ms, 3s, 1.5s, 2m, 1h)",),
    ),
    (
        "retry on an unknown reason",
        lambda d: rule(d).update(retry={"on": ["5xx"]}),
        (f"{RULE}.retry.on[0]: unknown value '5xx'; expected one of connect-failure, reset",),
    ),
    (
        "forwarding options on a direct response",
        lambda d: (act(direct_response={"status": 404})(d),
                   rule(d).update(timeout="1s", host_rewrite="b")),
        (
            f"{RULE}.host_rewrite: only for forwarded requests (cluster or weighted_clusters),"
            " not with direct_response",
            f"{RULE}.timeout: only for forwarded requests (cluster or weighted_clusters),"
            " not with direct_response",
        ),
    ),
    # header mutations
    (
        "adding a pseudo-header",
        lambda d: rule(d).update(request_headers={"add": [{"name": ":path", "value": "/"}]}),
        (f"{RULE}.request_headers.add[0].name: pseudo-header ':path' cannot be set or removed"
         " here (use prefix_rewrite or host_rewrite; pseudo-headers may only be matched)",),
    ),
    (
        "adding host to requests",
        lambda d: vhost(d).update(request_headers={"add": [{"name": "Host", "value": "x"}]}),
        (f"{VH}.request_headers.add[0].name: 'host' cannot be set or removed here (use"
         " host_rewrite)",),
    ),
    (
        "removing a pseudo-header",
        lambda d: vhost(d).update(response_headers={"remove": [":status"]}),
        (f"{VH}.response_headers.remove[0]: pseudo-header ':status' cannot be set or removed"
         " here (use prefix_rewrite or host_rewrite; pseudo-headers may only be matched)",),
    ),
    (
        "bad header name to remove",
        lambda d: vhost(d).update(request_headers={"remove": ["x internal"]}),
        (f"{VH}.request_headers.remove[0]: 'x internal' is not a valid header name (letters,"
         " digits and !#$%&'*+-.^_`|~)",),
    ),
    (
        "CR LF in a header value",
        lambda d: vhost(d).update(response_headers={"add": [{"name": "x", "value": "a\r\nb"}]}),
        (f"{VH}.response_headers.add[0].value: 'a\\r\\nb': a header value cannot contain CR,"
         " LF or NUL",),
    ),
    (
        "header value not a string",
        lambda d: vhost(d).update(response_headers={"add": [{"name": "x", "value": 1}]}),
        (f"{VH}.response_headers.add[0].value: expected a string, got 1",),
    ),
    (
        "header value missing",
        lambda d: vhost(d).update(request_headers={"add": [{"name": "x"}]}),
        (f"{VH}.request_headers.add[0].value: missing required key",),
    ),
    (
        "append not a boolean",
        lambda d: vhost(d).update(
            request_headers={"add": [{"name": "x", "value": "1", "append": "no"}]}
        ),
        (f"{VH}.request_headers.add[0].append: expected a boolean, got 'no'",),
    ),
    (
        "misspelt mutation key",
        lambda d: vhost(d).update(response_headers={"ad": []}),
        (f"{VH}.response_headers.ad: unknown key (did you mean 'add'?)",),
    ),
    # cross checks
    (
        "unknown cluster",
        lambda d: rule(d).update(cluster="api_v2"),
        (f"{RULE}.cluster: no cluster named 'api_v2' (did you mean 'api_v1'?)",),
    ),
    (
        "unknown weighted cluster",
        act(weighted_clusters=[{"cluster": "api_v1", "weight": 1},
                               {"cluster": "api", "weight": 1}]),
        (f"{RULE}.weighted_clusters[1].cluster: no cluster named 'api' (did you mean"
         " 'api_v1'?)",),
    ),
    (
        "bolt listener on virtual hosts",
        lambda d: d.update(
            listeners=[{"name": "b", "address": "127.0.0.1:1", "protocol": "bolt", "route": "gw"}]
        ),
        ("routes[0]: virtual_hosts are HTTP routing; listener 'b' (bolt) needs rules",),
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [(e, x) for _, e, x in ERRORS], ids=[n for n, _, _ in ERRORS]
)
def test_error_lines(edit: Callable[[dict[str, Any]], object], expected: tuple[str, ...]) -> None:
    data = base()
    edit(data)
    assert errors_of(data) == expected


def test_response_headers_may_set_host() -> None:
    data = base()
    vhost(data)["response_headers"] = {"add": [{"name": "Host", "value": "x"}]}
    (vh,) = parse_config(data).routes[0].virtual_hosts
    assert vh.response_headers.add == (HeaderValue("host", "x"),)


def test_domains_with_ports_and_ipv6() -> None:
    data = base()
    vhost(data)["domains"] = ["api.example.com:8080", "[::1]:8080", "10.0.0.1", "*-bar.example.com"]
    (vh,) = parse_config(data).routes[0].virtual_hosts
    assert vh.domains == ("api.example.com:8080", "[::1]:8080", "10.0.0.1", "*-bar.example.com")


# --------------------------------------------------------------- listener kinds (HTTP engine)


@pytest.fixture
def http_listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP listener (and cluster) protocols, as the HTTP engine will add them."""
    monkeypatch.setattr(
        "mosn_py.config.loader.LISTENER_PROTOCOLS", (*LISTENER_PROTOCOLS, *HTTP_LISTENER_PROTOCOLS)
    )
    monkeypatch.setattr(
        "mosn_py.config.loader.CLUSTER_PROTOCOLS", (*CLUSTER_PROTOCOLS, "http1", "http2", "grpc")
    )


def with_http_listener(protocol: str = "http1") -> dict[str, Any]:
    data = base()
    data["listeners"] = [
        {"name": "gw_in", "address": "127.0.0.1:8080", "protocol": protocol, "route": "gw"}
    ]
    return data


@pytest.mark.usefixtures("http_listeners")
@pytest.mark.parametrize("protocol", HTTP_LISTENER_PROTOCOLS)
def test_http_listener_on_rules_is_an_error(protocol: str) -> None:
    data = with_http_listener(protocol)
    route(data).pop("virtual_hosts")
    route(data)["rules"] = [{"match": {"service": ".*"}, "cluster": "api_v1"}]
    assert errors_of(data) == (
        f"routes[0]: rules are for single-frame protocols such as bolt; listener 'gw_in'"
        f" ({protocol}) needs virtual_hosts",
    )


@pytest.mark.usefixtures("http_listeners")
def test_http_listener_and_cluster_protocols() -> None:
    data = with_http_listener("http1")
    # api_v1 speaks bolt: needs a translator, like any other protocol change
    assert errors_of(data) == (
        f"{RULE}.cluster: cluster 'api_v1' speaks bolt but listener 'gw_in' (http1) routes to"
        " it and no translator from http1 to bolt exists",
    )
    parse_config(data, translations={("http1", "bolt")})
    # any HTTP version upstream needs no translator (HTTP heads are the same in all)
    for up in ("http1", "http2", "grpc"):
        data["clusters"][0]["protocol"] = up
        parse_config(data)


@pytest.mark.usefixtures("http_listeners")
def test_http_listener_to_original_dst_cluster() -> None:
    data = with_http_listener("http")
    data["clusters"] = [{"name": "api_v1", "type": "original_dst", "protocol": "http1"}]
    assert errors_of(data) == (
        f"{RULE}.cluster: cluster 'api_v1' is original_dst, which only tcp listeners can use;"
        " listener 'gw_in' (http) routes to it",
    )


def test_bolt_configs_unchanged_by_virtual_hosts() -> None:
    """A bolt listener with a rules route config: still valid, no virtual hosts."""
    text = textwrap.dedent(
        """
        listeners: [{name: b, address: 127.0.0.1:1, protocol: bolt, route: r}]
        routes: [{name: r, rules: [{match: {service: ".*"}, cluster: c}]}]
        clusters: [{name: c, protocol: bolt, endpoints: [127.0.0.1:2]}]
        """
    )
    (r,) = parse_config(yaml.safe_load(text)).routes
    assert r == RouteConfig("r", (RouteRule(RouteMatch(service=".*"), "c"),))
    assert r.virtual_hosts == ()


def test_check_protocol_compatibility_on_a_model() -> None:
    """The same checks on a model built elsewhere (xDS): paths are tuple positions."""
    http_route = RouteConfig(
        "gw",
        virtual_hosts=(
            VirtualHost("api", ("*",), (
                HttpRouteRule(HttpRouteMatch(), cluster="c"),
                HttpRouteRule(HttpRouteMatch(), weighted_clusters=(WeightedCluster("c", 1),
                                                                   WeightedCluster("t", 1))),
            )),
        ),
    )
    bolt_route = RouteConfig("r", (RouteRule(RouteMatch(), "c"),))
    ep = (Endpoint(Address("127.0.0.1", 2)),)
    config = Config(
        listeners=(
            ListenerConfig("b", Address("127.0.0.1", 1), "bolt", route="gw"),
            ListenerConfig("h", Address("127.0.0.1", 3), "http1", route="r"),
            ListenerConfig("h2", Address("127.0.0.1", 4), "http2", route="gw"),
        ),
        routes=(http_route, bolt_route),
        clusters=(ClusterConfig("c", "bolt", endpoints=ep), ClusterConfig("t", "http1",
                                                                          endpoints=ep)),
    )
    assert check_protocol_compatibility(config) == [
        "routes[0]: virtual_hosts are HTTP routing; listener 'b' (bolt) needs rules",
        "routes[1]: rules are for single-frame protocols such as bolt; listener 'h' (http1)"
        " needs virtual_hosts",
        "routes[0].virtual_hosts[0].rules[0].cluster: cluster 'c' speaks bolt but listener"
        " 'h2' (http2) routes to it and no translator from http2 to bolt exists",
        "routes[0].virtual_hosts[0].rules[1].weighted_clusters[0].cluster: cluster 'c' speaks"
        " bolt but listener 'h2' (http2) routes to it and no translator from http2 to bolt"
        " exists",
    ]
    assert check_protocol_compatibility(config, {("http2", "bolt")}) == [
        "routes[0]: virtual_hosts are HTTP routing; listener 'b' (bolt) needs rules",
        "routes[1]: rules are for single-frame protocols such as bolt; listener 'h' (http1)"
        " needs virtual_hosts",
    ]


# ------------------------------------------------------------------------------ property

FUZZ_KEYS = sorted(
    {
        "name", "domains", "rules", "virtual_hosts", "match", "prefix", "path", "regex",
        "case_sensitive", "headers", "query", "grpc", "cluster", "weighted_clusters", "weight",
        "direct_response", "status", "body", "redirect", "scheme", "host", "port",
        "prefix_rewrite", "code", "strip_query", "host_rewrite", "timeout", "retry",
        "request_headers", "response_headers", "add", "remove", "value", "append", "exact",
        "present",
    }
)
FUZZ_STRINGS = ["/", "/v1/", "v1", "*", "*.a.com", "a.*", "a*b", "(", ":method", "Host",
                ":path", "https", "a.org:80", "3s", "api_v1", "a\nb", ""]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(),
    st.text(max_size=10), st.sampled_from(FUZZ_STRINGS),
)
_json = st.recursive(
    _scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FUZZ_KEYS), st.text(max_size=6)), c,
                        max_size=5),
    ),
    max_leaves=30,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


FULL_DATA = yaml.safe_load(FULL)
FULL_PATHS = _paths(FULL_DATA)[1:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FULL_PATHS), _json), min_size=1, max_size=3))
def test_random_subtrees_give_config_error_or_a_compilable_model(
    edits: list[tuple[tuple[Any, ...], object]],
) -> None:
    data = copy.deepcopy(FULL_DATA)
    for path, value in edits:
        node: Any = data
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced this subtree
    try:
        config = parse_config(data)
    except ConfigError as exc:
        assert exc.errors and all(": " in line for line in exc.errors)
        return
    for r in config.routes:
        HttpRouteTable(r)  # whatever validates compiles


@pytest.mark.usefixtures("http_listeners")
def test_route_config_with_neither_gives_one_line() -> None:
    data = with_http_listener()
    route(data).pop("virtual_hosts")
    assert errors_of(data) == ("routes[0].rules: missing required key",)
    data = base()
    data["listeners"] = [{"name": "b", "address": "127.0.0.1:1", "protocol": "bolt",
                          "route": "gw"}]
    route(data).pop("virtual_hosts")
    assert errors_of(data) == ("routes[0].rules: missing required key",)
