"""gRPC terms (``grpc.py``): status mapping, Percent-Encoded grpc-message, grpc-timeout, and
Trailers-Only local replies as a real h2 client decodes them."""

from __future__ import annotations

import h2.events as ev
import pytest

from mosn_py.codecs.base import Frame, HeaderList, StreamType
from mosn_py.codecs.http2 import (
    GRPC_STATUS,
    GrpcStatus,
    decode_grpc_message,
    encode_grpc_message,
    grpc_status_for,
    grpc_status_from_http,
    is_grpc,
    parse_grpc_timeout,
    trailers_only,
)
from mosn_py.errors import ProxyStatus

from .peer import REQUEST, b, h, names, of, server_link

EXPECTED = {  # the table
    ProxyStatus.NO_HEALTHY_UPSTREAM: 14,
    ProxyStatus.UPSTREAM_CONNECT_FAILED: 14,
    ProxyStatus.UPSTREAM_RESET: 14,
    ProxyStatus.UPSTREAM_OVERFLOW: 14,
    ProxyStatus.DRAINING: 14,
    ProxyStatus.TIMEOUT: 4,
    ProxyStatus.ROUTE_NOT_FOUND: 12,
    ProxyStatus.CODEC_ERROR: 13,
    ProxyStatus.INTERNAL_ERROR: 13,
    ProxyStatus.OK: 0,
}


def test_status_table_covers_every_proxy_status() -> None:
    assert set(GRPC_STATUS) == set(ProxyStatus)
    for status, code in EXPECTED.items():
        assert grpc_status_for(status) == code


@pytest.mark.parametrize(
    ("http", "code"),
    [
        (400, 13),
        (401, 16),
        (403, 7),
        (404, 12),
        (429, 14),
        (502, 14),
        (503, 14),
        (504, 14),
        (500, 2),
        (418, 2),
    ],
)
def test_http_to_grpc_status(http: int, code: int) -> None:
    assert grpc_status_from_http(http) == code


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("no healthy upstream", "no healthy upstream"),  # printable ASCII stays
        ("100% sure", "100%25 sure"),
        ("über", "%C3%BCber"),
        ("line\nbreak\t", "line%0Abreak%09"),
        ("\x7f~", "%7F~"),
        ("", ""),
        ("日本", "%E6%97%A5%E6%9C%AC"),
    ],
)
def test_grpc_message_percent_encoding(text: str, wire: str) -> None:
    assert encode_grpc_message(text) == wire
    assert decode_grpc_message(wire) == text


@pytest.mark.parametrize(
    ("bad", "decoded"),
    [
        ("%", "%"),
        ("%4", "%4"),
        ("%zz", "%zz"),
        ("a%g1b", "a%g1b"),
        ("%%41", "%A"),
        ("%C3", "\ufffd"),
        ("caf\xe9", "caf\xe9"),
    ],
)
def test_grpc_message_bad_escapes_pass_through(bad: str, decoded: str) -> None:
    assert decode_grpc_message(bad) == decoded  # never raises (gRPC spec)


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("100m", 100),
        ("1S", 1000),
        ("2M", 120_000),
        ("1H", 3_600_000),
        ("1500u", 2),
        ("5n", 1),
        ("0m", 0),
        ("99999999m", 99_999_999),
        (None, 0),
        ("", 0),
        ("S", 0),
        ("10x", 0),
        ("-1S", 0),
        ("123456789S", 0),
        ("1.5S", 0),
        ("\u0661S", 0),
    ],  # U+0661 is a digit, but not an ASCII one
)
def test_grpc_timeout(value: str | None, ms: int) -> None:
    assert parse_grpc_timeout(value) == ms


@pytest.mark.parametrize(
    ("ctype", "grpc"),
    [
        ("application/grpc", True),
        ("application/grpc+proto", True),
        ("application/grpc;charset=utf-8", True),
        ("application/grpc-web", False),
        ("application/grpc-web+proto", False),
        ("application/json", False),
        (None, False),
    ],
)
def test_is_grpc(ctype: str | None, grpc: bool) -> None:
    headers = HeaderList([("content-type", ctype)] if ctype else [])
    assert is_grpc(headers) is grpc


def test_trailers_only_frame() -> None:
    frame = trailers_only(7, GrpcStatus.RESOURCE_EXHAUSTED, "slow down")
    assert frame.stream_type is StreamType.RESPONSE and frame.request_id == 7
    assert frame.status == 200 and frame.end_stream and frame.body == b""
    assert frame.headers.items_all() == (
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "8"),
        ("grpc-message", "slow down"),
    )
    assert "grpc-message" not in trailers_only(7, ProxyStatus.OK).headers


@pytest.mark.parametrize("status", list(EXPECTED))
def test_grpc_local_reply_decoded_by_a_real_client(status: ProxyStatus) -> None:
    link = server_link()
    link.peer.send_headers(
        1, b([*REQUEST, ("content-type", "application/grpc+proto"), ("te", "trailers")])
    )
    link.peer.send_data(1, b"\x00\x00\x00\x00\x00", end_stream=True)
    link.run()
    head = link.take()[0]
    assert isinstance(head, Frame)
    message = f"{status.value}: cluster über-east 100%"
    link.send(link.codec.local_reply(head, status, message))
    got = link.take_peer()
    assert names(got) == ["ResponseReceived", "StreamEnded"]  # one HEADERS, END_STREAM
    resp = of(got, ev.ResponseReceived)[0]
    assert resp.stream_ended is not None
    fields = dict(h(resp.headers))
    assert fields[":status"] == "200"
    assert fields["content-type"] == "application/grpc"
    assert int(fields["grpc-status"]) == EXPECTED[status]
    assert decode_grpc_message(fields["grpc-message"]) == message
    assert fields["grpc-message"].isascii()


def test_grpc_local_reply_default_message() -> None:
    link = server_link()
    link.peer.send_headers(1, b([*REQUEST, ("content-type", "application/grpc")]), end_stream=True)
    link.run()
    head = link.take()[0]
    reply = link.codec.local_reply(head, ProxyStatus.TIMEOUT)
    assert reply.headers["grpc-status"] == "4"
    assert reply.headers["grpc-message"] == "upstream request timeout"
