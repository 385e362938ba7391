"""Bad input: limits, request smuggling and malformed messages, each with the exact status the
proxy must answer with; then the ERROR state, ``error_reply()`` and the CLIENT role's 502s.

Which layer rejects what (llhttp 9 strict mode, as shipped in httptools 0.9, versus the
codec's own checks) is noted per case: a test fails loudly if a future llhttp relaxes one.
"""

from __future__ import annotations

import pytest

from mosn_py.codecs.base import NEED_DATA, CodecLimits, ConnectionEvent, DataFrame, Role
from mosn_py.codecs.http1 import Http1Codec, RxState
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

from .vectors import H, client, drain, norm, req_fields, request


def reject(
    data: bytes,
    *,
    role: Role = Role.SERVER,
    limits: CodecLimits | None = None,
    eof: bool = False,
    codec: Http1Codec | None = None,
) -> tuple[RemoteProtocolError, Http1Codec, list[object]]:
    """Feed ``data`` whole; some pull must raise; the codec then stays in ERROR."""
    if codec is None:
        codec = Http1Codec(role) if limits is None else Http1Codec(role, limits=limits)
    codec.receive_data(data)
    if eof:
        codec.receive_data(b"")
    events: list[object] = []
    with pytest.raises(RemoteProtocolError) as exc:
        while (ev := codec.next_event()) is not NEED_DATA:
            events.append(ev)
        pytest.fail(f"no error; events {events}")  # pragma: no cover
    err = exc.value
    assert err.protocol == "http1"
    assert codec.state is RxState.ERROR and codec.must_close
    for _ in range(2):  # every later pull raises the same again
        with pytest.raises(RemoteProtocolError) as again:
            codec.next_event()
        assert again.value.wire_code == err.wire_code
        assert again.value.request_id == err.request_id
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # ignored from now on
    with pytest.raises(RemoteProtocolError):
        codec.next_event()
    return err, codec, events


def server_status(data: bytes, **kw: object) -> int:
    err, _, _ = reject(data, **kw)  # type: ignore[arg-type]
    assert err.status_hint is ProxyStatus.CODEC_ERROR
    assert err.wire_code is not None
    return err.wire_code


POST = b"POST / HTTP/1.1\r\nHost: a\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


# --- request smuggling and framing (400) ------------------------------------------------------

SMUGGLING = {
    # RFC 9112 §6.1 / §6.3 rule 3: CL and TE together -- llhttp
    "cl_then_te": POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_then_cl": POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    # §6.3 rule 5: several Content-Length lines (even equal) -- llhttp
    "duplicate_cl_differing": POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "duplicate_cl_equal": POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "cl_list": POST + b"Content-Length: 3, 3\r\n\r\nabc",
    "cl_plus_sign": POST + b"Content-Length: +3\r\n\r\nabc",
    "cl_negative": POST + b"Content-Length: -1\r\n\r\n",
    "cl_hex": POST + b"Content-Length: 0x3\r\n\r\nabc",
    "cl_overflow": POST + b"Content-Length: 99999999999999999999999\r\n\r\n",
    # §6.1: a request's final coding must be chunked -- llhttp
    "te_gzip_only": POST + b"Transfer-Encoding: gzip\r\n\r\nabc",
    "te_chunked_then_gzip": POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "te_chunked_twice": POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "te_two_lines": POST
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_xchunked": POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te_vertical_tab": POST + b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
    # §6.1: TE in an HTTP/1.0 request means faulty framing -- the codec
    "te_in_http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    # §5.1: no whitespace between name and colon -- llhttp
    "space_before_colon": POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    # §5.2: obs-fold (line folding) -- llhttp
    "obs_fold_space": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "obs_fold_tab": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
    "whitespace_before_first_field": b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    # RFC 9110 §5.1 / §5.5: invalid names and values -- llhttp
    "name_with_parens": b"GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n",
    "empty_name": b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n",
    "ctl_in_value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "del_in_value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
    # §2.2: bare LF / CR line endings -- llhttp
    "bare_lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare_cr": b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    "lf_in_field_line": b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n",
    # §7.1: chunk framing -- llhttp, except the line length bound (the codec)
    "chunk_size_not_hex": CHUNKED + b"zz\r\n",
    "chunk_size_space": CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n",
    "chunk_size_negative": CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n",
    "chunk_size_0x": CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": CHUNKED + b"10000000000000000\r\n",
    "chunk_data_too_long": CHUNKED + b"5\r\nhelloXX0\r\n\r\n",
    "chunk_bare_lf": CHUNKED + b"5\nhello\n0\n\n",
    "chunk_extension_ctl": CHUNKED + b"5;\x01\r\nhello\r\n0\r\n\r\n",
    "chunk_line_endless": CHUNKED + b"5;" + b"a" * 70_000,
    "trailer_obs_fold": CHUNKED + b"0\r\nX: a\r\n b\r\n\r\n",
    # RFC 9112 §3.2: exactly one Host in HTTP/1.1 -- the codec
    "no_host": b"GET / HTTP/1.1\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    # request line -- llhttp
    "lower_case_method": b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    "unknown_method": b"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n",
    "target_with_del": b"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    "target_with_space": b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "version_1_2": b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    # request-target forms (RFC 9112 §3.2) -- the codec
    "target_relative": b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",
    "target_no_scheme": b"GET a.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
    "target_ftp": b"GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    "target_userinfo": b"GET http://u:p@a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    "asterisk_not_options": b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    "h2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "tls_client_hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # first octet
    # Upgrade/CONNECT bodies the codec cannot frame (RFC 9110 §9.3.6) -- the codec
    "upgrade_chunked": b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    "connect_with_body": b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\nhello",
}


