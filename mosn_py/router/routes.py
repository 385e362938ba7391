"""Route tables: compiled once per config snapshot, matched per request.

A ``RouteTable`` is built from a ``RouteConfig`` for one downstream protocol. Rules are
tried in order; the first whose every condition holds wins. Conditions:

- ``service``: the request's service (Bolt: header ``service``, else
  ``sofa_head_target_service``), compared exactly; ``.*`` matches any request, including
  one without a service.
- ``method``: Bolt ``sofa_head_method_name``, exact.
- ``headers``: each named header must be present and (when given) equal ``exact`` or
  fully match ``regex``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from mosn_py.codecs.base import Frame
from mosn_py.config.model import HeaderMatcher, QueryMatcher, RetryPolicy, RouteConfig, RouteRule

ANY_SERVICE = ".*"


def _bolt_service(headers: Mapping[str, str]) -> str | None:
    return headers.get("service") or headers.get("sofa_head_target_service")


def _bolt_method(headers: Mapping[str, str]) -> str | None:
    return headers.get("sofa_head_method_name")


# protocol -> (service extractor, method extractor). Later protocols add their own.
KEY_EXTRACTORS: dict[str, tuple[Callable[[Mapping[str, str]], str | None], ...]] = {
    "bolt": (_bolt_service, _bolt_method),
}


class ValueCheck:
    """A header (or query parameter) condition: present, and equal / fully matching.
    Shared by the Bolt and HTTP route tables; ``fold_name`` lower-cases the name (HTTP)."""

    __slots__ = ("name", "exact", "regex")

    def __init__(self, m: HeaderMatcher | QueryMatcher, fold_name: bool = False) -> None:
        self.name = m.name.lower() if fold_name else m.name
        self.exact = m.exact
        self.regex = re.compile(m.regex) if m.regex is not None else None

    def __call__(self, headers: Mapping[str, str]) -> bool:
        v = headers.get(self.name)
        if v is None:
            return False
        if self.exact is not None:
            return v == self.exact
        if self.regex is not None:
            return self.regex.fullmatch(v) is not None
        return True


class CompiledRule:
    __slots__ = ("config", "service", "method", "headers", "cluster", "timeout", "retry")

    def __init__(self, rule: RouteRule) -> None:
        self.config = rule
        m = rule.match
        self.service = None if m.service in (None, ANY_SERVICE) else m.service
        self.method = m.method
        self.headers = tuple(ValueCheck(h) for h in m.headers)
        self.cluster = rule.cluster
        self.timeout = rule.timeout
        self.retry: RetryPolicy | None = rule.retry


class RouteTable:
    __slots__ = ("name", "rules", "_service_of", "_method_of", "_by_service")

    def __init__(self, config: RouteConfig, protocol: str) -> None:
        self.name = config.name
        self.rules = tuple(CompiledRule(r) for r in config.rules)
        self._service_of, self._method_of = KEY_EXTRACTORS[protocol]
        # Fast path: a table whose rules only test the service is one dict lookup.
        self._by_service: dict[str | None, CompiledRule | None] | None = None
        if all(not r.method and not r.headers for r in self.rules):
            table: dict[str | None, CompiledRule | None] = {}
            wildcard = None
            for r in self.rules:
                if r.service is None:
                    wildcard = r
                    break
                table.setdefault(r.service, r)
            self._by_service = table
            self._by_service[None] = wildcard  # the fallback

    def match(self, frame: Frame) -> CompiledRule | None:
        headers = frame.headers
        by_service = self._by_service
        if by_service is not None:
            if len(by_service) == 1:  # only a wildcard (or nothing): no key to read
                return by_service[None]
            r = by_service.get(self._service_of(headers))
            return r if r is not None else by_service[None]
        service = self._service_of(headers)
        method = self._method_of(headers)
        for r in self.rules:
            if r.service is not None and r.service != service:
                continue
            if r.method is not None and r.method != method:
                continue
            if r.headers and not all(h(headers) for h in r.headers):
                continue
            return r
        return None
