from __future__ import annotations

from mosn_py.codecs.base import Frame, StreamType
from mosn_py.config.model import HeaderMatcher, RouteConfig, RouteMatch, RouteRule
from mosn_py.router.routes import RouteTable

SVC = "com.example.Echo:1.0"


def req(**headers: str) -> Frame:
    return Frame(StreamType.REQUEST, 1, headers)


def table(*rules: RouteRule) -> RouteTable:
    return RouteTable(RouteConfig("r", rules), "bolt")


def test_exact_service_then_wildcard() -> None:
    t = table(
        RouteRule(RouteMatch(service=SVC), "a"),
        RouteRule(RouteMatch(service=".*"), "b"),
    )
    assert t.match(req(service=SVC)).cluster == "a"
    assert t.match(req(sofa_head_target_service=SVC)).cluster == "a"  # fallback header
    assert t.match(req(service="other:1.0")).cluster == "b"
    assert t.match(req()).cluster == "b"  # no service header at all


def test_wildcard_first_shadows_later_rules() -> None:
    t = table(RouteRule(RouteMatch(service=".*"), "b"), RouteRule(RouteMatch(service=SVC), "a"))
    assert t.match(req(service=SVC)).cluster == "b"


def test_no_match_returns_none() -> None:
    t = table(RouteRule(RouteMatch(service=SVC), "a"))
    assert t.match(req(service="x")) is None
    assert t.match(req()) is None


def test_method_and_headers() -> None:
    t = table(
        RouteRule(RouteMatch(service=SVC, method="hello"), "hello"),
        RouteRule(
            RouteMatch(headers=(HeaderMatcher("zone", exact="gz"), HeaderMatcher("canary"))),
            "canary",
        ),
        RouteRule(RouteMatch(headers=(HeaderMatcher("uid", regex=r"\d+"),)), "numeric"),
        RouteRule(RouteMatch(), "default"),
    )
    assert t.match(req(service=SVC, sofa_head_method_name="hello")).cluster == "hello"
    assert t.match(req(service=SVC, sofa_head_method_name="bye")).cluster == "default"
    assert t.match(req(zone="gz", canary="")).cluster == "canary"  # present, any value
    assert t.match(req(zone="gz")).cluster == "default"
    assert t.match(req(uid="123")).cluster == "numeric"
    assert t.match(req(uid="12a")).cluster == "default"  # regex must match fully
