"""The typed, immutable configuration model.

One model for every source: the YAML loader (``config/loader.py``) and, later, xDS produce
these objects; the data plane never sees raw dicts. Everything here is a frozen, slotted
dataclass; collections are tuples. A running proxy swaps whole snapshots, never mutates one.

Durations are float seconds (``None`` = no limit); sizes are int bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Protocols a listener may speak / a cluster may speak. Later issues add to these tuples.
LISTENER_PROTOCOLS: tuple[str, ...] = ("tcp", "bolt")
CLUSTER_PROTOCOLS: tuple[str, ...] = ("tcp", "bolt")
CLUSTER_TYPES: tuple[str, ...] = ("static", "original_dst")
LB_POLICIES: tuple[str, ...] = ("round_robin", "random", "least_request")
RETRY_ON: tuple[str, ...] = ("connect-failure", "reset")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
LOG_FORMATS: tuple[str, ...] = ("json", "text")


@dataclass(frozen=True, slots=True)
class Address:
    host: str  # an IP literal or a name; IPv6 without brackets
    port: int  # 0 = any free port (tests)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert: str
    key: str
    ca: str | None = None
    require_client_cert: bool = False


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
    access_log: AccessLogConfig | None = None  # tcp: one line per connection; L7: per request
    backlog: int = 1024


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


@dataclass(frozen=True, slots=True)
class RouteConfig:
    name: str
    rules: tuple[RouteRule, ...]


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
class Config:
    listeners: tuple[ListenerConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    clusters: tuple[ClusterConfig, ...] = ()
    admin: AdminConfig | None = None
    workers: int = 1  # "auto" in YAML resolves to os.cpu_count() at load
    drain_timeout: float = 10.0  # SIGTERM: how long in-flight requests may take to finish
    log: LogConfig = field(default_factory=LogConfig)
    demo_upstreams: tuple[DemoUpstream, ...] = ()

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
