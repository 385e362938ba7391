"""Encoding: exact bytes for heads, bodies and trailers in both roles; the framing fields the
codec owns; ordering; closing; and every send the protocol forbids (LocalProtocolError)."""

from __future__ import annotations

import pytest

from mosn_py.codecs.base import (
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    ResetFrame,
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http1 import Http1Codec, RxState, TxState
from mosn_py.errors import LocalProtocolError, ProxyStatus

from .vectors import drain, request

RESPONSE = StreamType.RESPONSE


def server(wire: bytes) -> Http1Codec:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(wire)
    drain(codec)
    return codec


GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
HEAD = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
GET10_KA = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"


def resp(
    rid: int, *fields: tuple[str, str], status: int = 200, body: bytes = b"", end: bool = True
) -> Frame:
    return Frame(
        RESPONSE, rid, HeaderList([(":status", str(status)), *fields]), body, end_stream=end
    )


# --- responses (SERVER) ---------------------------------------------------------------------


def test_whole_response_gets_content_length() -> None:
    codec = server(GET)
    out = codec.send(resp(1, ("content-type", "text/plain"), body=b"hello"))
    assert out == [
        b"HTTP/1.1 200 OK\r\n"
        b"content-type: text/plain\r\n"
        b"content-length: 5\r\n"  # framing fields come last
        b"\r\n"
        b"hello"
    ]
    assert codec.send_state is TxState.IDLE and codec.pending == 0
    assert not codec.must_close


def test_empty_response_says_content_length_0() -> None:
    codec = server(GET)
    assert codec.send(resp(1)) == [b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]


def test_streamed_response_to_http11_is_chunked_zero_copy() -> None:
    codec = server(GET)
    assert codec.send(resp(1, ("server", "mosn"), end=False)) == [
        b"HTTP/1.1 200 OK\r\nserver: mosn\r\ntransfer-encoding: chunked\r\n\r\n"
    ]
    data = memoryview(b"hello world")
    out = codec.send(DataFrame(1, data, False))
    assert out == [b"b\r\n", data, b"\r\n"] and out[1] is data  # passed through, not copied
    big = b"x" * 70000
    out = codec.send(DataFrame(1, big, True))
    assert out == [b"11170\r\n", big, b"\r\n0\r\n\r\n"] and out[1] is big
    assert codec.send_state is TxState.IDLE


def test_chunked_end_with_empty_data_and_trailers() -> None:
    codec = server(GET + GET)
    codec.send(resp(1, end=False))
    assert codec.send(DataFrame(1, b"", True)) == [b"0\r\n\r\n"]
    codec.send(resp(2, end=False))
    assert codec.send(DataFrame(2, b"", False)) == []
    trailers = HeaderList([("grpc-status", "0"), ("grpc-message", "")])
    assert codec.send(TrailersFrame(2, trailers)) == [
        b"0\r\ngrpc-status: 0\r\ngrpc-message: \r\n\r\n"
    ]


def test_given_content_length_is_honoured_and_checked() -> None:
    codec = server(GET + GET + GET)
    head = [b"HTTP/1.1 200 OK\r\nx: 1\r\ncontent-length: 6\r\n\r\n"]
    assert codec.send(resp(1, ("content-length", "6"), ("x", "1"), end=False)) == head
    assert codec.send(DataFrame(1, b"abc", False)) == [b"abc"]
    with pytest.raises(LocalProtocolError, match="beyond Content-Length"):
        codec.send(DataFrame(1, b"abcd", False))
    with pytest.raises(LocalProtocolError, match="short of Content-Length"):
        codec.send(DataFrame(1, b"ab", True))
    assert codec.send(DataFrame(1, b"def", False)) == [b"def"]
    assert codec.send(DataFrame(1, b"", True)) == []  # the message ends on end_stream
    with pytest.raises(LocalProtocolError, match="but Content-Length"):
        codec.send(resp(2, ("content-length", "3"), body=b"ab"))
    # trailers after a Content-Length body are dropped (only chunked carries them)
    codec.send(resp(2, ("content-length", "1"), end=False))
    codec.send(DataFrame(2, b"x", False))
    assert codec.send(TrailersFrame(2, HeaderList([("t", "1")]))) == []
    assert codec.pending == 1


def test_chunked_given_for_a_whole_body() -> None:
    codec = server(GET)
    out = codec.send(resp(1, ("transfer-encoding", "chunked"), body=b"abc"))
    assert b"".join(out) == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )


