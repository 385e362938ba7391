"""Decoding the golden vectors whole, byte by byte and split at every offset, plus what stays
buffered, pipelining and EOF (STYLE 2.7, h11 ``tr()``)."""

from __future__ import annotations

import pytest

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, DataFrame, Role
from mosn_py.codecs.http1 import Http1Codec, RxState

from .vectors import CLOSED, VECTORS, D, H, Vector, bytewise, drain, feed, norm, req_fields, splits

by_name = pytest.mark.parametrize("v", VECTORS, ids=lambda v: v.name)


@by_name
def test_whole(v: Vector) -> None:
    assert feed(v, [v.wire]) == v.expected


@by_name
def test_byte_by_byte(v: Vector) -> None:
    assert feed(v, bytewise(v.wire)) == v.expected


@by_name
def test_split_at_every_offset(v: Vector) -> None:
    for chunks in splits(v.wire):
        assert feed(v, chunks) == v.expected, chunks


@by_name
def test_memoryview_and_bytearray_input(v: Vector) -> None:
    """BufferedProtocol hands over views of a reused buffer: nothing of it may be kept."""
    codec = v.codec()
    scratch = bytearray(v.wire)
    codec.receive_data(memoryview(scratch)[: len(scratch) // 2])
    events = drain(codec)
    codec.receive_data(bytearray(scratch[len(scratch) // 2 :]))
    scratch[:] = b"\xff" * len(scratch)  # the caller reuses its buffer
    events += drain(codec)
    if v.eof:
        codec.receive_data(b"")
        events += drain(codec)
    assert norm(events) == v.expected


def test_incomplete_head_stays_buffered() -> None:
    """Trailing bytes of the next request wait (and count as buffered) until complete."""
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHo")
    assert norm(drain(codec)) == [H(1, req_fields("/1", "a"), end=True)]
    assert codec.next_event() is NEED_DATA
    assert codec.buffered == 2  # "Ho": the complete line before it went to llhttp already
    codec.receive_data(b"st: a\r\n")
    assert codec.next_event() is NEED_DATA
    codec.receive_data(b"\r\n")
    assert norm(drain(codec)) == [H(2, req_fields("/2", "a"), end=True)]
    assert codec.buffered == 0


def test_body_is_streamed_as_it_arrives() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab")
    head, first = drain(codec)
    assert head.end_stream is False
    assert first == DataFrame(1, b"ab", False)
    codec.receive_data(b"cd")
    assert drain(codec) == [DataFrame(1, b"cd", False)]
    codec.receive_data(b"ef")
    assert drain(codec) == [DataFrame(1, b"ef", True)]


def test_chunk_data_is_streamed_within_a_chunk() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcd")
    assert norm(drain(codec))[1:] == [D(1, b"abcd", False)]
    codec.receive_data(b"efgh\r\n0\r\n\r\n")
    assert norm(drain(codec)) == [D(1, b"efgh", True)]


def test_whole_bytes_input_is_not_copied_in_a_tunnel() -> None:
    codec = Http1Codec(Role.CLIENT)
    codec.send(
        __import__("tests.unit.codecs.http1.vectors", fromlist=["request"]).request(
            "GET", "/", ("upgrade", "websocket"), ("connection", "upgrade"), rid=1
        )
    )
    codec.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    drain(codec)
    chunk = b"x" * 100_000
    codec.receive_data(chunk)
    (ev,) = drain(codec)
    assert ev.data is chunk


def test_pause_on_a_full_event_queue() -> None:
    """Past max_pending_frames unpulled events the codec stops decoding and keeps bytes."""
    from mosn_py.codecs.base import CodecLimits

    codec = Http1Codec(Role.SERVER, limits=CodecLimits(max_pending_frames=3))
    one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    codec.receive_data(one * 10)
    assert codec.buffered == len(one) * 7
    assert len(drain(codec)) == 10  # pulling resumes decoding
    assert codec.buffered == 0
    codec.receive_data(one * 5 + b"")
    codec.receive_data(b"")
    events = drain(codec)
    assert len(events) == 6 and events[-1] is ConnectionEvent.CLOSED


def test_eof_at_boundary_is_closed_forever() -> None:
    codec = Http1Codec(Role.SERVER)
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    codec.receive_data(b"")
    assert norm(drain(codec)) == [H(1, req_fields("/", "a"), end=True), CLOSED]
    assert codec.next_event() is ConnectionEvent.CLOSED
    assert codec.state is RxState.CLOSED
    codec.receive_data(b"")  # a second EOF is harmless
    with pytest.raises(RuntimeError):
        codec.receive_data(b"more")


def test_stream_ids_count_per_connection() -> None:
    a, b = Http1Codec(Role.SERVER), Http1Codec(Role.SERVER)
    for codec in (a, b):
        codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 2)
    assert [e.request_id for e in drain(a)] == [1, 2]
    assert [e.request_id for e in drain(b)] == [1, 2]


def test_scheme_option() -> None:
    codec = Http1Codec(Role.SERVER, scheme="https")
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    (head,) = drain(codec)
    assert head.headers[":scheme"] == "https"
