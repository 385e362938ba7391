"""HTTP route tables: a virtual host by Host/:authority, then a rule by path, headers, query.

Compiled once per config snapshot from a ``RouteConfig`` with ``virtual_hosts``; matched per
request on the request head, a ``HeaderList`` with HTTP/2 pseudo-headers (``:authority``,
``:path``, ...), which both HTTP codecs produce (``codecs/base.py``)::

    table = HttpRouteTable(route_config)
    found = table.match(frame.headers)          # None: answer 404 (route_not_found)
    vh, rule = found
    if rule.redirect is not None:   location = redirect_location(rule, frame.headers, scheme)
    elif rule.direct_response is not None: ...
    else:
        cluster = rule.pick_cluster()
        upstream_headers = apply_request_rewrites(vh, rule, frame.headers)
        ...
        downstream_headers = apply_response_mutations(vh, rule, response.headers)

**Virtual host selection** follows Envoy's domain search order (``VirtualHost.domains`` in
``route_components.proto``): an exact domain; then the longest suffix wildcard
(``*.example.com``; the ``*`` stands for at least one character); then the longest prefix
wildcard (``api.*``); then ``*``. Comparison ignores case. A Host with a port
(``api.example.com:8080``) is tried as is, then without the port, at each of the first three
steps, so an exact domain without the port still beats a wildcard. The Host is
``:authority``, else ``host``.

**Rules** are tried in order; the first whose every condition holds wins:

- path (``:path`` without its query string): ``prefix``, exact ``path`` or ``regex``
  (``fullmatch``); ``case_sensitive=False`` folds case for prefix and path;
- ``headers``: each must be present and, when a value is given, equal it or fully match the
  regex; pseudo-headers (``:method``) work too; the first value of a repeated header counts;
- ``query``: likewise for query parameters (percent-decoded, first value);
- ``grpc``: content-type ``application/grpc`` or ``application/grpc+...`` (Envoy's test;
  ``application/grpc-web`` is not gRPC).

**Header mutations** (Envoy's ``request_headers_to_add``/``_remove`` and the response ones):
each level removes its ``remove`` names, then applies its ``add`` entries in order;
``append: true`` adds a value, ``append: false`` replaces every value of that header (at
the position of the first). Requests: the virtual host's, then the rule's, so the rule's
replacements win. Responses: the rule's, then the virtual host's, Envoy's order ("Headers
specified at this level are applied before headers from the enclosing VirtualHost",
``Route.response_headers_to_add`` in envoy/config/route/v3/route_components.proto).

Everything that can be is computed here, once: regexes compiled, case folded, cumulative
weights summed. Per request: a few dict lookups, string compares and, only for rules that
test the query, one parse of the query string.
"""

from __future__ import annotations

import random
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from itertools import accumulate
from urllib.parse import unquote_plus

from mosn_py.codecs.base import HeaderList
from mosn_py.config.model import (
    DirectResponse,
    HeaderMutation,
    HttpRouteRule,
    Redirect,
    RetryPolicy,
    RouteConfig,
    VirtualHost,
)
from mosn_py.router.routes import ValueCheck

__all__ = [
    "CompiledHttpRule",
    "CompiledRedirect",
    "CompiledVirtualHost",
    "HttpRouteTable",
    "apply_request_rewrites",
    "apply_response_mutations",
    "is_grpc",
    "redirect_location",
    "split_port",
]

# How a rule tests the path.
_ANY, _PREFIX, _EXACT, _REGEX = 0, 1, 2, 3

_GRPC = "application/grpc"


def is_grpc(content_type: str | None) -> bool:
    """Whether a content-type is gRPC: ``application/grpc`` or ``application/grpc+<codec>``
    (Envoy's ``Grpc::Common::hasGrpcContentType``; media types ignore case, RFC 9110 §8.3.1)."""
    if not content_type:
        return False
    ct = content_type.lower()
    return ct.startswith(_GRPC) and (len(ct) == len(_GRPC) or ct[len(_GRPC)] == "+")


def split_port(authority: str) -> tuple[str, str]:
    """``host:port`` -> (``host``, ``:port``); ``[v6]:port`` -> (``[v6]``, ``:port``); no
    port -> (authority, ``""``). A bare IPv6 address (several colons, no brackets) has no
    port."""
    if authority.startswith("["):
        end = authority.rfind("]:")
        if end < 0:
            return authority, ""
        return authority[: end + 1], authority[end + 1 :]
    colon = authority.rfind(":")
    if colon < 0 or authority.find(":") != colon:
        return authority, ""
    return authority[:colon], authority[colon:]


