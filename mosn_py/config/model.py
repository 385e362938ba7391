"""The typed, immutable configuration model.

One model for every source: the YAML loader (``config/loader.py``) and, later, xDS produce
these objects; the data plane never sees raw dicts. Everything here is a frozen, slotted
dataclass; collections are tuples. A running proxy swaps whole snapshots, never mutates one.

Durations are float seconds (``None`` = no limit); sizes are int bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Protocols a listener may speak / a cluster may speak. Later issues add to these tuples.
LISTENER_PROTOCOLS: tuple[str, ...] = (
    "tcp", "bolt", "http1", "http2", "http", "grpc", "redis", "memcache",
)
CLUSTER_PROTOCOLS: tuple[str, ...] = ("tcp", "bolt", "http1", "http2", "grpc", "redis", "memcache")
# Cache protocols: keys routed by prefix and sharded over a cluster's endpoints (ketama).
CACHE_PROTOCOLS: tuple[str, ...] = ("redis", "memcache")
CLUSTER_TYPES: tuple[str, ...] = ("static", "strict_dns", "original_dst")
LB_POLICIES: tuple[str, ...] = ("round_robin", "random", "least_request")
RETRY_ON: tuple[str, ...] = ("connect-failure", "reset")
TLS_VERSIONS: tuple[str, ...] = ("1.2", "1.3")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
LOG_FORMATS: tuple[str, ...] = ("json", "text")
# Listener protocols that route by HTTP virtual host: the route config such a listener names
# has ``virtual_hosts``; every other L7 listener's has ``rules``. (Not all of them are in
# LISTENER_PROTOCOLS yet: the HTTP engine adds them there.)
HTTP_LISTENER_PROTOCOLS: tuple[str, ...] = ("http1", "http2", "http", "grpc")
REDIRECT_CODES: tuple[int, ...] = (301, 302, 303, 307, 308)
DEFAULT_HTTP_ROUTE_TIMEOUT = 15.0  # Envoy's default route timeout


@dataclass(frozen=True, slots=True)
class Address:
    host: str  # an IP literal or a name; IPv6 without brackets
    port: int  # 0 = any free port (tests)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TlsCertificate:
    """A certificate chain and its key (PEM files). ``server_names``: the SNI names it is
    served for (exact, or ``*.suffix`` for any name ending in ``.suffix``); empty = only
    as the default."""

    cert: str
    key: str
    server_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS termination on a listener. ``certificates[0]`` is the default certificate (no
    SNI, or an SNI no entry names); the others are chosen by the client's SNI."""

    certificates: tuple[TlsCertificate, ...]
    ca: str | None = None  # verifies client certificates
    require_client_cert: bool = False
    min_version: str = "1.2"  # one of TLS_VERSIONS

    @property
    def cert(self) -> str:
        return self.certificates[0].cert

    @property
    def key(self) -> str:
        return self.certificates[0].key


@dataclass(frozen=True, slots=True)
class ClusterTlsConfig:
    """TLS origination to a cluster's endpoints. The server certificate is verified against
    ``ca`` (or the system trust store) and its name against ``sni`` (or the endpoint's host)
    unless ``verify`` is false; ``cert``/``key`` present a client certificate (mTLS)."""

    sni: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True
    alpn: tuple[str, ...] | None = None  # None: from the cluster protocol (h2 / http/1.1)
    min_version: str = "1.2"
    # The identities the server may have (URI or DNS SANs; a trailing "*" matches a
    # prefix), checked instead of the host name: a mesh peer is known by its SPIFFE id.
    subject_alt_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterConfig:
    """A stream filter by registered name, with its raw options (validated by its factory)."""

    name: str
    config: tuple[tuple[str, object], ...] = ()  # frozen mapping, in file order

    def as_dict(self) -> dict[str, object]:
        return dict(self.config)


@dataclass(frozen=True, slots=True)
class AccessLogConfig:
    path: str = "-"  # "-" = stdout (through the structured logger), else a file path


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    name: str
    address: Address
    protocol: str = "tcp"  # one of LISTENER_PROTOCOLS
    transparent: bool = False
    tls: TlsConfig | None = None
    filters: tuple[FilterConfig, ...] = ()
    route: str | None = None  # L7 listeners: the name of a RouteConfig
    cluster: str | None = None  # tcp listeners: the name of a ClusterConfig
    idle_timeout: float | None = 300.0  # close a connection with no traffic for this long
    max_frame_size: int = 16 << 20  # codec limit for L7 protocols
    # HTTP limits (431 / 413 / REFUSED_STREAM beyond them)
    max_header_size: int = 64 << 10  # bytes of one request head
    max_header_count: int = 100  # fields in one request head
    max_body_size: int = 0  # bytes of one request body; 0 = unlimited
    max_concurrent_streams: int = 100  # HTTP/2: streams in flight per connection
    password: str | None = None  # redis: clients must AUTH with it first
    access_log: AccessLogConfig | None = None  # tcp: one line per connection; L7: per request
    backlog: int = 1024
    # HTTP listeners only: no socket; a Listener for proxyless gRPC clients (xds:///NAME),
    # served by the control plane as an Envoy api_listener and skipped by the proxy.
    api_listener: bool = False
    # Sidecar interception (docs/sidecar.md). ``use_original_dst``: hand each connection to
    # the listener configured for its original destination (``bind_to_port: false``
    # listeners, by ip:port then by port, picked among several by protocol sniffing), or to
    # this listener's own ``cluster`` (a passthrough) when none fits.
    use_original_dst: bool = False
    bind_to_port: bool = True  # false: a virtual listener, reached only by that hand-off
    sniff_timeout: float = 0.1  # server-first protocols send nothing: tcp after this long
    forward_client_cert: str = "sanitize"  # HTTP: x-forwarded-client-cert (sanitize | sanitize_set)