@pytest.mark.parametrize("data", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_400(data: bytes) -> None:
    assert server_status(data) == 400


@pytest.mark.parametrize("data", [b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", b"GET /\r\n\r\n"])
def test_505_for_other_versions(data: bytes) -> None:
    """llhttp parses HTTP/2.0 and 0.9 request lines; the codec refuses them (RFC 9110 §15.6.6)."""
    assert server_status(data) == 505


def test_eof_inside_a_request_head_is_400() -> None:
    assert server_status(b"GET / HTTP/1.1\r\nHo", eof=True) == 400


# --- limits (431, 413) ---------------------------------------------------------------------------


def test_head_exactly_at_the_limit_passes_one_more_octet_is_431() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 50 + b"\r\n\r\n"
    at = CodecLimits(max_header_size=len(head))
    codec = Http1Codec(Role.SERVER, limits=at)
    codec.receive_data(head)
    assert len(drain(codec)) == 1
    over = CodecLimits(max_header_size=len(head) - 1)
    assert server_status(head, limits=over) == 431


def test_431_before_the_head_is_complete() -> None:
    """An endless head is refused once it passes the limit, not buffered forever."""
    limits = CodecLimits(max_header_size=1000)
    codec = Http1Codec(Role.SERVER, limits=limits)
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX: ")
    for _ in range(9):
        codec.receive_data(b"v" * 100)
        assert codec.next_event() is NEED_DATA
    err, _, _ = reject(b"v" * 100, codec=codec)
    assert err.wire_code == 431


def test_431_for_one_endless_line() -> None:
    assert server_status(b"GET /" + b"a" * 70_000, limits=CodecLimits()) == 431


def test_431_for_too_many_fields() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(10))
    limits = CodecLimits(max_header_count=10)
    ok = Http1Codec(Role.SERVER, limits=CodecLimits(max_header_count=11))
    ok.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
    assert len(drain(ok)) == 1  # Host + 10 fields = 11
    assert server_status(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n", limits=limits) == 431


def test_431_for_trailers() -> None:
    limits = CodecLimits(max_header_size=200, max_header_count=3)
    big = CHUNKED + b"0\r\nX: " + b"v" * 300 + b"\r\n\r\n"
    assert server_status(big, limits=limits) == 431
    many = CHUNKED + b"0\r\n" + b"".join(b"T%d: v\r\n" % i for i in range(4)) + b"\r\n"
    assert server_status(many, limits=limits) == 431


def test_413_at_head_time_for_content_length() -> None:
    limits = CodecLimits(max_body_size=100)
    head = POST + b"Content-Length: 101\r\n\r\n"
    err, _, events = reject(head, limits=limits)  # no body octet needed
    assert err.wire_code == 413 and events == []
    ok = Http1Codec(Role.SERVER, limits=limits)
    ok.receive_data(POST + b"Content-Length: 100\r\n\r\n" + b"x" * 100)
    assert len(drain(ok)) == 2


def test_413_when_a_chunked_body_crosses_the_limit() -> None:
    limits = CodecLimits(max_body_size=10)
    codec = Http1Codec(Role.SERVER, limits=limits)
    codec.receive_data(CHUNKED + b"6\r\nabcdef\r\n")
    _head, data = drain(codec)
    assert data == DataFrame(1, b"abcdef", False)
    err, _, _ = reject(b"5\r\n", codec=codec)  # announced: 11 > 10, before its data
    assert err.wire_code == 413 and err.request_id == 1


# --- what comes before an error is still delivered ----------------------------------------


def test_earlier_pipelined_requests_come_first() -> None:
    good = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
    err, _, events = reject(good + good + b"GET /3 HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n")
    assert norm(events) == [
        H(1, req_fields("/1", "a"), end=True),
        H(2, req_fields("/1", "a"), end=True),
    ]
    assert err.request_id == 3  # the request that failed, before it had a head frame


# --- error_reply ----------------------------------------------------------------------------------


def test_error_reply_answers_with_the_wire_code_and_closes() -> None:
    _, codec, _ = reject(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    reply = codec.error_reply()
    assert reply is not None and reply.request_id == 1 and reply.status == 400
    assert codec.send(reply) == [
        b"HTTP/1.1 400 Bad Request\r\n"
        b"content-type: text/plain\r\n"
        b"content-length: 41\r\n"  # the text is UTF-8: the section sign takes two octets
        b"connection: close\r\n"
        b"\r\n"
        b"more than one Host field (RFC 9112 \xc2\xa73.2)"
    ]
    assert codec.must_close
    assert codec.error_reply() is None  # answered already


@pytest.mark.parametrize(
    ("data", "limits", "status", "reason"),
    [
        (
            POST + b"Content-Length: 9\r\n\r\n",
            CodecLimits(max_body_size=8),
            413,
            b"Content Too Large",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: " + b"a" * 99,
            CodecLimits(max_header_size=64),
            431,
            b"Request Header Fields Too Large",
        ),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", CodecLimits(), 505, b"HTTP Version Not Supported"),
    ],
)
def test_error_reply_statuses(data: bytes, limits: CodecLimits, status: int, reason: bytes) -> None:
    _, codec, _ = reject(data, limits=limits)
    reply = codec.error_reply("no")
    assert reply is not None
    assert b"".join(codec.send(reply)) == (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n"
        b"connection: close\r\n\r\nno" % (status, reason)
    )


def test_error_reply_waits_for_earlier_responses() -> None:
    good = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
    _, codec, _ = reject(good + b"GET /2 HTTP/1.1\r\n\r\n")  # no Host
    reply = codec.error_reply()
    assert reply is not None and reply.request_id == 2
    with pytest.raises(LocalProtocolError, match="before the one to stream 1"):
        codec.send(reply)
    codec.send(codec.local_reply(request("GET", rid=1), ProxyStatus.OK, "ok"))
    assert bytes(codec.send(reply)[0]).startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_error_reply_to_a_head_request_has_no_body() -> None:
    _, codec, _ = reject(b"HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    reply = codec.error_reply()
    assert reply is not None
    assert codec.send(reply) == [
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 60\r\n"
        b"connection: close\r\n\r\n"
    ]


def test_no_error_reply_once_the_response_began() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(CHUNKED)
    drain(codec)
    codec.send(
        codec.local_reply(request("POST", rid=1), ProxyStatus.OK).evolve(end_stream=False, body=b"")
    )
    reject(b"zz\r\n", codec=codec)
    assert codec.error_reply() is None


def test_no_error_reply_without_an_error_or_in_client_role() -> None:
    assert Http1Codec(Role.SERVER).error_reply() is None
    _, codec, _ = reject(b"garbage\r\n", role=Role.CLIENT, codec=client(request("GET")))
    assert codec.error_reply() is None


# --- CLIENT role: the upstream broke the protocol (502) ---------------------------------------

UPSTREAM = {
    "bad_status_code": b"HTTP/1.1 abc OK\r\n\r\n",
    "not_http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "status_600": b"HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
    "status_000": b"HTTP/1.1 000 OK\r\nContent-Length: 0\r\n\r\n",  # llhttp takes it
    "http_2_0": b"HTTP/2.0 200 OK\r\n\r\n",
    "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "obs_fold": b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
    "101_unasked": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: upgrade\r\n\r\n",
    "bad_chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
    "head_too_big": b"HTTP/1.1 200 OK\r\nX: " + b"v" * 70_000,
    "body_over_limit": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
    "until_close_over_limit": b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1001,
}


@pytest.mark.parametrize("data", UPSTREAM.values(), ids=UPSTREAM.keys())
def test_502(data: bytes) -> None:
    codec = client(request("GET"))
    codec_limits = CodecLimits(max_body_size=1000)
    codec = Http1Codec(Role.CLIENT, limits=codec_limits)
    codec.send(request("GET", rid=1))
    err, _, _ = reject(data, codec=codec)
    assert err.wire_code == 502
    assert err.status_hint is ProxyStatus.UPSTREAM_RESET
    assert err.request_id == 1


def test_unsolicited_response_is_502() -> None:
    err, _, _ = reject(b"HTTP/1.1 200 OK\r\n\r\n", role=Role.CLIENT)
    assert err.wire_code == 502 and err.request_id is None


def test_eof_mid_body_resets_every_outstanding_request() -> None:
    codec = client(request("GET"), request("GET"))
    codec.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    codec.receive_data(b"")
    events = norm(drain(codec))
    assert [e[0] for e in events] == ["head", "data", "reset", "reset", "closed"]
    assert events[2][1] == 1 and events[3][1] == 2
    assert codec.next_event() is ConnectionEvent.CLOSED and codec.pending == 0
