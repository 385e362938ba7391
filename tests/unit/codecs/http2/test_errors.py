"""Resets, GOAWAY, limits and bad input: every connection error is a RemoteProtocolError
with the h2 error code and a GOAWAY queued; stream-level trouble stays on its stream."""

from __future__ import annotations

import h2.events as ev
import pytest
from hyperframe.frame import DataFrame as RawData
from hyperframe.frame import RstStreamFrame, SettingsFrame, WindowUpdateFrame

from mosn_py.codecs.base import (
    NEED_DATA,
    CodecLimits,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    ResetFrame,
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http2 import CodecState, Http2Codec
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

from .peer import (
    GET,
    REQUEST,
    SETTING,
    b,
    client_link,
    client_preface,
    goaway_frames,
    h,
    heads,
    names,
    of,
    parse_frames,
    raw_continuation,
    raw_goaway,
    raw_headers,
    resets,
    server_link,
)

PROTOCOL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR = 0x1, 0x5, 0x6
REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x7, 0x8, 0xB


def ok(sid: int, body: bytes = b"", *, end: bool = True) -> Frame:
    return Frame(
        StreamType.RESPONSE, sid, HeaderList([(":status", "200")]), body, 200, end_stream=end
    )


def get(pairs: list[tuple[str, str]] | None = None, *, end: bool = True) -> Frame:
    return Frame(StreamType.REQUEST, 0, HeaderList(pairs or GET), end_stream=end)


def pull_all(codec: Http2Codec) -> list[object]:
    out = []
    while (e := codec.next_event()) is not NEED_DATA:
        out.append(e)
        if e is ConnectionEvent.CLOSED:
            break
    return out


def reject(codec: Http2Codec, data: bytes, code: int) -> RemoteProtocolError:
    """Feed ``data``; pulling must raise with ``code``, queue a GOAWAY, and stay in ERROR."""
    codec.receive_data(data)
    with pytest.raises(RemoteProtocolError) as exc:
        pull_all(codec)
    err = exc.value
    assert err.protocol == "http2" and err.wire_code == code
    assert err.status_hint is ProxyStatus.CODEC_ERROR
    assert codec.state is CodecState.ERROR
    (goaway,) = goaway_frames(b"".join(codec.data_to_send()))
    assert goaway.error_code == code
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as again:
            codec.next_event()
        assert again.value.wire_code == code
    codec.receive_data(b"\x00" * 20)  # ignored from now on
    assert codec.goaway() == []  # the GOAWAY went out already
    return err


def drained(role: Role = Role.SERVER, **kw: object) -> Http2Codec:
    codec = Http2Codec(role, **kw)  # type: ignore[arg-type]
    codec.initiate()
    return codec


# --- RST_STREAM both ways --------------------------------------------------------------------


def test_peer_reset_becomes_reset_frame() -> None:
    link = server_link()
    link.peer_acks = False
    link.peer.send_headers(1, b(REQUEST))
    link.peer.send_data(1, b"part")
    link.run()
    link.take()
    link.send(ok(1, b"x" * 100_000, end=False))  # some of it pending
    assert link.codec.pending(1) > 0
    link.peer.reset_stream(1, CANCEL)
    link.run()
    assert link.take() == [ResetFrame(1, CANCEL, "remote reset")]
    assert link.codec.pending_total == 0 and link.codec.active_streams == 0
    for frame in (DataFrame(1, b"late"), TrailersFrame(1, HeaderList([("a", "b")]))):
        with pytest.raises(LocalProtocolError) as exc:
            link.codec.send(frame)
        assert exc.value.wire_code == STREAM_CLOSED and exc.value.request_id == 1
    assert link.codec.send(ResetFrame(1, CANCEL)) == []  # a reset race is a no-op


def test_our_reset_reaches_the_peer_and_is_idempotent() -> None:
    link = client_link()
    link.send(get(end=False))
    link.send(ResetFrame(1, CANCEL, "client went away"))
    assert [(e.stream_id, e.error_code) for e in of(link.peer_events, ev.StreamReset)] == [
        (1, CANCEL)
    ]
    link.peer_events.clear()
    link.send(ResetFrame(1, CANCEL))
    link.send(ResetFrame(77, CANCEL))  # never existed
    assert of(link.peer_events, ev.StreamReset) == []
    with pytest.raises(LocalProtocolError):
        link.codec.send(ResetFrame(3, 1 << 32))


def test_response_before_request_end_stops_the_upload() -> None:
    """RFC 9113 §8.1: a complete response while the request is still arriving is followed
    by RST_STREAM(NO_ERROR)."""
    link = server_link()
    link.peer.send_headers(1, b(REQUEST))
    link.run()
    (head,) = link.take()
    link.send(link.codec.local_reply(head, ProxyStatus.NO_HEALTHY_UPSTREAM))
    got = link.take_peer()
    assert names(got) == ["ResponseReceived", "DataReceived", "StreamEnded", "StreamReset"]
    assert of(got, ev.StreamReset)[0].error_code == 0
    assert link.codec.active_streams == 0
    link.peer_events.clear()
    link.take()
    assert link.take() == []  # the app is not told about its own stream finishing


def test_rapid_reset_leaves_nothing_behind() -> None:
    link = server_link()
    for sid in range(1, 2001, 2):
        link.peer.send_headers(sid, b(REQUEST))
        link.peer.reset_stream(sid, CANCEL)
    link.run()
    events = link.take()
    assert len(heads(events)) == 1000 and len(resets(events)) == 1000
    assert link.codec.active_streams == 0
    assert len(link.codec._h2.streams) <= 1


# --- GOAWAY ------------------------------------------------------------------------------------


def test_goaway_received_is_graceful() -> None:
    link = client_link()
    for _ in range(3):
        link.send(get(end=False))
    link.feed_codec(raw_goaway(3, 0, b"drain"))
    assert link.take() == [
        ConnectionEvent.GOAWAY,
        ResetFrame(5, REFUSED_STREAM, "GOAWAY: not processed by the peer, safe to retry"),
    ]
    codec = link.codec
    assert codec.goaway_received and codec.goaway_last_stream_id == 3
    assert codec.goaway_error_code == 0 and not codec.can_open_stream
    with pytest.raises(LocalProtocolError) as exc:
        codec.send_request(get())
    assert exc.value.status_hint is ProxyStatus.UPSTREAM_RESET
    # streams 1 and 3 finish normally after the GOAWAY (RFC 9113 §6.8)
    link.send(DataFrame(1, b"body", end_stream=True))
    link.send(DataFrame(3, b"", end_stream=True))
    for sid in (1, 3):
        link.peer.send_headers(sid, [(b":status", b"200")])
        link.peer.send_data(sid, b"done", end_stream=True)
    link.run()
    assert [f.request_id for f in heads(link.events)] == [1, 3]
    assert link.body(1) == link.body(3) == b"done" and codec.active_streams == 0
    link.take()
    # a second GOAWAY may lower the id, never raise it
    link.feed_codec(raw_goaway(7, 2))
    assert link.take() == [ConnectionEvent.GOAWAY]
    assert codec.goaway_last_stream_id == 3 and codec.goaway_error_code == 2


def test_goaway_sent_refuses_new_streams_and_drains_old_ones() -> None:
    link = server_link()
    for sid in (1, 3):
        link.peer.send_headers(sid, b(GET), end_stream=True)
    link.run()
    link.take()
    codec = link.codec
    (frame,) = goaway_frames(b"".join(codec.goaway()))  # withheld from the peer: in flight
    assert (frame.last_stream_id, frame.error_code) == (3, 0)
    link.peer.send_headers(5, b(GET), end_stream=True)  # raced the GOAWAY
    link.run()
    assert link.take() == [] and codec.refused_streams == 1
    assert [(e.stream_id, e.error_code) for e in of(link.peer_events, ev.StreamReset)] == [
        (5, REFUSED_STREAM)
    ]
    for sid in (1, 3):
        link.send(ok(sid, b"bye"))
    assert link.peer_body(1) == b"bye" and link.peer_body(3) == b"bye"
    assert codec.active_streams == 0
    with pytest.raises(LocalProtocolError):
        codec.goaway(5)  # may not increase
    (again,) = goaway_frames(b"".join(codec.goaway(1, 2)))
    assert (again.last_stream_id, again.error_code) == (1, 2)


def test_two_step_drain() -> None:
    codec = drained()
    first = goaway_frames(b"".join(codec.goaway(2**31 - 1)))[0]
    second = goaway_frames(b"".join(codec.goaway()))[0]
    assert (first.last_stream_id, second.last_stream_id) == (2**31 - 1, 0)
    with pytest.raises(LocalProtocolError):
        codec.goaway(2**31)


# --- limits ------------------------------------------------------------------------------------


def test_streams_beyond_max_concurrent_are_refused() -> None:
    codec = drained(settings={SETTING.MAX_CONCURRENT_STREAMS: 2})
    preface, enc = client_preface()
    data = preface + b"".join(raw_headers(enc, sid, GET, end_stream=True) for sid in (1, 3, 5, 7))
    codec.receive_data(data)
    events = pull_all(codec)
    assert [f.request_id for f in heads(events)] == [1, 3]
    rst = [f for f in parse_frames(b"".join(codec.data_to_send())) if isinstance(f, RstStreamFrame)]
    assert [(f.stream_id, f.error_code) for f in rst] == [(5, REFUSED_STREAM), (7, REFUSED_STREAM)]
    assert codec.refused_streams == 2
    codec.send(ok(1))  # a slot frees up: the next stream is accepted
    codec.receive_data(raw_headers(enc, 9, GET, end_stream=True))
    assert [f.request_id for f in heads(pull_all(codec))] == [9]


def test_stream_flood_past_the_limit_stays_bounded() -> None:
    codec = drained(settings={SETTING.MAX_CONCURRENT_STREAMS: 10})
    preface, enc = client_preface()
    codec.receive_data(preface)
    sids = range(1, 10001, 2)
    for sid in sids:  # 5000 streams, each with a body the peer never should have sent
        codec.receive_data(raw_headers(enc, sid, REQUEST) + RawData(sid, b"d" * 150).serialize())
    events = pull_all(codec)
    assert len(heads(events)) == 10 and codec.refused_streams == 4990
    assert codec.active_streams == 10
    assert len(codec._h2.streams) <= 11  # refused streams do not pile up in h2 either
    out = parse_frames(b"".join(codec.data_to_send()))
    credit = sum(
        f.window_increment for f in out if isinstance(f, WindowUpdateFrame) and f.stream_id == 0
    )
    assert credit >= 1 << 19  # data on refused streams still returns connection credit


def test_oversized_request_head_gets_431() -> None:
    link = server_link(limits=CodecLimits(max_header_size=1000, max_header_count=8))
    big = ("x-big", "v" * 1200)  # over 1000, under the 2000 hard limit
    link.peer.send_headers(1, b([*GET, big]), end_stream=True)
    link.peer.send_headers(3, b([*REQUEST, big]))  # still uploading: 431 then RST(NO_ERROR)
    link.peer.send_headers(5, b([*GET, *[(f"x-{i}", "v") for i in range(6)]]), end_stream=True)
    link.peer.send_headers(7, b(GET), end_stream=True)
    link.run()
    assert [f.request_id for f in heads(link.take())] == [7]
    assert link.codec.rejected_heads == 3
    got = link.take_peer()
    replies = {e.stream_id: dict(h(e.headers)) for e in of(got, ev.ResponseReceived)}
    assert replies == {sid: {":status": "431", "content-length": "0"} for sid in (1, 3, 5)}
    assert [(e.stream_id, e.error_code) for e in of(got, ev.StreamReset)] == [(3, 0)]


def test_header_block_over_the_hard_limit_is_a_connection_error() -> None:
    codec = drained(limits=CodecLimits(max_header_size=1000))
    preface, enc = client_preface()
    err = reject(
        codec, preface + raw_headers(enc, 1, [*GET, ("x-huge", "v" * 3000)]), ENHANCE_YOUR_CALM
    )
    assert "header" in str(err).lower()


def test_oversized_response_head_resets_the_stream() -> None:
    link = client_link(limits=CodecLimits(max_header_size=500))
    link.send(get())
    link.peer.send_headers(1, [(b":status", b"200"), (b"x-big", b"v" * 600)], end_stream=True)
    link.run()
    (reset,) = link.take()
    assert reset.stream_id == 1 and reset.code == CANCEL and reset.reason.startswith("local:")
    assert link.codec.active_streams == 0


def test_body_over_max_body_size_server_answers_413() -> None:
    link = server_link(limits=CodecLimits(max_body_size=1000))
    link.peer.send_headers(1, b(REQUEST))
    link.peer.send_data(1, b"a" * 600)
    link.peer.send_data(1, b"b" * 600)
    link.run()
    head, data, reset = link.take()
    assert head.request_id == 1 and data == DataFrame(1, b"a" * 600, False)
    assert reset.stream_id == 1 and reset.code == 0 and "413" in reset.reason
    got = link.take_peer()
    assert h(of(got, ev.ResponseReceived)[0].headers) == [
        (":status", "413"),
        ("content-length", "0"),
    ]
    assert of(got, ev.StreamReset)[0].error_code == 0
    assert link.codec.active_streams == 0


def test_body_over_max_body_size_after_response_started_resets() -> None:
    link = server_link(limits=CodecLimits(max_body_size=100))
    link.peer.send_headers(1, b(REQUEST))
    link.run()
    link.take()
    link.send(ok(1, end=False))
    link.peer.send_data(1, b"c" * 101)
    link.run()
    (reset,) = link.take()
    assert reset.code == CANCEL
    assert of(link.peer_events, ev.StreamReset)[0].error_code == CANCEL


def test_response_body_over_max_body_size_client() -> None:
    link = client_link(limits=CodecLimits(max_body_size=10))
    link.send(get())
    link.peer.send_headers(1, [(b":status", b"200")])
    link.peer.send_data(1, b"0123456789A", end_stream=True)
    link.run()
    head, reset = link.take()
    assert head.status == 200 and reset.code == CANCEL and "max_body_size" in reset.reason


def test_oversized_trailers_reset_the_stream() -> None:
    link = server_link(limits=CodecLimits(max_header_size=300))
    link.peer.send_headers(1, b(REQUEST))
    link.peer.send_headers(1, [(b"x-t", b"v" * 400)], end_stream=True)
    link.run()
    _head, reset = link.take()
    assert reset.code == CANCEL and reset.stream_id == 1


def test_continuation_flood_is_cut_off() -> None:
    codec = drained()
    preface, enc = client_preface()
    codec.receive_data(preface + raw_headers(enc, 1, GET, end_headers=False))
    fed = 0
    with pytest.raises(RemoteProtocolError) as exc:
        for _ in range(1000):
            codec.receive_data(raw_continuation(1, b"\x00" * 16384))
            fed += 1
            pull_all(codec)
    assert fed <= 64  # h2 buffers at most 64 CONTINUATION frames (about 1 MiB)
    assert exc.value.wire_code == PROTOCOL_ERROR
    assert goaway_frames(b"".join(codec.data_to_send()))[0].error_code == PROTOCOL_ERROR


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x", PROTOCOL_ERROR),  # DATA on stream 0 (§6.1)
        (b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5, FRAME_SIZE_ERROR),  # SETTINGS len 5
        (b"\x00\x40\x01\x00\x00\x00\x00\x00\x01" + b"\x00" * 16385, FRAME_SIZE_ERROR),  # too big
        (b"\x00\x00\x03\x01\x05\x00\x00\x00\x01\xff\xff\xff", PROTOCOL_ERROR),  # bad HPACK
        (RawData(2, b"x").serialize(), PROTOCOL_ERROR),  # DATA on an idle stream
        (SettingsFrame(0, settings={SETTING.ENABLE_PUSH: 2}).serialize(), PROTOCOL_ERROR),
    ],
)
def test_malformed_frames_are_connection_errors(frame: bytes, code: int) -> None:
    preface, _ = client_preface()
    reject(drained(), preface + frame, code)