@dataclass(frozen=True, slots=True)
class HeaderMatcher:
    name: str
    exact: str | None = None  # None with regex None = "present"
    regex: str | None = None


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """All given conditions must hold. Empty = match everything.

    Bolt: ``service`` is compared with the ``service`` header (falling back to
    ``sofa_head_target_service``); the value ``.*`` matches any service. ``method`` is
    ``sofa_head_method_name``.
    """

    service: str | None = None
    method: str | None = None
    headers: tuple[HeaderMatcher, ...] = ()
    # redis / memcache listeners: the request's (first) key starts with this / its command
    # is one of these (lowercase)
    key_prefix: str | None = None
    commands: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 1  # extra tries after the first
    on: tuple[str, ...] = ("connect-failure",)  # subset of RETRY_ON


@dataclass(frozen=True, slots=True)
class RouteRule:
    match: RouteMatch
    cluster: str
    timeout: float | None = None  # None: no route timeout
    retry: RetryPolicy | None = None
    mirror: str | None = None  # redis/memcache: a cluster that also gets every write
    # options of the translator used when the cluster speaks another protocol than the
    # listener (validated by the translator's ``from_options``), in file order
    translate: tuple[tuple[str, object], ...] = ()


# --- HTTP routing: virtual hosts (Envoy's VirtualHost / Route / RouteAction, reduced) -------


@dataclass(frozen=True, slots=True)
class QueryMatcher:
    """A query parameter condition: present, and (when given) equal to ``exact`` or fully
    matching ``regex``. Compared with the first value of the (percent-decoded) parameter."""

    name: str
    exact: str | None = None
    regex: str | None = None


@dataclass(frozen=True, slots=True)
class HttpRouteMatch:
    """All given conditions must hold.

    At most one of ``prefix``, ``path`` (exact) and ``regex`` (full match); all three None
    means any path (the loader writes that as ``prefix="/"``). They are compared with the
    request path without its query string; ``case_sensitive=False`` folds case for
    ``prefix``/``path`` (not ``regex``: write ``(?i)`` in it). ``headers`` names are lower
    case and may be request pseudo-headers (``:method``); ``grpc`` requires a gRPC
    content-type.
    """

    prefix: str | None = None
    path: str | None = None
    regex: str | None = None
    case_sensitive: bool = True
    headers: tuple[HeaderMatcher, ...] = ()
    query: tuple[QueryMatcher, ...] = ()
    grpc: bool = False


@dataclass(frozen=True, slots=True)
class WeightedCluster:
    cluster: str
    weight: int  # >= 1; a cluster gets weight / sum(weights) of the requests


@dataclass(frozen=True, slots=True)
class HeaderValue:
    name: str  # lower case, never a pseudo-header
    value: str
    append: bool = True  # False: replace every existing value of the header


