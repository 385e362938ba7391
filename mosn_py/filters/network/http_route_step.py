"""The HTTP part of a stream's routing step and response head (Envoy's HTTP connection
manager duties), used by ``l7_proxy.Stream`` on listeners that speak HTTP.

Request: virtual host and rule from the ``HttpRouteTable``; a direct response or a redirect
is answered here; otherwise the cluster is picked (weighted), the head is prepared for the
upstream (hop-by-hop removal, x-forwarded-*, x-request-id; ``http_heads``), then the route's
rewrites and header mutations apply. Response: hop-by-hop removal and the route's response
header mutations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mosn_py.codecs.base import Frame, HeaderList, StreamType
from mosn_py.errors import ProxyStatus
from mosn_py.filters.network.http_heads import (
    prepare_request_expect,
    prepare_response,
    strip_hop_by_hop,
)
from mosn_py.router.http_routes import (
    apply_request_rewrites,
    apply_response_mutations,
    redirect_location,
)
from mosn_py.tls import client_cert_header

if TYPE_CHECKING:
    from mosn_py.filters.network.l7_proxy import Stream


def with_headers(frame: Frame, headers: HeaderList) -> Frame:
    """``frame.evolve(headers=headers)`` (``raw`` cleared), without ``dataclasses.replace``'s
    per-field ``getattr`` walk: this runs for every request and every response head."""
    return Frame(
        frame.stream_type,
        frame.request_id,
        headers,
        frame.body,
        frame.status,
        frame.timeout_ms,
        frame.is_heartbeat,
        frame.end_stream,
        frame.trailers,
        frame.protocol,
        frame.extra,
    )


def whole_response(request: Frame, status: int, body: bytes, extra: list[tuple[str, str]]) -> Frame:
    """A complete response (head and body in one frame) for the proxy to send itself."""
    headers = [(":status", str(status)), *extra]
    if body or status not in (204, 304):
        headers.append(("content-length", str(len(body))))
    return Frame(
        StreamType.RESPONSE,
        request.request_id,
        HeaderList(headers),
        body,
        status,
        end_stream=True,
        protocol=request.protocol,
    )


def route_http(stream: Stream) -> tuple[Any, str] | None:
    """Match the request; answer it here when the route says so.

    Returns ``(rule, cluster_name)`` to proxy, or None when the stream was answered (no
    route, direct response, redirect).
    """
    ctx = stream.ctx
    req = stream.request
    headers = req.headers
    found = ctx.route_table.match(headers) if ctx.route_table is not None else None
    if found is None:
        stream.send_local_reply(ProxyStatus.ROUTE_NOT_FOUND, "no route for this request")
        return None
    vh, rule = found
    stream.vhost = vh
    stream.route = rule
    scheme = "https" if ctx.config.tls is not None else "http"
    if rule.direct_response is not None:
        dr = rule.direct_response
        body = dr.body.encode()
        extra = [("content-type", "text/plain; charset=utf-8")] if body else []
        stream._encode(whole_response(req, dr.status, body, extra))
        return None
    if rule.redirect is not None:
        location = redirect_location(rule, headers, scheme)
        stream._encode(whole_response(req, rule.redirect.code, b"", [("location", location)]))
        return None
    cluster = rule.pick_cluster()
    assert isinstance(headers, HeaderList)
    xfcc = None
    if ctx.config.forward_client_cert == "sanitize_set":
        t = stream.conn.transport
        xfcc = client_cert_header(t.get_extra_info("ssl_object") if t is not None else None)
    h, expect = prepare_request_expect(
        headers, client_ip=stream.conn.peer_ip, scheme=scheme, client_cert=xfcc
    )
    if expect is not None and expect.lower() == "100-continue":
        # Like Envoy: the proxy answers 100-continue itself and does not pass it on, so the
        # client starts its body at once whatever the upstream speaks (HTTP/2 has no 1xx
        # here) and the upstream never holds a request waiting for its own 100.
        h = h.without("expect")
        conn = stream.conn
        if conn.serial and not req.end_stream:
            interim = Frame(StreamType.RESPONSE, req.request_id,
                            HeaderList([(":status", "100")]), status=100, end_stream=False,
                            protocol=req.protocol)
            conn.write(conn.codec.send(interim, req.request_id))
    h = apply_request_rewrites(vh, rule, h)
    stream.request = with_headers(req, h)
    return rule, cluster or ""


def settle_upgrade(stream: Stream, cluster_protocol: str) -> bool:
    """An HTTP/1.1 ``Upgrade``/``CONNECT`` request, once its cluster is known.

    - ``Upgrade`` to an ``http1`` cluster (WebSocket...): passed on; a 101 makes the exchange
      a tunnel (``Stream.on_upstream_response``).
    - ``Upgrade: h2c``, or any ``Upgrade`` to a cluster that cannot switch protocols: the
      upgrade is ignored (RFC 9110 §7.8) -- its fields are dropped and the request goes on
      as a plain one, so the client gets the upstream's ordinary response.
    - ``CONNECT`` to a non-``http1`` cluster: answered 501 here.

    Returns False when the stream was answered.
    """
    req = stream.request
    extra = req.extra
    if extra is None or not getattr(extra, "upgrade", False):
        return True
    headers = req.headers
    assert isinstance(headers, HeaderList)
    if headers.get(":method") == "CONNECT":
        if cluster_protocol == "http1":
            return True
        body = f"CONNECT is not proxied to a {cluster_protocol} cluster\n".encode()
        stream._encode(whole_response(req, 501, body, [("content-type", "text/plain")]))
        return False
    tokens = {t.strip().lower() for t in headers.get("upgrade", "").split(",")}
    if cluster_protocol == "http1" and "h2c" not in tokens:
        return True
    conn = stream.conn
    refuse = getattr(conn.codec, "refuse_upgrade", None)
    if refuse is None or not refuse(req.request_id):
        return True
    h = strip_hop_by_hop(headers)
    if headers.get("content-length", "0").strip() in ("", "0"):
        # No body: the request is whole now (the codec's end-of-request mark that follows
        # is dropped by the stream).
        stream.request = req.evolve(headers=h, end_stream=True)
        stream.req_ended = True
    else:
        stream.request = req.evolve(headers=h)
    return True


def response_head(stream: Stream, frame: Frame) -> Frame:
    """The head to send downstream for an upstream (or local) response."""
    headers = frame.headers
    if not isinstance(headers, HeaderList):
        return frame
    h = prepare_response(headers, status=frame.status)
    rule = stream.route
    vh = stream.vhost
    if vh is not None and rule is not None:
        h = apply_response_mutations(vh, rule, h)
    if h is headers:
        return frame
    return with_headers(frame, h)
