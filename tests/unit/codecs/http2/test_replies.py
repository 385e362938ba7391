"""HTTP local replies (``replies.py``): the status table, bodies, HEAD, and the wire form
as a real h2 client decodes it."""

from __future__ import annotations

import h2.events as ev
import pytest

from mosn_py.codecs.base import Frame, HeaderList, StreamType
from mosn_py.codecs.http2 import HTTP_STATUS, http_local_reply, local_reply
from mosn_py.errors import LocalProtocolError, ProxyStatus

from .peer import GET, REQUEST, b, h, names, of, server_link

EXPECTED = {  # same table as HTTP/1.1 (and Envoy)
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


def request(pairs: list[tuple[str, str]], sid: int = 1) -> Frame:
    return Frame(StreamType.REQUEST, sid, HeaderList(pairs))


def test_table() -> None:
    assert dict(HTTP_STATUS) == EXPECTED


@pytest.mark.parametrize("status", list(EXPECTED))
def test_http_local_reply_on_the_wire(status: ProxyStatus) -> None:
    link = server_link()
    link.peer.send_headers(1, b(GET), end_stream=True)
    link.run()
    (head,) = link.take()
    reply = link.codec.local_reply(head, status)
    assert reply.status == EXPECTED[status] and reply.end_stream
    link.send(reply)
    got = link.take_peer()
    fields = dict(h(of(got, ev.ResponseReceived)[0].headers))
    assert fields[":status"] == str(EXPECTED[status])
    body = b"".join(e.data for e in of(got, ev.DataReceived))
    assert fields["content-length"] == str(len(body))
    if status is ProxyStatus.NO_HEALTHY_UPSTREAM:
        assert body == b"no healthy upstream"
    if status is ProxyStatus.OK:
        assert body == b"" and names(got) == ["ResponseReceived", "StreamEnded"]
        assert "content-type" not in fields
    assert of(got, ev.StreamEnded)


def test_message_replaces_the_default_body() -> None:
    reply = http_local_reply(request(GET, 5), ProxyStatus.TIMEOUT, "slow upstream ü")
    assert reply.request_id == 5 and reply.status == 504
    assert reply.body == "slow upstream ü".encode()
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["content-length"] == str(len(reply.body))


def test_head_request_gets_no_body() -> None:
    link = server_link()
    link.peer.send_headers(1, b([(":method", "HEAD"), *GET[1:]]), end_stream=True)
    link.run()
    (head,) = link.take()
    reply = link.codec.local_reply(head, ProxyStatus.NO_HEALTHY_UPSTREAM)
    assert reply.body == b"" and reply.headers["content-length"] == "19"
    link.send(reply)
    got = link.take_peer()
    assert names(got) == ["ResponseReceived", "StreamEnded"]


def test_grpc_web_is_answered_in_http() -> None:
    reply = local_reply(
        request([*REQUEST, ("content-type", "application/grpc-web")]), ProxyStatus.UPSTREAM_RESET
    )
    assert reply.status == 503 and "grpc-status" not in reply.headers


def test_local_reply_needs_a_request() -> None:
    response = Frame(StreamType.RESPONSE, 1, HeaderList([(":status", "200")]))
    with pytest.raises(LocalProtocolError):
        local_reply(response, ProxyStatus.TIMEOUT)
