"""Local replies: ProxyStatus -> HTTP status as Envoy maps it, whole messages, ready to send."""

from __future__ import annotations

import pytest

from mosn_py.codecs.base import Frame, HeaderList, Role, StreamType
from mosn_py.codecs.http1 import (
    DEFAULT_MESSAGES,
    HTTP_STATUS_BY_PROXY_STATUS,
    Http1Codec,
    Http1Extra,
    http_status_for,
)
from mosn_py.errors import LocalProtocolError, ProxyStatus

from .vectors import drain, request

ENVOY = {
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


def test_mapping_covers_every_status() -> None:
    assert HTTP_STATUS_BY_PROXY_STATUS == ENVOY
    assert set(DEFAULT_MESSAGES) == set(ProxyStatus)


@pytest.mark.parametrize("status", list(ProxyStatus), ids=lambda s: s.name)
def test_local_reply(status: ProxyStatus) -> None:
    codec = Http1Codec(Role.SERVER)
    reply = codec.local_reply(request("GET", rid=3), status)
    code = ENVOY[status]
    assert reply.stream_type is StreamType.RESPONSE and reply.request_id == 3
    assert reply.status == code and reply.end_stream and reply.protocol == "http1"
    body = DEFAULT_MESSAGES[status].encode()
    assert bytes(reply.body) == body
    fields = [
        (":status", str(code)),
        ("content-type", "text/plain"),
        ("content-length", str(len(body))),
    ]
    closing = status in (ProxyStatus.CODEC_ERROR, ProxyStatus.DRAINING)
    if closing:
        fields.append(("connection", "close"))
    assert reply.headers == HeaderList(fields)
    assert isinstance(reply.extra, Http1Extra) and reply.extra.keep_alive is not closing
    assert http_status_for(status) == code


def test_local_reply_on_the_wire() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    (req,) = drain(codec)
    reply = codec.local_reply(req, ProxyStatus.UPSTREAM_CONNECT_FAILED)
    assert codec.send(reply) == [
        b"HTTP/1.1 503 Service Unavailable\r\n"
        b"content-type: text/plain\r\n"
        b"content-length: 91\r\n"
        b"\r\n"
        b"upstream connect error or disconnect/reset before headers. reset reason: "
        b"connection failure"
    ]
    assert not codec.must_close


def test_draining_reply_closes() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    (req,) = drain(codec)
    out = codec.send(codec.local_reply(req, ProxyStatus.DRAINING, "bye"))
    assert out == [
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n"
        b"connection: close\r\n\r\nbye"
    ]
    assert codec.must_close


def test_custom_message_is_utf8() -> None:
    reply = Http1Codec(Role.SERVER).local_reply(request("GET"), ProxyStatus.TIMEOUT, "délai")
    assert reply.body == "délai".encode() and reply.headers["content-length"] == "6"


def test_local_reply_needs_a_request() -> None:
    with pytest.raises(LocalProtocolError):
        Http1Codec(Role.SERVER).local_reply(Frame(StreamType.RESPONSE, 1, {}), ProxyStatus.OK)
