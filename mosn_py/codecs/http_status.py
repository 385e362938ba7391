"""What a proxy-side outcome (``ProxyStatus``) looks like over HTTP, whatever the version.

One table for HTTP/1.1 and HTTP/2 (Envoy's choices): the status code of a local reply and
its body text (Envoy's wording, from ``source/common/router/router.cc`` and friends).
gRPC requests are answered with gRPC statuses instead (``codecs/http2/grpc.py``).
"""

from __future__ import annotations

from mosn_py.errors import ProxyStatus

HTTP_STATUS_BY_PROXY_STATUS: dict[ProxyStatus, int] = {
    ProxyStatus.OK: 200,
    ProxyStatus.ROUTE_NOT_FOUND: 404,
    ProxyStatus.NO_HEALTHY_UPSTREAM: 503,
    ProxyStatus.UPSTREAM_CONNECT_FAILED: 503,
    ProxyStatus.UPSTREAM_RESET: 503,
    ProxyStatus.UPSTREAM_OVERFLOW: 503,
    ProxyStatus.TIMEOUT: 504,
    ProxyStatus.CODEC_ERROR: 400,
    ProxyStatus.DRAINING: 503,
    ProxyStatus.INTERNAL_ERROR: 500,
}

DEFAULT_MESSAGES: dict[ProxyStatus, str] = {
    ProxyStatus.OK: "",
    ProxyStatus.ROUTE_NOT_FOUND: "route not found",
    ProxyStatus.NO_HEALTHY_UPSTREAM: "no healthy upstream",
    ProxyStatus.UPSTREAM_CONNECT_FAILED: (
        "upstream connect error or disconnect/reset before headers. "
        "reset reason: connection failure"
    ),
    ProxyStatus.UPSTREAM_RESET: (
        "upstream connect error or disconnect/reset before headers. "
        "reset reason: connection termination"
    ),
    ProxyStatus.UPSTREAM_OVERFLOW: (
        "upstream connect error or disconnect/reset before headers. reset reason: overflow"
    ),
    ProxyStatus.TIMEOUT: "upstream request timeout",
    ProxyStatus.CODEC_ERROR: "bad request",
    ProxyStatus.DRAINING: "the server is draining",
    ProxyStatus.INTERNAL_ERROR: "internal error",
}
