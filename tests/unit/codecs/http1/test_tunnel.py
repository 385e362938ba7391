"""Upgrade (RFC 9110 §7.8), CONNECT (§9.3.6) and Expect: 100-continue (§10.1.1), in both
roles, then end to end through a SERVER codec and a CLIENT codec wired like a proxy."""

from __future__ import annotations

from typing import Any

import pytest

from mosn_py.codecs.base import (
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http1 import Http1Codec, RxState, TxState
from mosn_py.errors import LocalProtocolError

from .vectors import CLOSED, D, H, client, drain, norm, req_fields, request

WS = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
WS_101 = Frame(
    StreamType.RESPONSE,
    1,
    HeaderList(
        [
            (":status", "101"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ("content-length", "0"),  # dropped: a 101 has no body framing
        ]
    ),
    end_stream=False,
)
CONNECT = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"


def status(rid: int, code: int, body: bytes = b"", *fields: tuple[str, str]) -> Frame:
    return Frame(StreamType.RESPONSE, rid, HeaderList([(":status", str(code)), *fields]), body)


# --- SERVER ------------------------------------------------------------------------------------


def test_websocket_accepted() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(WS + b"\x81\x85early")  # a client that does not wait for the 101
    (head,) = drain(codec)
    assert head.extra.upgrade and head.end_stream is False
    assert codec.state is RxState.HOLD and codec.buffered == 7  # held, not parsed
    codec.receive_data(b"more")
    assert drain(codec) == []
    assert codec.send(WS_101) == [
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"upgrade: websocket\r\n"
        b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"connection: Upgrade\r\n"
        b"\r\n"
    ]
    assert codec.state is RxState.TUNNEL and codec.send_state is TxState.TUNNEL
    assert codec.must_close  # nothing HTTP follows a tunnel
    assert drain(codec) == [DataFrame(1, b"\x81\x85earlymore", False)]
    codec.receive_data(b"GET / HTTP/1.1\r\n\r\n")  # not HTTP any more: plain data
    assert drain(codec) == [DataFrame(1, b"GET / HTTP/1.1\r\n\r\n", False)]
    assert codec.send(DataFrame(1, b"\x81\x02hi", False)) == [b"\x81\x02hi"]
    codec.receive_data(b"")
    assert norm(drain(codec)) == [D(1, b"", True), CLOSED]
    assert codec.send(DataFrame(1, b"bye", True)) == [b"bye"]  # end_stream: half-close
    assert codec.send_state is TxState.DONE


def test_websocket_refused_then_http_again() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(WS + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert len(drain(codec)) == 1  # the next request waits behind the decision
    out = codec.send(status(1, 426, b"upgrade refused", ("upgrade", "websocket")))
    assert out == [
        b"HTTP/1.1 426 Upgrade Required\r\nupgrade: websocket\r\ncontent-length: 15\r\n\r\n"
        b"upgrade refused"
    ]
    assert norm(drain(codec)) == [D(1, b"", True), H(2, req_fields("/next", "a"), end=True)]
    assert not codec.must_close


def test_upgrade_request_with_a_content_length_body() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(
        b"POST /up HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 3\r\n\r\nabcTUNNEL"
    )
    events = norm(drain(codec))
    assert events[1:] == [D(1, b"abc", False)]  # the body, then the stream stays open
    assert codec.state is RxState.HOLD
    codec.send(status(1, 101, b"", ("upgrade", "h2c")).evolve(end_stream=False))
    assert drain(codec) == [DataFrame(1, b"TUNNEL", False)]


def test_refusal_while_the_upgrade_body_still_arrives() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: upgrade\r\n"
        b"Content-Length: 4\r\n\r\nab"
    )
    drain(codec)
    with pytest.raises(LocalProtocolError, match="whole request"):
        codec.send(status(1, 101).evolve(end_stream=False))
    codec.send(status(1, 200, b"", ("content-length", "2")).evolve(end_stream=False))
    codec.receive_data(b"cdGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    events = drain(codec)
    assert events[:2] == [DataFrame(1, b"cd", False), DataFrame(1, b"", True)]
    assert norm(events[2:]) == [H(2, req_fields("/", "a"), end=True)]


def test_eof_while_holding_waits_for_the_decision() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(CONNECT + b"\x16\x03\x01")
    codec.receive_data(b"")
    assert len(drain(codec)) == 1
    assert codec.send(status(1, 200).evolve(end_stream=False)) == [b"HTTP/1.1 200 OK\r\n\r\n"]
    assert norm(drain(codec)) == [D(1, b"\x16\x03\x01", True), CLOSED]


def test_connect_refused() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(CONNECT)
    (head,) = drain(codec)
    assert head.headers.items_all() == ((":method", "CONNECT"), (":authority", "example.com:443"))
    assert codec.send(status(1, 403, b"no")) == [
        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno"
    ]
    assert norm(drain(codec)) == [D(1, b"", True)]
    assert codec.state is RxState.HEAD and codec.send_state is TxState.IDLE


def test_101_only_for_upgrade_requests() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    drain(codec)
    with pytest.raises(LocalProtocolError, match="asked for no upgrade"):
        codec.send(status(1, 101))
    codec.receive_data(b"")
    codec2 = Http1Codec(Role.SERVER)
    codec2.receive_data(CONNECT)
    drain(codec2)
    with pytest.raises(LocalProtocolError, match="asked for no upgrade"):
        codec2.send(status(1, 101))


def test_data_before_a_response_decides() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(WS)
    drain(codec)
    with pytest.raises(LocalProtocolError, match="no message being sent"):
        codec.send(DataFrame(1, b"x", False))


# --- Expect: 100-continue ----------------------------------------------------------------------


def test_expect_100_continue_server() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(
        b"PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    (head,) = drain(codec)
    assert head.extra.expect_continue and not head.end_stream
    assert codec.send(status(1, 100)) == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    codec.receive_data(b"data")
    assert drain(codec) == [DataFrame(1, b"data", True)]
    codec.send(status(1, 204))
    assert codec.pending == 0 and not codec.must_close


def test_expect_answered_with_a_final_status_closes() -> None:
    """A 417/401 sent before the body arrived: the body cannot be skipped, so close."""
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(
        b"PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    drain(codec)
    codec.send(status(1, 417))
    assert codec.must_close


# --- CLIENT ------------------------------------------------------------------------------------


def ws_request(rid: int = 1) -> Frame:
    return request(
        "GET", "/chat", ("upgrade", "websocket"), ("connection", "Upgrade"), rid=rid
    ).evolve(end_stream=False)


def test_client_websocket() -> None:
    codec = Http1Codec(Role.CLIENT)
    assert codec.send(ws_request()) == [
        b"GET /chat HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n"
    ]  # no framing fields: what follows is tunnel data
    assert codec.send_state is TxState.UPGRADE_PENDING
    with pytest.raises(LocalProtocolError, match="no tunnel yet"):
        codec.send(DataFrame(1, b"early", False))
    assert codec.send(DataFrame(1, b"", False)) == []
    codec.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00")
    head, data = drain(codec)
    assert head.status == 101 and head.extra.upgrade and not head.end_stream
    assert data == DataFrame(1, b"\x81\x00", False)
    assert codec.send(DataFrame(1, b"\x81\x01x", False)) == [b"\x81\x01x"]
    assert codec.send_state is TxState.TUNNEL and codec.must_close
    assert codec.send(DataFrame(1, b"", True)) == []
    assert codec.send_state is TxState.DONE


def test_client_upgrade_refused_then_next_request() -> None:
    codec = Http1Codec(Role.CLIENT)
    codec.send(ws_request())
    codec.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")
    assert norm(drain(codec))[1:] == [D(1, b"no", True)]
    assert codec.send(DataFrame(1, b"", True)) == []  # the server side's end marker: no-op
    assert codec.send(request("GET", "/2", rid=2)) == [b"GET /2 HTTP/1.1\r\nhost: a\r\n\r\n"]


def test_client_connect() -> None:
    codec = Http1Codec(Role.CLIENT)
    frame = Frame(
        StreamType.REQUEST,
        5,
        HeaderList([(":method", "CONNECT"), (":authority", "db:5432")]),
        end_stream=False,
    )
    codec.send(frame)
    codec.receive_data(b"HTTP/1.1 200 Connection established\r\nContent-Length: 99\r\n\r\nPG")
    head, data = drain(codec)  # Content-Length ignored on a 2xx to CONNECT (§9.3.6)
    assert head.request_id == 5 and data == DataFrame(5, b"PG", False)
    assert codec.send(DataFrame(5, b"Q", False)) == [b"Q"]


def test_client_connect_refused() -> None:
    codec = Http1Codec(Role.CLIENT)
    codec.send(
        Frame(StreamType.REQUEST, 1, HeaderList([(":method", "CONNECT"), (":authority", "x:1")]))
    )
    codec.receive_data(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
    (head,) = drain(codec)
    assert head.status == 407 and head.end_stream
    assert codec.send(request("GET", rid=2))  # usable again


def test_client_upgrade_with_body() -> None:
    codec = Http1Codec(Role.CLIENT)
    frame = request("POST", "/", ("upgrade", "h2c"), ("connection", "upgrade"), rid=1).evolve(
        body=b"abc"
    )
    assert codec.send(frame) == [
        b"POST / HTTP/1.1\r\nhost: a\r\nupgrade: h2c\r\ncontent-length: 3\r\n"
        b"connection: upgrade\r\n\r\nabc"
    ]
    assert codec.send_state is TxState.UPGRADE_PENDING
    with pytest.raises(LocalProtocolError, match="chunked body"):
        Http1Codec(Role.CLIENT).send(
            frame.evolve(body=b"", headers=frame.headers.with_(("transfer-encoding", "chunked")))
        )


# --- end to end ------------------------------------------------------------------------------


class MiniProxy:
    """Downstream SERVER codec <-> upstream CLIENT codec, frames forwarded as they come."""

    def __init__(self) -> None:
        self.down = Http1Codec(Role.SERVER)
        self.up = Http1Codec(Role.CLIENT)
        self.to_upstream: list[bytes] = []
        self.to_client: list[bytes] = []

    def client_sends(self, data: bytes) -> None:
        self.down.receive_data(data)
        for ev in drain(self.down):
            if ev is not ConnectionEvent.CLOSED:
                self.to_upstream += [bytes(b) for b in self.up.send(ev)]

    def upstream_sends(self, data: bytes) -> None:
        self.up.receive_data(data)
        for ev in drain(self.up):
            if ev is not ConnectionEvent.CLOSED:
                self.to_client += [bytes(b) for b in self.down.send(ev)]

    def take(self, side: list[bytes]) -> bytes:
        out = b"".join(side)
        side.clear()
        return out


def test_proxy_websocket_session() -> None:
    p = MiniProxy()
    p.client_sends(WS)
    assert p.take(p.to_upstream) == (
        b"GET /chat HTTP/1.1\r\nhost: server.example.com\r\nupgrade: websocket\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
        b"connection: Upgrade\r\n\r\n"
    )
    p.upstream_sends(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    assert p.take(p.to_client).startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    p.client_sends(b"\x81\x85\x00\x00\x00\x00hello")
    assert p.take(p.to_upstream) == b"\x81\x85\x00\x00\x00\x00hello"
    p.upstream_sends(b"\x81\x05world")
    assert p.take(p.to_client) == b"\x81\x05world"


def test_proxy_expect_continue_and_chunked_trailers() -> None:
    p = MiniProxy()
    p.client_sends(
        b"POST /rpc HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    assert p.take(p.to_upstream) == (
        b"POST /rpc HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    p.upstream_sends(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert p.take(p.to_client) == b"HTTP/1.1 100 Continue\r\n\r\n"
    p.client_sends(b"3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\n")
    assert p.take(p.to_upstream) == b"3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\n"
    p.upstream_sends(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n"
    )
    assert p.take(p.to_client) == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n"
    )
    assert p.down.pending == 0 and p.up.pending == 0 and p.up.is_idle


def test_proxy_head_and_close_delimited() -> None:
    p = MiniProxy()
    p.client_sends(b"HEAD /f HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.0\r\n\r\n")
    assert p.take(p.to_upstream) == (
        b"HEAD /f HTTP/1.1\r\nhost: a\r\n\r\nGET /g HTTP/1.1\r\nhost: \r\n\r\n"
    )
    p.upstream_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    assert p.take(p.to_client) == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"
    p.upstream_sends(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
    p.upstream_sends(b"")
    # the HTTP/1.0 client gets a close-delimited body too, then the connection closes
    assert p.take(p.to_client) == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil close"
    assert p.down.must_close and p.down.send_state is TxState.DONE


def test_interleaved_trailers_frame_type() -> None:
    ev: Any = TrailersFrame(1, HeaderList())
    codec = client(request("POST", rid=1).evolve(end_stream=False))
    assert codec.send(ev) == [b"0\r\n\r\n"]


def test_server_half_close_keeps_reading_the_tunnel() -> None:
    """The upstream finished sending: the client may still send (TCP half-close)."""
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(WS)
    drain(codec)
    codec.send(WS_101)
    assert codec.send(DataFrame(1, b"last", True)) == [b"last"]
    assert codec.send_state is TxState.DONE and codec.state is RxState.TUNNEL
    codec.receive_data(b"still talking")
    assert drain(codec) == [DataFrame(1, b"still talking", False)]


def test_refused_upgrade_that_asked_to_close() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\r\n"
        b"GET /never HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    (head,) = drain(codec)
    assert head.extra.upgrade and not head.extra.keep_alive
    codec.send(status(1, 400, b"no"))
    assert codec.state is RxState.DONE and codec.must_close


def test_client_upgrade_refused_with_close() -> None:
    codec = Http1Codec(Role.CLIENT)
    codec.send(
        ws_request().evolve(headers=ws_request().headers.replace("connection", "Upgrade, close"))
    )
    codec.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    drain(codec)
    with pytest.raises(LocalProtocolError, match="closing"):
        codec.send(request("GET", rid=2))
    assert codec.send_state is TxState.DONE


def test_eof_inside_an_upgrade_body_and_inside_trailers() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: upgrade\r\n"
        b"Content-Length: 9\r\n\r\nab"
    )
    codec.receive_data(b"")
    assert [type(e).__name__ for e in drain(codec)] == [
        "Frame",
        "DataFrame",
        "ResetFrame",
        "ConnectionEvent",
    ]
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nx-t: 1\r\n"
    )
    codec.receive_data(b"")
    assert [type(e).__name__ for e in drain(codec)] == ["Frame", "ResetFrame", "ConnectionEvent"]
