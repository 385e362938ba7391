"""Pass 2 for HTTP route configs: ``routes[i].virtual_hosts`` -> ``VirtualHost`` models.

Same contract as the rest of the loader (``config/loader.py``): every problem becomes one
``path: problem`` line in ``errs``, and a bad value is replaced by a default so that parsing
goes on and later problems are reported too. The schema, after Envoy's ``VirtualHost`` /
``Route`` (see docs/config.md, "virtual_hosts")::

    virtual_hosts:
      - name: api
        domains: [api.example.com, "*.example.com", "api.*", "*"]
        request_headers: {add: [{name: x-gw, value: "1", append: false}], remove: [x-internal]}
        response_headers: {...}
        rules:
          - match: {prefix: /v1/, case_sensitive: false, headers: {...}, query: {...}, grpc: false}
            cluster: api_v1     # or weighted_clusters | direct_response | redirect
            prefix_rewrite: /
            host_rewrite: backend.internal
            timeout: 5s
            retry: {attempts: 2, on: [connect-failure, reset]}

What needs the other sections (do the named clusters exist, does the listener speak HTTP)
is checked in pass 3 (``config/checks.py``) from the cluster references returned here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mosn_py.config.model import (
    DEFAULT_HTTP_ROUTE_TIMEOUT,
    REDIRECT_CODES,
    DirectResponse,
    HeaderMatcher,
    HeaderMutation,
    HeaderValue,
    HttpRouteMatch,
    HttpRouteRule,
    QueryMatcher,
    Redirect,
    VirtualHost,
    WeightedCluster,
)
from mosn_py.config.shape import (
    _Errors,
    _field,
    _join,
    _list,
    _mapping,
    _matchers,
    _retry,
    translate_options,
)
from mosn_py.config.values import (
    describe,
    int_at_least,
    one_of,
    parse_bool,
    parse_name,
    parse_optional_duration,
    parse_regex,
    parse_string,
    suggest,
)

__all__ = ["REQUEST_PSEUDO_HEADERS", "parse_virtual_hosts"]

# fmt: off
_VHOST_KEYS = ("name", "domains", "rules", "request_headers", "response_headers")
_RULE_KEYS = (
    "match", "cluster", "weighted_clusters", "direct_response", "redirect", "prefix_rewrite",
    "host_rewrite", "timeout", "retry", "request_headers", "response_headers", "translate",
)
_MATCH_KEYS = ("prefix", "path", "regex", "case_sensitive", "headers", "query", "grpc")
_REDIRECT_KEYS = ("scheme", "host", "port", "path", "prefix_rewrite", "code", "strip_query")
# fmt: on
_ACTIONS = ("cluster", "weighted_clusters", "direct_response", "redirect")
_FORWARD_ONLY = ("prefix_rewrite", "host_rewrite", "timeout", "retry")
_REDIRECT_SCHEMES = ("http", "https")
_DEFAULT_TIMEOUT: float | None = DEFAULT_HTTP_ROUTE_TIMEOUT

# Request pseudo-headers a match may test (RFC 9113 §8.3.1, RFC 8441 for :protocol).
REQUEST_PSEUDO_HEADERS: tuple[str, ...] = (":method", ":scheme", ":authority", ":path", ":protocol")

# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: a field value never holds CR, LF or NUL (they would split the header).
_BAD_VALUE_RE = re.compile(r"[\x00\r\n]")
# A path or prefix: no whitespace, controls or fragment; '?' only where a query is meant.
_BAD_PATH_RE = re.compile(r"[\x00-\x20\x7f#]")
# host, host:port, [v6] or [v6]:port; host names as in values.parse_address, a little laxer.
_AUTHORITY_RE = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?)(?::([0-9]{1,5}))?"
)
# A domain: authority characters and '*' (placement checked separately).
_DOMAIN_RE = re.compile(r"[A-Za-z0-9._\-:\[\]*]+")
_WILDCARD_HINT = "one leading or trailing '*' (*.example.com, api.*) or '*' alone"


# ---------------------------------------------------------------------------- value checks


def _token(value: str) -> str:
    if not _TOKEN_RE.fullmatch(value):
        raise ValueError(
            f"{describe(value)} is not a valid header name"
            " (letters, digits and !#$%&'*+-.^_`|~)"
        )
    return value.lower()


def _header_name(value: str) -> str:
    """A header name as stored: lower case; a token, never a pseudo-header."""
    if value.startswith(":"):
        raise ValueError(
            f"pseudo-header {describe(value)} cannot be set or removed here"
            " (use prefix_rewrite or host_rewrite; pseudo-headers may only be matched)"
        )
    return _token(value)


def _request_header_name(value: str) -> str:
    name = _header_name(value)
    if name == "host":
        raise ValueError("'host' cannot be set or removed here (use host_rewrite)")
    return name


def _match_header_name(value: str) -> str:
    """A header a match may test: a token, or one of REQUEST_PSEUDO_HEADERS; lower case."""
    if value.startswith(":"):
        name = value.lower()
        if name not in REQUEST_PSEUDO_HEADERS:
            raise ValueError(
                f"unknown pseudo-header {describe(value)}{suggest(name, REQUEST_PSEUDO_HEADERS)};"
                f" expected one of {', '.join(REQUEST_PSEUDO_HEADERS)}"
            )
        return name
    return _token(value)


def _header_value(value: object) -> str:
    text = parse_string(value)
    if _BAD_VALUE_RE.search(text):
        raise ValueError(f"{describe(text)}: a header value cannot contain CR, LF or NUL")
    return text


def _path_value(value: object, *, query_ok: bool = False) -> str:
    text = parse_string(value)
    if not text.startswith("/"):
        raise ValueError(f"must start with '/', got {describe(text)}")
    if _BAD_PATH_RE.search(text):
        raise ValueError(f"{describe(text)}: no spaces, control characters or '#' in a path")
    if not query_ok and "?" in text:
        raise ValueError(
            f"{describe(text)}: paths are matched without the query string"
            " (match query parameters with 'query')"
        )
    return text


def _redirect_path(value: object) -> str:
    return _path_value(value, query_ok=True)


def _authority(value: object) -> str:
    text = parse_name(value)
    m = _AUTHORITY_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"{describe(text)} is not a host or host:port")
    if m.group(1) is not None and int(m.group(1)) > 65535:
        raise ValueError(f"{describe(text)}: port {m.group(1)} is out of range 1..65535")
    return text


def _int_between(low: int, high: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {describe(value)}")
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}, got {value}")
        return value

    return convert


def _redirect_code(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {describe(value)}")
    if value not in REDIRECT_CODES:
        codes = ", ".join(str(c) for c in REDIRECT_CODES)
        raise ValueError(f"must be one of {codes}, got {value}")
    return value


def _domain(value: object) -> str:
    text = parse_name(value)
    if not _DOMAIN_RE.fullmatch(text):
        raise ValueError(f"{describe(text)} is not a domain (a host name, host:port or wildcard)")
    if text != "*":
        stars = text.count("*")
        inner = text[1:-1]
        if stars > 1 or "*" in inner:
            raise ValueError(f"{describe(text)}: a wildcard is {_WILDCARD_HINT}")
    return text.lower()


# -------------------------------------------------------------------------------- sections


def _mutation(errs: _Errors, path: str, raw: object, *, request: bool) -> HeaderMutation:
    if raw is None:
        return HeaderMutation()
    d = _mapping(errs, path, raw, ("add", "remove"))
    if d is None:
        return HeaderMutation()
    name_of = _request_header_name if request else _header_name

    def name(value: object) -> str:
        return name_of(parse_name(value))

    add: list[HeaderValue] = []
    add_path = _join(path, "add")
    for i, item in enumerate(_list(errs, add_path, d.get("add"))):
        p = f"{add_path}[{i}]"
        h = _mapping(errs, p, item, ("name", "value", "append"), required=("name", "value"))
        if h is None or "name" not in h or "value" not in h:
            continue
        add.append(
            HeaderValue(
                name=_field(errs, h, p, "name", name, ""),
                value=_field(errs, h, p, "value", _header_value, ""),
                append=_field(errs, h, p, "append", parse_bool, True),
            )
        )
    remove: list[str] = []
    remove_path = _join(path, "remove")
    for i, item in enumerate(_list(errs, remove_path, d.get("remove"))):
        try:
            remove.append(name(item))
        except ValueError as exc:
            errs.add(f"{remove_path}[{i}]", str(exc))
    return HeaderMutation(tuple(h for h in add if h.name), tuple(remove))


def _match(errs: _Errors, path: str, raw: object) -> HttpRouteMatch:
    if raw is None:
        return HttpRouteMatch(prefix="/")
    d = _mapping(errs, path, raw, _MATCH_KEYS)
    if d is None:
        return HttpRouteMatch(prefix="/")
    kinds = [k for k in ("prefix", "path", "regex") if k in d]
    if len(kinds) > 1:
        errs.add(path, f"give at most one of prefix, path, regex (got {len(kinds)})")
    case_sensitive = _field(errs, d, path, "case_sensitive", parse_bool, True)
    if "regex" in d and "case_sensitive" in d and len(kinds) == 1:
        errs.add(
            _join(path, "case_sensitive"),
            "applies to prefix and path only; write (?i) in the regex instead",
        )
    headers = _matchers(errs, _join(path, "headers"), d.get("headers"), "header",
                        _match_header_name)
    query = _matchers(errs, _join(path, "query"), d.get("query"), "query parameter")
    prefix = _field(errs, d, path, "prefix", _path_value, None)
    exact = _field(errs, d, path, "path", _path_value, None)
    regex = _field(errs, d, path, "regex", parse_regex, None)
    if prefix is None and exact is None and regex is None:
        prefix = "/"
    return HttpRouteMatch(
        prefix=prefix,
        path=exact,
        regex=regex,
        case_sensitive=case_sensitive,
        headers=tuple(HeaderMatcher(n, e, r) for n, e, r in headers),
        query=tuple(QueryMatcher(n, e, r) for n, e, r in query),
        grpc=_field(errs, d, path, "grpc", parse_bool, False),
    )


def _weighted(
    errs: _Errors, path: str, raw: object, refs: list[tuple[str, str]]
) -> tuple[WeightedCluster, ...]:
    items = _list(errs, path, raw)
    if not items and not errs.is_bad(path):
        errs.add(path, "must not be empty (give at least one {cluster, weight})")
    out: list[WeightedCluster] = []
    first_seen: dict[str, str] = {}
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        d = _mapping(errs, p, item, ("cluster", "weight"), required=("cluster", "weight"))
        if d is None or "cluster" not in d:
            continue
        cluster = _field(errs, d, p, "cluster", parse_name, "")
        weight = _field(errs, d, p, "weight", int_at_least(1), 1)
        if not cluster:
            continue
        if cluster in first_seen:
            errs.add(
                _join(p, "cluster"),
                f"duplicate cluster {cluster!r} (first at {first_seen[cluster]})",
            )
            continue
        first_seen[cluster] = p
        refs.append((_join(p, "cluster"), cluster))
        out.append(WeightedCluster(cluster, weight))
    return tuple(out)


def _direct_response(errs: _Errors, path: str, raw: object) -> DirectResponse:
    d = _mapping(errs, path, raw, ("status", "body"), required=("status",))
    if d is None:
        return DirectResponse(200)
    response = DirectResponse(
        status=_field(errs, d, path, "status", _int_between(200, 599), 200),
        body=_field(errs, d, path, "body", parse_string, ""),
    )
    if response.status in (204, 304) and response.body:
        errs.add(_join(path, "body"), f"a {response.status} response has no body")
    return response


def _redirect(errs: _Errors, path: str, raw: object, match: HttpRouteMatch) -> Redirect:
    d = _mapping(errs, path, raw, _REDIRECT_KEYS)
    if d is None:
        return Redirect()
    redirect = Redirect(
        scheme=_field(errs, d, path, "scheme", one_of(_REDIRECT_SCHEMES), None),
        host=_field(errs, d, path, "host", _authority, None),
        port=_field(errs, d, path, "port", _int_between(1, 65535), None),
        path=_field(errs, d, path, "path", _redirect_path, None),
        prefix_rewrite=_field(errs, d, path, "prefix_rewrite", _path_value, None),
        code=_field(errs, d, path, "code", _redirect_code, 301),
        strip_query=_field(errs, d, path, "strip_query", parse_bool, False),
    )
    if not any(k in d for k in ("scheme", "host", "port", "path", "prefix_rewrite", "strip_query")):
        errs.add(
            path, "a redirect must change something: give scheme, host, port, path,"
            " prefix_rewrite or strip_query"
        )
    if "path" in d and "prefix_rewrite" in d:
        errs.add(_join(path, "prefix_rewrite"), "not allowed together with path; give one")
    elif "prefix_rewrite" in d and match.prefix is None:
        errs.add(_join(path, "prefix_rewrite"), "only with a prefix match (match.prefix)")
    if redirect.host is not None and redirect.port is not None and _has_port(redirect.host):
        errs.add(_join(path, "host"), f"{redirect.host!r} has a port, and so does redirect.port")
    return redirect


def _has_port(authority: str) -> bool:
    m = _AUTHORITY_RE.fullmatch(authority)
    return m is not None and m.group(1) is not None


def _rule(
    errs: _Errors, path: str, raw: object, refs: list[tuple[str, str]]
) -> HttpRouteRule | None:
    d = _mapping(errs, path, raw, _RULE_KEYS)
    if d is None:
        return None
    match = _match(errs, _join(path, "match"), d.get("match"))
    actions = [k for k in _ACTIONS if k in d]
    # No action but an unknown key: that key (already reported) is probably the action.
    if len(actions) > 1 or (not actions and isinstance(raw, dict) and len(d) == len(raw)):
        errs.add(path, f"give exactly one of {', '.join(_ACTIONS)} (got {len(actions)})")
    action = actions[0] if len(actions) == 1 else None
    if action in ("direct_response", "redirect"):
        for key in _FORWARD_ONLY:
            if key in d:
                errs.add(
                    _join(path, key),
                    "only for forwarded requests (cluster or weighted_clusters),"
                    f" not with {action}",
                )
    cluster = _field(errs, d, path, "cluster", parse_name, None)
    if cluster is not None:
        refs.append((_join(path, "cluster"), cluster))
    weighted: tuple[WeightedCluster, ...] = ()
    if "weighted_clusters" in d:
        weighted = _weighted(errs, _join(path, "weighted_clusters"), d["weighted_clusters"], refs)
    direct = None
    if "direct_response" in d:
        direct = _direct_response(errs, _join(path, "direct_response"), d["direct_response"])
    redirect = None
    if "redirect" in d:
        redirect = _redirect(errs, _join(path, "redirect"), d["redirect"], match)
    prefix_rewrite = _field(errs, d, path, "prefix_rewrite", _path_value, None)
    if prefix_rewrite is not None and match.prefix is None:
        errs.add(_join(path, "prefix_rewrite"), "only with a prefix match (match.prefix)")
    return HttpRouteRule(
        match=match,
        cluster=cluster,
        weighted_clusters=weighted,
        direct_response=direct,
        redirect=redirect,
        prefix_rewrite=prefix_rewrite,
        host_rewrite=_field(errs, d, path, "host_rewrite", _authority, None),
        timeout=_field(errs, d, path, "timeout", parse_optional_duration, _DEFAULT_TIMEOUT),
        retry=_retry(errs, _join(path, "retry"), d.get("retry")),
        request_headers=_mutation(
            errs, _join(path, "request_headers"), d.get("request_headers"), request=True
        ),
        response_headers=_mutation(
            errs, _join(path, "response_headers"), d.get("response_headers"), request=False
        ),
        translate=translate_options(errs, _join(path, "translate"), d.get("translate")),
    )


def _domains(errs: _Errors, path: str, raw: object) -> tuple[tuple[str, str], ...]:
    """(path, domain) for each valid domain."""
    if not isinstance(raw, list):
        errs.add(path, f"expected a list of domains, got {describe(raw)}")
        return ()
    if not raw:
        errs.add(path, "must not be empty (a virtual host needs at least one domain; '*' = any)")
        return ()
    out: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        try:
            out.append((f"{path}[{i}]", _domain(item)))
        except ValueError as exc:
            errs.add(f"{path}[{i}]", str(exc))
    return tuple(out)


def _virtual_host(
    errs: _Errors,
    path: str,
    raw: object,
    refs: list[tuple[str, str]],
    domain_owner: dict[str, tuple[str, str]],
) -> VirtualHost | None:
    d = _mapping(errs, path, raw, _VHOST_KEYS, required=("name", "domains", "rules"))
    if d is None:
        return None
    name = _field(errs, d, path, "name", parse_name, "")
    domains: list[str] = []
    if "domains" in d:
        for dpath, domain in _domains(errs, _join(path, "domains"), d["domains"]):
            owner = domain_owner.get(domain)
            if owner is not None:
                other, first = owner
                errs.add(
                    dpath,
                    f"domain {domain!r} of virtual host {name!r} is already used by virtual"
                    f" host {other!r} ({first})",
                )
                continue
            domain_owner[domain] = (name, dpath)
            domains.append(domain)
    rules: list[HttpRouteRule] = []
    rules_path = _join(path, "rules")
    if "rules" in d:
        items = _list(errs, rules_path, d["rules"])
        if not items and not errs.is_bad(rules_path):
            errs.add(rules_path, "must not be empty (a virtual host needs at least one rule)")
        for i, item in enumerate(items):
            rule = _rule(errs, f"{rules_path}[{i}]", item, refs)
            if rule is not None:
                rules.append(rule)
    return VirtualHost(
        name=name,
        domains=tuple(domains),
        rules=tuple(rules),
        request_headers=_mutation(
            errs, _join(path, "request_headers"), d.get("request_headers"), request=True
        ),
        response_headers=_mutation(
            errs, _join(path, "response_headers"), d.get("response_headers"), request=False
        ),
    )


def parse_virtual_hosts(
    errs: _Errors, path: str, raw: object
) -> tuple[tuple[VirtualHost, ...], list[tuple[str, str]]]:
    """``routes[i].virtual_hosts`` -> the virtual hosts, and (path, name) of every cluster
    their rules name (for the cross checks). Problems go to ``errs``."""
    refs: list[tuple[str, str]] = []
    items = _list(errs, path, raw)
    if not items and not errs.is_bad(path):
        errs.add(path, "must not be empty (a route config needs at least one virtual host)")
    hosts: list[VirtualHost] = []
    names: dict[str, str] = {}
    domain_owner: dict[str, tuple[str, str]] = {}  # domain -> (virtual host, path of domain)
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        vh = _virtual_host(errs, p, item, refs, domain_owner)
        if vh is None:
            continue
        if vh.name and not errs.is_bad(_join(p, "name")):
            if vh.name in names:
                errs.add(
                    _join(p, "name"),
                    f"duplicate virtual host name {vh.name!r} (first at {names[vh.name]})",
                )
            else:
                names[vh.name] = p
        hosts.append(vh)
    return tuple(hosts), refs
