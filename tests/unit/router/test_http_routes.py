"""HTTP route tables: virtual host precedence, rule matching, weighted picks, rewrites,
header mutations and redirect locations, table-driven."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import pytest

from mosn_py.codecs.base import HeaderList
from mosn_py.config.model import (
    DirectResponse,
    HeaderMatcher,
    HeaderMutation,
    HeaderValue,
    HttpRouteMatch,
    HttpRouteRule,
    QueryMatcher,
    Redirect,
    RouteConfig,
    VirtualHost,
    WeightedCluster,
)
from mosn_py.router.http_routes import (
    CompiledHttpRule,
    CompiledVirtualHost,
    HttpRouteTable,
    _query_params,
    apply_request_rewrites,
    apply_response_mutations,
    is_grpc,
    redirect_location,
    split_port,
)


def req(path: str = "/", authority: str | None = "a.test", *extra: tuple[str, str]) -> HeaderList:
    head = [(":method", "GET"), (":scheme", "http")]
    if authority is not None:
        head.append((":authority", authority))
    head.append((":path", path))
    return HeaderList([*head, *extra])


def to(cluster: str, match: HttpRouteMatch | None = None, **kw: Any) -> HttpRouteRule:
    return HttpRouteRule(match or HttpRouteMatch(prefix="/"), cluster=cluster, **kw)


def vhost(name: str, *domains: str, rules: tuple[HttpRouteRule, ...] = ()) -> VirtualHost:
    return VirtualHost(name, domains, rules or (to(name),))


def table(*hosts: VirtualHost) -> HttpRouteTable:
    return HttpRouteTable(RouteConfig("gw", virtual_hosts=hosts))


# ------------------------------------------------------------------------ virtual hosts

DOMAINS = table(
    vhost("exact", "api.example.com", "api.example.com:9000"),
    vhost("suffix_long", "*.api.example.com"),
    vhost("suffix", "*.example.com"),
    vhost("suffix_dash", "*-bar.example.org"),
    vhost("prefix_long", "api.example.*"),
    vhost("prefix", "api.*"),
    vhost("ipv6", "[::1]"),
    vhost("ipv6_port", "[::2]:8443"),
    vhost("any", "*"),
)


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("api.example.com", "exact"),
        ("API.Example.COM", "exact"),  # case-insensitive
        ("api.example.com:9000", "exact"),  # as is
        # without the port: the exact domain still beats the prefix wildcard "api.*",
        # which would match "api.example.com:8080" as is
        ("api.example.com:8080", "exact"),
        ("v1.api.example.com", "suffix_long"),  # the longest suffix wins
        ("www.example.com", "suffix"),
        ("WWW.EXAMPLE.COM:443", "suffix"),
        (".example.com", "any"),  # a wildcard stands for at least one character
        ("baz-bar.example.org", "suffix_dash"),
        ("-bar.example.org", "any"),
        ("api.example.net", "prefix_long"),  # the longest prefix wins
        ("api.other:8080", "prefix"),
        ("api.", "any"),
        ("example.com", "any"),
        ("[::1]:8080", "ipv6"),
        ("[::1]", "ipv6"),
        ("[::2]:8443", "ipv6_port"),
        ("[::2]:80", "any"),
        ("::1", "any"),  # a bare IPv6 address has no port to strip
        ("", "any"),
    ],
)
def test_virtual_host_precedence(authority: str, expected: str) -> None:
    vh = DOMAINS.virtual_host(authority)
    assert vh is not None and vh.name == expected


def test_authority_then_host_then_nothing() -> None:
    t = table(vhost("a", "a.test"), vhost("b", "b.test"), vhost("any", "*"))

    def name(headers: HeaderList) -> str:
        found = t.match(headers)
        assert found is not None
        return found[0].name

    assert name(req("/", "a.test", ("host", "b.test"))) == "a"  # :authority first
    assert name(req("/", None, ("host", "B.test"))) == "b"  # HTTP/1.1 without :authority
    assert name(req("/", None)) == "any"


def test_no_virtual_host_without_star() -> None:
    t = table(vhost("a", "a.test"))
    assert t.match(req("/", "b.test")) is None
    assert t.match(req("/", None)) is None


def test_first_virtual_host_keeps_a_duplicate_domain() -> None:
    # The loader refuses duplicates; a model from elsewhere keeps the first.
    t = table(vhost("one", "a.test", "*"), vhost("two", "a.test", "*"))
    for host in ("a.test", "x"):
        vh = t.virtual_host(host)
        assert vh is not None and vh.name == "one"


@pytest.mark.parametrize(
    ("authority", "split"),
    [
        ("a.test", ("a.test", "")),
        ("a.test:80", ("a.test", ":80")),
        ("[::1]:80", ("[::1]", ":80")),
        ("[::1]", ("[::1]", "")),
        ("::1", ("::1", "")),
    ],
)
def test_split_port(authority: str, split: tuple[str, str]) -> None:
    assert split_port(authority) == split


# --------------------------------------------------------------------------------- rules

PATHS = table(
    VirtualHost("h", ("*",), (
        to("health", HttpRouteMatch(path="/healthz")),
        to("users_ci", HttpRouteMatch(path="/Users", case_sensitive=False)),
        to("v1_ci", HttpRouteMatch(prefix="/v1/", case_sensitive=False)),
        to("v2", HttpRouteMatch(prefix="/v2/")),
        to("old", HttpRouteMatch(regex=r"/old/[a-z]+")),
        to("rest", HttpRouteMatch(prefix="/")),
    )),
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/healthz", "health"),
        ("/healthz?full=1", "health"),  # the query is not part of the path
        ("/healthz/", "rest"),  # exact means exact
        ("/HEALTHZ", "rest"),  # case-sensitive by default
        ("/users", "users_ci"),
        ("/USERS?x=1", "users_ci"),
        ("/v1/x", "v1_ci"),
        ("/V1/X", "v1_ci"),
        ("/v1", "rest"),  # the prefix is "/v1/"
        ("/v2/x", "v2"),
        ("/V2/x", "rest"),
        ("/old/page", "old"),
        ("/old/page?a=1", "old"),
        ("/old/Page", "rest"),  # the regex is case-sensitive
        ("/old/page/x", "rest"),  # and must match the whole path
        ("/x/old/page", "rest"),
        ("/", "rest"),
        ("", "rest"),  # no :path at all counts as "/"
    ],
)
def test_path_kinds(path: str, expected: str) -> None:
    found = PATHS.match(req(path))
    assert found is not None and found[1].cluster == expected


def test_no_rule_matches() -> None:
    t = table(VirtualHost("h", ("*",), (to("v1", HttpRouteMatch(prefix="/v1/")),)))
    assert t.match(req("/v2/")) is None


CONDITIONS = table(
    VirtualHost("h", ("*",), (
        to("canary", HttpRouteMatch(
            prefix="/api/",
            headers=(HeaderMatcher("x-canary", exact="1"),
                     HeaderMatcher(":method", regex="GET|HEAD")),
        )),
        to("traced", HttpRouteMatch(prefix="/api/", headers=(HeaderMatcher("X-Trace"),))),
        to("debug", HttpRouteMatch(prefix="/api/", query=(
            QueryMatcher("debug"), QueryMatcher("v", exact="2"), QueryMatcher("id", regex=r"\d+"),
        ))),
        to("grpc", HttpRouteMatch(prefix="/", grpc=True)),
        to("rest", HttpRouteMatch(prefix="/")),
    )),
)


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/api/x", [("x-canary", "1")], "canary"),
        ("/api/x", [("x-canary", "2")], "rest"),
        ("/api/x", [("x-canary", "1"), ("x-canary", "2")], "canary"),  # the first value counts
        ("/api/x", [("x-trace", "")], "traced"),  # present, any value; names fold case
        ("/api/x?debug&v=2&id=42", [], "debug"),
        ("/api/x?debug=&v=2&id=42", [], "debug"),
        ("/api/x?v=2&id=42&debug=0", [], "debug"),
        ("/api/x?v=2&id=42", [], "rest"),  # debug missing
        ("/api/x?debug&v=3&id=42", [], "rest"),
        ("/api/x?debug&v=2&v=3&id=42", [], "debug"),  # the first value counts
        ("/api/x?debug&v=2&id=4x", [], "rest"),  # regex must match fully
        ("/api/x?debug&v=%32&id=4%32", [], "debug"),  # percent-decoded
        ("/api/x?DEBUG&v=2&id=1", [], "rest"),  # parameter names are case-sensitive
        ("/svc/M", [("content-type", "application/grpc")], "grpc"),
        ("/svc/M", [("content-type", "application/grpc+proto")], "grpc"),
        ("/svc/M", [("content-type", "Application/GRPC")], "grpc"),
        ("/svc/M", [("content-type", "application/grpc-web")], "rest"),
        ("/svc/M", [("content-type", "application/json")], "rest"),
        ("/svc/M", [], "rest"),
    ],
)
def test_headers_query_grpc(path: str, headers: list[tuple[str, str]], expected: str) -> None:
    found = CONDITIONS.match(req(path, "a.test", *headers))
    assert found is not None and found[1].cluster == expected


def test_method_pseudo_header() -> None:
    found = CONDITIONS.match(
        HeaderList([(":method", "POST"), (":authority", "a"), (":path", "/api/"),
                    ("x-canary", "1")])
    )
    assert found is not None and found[1].cluster == "rest"


@pytest.mark.parametrize(
    ("content_type", "grpc"),
    [("application/grpc", True), ("application/grpc+json", True), ("application/grpc;x", False),
     ("application/grpcx", False), ("", False), (None, False)],
)
def test_is_grpc(content_type: str | None, grpc: bool) -> None:
    assert is_grpc(content_type) is grpc


# ---------------------------------------------------------------------- weighted clusters


def weighted(*pairs: tuple[str, int]) -> CompiledHttpRule:
    return CompiledHttpRule(HttpRouteRule(
        HttpRouteMatch(), weighted_clusters=tuple(WeightedCluster(c, w) for c, w in pairs)
    ))


def test_weighted_distribution() -> None:
    rule = weighted(("a", 90), ("b", 10))
    random.seed(1234)
    counts = Counter(rule.pick_cluster() for _ in range(10_000))
    assert set(counts) == {"a", "b"}
    # binomial(10000, 0.1): sd = 30, so +-150 is five standard deviations
    assert abs(counts["b"] - 1000) < 150


def test_weighted_boundaries() -> None:
    rule = weighted(("a", 1), ("b", 2), ("c", 1))  # a: [0, 1), b: [1, 3), c: [3, 4) of 4
    draws = (0.0, 0.2499, 0.25, 0.7499, 0.75, 0.9999)
    picks = [rule.pick_cluster(iter([x]).__next__) for x in draws]
    assert picks == ["a", "a", "b", "b", "c", "c"]


def test_single_cluster_and_no_cluster() -> None:
    assert CompiledHttpRule(to("one")).pick_cluster() == "one"
    assert weighted(("only", 5)).pick_cluster() == "only"
    direct = HttpRouteRule(HttpRouteMatch(), direct_response=DirectResponse(200, "ok"))
    assert CompiledHttpRule(direct).pick_cluster() is None


# --------------------------------------------------------------- rewrites and mutations


NO_MUTATION = HeaderMutation()


def compiled(
    rule: HttpRouteRule,
    vh_request: HeaderMutation = NO_MUTATION,
    vh_response: HeaderMutation = NO_MUTATION,
) -> tuple[CompiledVirtualHost, CompiledHttpRule]:
    vh = CompiledVirtualHost(VirtualHost("h", ("*",), (rule,), vh_request, vh_response))
    return vh, vh.rules[0]


@pytest.mark.parametrize(
    ("prefix", "rewrite", "path", "expected"),
    [
        ("/v1/", "/", "/v1/users?id=1", "/users?id=1"),
        ("/v1/", "/api/v1/", "/v1/users", "/api/v1/users"),
        ("/v1", "/v2", "/v1/users?x", "/v2/users?x"),
        ("/", "/app/", "/index.html?a=b", "/app/index.html?a=b"),
        ("/V1/", "/", "/v1/Users", "/Users"),  # case-insensitive match: same length replaced
    ],
)
def test_prefix_rewrite(prefix: str, rewrite: str, path: str, expected: str) -> None:
    vh, rule = compiled(to("c", HttpRouteMatch(prefix=prefix, case_sensitive=False),
                           prefix_rewrite=rewrite))
    out = apply_request_rewrites(vh, rule, req(path))
    assert out[":path"] == expected
    assert [k for k, _ in out.items_all()] == [":method", ":scheme", ":authority", ":path"]


def test_prefix_rewrite_of_any_path() -> None:
    vh, rule = compiled(to("c", HttpRouteMatch(), prefix_rewrite="/base/"))
    assert apply_request_rewrites(vh, rule, req("/x?y"))[":path"] == "/base/x?y"


def test_host_rewrite() -> None:
    vh, rule = compiled(to("c", host_rewrite="backend.internal:8080"))
    out = apply_request_rewrites(vh, rule, req("/", "api.example.com", ("host", "api.example.com")))
    assert out.items_all() == (
        (":method", "GET"), (":scheme", "http"), (":authority", "backend.internal:8080"),
        (":path", "/"), ("host", "backend.internal:8080"),
    )


def test_request_mutations_virtual_host_then_rule() -> None:
    vh_mut = HeaderMutation(
        add=(HeaderValue("x-gw", "vh", append=False), HeaderValue("x-tag", "vh")),
        remove=("x-internal", "x-route"),
    )
    rule_mut = HeaderMutation(
        add=(HeaderValue("x-gw", "rule", append=False), HeaderValue("x-route", "r1"),
             HeaderValue("x-tag", "rule")),
        remove=("cookie",),
    )
    vh, rule = compiled(to("c", request_headers=rule_mut), vh_request=vh_mut)
    head = req("/", "a.test", ("x-gw", "client"), ("x-internal", "s"), ("cookie", "c"),
               ("x-route", "client"), ("x-gw", "client2"))
    out = apply_request_rewrites(vh, rule, head)
    assert out.items_all() == (
        (":method", "GET"), (":scheme", "http"), (":authority", "a.test"), (":path", "/"),
        ("x-gw", "rule"),  # replaced twice, at the position of the first value
        ("x-tag", "vh"),
        ("x-route", "r1"),
        ("x-tag", "rule"),  # append: both values
    )


def test_response_mutations_rule_then_virtual_host() -> None:
    rule_mut = HeaderMutation(add=(HeaderValue("x-by", "rule", append=False),
                                   HeaderValue("x-rule", "1")), remove=("x-powered-by",))
    vh_mut = HeaderMutation(add=(HeaderValue("x-by", "vh", append=False),),
                            remove=("server", "x-rule"))
    vh, rule = compiled(to("c", response_headers=rule_mut), vh_response=vh_mut)
    head = HeaderList([(":status", "200"), ("server", "up"), ("x-powered-by", "php"),
                       ("content-type", "text/plain")])
    out = apply_response_mutations(vh, rule, head)
    # the virtual host comes last: it removes what the rule added and its value wins
    assert out.items_all() == ((":status", "200"), ("content-type", "text/plain"),
                               ("x-by", "vh"))


def test_nothing_to_change_returns_the_same_head() -> None:
    vh, rule = compiled(to("c"))
    head = req("/a")
    assert apply_request_rewrites(vh, rule, head) is head
    resp = HeaderList([(":status", "200")])
    assert apply_response_mutations(vh, rule, resp) is resp


# ------------------------------------------------------------------------------ redirects


def redirect(match: HttpRouteMatch | None = None, **kw: Any) -> CompiledHttpRule:
    return CompiledHttpRule(HttpRouteRule(match or HttpRouteMatch(prefix="/"),
                                          redirect=Redirect(**kw)))


@pytest.mark.parametrize(
    ("rule", "authority", "path", "scheme", "location"),
    [
        # scheme
        (redirect(scheme="https"), "a.test", "/x?q=1", "http", "https://a.test/x?q=1"),
        (redirect(scheme="https"), "a.test:80", "/x", "http", "https://a.test/x"),  # default port
        (redirect(scheme="https"), "a.test:8080", "/x", "http", "https://a.test:8080/x"),
        (redirect(scheme="http"), "a.test:443", "/", "https", "http://a.test/"),
        (redirect(scheme="https"), "a.test:443", "/", "https", "https://a.test:443/"),  # same
        (redirect(scheme="https"), "[::1]:80", "/", "http", "https://[::1]/"),
        # host and port
        (redirect(host="b.test"), "a.test:8080", "/x", "http", "http://b.test/x"),
        (redirect(host="b.test:9000"), "a.test", "/x", "https", "https://b.test:9000/x"),
        (redirect(port=8443), "a.test:8080", "/x", "http", "http://a.test:8443/x"),
        (redirect(port=8443), "a.test", "/x", "http", "http://a.test:8443/x"),
        (redirect(scheme="https", host="new.example.com", port=8443, path="/new",
                  strip_query=True), "old.example.com", "/old/a?b=1", "http",
         "https://new.example.com:8443/new"),
        # path: the request's query kept, replaced by the redirect's, or stripped
        (redirect(path="/new-1"), "a.test", "/old-1?bar=1", "http", "http://a.test/new-1?bar=1"),
        (redirect(path="/new-2", strip_query=True), "a.test", "/old-2?bar=1", "http",
         "http://a.test/new-2"),
        (redirect(path="/new-3?foo=1", strip_query=True), "a.test", "/old-3?bar=1", "http",
         "http://a.test/new-3?foo=1"),
        (redirect(path="/new-3?foo=1"), "a.test", "/old-3", "http", "http://a.test/new-3?foo=1"),
        # prefix_rewrite
        (redirect(HttpRouteMatch(prefix="/docs/"), prefix_rewrite="/manual/"), "a.test",
         "/docs/intro?v=2", "http", "http://a.test/manual/intro?v=2"),
        (redirect(HttpRouteMatch(prefix="/docs/"), prefix_rewrite="/manual/", strip_query=True),
         "a.test", "/docs/intro?v=2", "http", "http://a.test/manual/intro"),
        # strip_query alone
        (redirect(strip_query=True), "a.test", "/p?x=1#", "http", "http://a.test/p"),
        (redirect(strip_query=True), "a.test", "/p", "https", "https://a.test/p"),
    ],
)
def test_redirect_location(
    rule: CompiledHttpRule, authority: str, path: str, scheme: str, location: str
) -> None:
    assert redirect_location(rule, req(path, authority), scheme) == location


def test_redirect_location_uses_host_without_authority() -> None:
    rule = redirect(scheme="https")
    assert redirect_location(rule, req("/", None, ("host", "h.test")), "http") == "https://h.test/"


def test_redirect_location_of_a_forwarding_rule() -> None:
    with pytest.raises(ValueError, match="no redirect"):
        redirect_location(CompiledHttpRule(to("c")), req("/"), "http")


def test_code_and_direct_response_exposed() -> None:
    t = table(VirtualHost("h", ("*",), (
        HttpRouteRule(HttpRouteMatch(path="/old"), redirect=Redirect(path="/new", code=308)),
        HttpRouteRule(HttpRouteMatch(path="/ok"), direct_response=DirectResponse(200, "ok\n")),
    )))
    found = t.match(req("/old"))
    assert found is not None and found[1].redirect is not None and found[1].redirect.code == 308
    found = t.match(req("/ok"))
    assert found is not None and found[1].direct_response == DirectResponse(200, "ok\n")


@pytest.mark.parametrize(
    "query", ["", "a=1&b=2", "a=%32&b=&c&&d=1=2&%61=x", "n=John+Smith&n=x", "=v&k=%zz&u=%C3%A9"]
)
def test_query_params_agree_with_parse_qsl(query: str) -> None:
    expected: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        expected.setdefault(name, value)
    assert _query_params(query) == expected