@dataclass(frozen=True, slots=True)
class HeaderMutation:
    """Applied as: remove every header named in ``remove``, then each ``add`` in order."""

    add: tuple[HeaderValue, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DirectResponse:
    status: int  # 200..599
    body: str = ""


@dataclass(frozen=True, slots=True)
class Redirect:
    """Envoy's RedirectAction: each given part replaces that part of the request's URL.

    ``path`` replaces the path (a query in it replaces the request's and is never stripped);
    ``prefix_rewrite`` replaces the matched prefix instead; ``port`` (or a changed ``scheme``
    whose old default port was explicit) drops the request's port.
    """

    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None
    prefix_rewrite: str | None = None
    code: int = 301  # one of REDIRECT_CODES
    strip_query: bool = False


@dataclass(frozen=True, slots=True)
class HttpRouteRule:
    """One route of a virtual host: a match and exactly one action (``cluster``,
    ``weighted_clusters``, ``direct_response`` or ``redirect``). ``prefix_rewrite``,
    ``host_rewrite``, ``timeout`` and ``retry`` concern forwarded requests only."""

    match: HttpRouteMatch
    cluster: str | None = None
    weighted_clusters: tuple[WeightedCluster, ...] = ()
    direct_response: DirectResponse | None = None
    redirect: Redirect | None = None
    prefix_rewrite: str | None = None
    host_rewrite: str | None = None
    timeout: float | None = DEFAULT_HTTP_ROUTE_TIMEOUT  # None: no route timeout
    retry: RetryPolicy | None = None
    request_headers: HeaderMutation = field(default_factory=HeaderMutation)
    response_headers: HeaderMutation = field(default_factory=HeaderMutation)
    translate: tuple[tuple[str, object], ...] = ()  # as RouteRule.translate


@dataclass(frozen=True, slots=True)
class VirtualHost:
    """Requests whose Host/:authority matches one of ``domains`` (lower case; ``*.x``,
    ``x.*`` or ``*`` wildcards) are routed by ``rules``, first match wins."""

    name: str
    domains: tuple[str, ...]
    rules: tuple[HttpRouteRule, ...]
    request_headers: HeaderMutation = field(default_factory=HeaderMutation)
    response_headers: HeaderMutation = field(default_factory=HeaderMutation)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """A route config has either ``rules`` (Bolt and the other single-frame protocols) or
    ``virtual_hosts`` (HTTP listeners), never both."""

    name: str
    rules: tuple[RouteRule, ...] = ()
    virtual_hosts: tuple[VirtualHost, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: Address
    weight: int = 1


@dataclass(frozen=True, slots=True)
class OutlierDetection:
    """Passive health: eject a host after consecutive connect failures (Envoy's
    ``consecutive_local_origin_failure``). An ejected host gets no new requests for
    ``ejection_time`` x the number of times it was ejected (capped at ``max_ejection_time``);
    if every host is ejected the cluster uses them all anyway (Envoy's panic mode)."""

    consecutive_connect_failures: int = 3  # 0 disables ejection
    ejection_time: float = 5.0
    max_ejection_time: float = 60.0


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    name: str
    protocol: str = "tcp"  # one of CLUSTER_PROTOCOLS
    type: str = "static"  # one of CLUSTER_TYPES
    endpoints: tuple[Endpoint, ...] = ()
    lb: str = "round_robin"  # one of LB_POLICIES
    connect_timeout: float = 1.0
    connections_per_host: int = 1  # multiplexed protocols: upstream connections per host
    max_requests: int = 10000  # circuit breaker: requests in flight to the whole cluster
    max_frame_size: int = 16 << 20
    idle_timeout: float | None = None  # close idle upstream connections (None: keep)
    outlier_detection: OutlierDetection = field(default_factory=OutlierDetection)
    tls: ClusterTlsConfig | None = None  # originate TLS to the endpoints
    password: str | None = None  # redis: AUTH sent on every new upstream connection
    hash_tag: str | None = None  # redis/memcache: two characters, e.g. "{}"
    dns_refresh_rate: float = 5.0  # strict_dns: how often the endpoints' names are resolved
    # bind upstream connections to this local IP (Envoy's upstream_bind_config); a sidecar's
    # inbound passthrough uses 127.0.0.6, which its iptables rules let through
    source_address: str | None = None


@dataclass(frozen=True, slots=True)
class AdminConfig:
    address: Address


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    format: str = "json"  # json | text


@dataclass(frozen=True, slots=True)
class DemoUpstream:
    """A built-in demo server started by ``mosn-py run`` (the bundled default config)."""

    name: str
    protocol: str  # "bolt" (SampleServicePb echo) | "tcp" (echo)
    address: Address


@dataclass(frozen=True, slots=True)
class XdsConfig:
    """Where the proxy gets live listeners, routes, clusters and endpoints (ADS, SotW)."""

    address: Address
    node_id: str
    node_cluster: str = ""
    connect_timeout: float = 5.0
    # ``mosn-py run`` reports ready once the first LDS/CDS (and what they wait for) applied,
    # or after this long with what it has (Envoy's initial_fetch_timeout)
    initial_fetch_timeout: float = 15.0
    initial_backoff: float = 0.5  # reconnect: doubled per failure (with jitter) up to
    max_backoff: float = 30.0  # ``max_backoff``


@dataclass(frozen=True, slots=True)
class Config:
    listeners: tuple[ListenerConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    clusters: tuple[ClusterConfig, ...] = ()
    admin: AdminConfig | None = None
    workers: int = 1  # "auto" in YAML resolves to os.cpu_count() at load
    drain_timeout: float = 10.0  # SIGTERM: how long in-flight requests may take to finish
    log: LogConfig = field(default_factory=LogConfig)
    demo_upstreams: tuple[DemoUpstream, ...] = ()
    xds: XdsConfig | None = None

    def cluster(self, name: str) -> ClusterConfig | None:
        for c in self.clusters:
            if c.name == name:
                return c
        return None

    def route(self, name: str) -> RouteConfig | None:
        for r in self.routes:
            if r.name == name:
                return r
        return None