def test_bad_preface() -> None:
    err = reject(drained(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", PROTOCOL_ERROR)
    assert "preamble" in str(err)


@pytest.mark.parametrize("cut", [5, 30, 24 + 9 + 2])
def test_eof_inside_a_frame(cut: int) -> None:
    preface, _ = client_preface()
    codec = drained()
    codec.receive_data(preface[:cut])
    codec.receive_data(b"")
    with pytest.raises(RemoteProtocolError) as exc:
        pull_all(codec)
    assert "inside a frame" in str(exc.value)


def test_client_rejects_push_and_bad_status() -> None:
    link = client_link()
    link.send(get())
    link.peer.send_headers(1, [(b":status", b"2x0")], end_stream=True)
    link.run()
    (reset,) = link.take()
    assert reset.code == PROTOCOL_ERROR and "status" in reset.reason


# --- local errors ------------------------------------------------------------------------------


def test_wrong_direction_and_unknown_frames() -> None:
    server = drained()
    with pytest.raises(LocalProtocolError):
        server.send(get())
    client = drained(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(ok(1))
    with pytest.raises(LocalProtocolError):
        client.send("not a frame")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "pairs",
    [
        [(":status", "200"), ("bad name", "v")],
        [(":status", "200"), ("x-crlf", "a\r\nb")],
        [(":status", "200"), ("x-nul", "a\x00")],
        [(":status", "200"), ("x-wide", "\u20ac")],
        [(":status", "200"), (":foo", "bar")],
        [(":status", "200"), (":path", "/")],
        [(":status", "200"), ("x-a", "1"), ("", "empty")],
    ],
)
def test_illegal_response_heads_do_not_touch_the_wire(pairs: list[tuple[str, str]]) -> None:
    link = server_link()
    link.peer.send_headers(1, b(GET), end_stream=True)
    link.run()
    link.take()
    out_before = len(link.wire_to_peer)
    with pytest.raises(LocalProtocolError) as exc:
        link.codec.send(Frame(StreamType.RESPONSE, 1, HeaderList(pairs), b"", 200))
    assert exc.value.request_id == 1
    assert link.codec.data_to_send() == [] and len(link.wire_to_peer) == out_before
    # HPACK and stream state untouched: a valid answer still decodes at the peer
    link.send(ok(1, b"fine"))
    assert link.peer_body(1) == b"fine"


def test_send_state_errors() -> None:
    link = server_link()
    link.peer.send_headers(1, b(REQUEST))
    link.run()
    link.take()
    codec = link.codec
    with pytest.raises(LocalProtocolError):
        codec.send(DataFrame(1, b"before the head"))
    with pytest.raises(LocalProtocolError):
        codec.send(DataFrame(9, b"unknown stream"))
    link.send(ok(1, end=False))
    with pytest.raises(LocalProtocolError):
        codec.send(ok(1))  # a second head
    link.send(DataFrame(1, b"last", end_stream=True))
    with pytest.raises(LocalProtocolError):
        codec.send(DataFrame(1, b"after the end"))


def test_peer_concurrency_limit_is_upstream_overflow() -> None:
    link = client_link(settings={SETTING.MAX_CONCURRENT_STREAMS: 1})
    link.send(get(end=False))
    assert not link.codec.can_open_stream
    with pytest.raises(LocalProtocolError) as exc:
        link.codec.send_request(get())
    assert exc.value.status_hint is ProxyStatus.UPSTREAM_OVERFLOW
    link.send(ResetFrame(1, CANCEL))
    assert link.codec.can_open_stream
    assert link.codec.send_request(get())[0] == 3
