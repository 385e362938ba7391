"""gRPC over HTTP/2: the parts a proxy answers in itself.

gRPC rides on the HTTP/2 codec unchanged (pass-through needs no gRPC knowledge: DATA
frames carry length-prefixed messages, trailers carry the status). The proxy only needs
gRPC terms when it answers a call itself, e.g. no healthy upstream. A gRPC client does not
read the HTTP status -- ``:status 503`` reaches the application as a vague UNAVAILABLE or
UNKNOWN "bad HTTP status" -- so the reply is a *Trailers-Only* response (gRPC
PROTOCOL-HTTP2.md "Responses")::

    HEADERS (END_STREAM, END_HEADERS)
      :status        200
      content-type   application/grpc
      grpc-status    14                   <- decimal status code
      grpc-message   no%20healthy%20...   <- Percent-Encoded UTF-8 (below)

Status mapping, as Envoy's router answers gRPC calls (its HTTP status -> gRPC mapping)::

    ProxyStatus                                     gRPC status
    NO_HEALTHY_UPSTREAM, UPSTREAM_CONNECT_FAILED,   14 UNAVAILABLE
      UPSTREAM_RESET, UPSTREAM_OVERFLOW, DRAINING
    TIMEOUT                                          4 DEADLINE_EXCEEDED
    ROUTE_NOT_FOUND                                 12 UNIMPLEMENTED
    CODEC_ERROR, INTERNAL_ERROR                     13 INTERNAL
    OK                                               0 OK

``grpc-message`` is Percent-Encoded: the message's UTF-8 octets, where every octet outside
printable ASCII 0x20-0x7E, and ``%`` itself, becomes ``%XX`` (upper-case hex); decoders must
never fail on a bad escape and pass it through instead.

``grpc-timeout`` (request header): ``1*8DIGIT`` followed by one unit of ``H M S m u n``;
the codec turns it into ``Frame.timeout_ms`` (rounded up, so a deadline never shrinks to 0).
``application/grpc-web`` is a different framing (trailers inside the body) and is not
treated as gRPC here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from mosn_py.codecs.base import Frame, HeaderList, StreamType
from mosn_py.codecs.http2.wire import PROTOCOL
from mosn_py.errors import ProxyStatus

GRPC_CONTENT_TYPE = "application/grpc"


class GrpcStatus(enum.IntEnum):
    """gRPC status codes (grpc/doc/statuscodes.md)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


GRPC_STATUS: Mapping[ProxyStatus, GrpcStatus] = {
    ProxyStatus.OK: GrpcStatus.OK,
    ProxyStatus.ROUTE_NOT_FOUND: GrpcStatus.UNIMPLEMENTED,
    ProxyStatus.NO_HEALTHY_UPSTREAM: GrpcStatus.UNAVAILABLE,
    ProxyStatus.UPSTREAM_CONNECT_FAILED: GrpcStatus.UNAVAILABLE,
    ProxyStatus.UPSTREAM_RESET: GrpcStatus.UNAVAILABLE,
    ProxyStatus.UPSTREAM_OVERFLOW: GrpcStatus.UNAVAILABLE,
    ProxyStatus.DRAINING: GrpcStatus.UNAVAILABLE,
    ProxyStatus.TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
    ProxyStatus.CODEC_ERROR: GrpcStatus.INTERNAL,
    ProxyStatus.INTERNAL_ERROR: GrpcStatus.INTERNAL,
}

# gRPC's "HTTP to gRPC Status Code Mapping": what a gRPC client makes of a non-200 answer.
_FROM_HTTP: Mapping[int, GrpcStatus] = {
    400: GrpcStatus.INTERNAL,
    401: GrpcStatus.UNAUTHENTICATED,
    403: GrpcStatus.PERMISSION_DENIED,
    404: GrpcStatus.UNIMPLEMENTED,
    429: GrpcStatus.UNAVAILABLE,
    502: GrpcStatus.UNAVAILABLE,
    503: GrpcStatus.UNAVAILABLE,
    504: GrpcStatus.UNAVAILABLE,
}

_TIMEOUT_UNIT_NS: Mapping[str, int] = {
    "H": 3600 * 10**9,
    "M": 60 * 10**9,
    "S": 10**9,
    "m": 10**6,
    "u": 10**3,
    "n": 1,
}

_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("%")}
_HEX = frozenset(b"0123456789abcdefABCDEF")


def is_grpc(headers: Mapping[str, str]) -> bool:
    """Is this head a gRPC call (``content-type: application/grpc[+proto|;...]``)?"""
    ctype = headers.get("content-type") or ""
    return ctype.startswith(GRPC_CONTENT_TYPE) and not ctype.startswith("application/grpc-web")


def grpc_status_for(status: ProxyStatus) -> GrpcStatus:
    return GRPC_STATUS[status]


def grpc_status_from_http(http_status: int) -> GrpcStatus:
    """The status a gRPC client derives from a non-200 HTTP answer (UNKNOWN otherwise)."""
    return _FROM_HTTP.get(http_status, GrpcStatus.UNKNOWN)


def encode_grpc_message(message: str) -> str:
    """Percent-Encode ``message`` for ``grpc-message`` (UTF-8 octets, see module doc)."""
    raw = message.encode("utf-8", "surrogatepass")
    if all(b in _PLAIN for b in raw):
        return raw.decode("ascii")
    return "".join(chr(b) if b in _PLAIN else f"%{b:02X}" for b in raw)


def decode_grpc_message(value: str) -> str:
    """Undo ``encode_grpc_message``; a malformed escape is kept literally, never an error."""
    if "%" not in value:
        return value
    raw = value.encode("latin-1", "replace")
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25 and i + 2 < n and raw[i + 1] in _HEX and raw[i + 2] in _HEX:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(b)
        i += 1
    return out.decode("utf-8", "replace")


def parse_grpc_timeout(value: str | None) -> int:
    """``grpc-timeout`` in milliseconds, rounded up; 0 when absent or malformed (no
    deadline: a bad header must not turn into an instant timeout)."""
    if not value or len(value) < 2 or len(value) > 9:
        return 0
    digits, unit = value[:-1], value[-1]
    scale = _TIMEOUT_UNIT_NS.get(unit)
    if scale is None or not digits.isdigit() or not digits.isascii():
        return 0
    ns = int(digits) * scale
    return -(-ns // 10**6)


def trailers_only(request_id: int, status: ProxyStatus | GrpcStatus, message: str = "") -> Frame:
    """A Trailers-Only gRPC response: one HEADERS frame with END_STREAM (see module doc)."""
    code = status if isinstance(status, GrpcStatus) else GRPC_STATUS[status]
    pairs = [
        (":status", "200"),
        ("content-type", GRPC_CONTENT_TYPE),
        ("grpc-status", str(int(code))),
    ]
    if message:
        pairs.append(("grpc-message", encode_grpc_message(message)))
    return Frame(
        StreamType.RESPONSE,
        request_id,
        HeaderList(pairs),
        b"",
        200,
        end_stream=True,
        protocol=PROTOCOL,
    )
