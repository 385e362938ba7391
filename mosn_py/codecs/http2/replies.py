"""Local replies of the HTTP/2 codec: the proxy answering a request itself.

Plain HTTP requests get an HTTP status with a short text body, the same table as the
HTTP/1.1 codec and Envoy's router (``envoy/http/codes.h``; bodies as Envoy words them)::

    ProxyStatus                                    :status  body
    OK                                              200     (empty)
    ROUTE_NOT_FOUND                                 404     route not found
    NO_HEALTHY_UPSTREAM                             503     no healthy upstream
    UPSTREAM_CONNECT_FAILED                         503     upstream connect error ...
    UPSTREAM_RESET                                  503     upstream connect error ...
    UPSTREAM_OVERFLOW                               503     upstream connect error ...
    TIMEOUT                                         504     upstream request timeout
    CODEC_ERROR                                     400     bad request
    DRAINING                                        503     the server is draining
    INTERNAL_ERROR                                  500     internal error

gRPC calls (``grpc.is_grpc``) get a Trailers-Only response instead (``grpc.py``).

The codec also answers on its own, head-only (``content-length: 0``): ``431`` for a request
head over the header limits (RFC 6585 §5) and ``413`` for a body over
``CodecLimits.max_body_size`` (RFC 9110 §15.5.14); see ``inbound.py``.

On the wire (RFC 9113 §8.1) a reply with a body is HEADERS then DATA with END_STREAM; one
without a body is a single HEADERS with END_STREAM. A reply to HEAD has no body (RFC 9110
§9.3.2) but keeps its ``content-length``. ``content-length`` is always given, so the client
can check it (§8.1.1). If the client is still sending the request when the reply ends, the
codec follows with RST_STREAM(NO_ERROR) so it stops (§8.1) -- ``Http2Codec.send`` does that.
"""

from __future__ import annotations

from collections.abc import Mapping

from mosn_py.codecs.base import Frame, HeaderList, StreamType
from mosn_py.codecs.http2.grpc import is_grpc, trailers_only
from mosn_py.codecs.http2.wire import PROTOCOL
from mosn_py.codecs.http_status import DEFAULT_MESSAGES, HTTP_STATUS_BY_PROXY_STATUS
from mosn_py.errors import LocalProtocolError, ProxyStatus

# Shared with HTTP/1.1 (one local-reply text per status whatever the listener speaks).
HTTP_STATUS: Mapping[ProxyStatus, int] = HTTP_STATUS_BY_PROXY_STATUS
DEFAULT_BODY: Mapping[ProxyStatus, str] = DEFAULT_MESSAGES


def http_status_for(status: ProxyStatus) -> int:
    return HTTP_STATUS[status]


def status_reply(stream_id: int, status: int, body: str = "", *, head: bool = False) -> Frame:
    """A ``text/plain`` response with ``:status`` ``status`` and ``body`` (none for HEAD)."""
    data = body.encode("utf-8")
    pairs = [(":status", str(status))]
    if data:
        pairs.append(("content-type", "text/plain; charset=utf-8"))
    pairs.append(("content-length", str(len(data))))
    return Frame(
        StreamType.RESPONSE,
        stream_id,
        HeaderList(pairs),
        b"" if head else data,
        status,
        end_stream=True,
        protocol=PROTOCOL,
    )


def http_local_reply(request: Frame, status: ProxyStatus, message: str = "") -> Frame:
    """The HTTP answer to ``request`` for ``status`` (table above); ``message`` replaces
    the default body."""
    body = message or DEFAULT_BODY[status]
    head = request.headers.get(":method") == "HEAD"
    return status_reply(request.request_id, HTTP_STATUS[status], body, head=head)


def local_reply(request: Frame, status: ProxyStatus, message: str = "") -> Frame:
    """``request``'s local reply: Trailers-Only gRPC for gRPC calls, HTTP otherwise.

    The gRPC message is ``message`` or the HTTP table's default text. Raises
    ``LocalProtocolError`` if ``request`` is a response.
    """
    if request.stream_type is StreamType.RESPONSE:
        raise LocalProtocolError("local_reply() needs a request", protocol=PROTOCOL)
    if is_grpc(request.headers):
        return trailers_only(request.request_id, status, message or DEFAULT_BODY[status])
    return http_local_reply(request, status, message)