def test_http10_client_gets_close_delimited_body() -> None:
    codec = server(GET10)
    assert codec.send(resp(1, end=False)) == [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"]
    assert codec.must_close
    assert codec.send(DataFrame(1, b"abc", True)) == [b"abc"]
    assert codec.send_state is TxState.DONE and codec.state is RxState.DONE


def test_http10_keep_alive_is_acknowledged() -> None:
    codec = server(GET10_KA + GET10_KA)
    out = codec.send(resp(1, ("connection", "keep-alive"), body=b"ok"))
    assert out == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok"]
    assert not codec.must_close and codec.pending == 1


def test_http10_never_gets_chunked_even_if_asked() -> None:
    codec = server(GET10_KA)
    out = codec.send(resp(1, ("transfer-encoding", "chunked"), body=b"abc"))
    assert out == [b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\nabc"]


def test_head_response_keeps_content_length_and_drops_the_body() -> None:
    codec = server(HEAD + HEAD)
    out = codec.send(resp(1, ("content-length", "1234")))
    assert out == [b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"]
    # a local reply (body + content-length) to a HEAD: the head only (RFC 9110 §9.3.2)
    reply = codec.local_reply(request("HEAD", rid=2), ProxyStatus.ROUTE_NOT_FOUND)
    assert codec.send(reply) == [
        b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 15\r\n\r\n"
    ]


def test_head_response_streamed_drops_data() -> None:
    codec = server(HEAD)
    codec.send(resp(1, ("content-length", "3"), end=False))
    assert codec.send(DataFrame(1, b"abc", True)) == []
    assert codec.send_state is TxState.IDLE


def test_204_and_304() -> None:
    codec = server(GET + GET + GET)
    out = codec.send(resp(1, ("content-length", "0"), ("transfer-encoding", "chunked"), status=204))
    assert out == [b"HTTP/1.1 204 No Content\r\n\r\n"]  # no framing fields at all (§8.6)
    assert codec.send(resp(2, ("etag", '"x"'), ("content-length", "99"), status=304)) == [
        b'HTTP/1.1 304 Not Modified\r\netag: "x"\r\ncontent-length: 99\r\n\r\n'
    ]
    with pytest.raises(LocalProtocolError, match="has no body"):
        codec.send(resp(3, status=204, body=b"x"))
    codec.send(resp(3, status=204, end=False))
    with pytest.raises(LocalProtocolError, match="has no body"):
        codec.send(DataFrame(3, b"x", True))


def test_interim_responses() -> None:
    codec = server(
        b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"
    )
    assert codec.send(resp(1, status=100)) == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert codec.send(resp(1, ("link", "</a.css>; rel=preload"), status=103)) == [
        b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"
    ]
    assert codec.pending == 1 and codec.send_state is TxState.IDLE
    codec.send(resp(1, status=201))
    assert codec.pending == 0


def test_interim_is_not_sent_to_http10() -> None:
    codec = server(GET10_KA)
    assert codec.send(resp(1, status=100)) == []


def test_request_close_makes_the_response_close() -> None:
    codec = server(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert codec.must_close  # known from the request already
    out = codec.send(resp(1, ("connection", "keep-alive"), body=b"x"))
    assert out == [b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx"]
    assert codec.send_state is TxState.DONE
    with pytest.raises(LocalProtocolError, match="closing"):
        codec.send(resp(2))


def test_response_close_drops_pipelined_requests() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(GET)
    assert codec.next_event().request_id == 1
    codec.receive_data(GET + GET)  # decoded, not pulled yet
    codec.send(resp(1, ("connection", "close")))
    assert codec.must_close and codec.state is RxState.DONE
    assert drain(codec) == []  # RFC 9112 §9.6: nothing after the closing response
    codec.receive_data(GET)
    assert drain(codec) == []


def test_response_before_the_request_finished_closes() -> None:
    codec = server(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
    assert not codec.must_close
    codec.send(resp(1, status=413, body=b"too big"))
    assert codec.must_close and codec.send_state is TxState.DONE


def test_responses_in_request_order_only() -> None:
    codec = server(GET + GET)
    with pytest.raises(LocalProtocolError, match="before the one to stream 1"):
        codec.send(resp(2))
    codec.send(resp(1, end=False))
    with pytest.raises(LocalProtocolError, match="still being sent"):
        codec.send(resp(2))
    with pytest.raises(LocalProtocolError, match="while sending stream 1"):
        codec.send(DataFrame(2, b"x", False))
    codec.send(DataFrame(1, b"", True))
    assert codec.send(resp(1).evolve(request_id=9), request_id=2)  # request_id overrides
    with pytest.raises(LocalProtocolError, match="no request is waiting"):
        codec.send(resp(3))


def test_late_empty_end_stream_is_a_no_op() -> None:
    codec = server(GET)
    codec.send(resp(1))
    assert codec.send(DataFrame(1, b"", True)) == []
    with pytest.raises(LocalProtocolError, match="no message being sent"):
        codec.send(DataFrame(1, b"x", True))


def test_reset_closes() -> None:
    codec = server(GET)
    codec.send(resp(1, end=False))
    assert codec.send(ResetFrame(1, reason="upstream reset")) == []
    assert codec.must_close and codec.send_state is TxState.DONE


@pytest.mark.parametrize(
    ("fields", "status", "match"),
    [
        ([("content-length", "3"), ("transfer-encoding", "chunked")], 200, "both Content"),
        ([("content-length", "3"), ("content-length", "4")], 200, "differing"),
        ([("content-length", "-1")], 200, "non-negative"),
        ([("content-length", "٣")], 200, "non-negative"),  # Arabic-Indic digit: not ASCII
        ([("transfer-encoding", "gzip")], 200, "does not end in chunked"),
        ([("x-bad", "a\r\nSet-Cookie: evil=1")], 200, "CR or LF"),  # response splitting
        ([("x-bad", "a\nb")], 200, "CR or LF"),
        ([("x-bad", "a\rb")], 200, "CR or LF"),
        ([("connection", "close\r\nx: 1")], 200, "CR or LF"),
        ([("x-nul", "a\x00b")], 200, "invalid field line"),
        ([("bad name", "v")], 200, "invalid field line"),
        ([("", "v")], 200, "invalid field line"),
        ([("x-uni", "snow\u2603")], 200, "not latin-1"),
        ([], 99, "100..599"),
        ([], 600, "100..599"),
    ],
)
def test_refused_response_heads(fields: list[tuple[str, str]], status: int, match: str) -> None:
    codec = server(GET)
    frame = Frame(RESPONSE, 1, HeaderList(fields), b"", status, end_stream=False)
    with pytest.raises(LocalProtocolError, match=match) as exc:
        codec.send(frame)
    assert exc.value.protocol == "http1"
    assert codec.send_state is TxState.IDLE  # nothing was sent: the proxy may still answer


def test_status_field_and_frame_status() -> None:
    codec = server(GET + GET)
    with pytest.raises(LocalProtocolError, match="contradicts"):
        codec.send(Frame(RESPONSE, 1, HeaderList([(":status", "200")]), status=404))
    with pytest.raises(LocalProtocolError, match="3-digit"):
        codec.send(Frame(RESPONSE, 1, HeaderList([(":status", "2000")])))
    assert codec.send(Frame(RESPONSE, 1, {}, status=404)) == [
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    ]
    assert codec.send(Frame(RESPONSE, 2, {":status": "599"})) == [
        b"HTTP/1.1 599 \r\ncontent-length: 0\r\n\r\n"  # unknown code: empty reason phrase
    ]


def test_wrong_direction() -> None:
    codec = server(GET)
    with pytest.raises(LocalProtocolError, match="sends responses"):
        codec.send(request("GET", rid=1))
    with pytest.raises(LocalProtocolError, match="cannot send"):
        codec.send("GET /")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="sends requests"):
        Http1Codec(Role.CLIENT).send(resp(1))


# --- requests (CLIENT) ------------------------------------------------------------------------


def test_get_request_exact_bytes() -> None:
    codec = Http1Codec(Role.CLIENT)
    frame = Frame(
        StreamType.REQUEST,
        7,
        HeaderList(
            [
                (":method", "GET"),
                (":scheme", "https"),  # HTTP/1.1 has no scheme on the wire
                (":authority", "example.com"),
                (":path", "/search?q=mosn"),
                ("user-agent", "mosn-py"),
                ("accept", "*/*"),
            ]
        ),
    )
    assert codec.send(frame) == [
        b"GET /search?q=mosn HTTP/1.1\r\n"
        b"host: example.com\r\n"  # Host first (RFC 9110 §7.2)
        b"user-agent: mosn-py\r\n"
        b"accept: */*\r\n"
        b"\r\n"
    ]
    assert codec.pending == 1 and codec.send_state is TxState.IDLE


def test_post_whole_and_empty() -> None:
    codec = Http1Codec(Role.CLIENT)
    assert codec.send(request("POST", "/p", rid=1).evolve(body=b"a=1")) == [
        b"POST /p HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\na=1"
    ]
    assert codec.send(request("POST", "/p", rid=2)) == [
        b"POST /p HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n"  # RFC 9110 §8.6
    ]
    assert codec.send(request("GET", "/g", rid=3)) == [b"GET /g HTTP/1.1\r\nhost: a\r\n\r\n"]


def test_streamed_request_is_chunked() -> None:
    codec = Http1Codec(Role.CLIENT)
    assert codec.send(request("PUT", "/u", rid=1).evolve(end_stream=False)) == [
        b"PUT /u HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
    ]
    assert codec.send(DataFrame(1, b"abc", False)) == [b"3\r\n", b"abc", b"\r\n"]
    assert codec.send(TrailersFrame(1, HeaderList([("x-sum", "1")]))) == [b"0\r\nx-sum: 1\r\n\r\n"]


def test_forwarded_request_keeps_its_content_length() -> None:
    codec = Http1Codec(Role.CLIENT)
    frame = request("POST", "/", ("content-length", "4"), ("x-a", "1"), rid=1)
    assert codec.send(frame.evolve(end_stream=False)) == [
        b"POST / HTTP/1.1\r\nhost: a\r\nx-a: 1\r\ncontent-length: 4\r\n\r\n"
    ]
    bodyview = bytearray(b"abcd")
    out = codec.send(DataFrame(1, bodyview, True))  # type: ignore[arg-type]
    assert out == [b"abcd"] and type(out[0]) is bytes  # a bytearray is copied


def test_host_field_instead_of_authority() -> None:
    codec = Http1Codec(Role.CLIENT)
    frame = Frame(
        StreamType.REQUEST,
        1,
        HeaderList([(":method", "GET"), (":path", "/"), ("x", "1"), ("Host", "h.example")]),
    )
    assert codec.send(frame) == [b"GET / HTTP/1.1\r\nhost: h.example\r\nx: 1\r\n\r\n"]
    with pytest.raises(LocalProtocolError, match="contradicts :authority"):
        codec.send(request("GET", "/", ("host", "other"), rid=2))
    no_authority = Frame(StreamType.REQUEST, 2, {":method": "GET", ":path": "/"})
    assert codec.send(no_authority) == [b"GET / HTTP/1.1\r\nhost: \r\n\r\n"]  # §3.2: empty


def test_connect_request() -> None:
    codec = Http1Codec(Role.CLIENT)
    frame = Frame(
        StreamType.REQUEST,
        1,
        HeaderList([(":method", "CONNECT"), (":authority", "example.com:443")]),
        end_stream=False,
    )
    assert codec.send(frame) == [
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n"
    ]
    assert codec.send_state is TxState.UPGRADE_PENDING


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ([(":path", "/")], "needs :method"),
        ([(":method", "GET")], "needs :path"),
        ([(":method", "CONNECT")], "CONNECT needs :authority"),
        ([(":method", "GET"), (":path", "/a b")], "invalid start line"),
        ([(":method", "G T"), (":path", "/")], "invalid start line"),
        ([(":method", "GET"), (":path", "/"), ("x", "\r\n")], "CR or LF"),
        ([(":method", "GET"), (":path", "/ HTTP/1.1\r\nx:")], "CR or LF"),
        ([(":method", "GET"), (":path", "/"), (":authority", "a\r\nx: y")], "CR or LF"),
    ],
)
def test_refused_requests(fields: list[tuple[str, str]], match: str) -> None:
    codec = Http1Codec(Role.CLIENT)
    with pytest.raises(LocalProtocolError, match=match):
        codec.send(Frame(StreamType.REQUEST, 1, HeaderList(fields)))
    assert codec.pending == 0


def test_one_request_at_a_time_on_the_wire() -> None:
    codec = Http1Codec(Role.CLIENT)
    codec.send(request("POST", rid=1).evolve(end_stream=False))
    with pytest.raises(LocalProtocolError, match="still being sent"):
        codec.send(request("GET", rid=2))
    codec.send(DataFrame(1, b"", True))
    codec.send(request("GET", rid=2))  # pipelined: the first response is not in yet
    assert codec.pending == 2


def test_request_close() -> None:
    codec = Http1Codec(Role.CLIENT)
    codec.send(request("GET", "/", ("connection", "close"), rid=1))
    assert codec.must_close and codec.send_state is TxState.DONE
    with pytest.raises(LocalProtocolError, match="closing"):
        codec.send(request("GET", rid=2))


def test_reset_in_every_send_state() -> None:
    """HTTP/1.1 resets by closing: from any state, a ResetFrame ends the connection."""
    ws = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    setups = {
        TxState.IDLE: (GET, None),
        TxState.LENGTH: (GET, resp(1, ("content-length", "3"), end=False)),
        TxState.CHUNKED: (GET, resp(1, end=False)),
        TxState.UNTIL_CLOSE: (GET10, resp(1, end=False)),
        TxState.NO_BODY: (HEAD, resp(1, end=False)),
        TxState.TUNNEL: (ws, resp(1, ("upgrade", "websocket"), status=101, end=False)),
    }
    for state, (wire, head) in setups.items():
        codec = server(wire)
        if head is not None:
            codec.send(head)
        assert codec.send_state is state
        assert codec.send(ResetFrame(1)) == []
        assert codec.send_state is TxState.DONE and codec.must_close
        assert codec.state is RxState.DONE  # a SERVER stops reading as well
    client = Http1Codec(Role.CLIENT)
    client.send(request("GET", "/", ("upgrade", "x"), ("connection", "upgrade"), rid=1))
    assert client.send_state is TxState.UPGRADE_PENDING
    client.send(ResetFrame(1))
    assert client.send_state is TxState.DONE and client.state is RxState.HEAD


def test_reset_while_receiving_stops_reading() -> None:
    chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    cases = {
        RxState.CHUNK_SIZE: chunked + b"5",
        RxState.CHUNK_DATA: chunked + b"5\r\nab",
        RxState.TRAILERS: chunked + b"0\r\nx-t",
        RxState.RAW_BODY: b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: upgrade\r\n"
        b"Content-Length: 9\r\n\r\nab",
        RxState.HOLD: b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
    }
    for state, wire in cases.items():
        codec = server(wire)
        assert codec.state is state
        codec.send(ResetFrame(1))
        assert codec.state is RxState.DONE and codec.buffered == 0
        codec.receive_data(b"")
        assert drain(codec)[-1:] == [ConnectionEvent.CLOSED]


def test_early_final_response_to_a_chunked_request() -> None:
    """RFC 9112 §9.6 / Envoy: a response complete before its request means closing."""
    codec = server(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    assert codec.state is RxState.CHUNK_DATA
    codec.send(resp(1, status=413, body=b"no"))
    assert codec.state is RxState.DONE and codec.must_close