class _Mutation:
    """A compiled ``HeaderMutation``. ``apply(items)`` takes a list of (name, value) pairs
    that the caller owns (it may be changed) and returns the mutated list."""

    __slots__ = ("remove", "add")

    def __init__(self, m: HeaderMutation) -> None:
        self.remove = frozenset(n.lower() for n in m.remove)
        self.add = tuple((h.name.lower(), h.value, h.append) for h in m.add)

    def __bool__(self) -> bool:
        return bool(self.remove or self.add)

    def apply(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.remove:
            drop = self.remove
            items = [kv for kv in items if kv[0] not in drop]
        for name, value, append in self.add:
            if append:
                items.append((name, value))
                continue
            out: list[tuple[str, str]] = []
            done = False
            for kv in items:
                if kv[0] == name:
                    if not done:
                        out.append((name, value))
                        done = True
                else:
                    out.append(kv)
            if not done:
                out.append((name, value))
            items = out
        return items


class CompiledRedirect:
    """A rule's ``Redirect``: ``code`` is the response status, ``redirect_location`` builds
    the ``location``."""

    __slots__ = ("config", "scheme", "host", "port", "path", "path_has_query",
                 "prefix_rewrite", "code", "strip_query")

    def __init__(self, r: Redirect) -> None:
        self.config = r
        self.scheme = r.scheme
        self.host = r.host
        self.port = f":{r.port}" if r.port is not None else ""
        self.path = r.path
        self.path_has_query = r.path is not None and "?" in r.path
        self.prefix_rewrite = r.prefix_rewrite
        self.code = r.code
        self.strip_query = r.strip_query


class CompiledHttpRule:
    """One rule, ready to match. ``config`` is the model rule; ``cluster``,
    ``direct_response``, ``redirect``, ``timeout`` and ``retry`` are its action."""

    __slots__ = (
        "config", "_kind", "_value", "_fold", "_regex", "prefix_len",
        "headers", "query", "grpc",
        "cluster", "_clusters", "_cum", "_total",
        "direct_response", "redirect", "prefix_rewrite", "host_rewrite", "timeout", "retry",
        "request_mutation", "response_mutation",
    )

    def __init__(self, rule: HttpRouteRule) -> None:
        self.config = rule
        m = rule.match
        self._fold = not m.case_sensitive
        self._regex: re.Pattern[str] | None = None
        self._value = ""
        if m.path is not None:
            self._kind = _EXACT
            self._value = m.path.lower() if self._fold else m.path
        elif m.regex is not None:
            self._kind = _REGEX
            self._regex = re.compile(m.regex)
        elif m.prefix is not None and m.prefix != "/":
            self._kind = _PREFIX
            self._value = m.prefix.lower() if self._fold else m.prefix
        else:
            self._kind = _ANY  # no path condition, or prefix "/" (every path starts with it)
        # What prefix_rewrite replaces: the matched prefix ("any path" is prefix "/").
        self.prefix_len = len(m.prefix) if m.prefix is not None else int(self._kind == _ANY)
        self.headers = tuple(ValueCheck(h, fold_name=True) for h in m.headers)
        self.query = tuple(ValueCheck(q, fold_name=False) for q in m.query)
        self.grpc = m.grpc
        self.cluster = rule.cluster
        self._clusters = tuple(w.cluster for w in rule.weighted_clusters)
        self._cum = list(accumulate(w.weight for w in rule.weighted_clusters))
        self._total = float(self._cum[-1]) if self._cum else 0.0
        self.direct_response: DirectResponse | None = rule.direct_response
        self.redirect = CompiledRedirect(rule.redirect) if rule.redirect is not None else None
        self.prefix_rewrite = rule.prefix_rewrite
        self.host_rewrite = rule.host_rewrite
        self.timeout = rule.timeout
        self.retry: RetryPolicy | None = rule.retry
        self.request_mutation = _Mutation(rule.request_headers)
        self.response_mutation = _Mutation(rule.response_headers)

    @property
    def folds_case(self) -> bool:
        return self._fold and self._kind in (_PREFIX, _EXACT)

    def path_matches(self, path: str, lower: str) -> bool:
        """Whether the path condition holds; ``path`` has no query string, ``lower`` is
        ``path.lower()`` (or ``path`` itself when no rule of the virtual host folds case)."""
        kind = self._kind
        if kind == _ANY:
            return True
        if kind == _PREFIX:
            return (lower if self._fold else path).startswith(self._value)
        if kind == _EXACT:
            return (lower if self._fold else path) == self._value
        assert self._regex is not None
        return self._regex.fullmatch(path) is not None

    def pick_cluster(self, rand: Callable[[], float] = random.random) -> str | None:
        """The cluster for one request: the rule's ``cluster``, or one of its weighted
        clusters drawn with probability weight / total; None for a direct response or a
        redirect. ``rand`` returns a float in [0, 1) (tests pass their own)."""
        cum = self._cum
        if not cum:
            return self.cluster
        i = bisect_right(cum, rand() * self._total)
        clusters = self._clusters
        return clusters[i] if i < len(clusters) else clusters[-1]


class CompiledVirtualHost:
    __slots__ = ("config", "name", "rules", "_folds", "request_mutation", "response_mutation")

    def __init__(self, vh: VirtualHost) -> None:
        self.config = vh
        self.name = vh.name
        self.rules = tuple(CompiledHttpRule(r) for r in vh.rules)
        self._folds = any(r.folds_case for r in self.rules)  # lower-case the path once
        self.request_mutation = _Mutation(vh.request_headers)
        self.response_mutation = _Mutation(vh.response_headers)

    def match(self, headers: Mapping[str, str]) -> CompiledHttpRule | None:
        """The first rule of this virtual host whose conditions hold for ``headers``."""
        target = headers.get(":path") or "/"
        q = target.find("?")
        path, query = (target, "") if q < 0 else (target[:q], target[q + 1 :])
        lower = path.lower() if self._folds else path
        params: dict[str, str] | None = None
        for rule in self.rules:
            if not rule.path_matches(path, lower):
                continue
            if rule.grpc and not is_grpc(headers.get("content-type")):
                continue
            if rule.headers and not all(check(headers) for check in rule.headers):
                continue
            if rule.query:
                if params is None:
                    params = _query_params(query)
                if not all(check(params) for check in rule.query):
                    continue
            return rule
        return None


def _query_params(query: str) -> dict[str, str]:
    """Name -> first value, percent-decoded (``+`` is a space), blank values kept: what
    ``urllib.parse.parse_qsl(query, keep_blank_values=True)`` gives, at a third of its cost
    (only parts holding ``%`` or ``+`` are decoded)."""
    params: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        if name not in params:
            params[name] = value
    return params


_FOUND_MAX = 1024  # distinct Host values remembered per route table (cleared when full)


def _by_length(entries: Iterable[tuple[str, CompiledVirtualHost]]) -> tuple[
    tuple[int, dict[str, CompiledVirtualHost]], ...
]:
    """Wildcard stems grouped by length, longest first (one dict lookup per length)."""
    groups: dict[int, dict[str, CompiledVirtualHost]] = {}
    for stem, vh in entries:
        groups.setdefault(len(stem), {}).setdefault(stem, vh)
    return tuple(sorted(groups.items(), key=lambda kv: -kv[0]))


class HttpRouteTable:
    """The compiled form of one HTTP ``RouteConfig`` (see the module docstring)."""

    __slots__ = ("name", "virtual_hosts", "_exact", "_suffix", "_prefix", "_any", "_found")

    def __init__(self, config: RouteConfig) -> None:
        self.name = config.name
        self.virtual_hosts = tuple(CompiledVirtualHost(vh) for vh in config.virtual_hosts)
        self._exact: dict[str, CompiledVirtualHost] = {}
        suffix: list[tuple[str, CompiledVirtualHost]] = []
        prefix: list[tuple[str, CompiledVirtualHost]] = []
        self._any: CompiledVirtualHost | None = None
        for vh in self.virtual_hosts:
            for domain in vh.config.domains:
                d = domain.lower()
                if d == "*":
                    self._any = self._any or vh
                elif d.startswith("*"):
                    suffix.append((d[1:], vh))
                elif d.endswith("*"):
                    prefix.append((d[:-1], vh))
                else:
                    self._exact.setdefault(d, vh)
        self._suffix = _by_length(suffix)
        self._prefix = _by_length(prefix)
        # authority -> virtual host (or None), as found; the table is immutable and clients
        # repeat their Host, so the search runs once per distinct value (bounded).
        self._found: dict[str, CompiledVirtualHost | None] = {}

    def virtual_host(self, authority: str) -> CompiledVirtualHost | None:
        """The virtual host for a Host/:authority value, or None (no domain matches and no
        virtual host has ``*``)."""
        found = self._found
        try:
            return found[authority]
        except KeyError:
            pass
        vh = self._search(authority)
        if len(found) >= _FOUND_MAX:
            found.clear()
        found[authority] = vh
        return vh

    def _search(self, authority: str) -> CompiledVirtualHost | None:
        if not (self._exact or self._suffix or self._prefix):
            return self._any
        host = authority.lower()
        bare, port = split_port(host)
        hosts = (host, bare) if port else (host,)
        for h in hosts:
            vh = self._exact.get(h)
            if vh is not None:
                return vh
        for h in hosts:
            n = len(h)
            for length, stems in self._suffix:
                if length < n:
                    vh = stems.get(h[n - length :])
                    if vh is not None:
                        return vh
        for h in hosts:
            n = len(h)
            for length, stems in self._prefix:
                if length < n:
                    vh = stems.get(h[:length])
                    if vh is not None:
                        return vh
        return self._any

    def match(
        self, headers: Mapping[str, str]
    ) -> tuple[CompiledVirtualHost, CompiledHttpRule] | None:
        """(virtual host, rule) for a request head, or None when no virtual host or no rule
        of it matches (the engine answers ``route_not_found``, HTTP 404)."""
        vh = self.virtual_host(headers.get(":authority") or headers.get("host") or "")
        if vh is None:
            return None
        rule = vh.match(headers)
        return None if rule is None else (vh, rule)


# ----------------------------------------------------------------------- per-request helpers


def apply_request_rewrites(
    vh: CompiledVirtualHost, rule: CompiledHttpRule, headers: HeaderList
) -> HeaderList:
    """The request head to send upstream.

    In order: ``prefix_rewrite`` replaces the matched prefix of ``:path`` (the query string
    is kept); ``host_rewrite`` replaces ``:authority`` (and ``host``, when the head has one);
    then the virtual host's request mutation, then the rule's. Returns ``headers`` itself
    when there is nothing to change.
    """
    rewrite_path = rule.prefix_rewrite is not None
    if not (rewrite_path or rule.host_rewrite or vh.request_mutation or rule.request_mutation):
        return headers
    items = list(headers.items_all())
    if rewrite_path:
        assert rule.prefix_rewrite is not None
        n = rule.prefix_len
        for i, (name, value) in enumerate(items):
            if name == ":path":
                items[i] = (name, rule.prefix_rewrite + value[n:])
                break
    if rule.host_rewrite:
        host = rule.host_rewrite
        items = [(k, host) if k in (":authority", "host") else (k, v) for k, v in items]
    if vh.request_mutation:
        items = vh.request_mutation.apply(items)
    if rule.request_mutation:
        items = rule.request_mutation.apply(items)
    return HeaderList(items)


def apply_response_mutations(
    vh: CompiledVirtualHost, rule: CompiledHttpRule, headers: HeaderList
) -> HeaderList:
    """The response head to send downstream: the rule's response mutation, then the virtual
    host's (Envoy's order). Also for direct responses and redirects. Returns ``headers``
    itself when neither level changes anything."""
    if not (rule.response_mutation or vh.response_mutation):
        return headers
    items = list(headers.items_all())
    if rule.response_mutation:
        items = rule.response_mutation.apply(items)
    if vh.response_mutation:
        items = vh.response_mutation.apply(items)
    return HeaderList(items)


def redirect_location(rule: CompiledHttpRule, headers: Mapping[str, str], scheme: str) -> str:
    """The ``location`` of a redirect rule's response (Envoy's ``RedirectAction``).

    ``scheme`` is the request's (``http`` or ``https``, as the downstream connection is).
    Scheme, host, port and path are the request's unless the redirect replaces them:

    - ``scheme`` replaces the scheme; when it changes and the request's Host carried its old
      scheme's default port (``:80`` for http, ``:443`` for https), that port is dropped;
    - ``host`` replaces the whole Host (the request's port goes with it); ``port`` replaces
      the port;
    - ``path`` replaces the path; if it has a query, that query replaces the request's and
      ``strip_query`` leaves it alone; otherwise the request's query is kept;
    - ``prefix_rewrite`` replaces the matched prefix of the path, keeping the rest;
    - ``strip_query`` drops the request's query.

    Raises ``ValueError`` if ``rule`` has no redirect.
    """
    r = rule.redirect
    if r is None:
        raise ValueError("rule has no redirect")
    target = headers.get(":path") or "/"
    new_scheme = r.scheme or scheme
    if r.host is not None:
        host = r.host
    else:
        host = headers.get(":authority") or headers.get("host") or ""
        bare, port = split_port(host)
        if port and (
            r.port
            or (new_scheme != scheme
                and ((scheme == "http" and port == ":80")
                     or (scheme == "https" and port == ":443")))
        ):
            host = bare
    if r.path is not None:
        if r.path_has_query:
            path = r.path
        else:
            q = target.find("?")
            path = r.path if q < 0 or r.strip_query else r.path + target[q:]
    else:
        if r.prefix_rewrite is not None:
            target = r.prefix_rewrite + target[rule.prefix_len :]
        path = target.partition("?")[0] if r.strip_query else target
    return f"{new_scheme}://{host}{r.port}{path}"
