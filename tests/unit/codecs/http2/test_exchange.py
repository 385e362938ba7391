"""Request/response exchanges against a real h2 peer: heads, bodies, trailers, many
interleaved streams, both roles, fed whole and byte by byte."""

from __future__ import annotations

import h2.events as ev
import pytest

from mosn_py.codecs.base import (
    NEED_DATA,
    Codec,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    MatchResult,
    PoolMode,
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http2 import PREFACE, Http2Codec, match

from .peer import (
    GET,
    REQUEST,
    SETTING,
    Link,
    b,
    client_link,
    h,
    heads,
    names,
    new_peer,
    of,
    parse_frames,
    server_link,
    trailers,
)


def response(
    sid: int,
    body: bytes = b"",
    *,
    status: int = 200,
    end: bool = True,
    extra: list[tuple[str, str]] | None = None,
    trailer_list: list[tuple[str, str]] | None = None,
) -> Frame:
    pairs = [(":status", str(status)), ("content-type", "text/plain"), *(extra or [])]
    return Frame(
        StreamType.RESPONSE,
        sid,
        HeaderList(pairs),
        body,
        status,
        end_stream=end,
        trailers=HeaderList(trailer_list) if trailer_list else None,
        protocol="http2",
    )


def request(
    body: bytes = b"",
    *,
    end: bool = True,
    pairs: list[tuple[str, str]] | None = None,
    trailer_list: list[tuple[str, str]] | None = None,
) -> Frame:
    return Frame(
        StreamType.REQUEST,
        0,
        HeaderList(pairs or REQUEST),
        body,
        end_stream=end,
        trailers=HeaderList(trailer_list) if trailer_list else None,
        protocol="http2",
    )


# --- sniffing and start-up -------------------------------------------------------------------


def test_match_preface() -> None:
    assert match(b"") is MatchResult.NEED_MORE
    for i in range(1, len(PREFACE)):
        assert Http2Codec.match(PREFACE[:i]) is MatchResult.NEED_MORE
    assert Http2Codec.match(PREFACE) is MatchResult.MATCH
    assert Http2Codec.match(memoryview(PREFACE + b"\x00\x00\x12\x04")) is MatchResult.MATCH
    assert Http2Codec.match(bytearray(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) is MatchResult.MATCH
    for other in (b"GET / HTTP/1.1\r\n", b"PRI * HTTP/1.1", b"\x16\x03\x01", b"\x01\x01\x00"):
        assert Http2Codec.match(other) is MatchResult.NO_MATCH
    assert Http2Codec.match(b"PRX") is MatchResult.NO_MATCH


def test_class_attributes() -> None:
    assert Http2Codec.protocol == "http2"
    assert Http2Codec.pool_mode is PoolMode.MULTIPLEX
    codec = Http2Codec(Role.SERVER)
    with pytest.raises(AttributeError):
        codec.some_attribute = 1  # type: ignore[attr-defined]


def test_satisfies_the_codec_protocol() -> None:
    for role in Role:
        assert isinstance(Http2Codec(role), Codec)


def test_request_id_argument_overrides_the_stream() -> None:
    link = server_link()
    link.peer.send_headers(3, b(REQUEST))
    link.run()
    link.take()
    link.peer_events.clear()
    link._peer_fed(b"".join(link.codec.send(response(999, end=False), request_id=3)))
    link._peer_fed(b"".join(link.codec.send(DataFrame(999, b"x", True), request_id=3)))
    got = link.take_peer()
    assert [e.stream_id for e in got if isinstance(e, (ev.ResponseReceived, ev.DataReceived))] == [
        3,
        3,
    ]


def test_client_initiate_is_preface_then_settings() -> None:
    codec = Http2Codec(Role.CLIENT)
    out = b"".join(codec.initiate())
    assert out.startswith(PREFACE)
    frames = parse_frames(out, skip_preface=True)
    assert frames[0].type == 0x4 and not frames[0].flags  # SETTINGS first (RFC 9113 §3.4)
    assert frames[0].settings == {
        SETTING.HEADER_TABLE_SIZE: 4096,
        SETTING.ENABLE_PUSH: 0,
        SETTING.MAX_CONCURRENT_STREAMS: 100,
        SETTING.INITIAL_WINDOW_SIZE: 65535,
        SETTING.MAX_FRAME_SIZE: 16384,
        SETTING.MAX_HEADER_LIST_SIZE: 64 << 10,
        SETTING.ENABLE_CONNECT_PROTOCOL: 0,
    }
    assert frames[1].type == 0x8 and frames[1].stream_id == 0  # connection WINDOW_UPDATE
    assert frames[1].window_increment == (1 << 20) - 65535
    assert codec.initiate() == []  # already drained


def test_server_initiate_is_settings_and_peer_accepts() -> None:
    link = server_link()
    changed = of(link.peer_events, ev.RemoteSettingsChanged)[0].changed_settings
    assert changed[SETTING.MAX_CONCURRENT_STREAMS].new_value == 100
    assert changed[SETTING.ENABLE_PUSH].new_value == 0
    assert of(link.peer_events, ev.SettingsAcknowledged)  # we ACKed the peer's SETTINGS
    assert link.peer.outbound_flow_control_window == 1 << 20
    assert link.take() == []


def test_settings_override_and_validation() -> None:
    codec = Http2Codec(
        Role.SERVER,
        settings={SETTING.MAX_CONCURRENT_STREAMS: 7, SETTING.INITIAL_WINDOW_SIZE: 1 << 20, 0x99: 5},
    )
    frames = parse_frames(b"".join(codec.initiate()))
    assert frames[0].settings[SETTING.MAX_CONCURRENT_STREAMS] == 7
    assert frames[0].settings[SETTING.INITIAL_WINDOW_SIZE] == 1 << 20
    assert frames[0].settings[0x99] == 5
    for bad in (
        {SETTING.INITIAL_WINDOW_SIZE: 1000},
        {SETTING.ENABLE_PUSH: 1},
        {SETTING.HEADER_TABLE_SIZE: 0},
        {SETTING.MAX_FRAME_SIZE: 100},
        {SETTING.MAX_HEADER_LIST_SIZE: 0},
    ):
        with pytest.raises(ValueError):
            Http2Codec(Role.SERVER, settings=bad)


# --- server role -------------------------------------------------------------------------------


def test_server_request_with_body_and_response_with_trailers() -> None:
    link = server_link()
    link.peer.send_headers(
        1, b([*REQUEST, ("content-type", "application/json"), ("x-multi", "a"), ("x-multi", "b")])
    )
    link.peer.send_data(1, b'{"a":')
    link.peer.send_data(1, b" 1}", end_stream=True)
    link.run()
    head, d1, d2 = link.take()
    assert head == Frame(
        StreamType.REQUEST,
        1,
        HeaderList(
            [*REQUEST, ("content-type", "application/json"), ("x-multi", "a"), ("x-multi", "b")]
        ),
        end_stream=False,
        protocol="http2",
    )
    assert head.headers.get_all("x-multi") == ["a", "b"]
    assert (d1, d2) == (DataFrame(1, b'{"a":', False), DataFrame(1, b" 1}", True))

    link.send(response(1, b"pong", trailer_list=[("x-checksum", "abc")]))
    got = link.take_peer()
    resp = of(got, ev.ResponseReceived)[0]
    assert h(resp.headers) == [(":status", "200"), ("content-type", "text/plain")]
    assert b"".join(e.data for e in of(got, ev.DataReceived)) == b"pong"
    assert h(of(got, ev.TrailersReceived)[0].headers) == [("x-checksum", "abc")]
    assert of(got, ev.StreamEnded)[0].stream_id == 1
    assert link.codec.active_streams == 0


def test_server_get_ends_on_headers_and_streamed_response() -> None:
    link = server_link()
    link.peer.send_headers(1, b(GET), end_stream=True)
    link.run()
    (head,) = link.take()
    assert head.end_stream and head.headers.items_all() == tuple(GET)
    link.send(response(1, end=False))
    link.send(DataFrame(1, b"chunk-1"))
    link.send(DataFrame(1, memoryview(b"chunk-2")))
    link.send(TrailersFrame(1, HeaderList([("grpc-status", "0")])))
    got = link.take_peer()
    assert names(got) == [
        "ResponseReceived",
        "DataReceived",
        "DataReceived",
        "TrailersReceived",
        "StreamEnded",
    ]
    assert b"".join(e.data for e in of(got, ev.DataReceived)) == b"chunk-1chunk-2"


def test_response_without_status_header_uses_frame_status() -> None:
    link = server_link()
    link.peer.send_headers(1, b(GET), end_stream=True)
    link.run()
    link.take()
    frame = Frame(StreamType.RESPONSE, 1, HeaderList([("server", "mosn-py")]), b"", 204)
    link.send(frame)
    resp = of(link.take_peer(), ev.ResponseReceived)[0]
    assert h(resp.headers) == [(":status", "204"), ("server", "mosn-py")]


def test_latin1_values_and_header_normalisation_on_send() -> None:
    link = server_link()
    link.peer.send_headers(1, [*b(GET), (b"x-name", "caf\xe9".encode("latin-1"))], end_stream=True)
    link.run()
    (head,) = link.take()
    assert head.headers["x-name"] == "caf\xe9"
    frame = response(
        1,
        extra=[
            ("X-Upper", "v"),
            ("connection", "close"),
            ("keep-alive", "5"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
            ("x-obs", "\xff\xfe"),
        ],
    )
    link.send(frame)
    resp = of(link.take_peer(), ev.ResponseReceived)[0]
    assert h(resp.headers) == [
        (":status", "200"),
        ("content-type", "text/plain"),
        ("x-upper", "v"),
        ("x-obs", "\xff\xfe"),
    ]


def test_grpc_timeout_becomes_timeout_ms() -> None:
    link = server_link()
    link.peer.send_headers(
        1, b([*REQUEST, ("content-type", "application/grpc"), ("grpc-timeout", "250m")])
    )
    link.peer.send_headers(3, b([*REQUEST, ("grpc-timeout", "2S")]), end_stream=True)
    link.peer.send_headers(5, b([*REQUEST, ("grpc-timeout", "bogus")]), end_stream=True)
    link.run()
    assert [f.timeout_ms for f in heads(link.take())] == [250, 2000, 0]


def test_many_interleaved_streams() -> None:
    link = server_link()
    sids = list(range(1, 100, 2))  # 50 streams
    for sid in sids:
        link.peer.send_headers(sid, b([*REQUEST, ("x-stream", str(sid))]))
    for part in range(3):
        for sid in sids:
            link.peer.send_data(sid, f"{sid}:{part};".encode(), end_stream=part == 2)
    link.run()
    events = link.take()
    assert [f.request_id for f in heads(events)] == sids
    for sid in sids:
        assert link.codec.pending(sid) == 0
        body = b"".join(
            bytes(e.data) for e in events if isinstance(e, DataFrame) and e.stream_id == sid
        )
        assert body == f"{sid}:0;{sid}:1;{sid}:2;".encode()
    assert link.codec.active_streams == 50
    for sid in reversed(sids):  # answer in reverse order
        link.send(response(sid, f"resp-{sid}".encode()))
    got = link.take_peer()
    for sid in sids:
        data = b"".join(
            e.data for e in got if isinstance(e, ev.DataReceived) and e.stream_id == sid
        )
        assert data == f"resp-{sid}".encode()
    assert link.codec.active_streams == 0


def test_ping_is_answered_through_data_to_send() -> None:
    link = server_link()
    link.peer.ping(b"12345678")
    link.run()
    assert link.take() == []
    ack = of(link.take_peer(), ev.PingAckReceived)
    assert ack and ack[0].ping_data == b"12345678"


def test_eof_at_frame_boundary_is_closed() -> None:
    link = server_link()
    link.codec.receive_data(b"")
    assert link.codec.next_event() is ConnectionEvent.CLOSED
    assert link.codec.next_event() is ConnectionEvent.CLOSED
    link.codec.receive_data(b"")  # repeated EOF is harmless
    with pytest.raises(RuntimeError):
        link.codec.receive_data(b"more")


def test_eof_before_anything() -> None:
    codec = Http2Codec(Role.SERVER)
    assert codec.next_event() is NEED_DATA
    codec.receive_data(b"")
    assert codec.next_event() is ConnectionEvent.CLOSED


# --- client role -------------------------------------------------------------------------------


def test_client_request_response() -> None:
    link = client_link()
    sid, bufs = link.codec.send_request(
        request(b"ping", pairs=[*REQUEST, ("x-a", "1")], trailer_list=[("x-t", "2")])
    )
    assert sid == 1
    link._peer_fed(b"".join(bufs))
    got = link.take_peer()
    req = of(got, ev.RequestReceived)[0]
    assert h(req.headers) == [*REQUEST, ("x-a", "1")]
    assert b"".join(e.data for e in of(got, ev.DataReceived)) == b"ping"
    assert h(of(got, ev.TrailersReceived)[0].headers) == [("x-t", "2")]

    link.peer.send_headers(1, [(b":status", b"201"), (b"x-r", b"v")])
    link.peer.send_data(1, b"po")
    link.peer.send_data(1, b"ng")
    link.peer.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    link.run()
    head, d1, d2, tr = link.take()
    assert head.stream_type is StreamType.RESPONSE and head.status == 201
    assert head.headers.items_all() == ((":status", "201"), ("x-r", "v"))
    assert not head.end_stream
    assert bytes(d1.data) + bytes(d2.data) == b"pong"
    assert tr == TrailersFrame(1, HeaderList([("grpc-status", "0")]))
    assert link.codec.active_streams == 0


def test_client_stream_ids_increase() -> None:
    link = client_link()
    assert link.codec.next_stream_id == 1
    ids = []
    for _ in range(3):
        sid, bufs = link.codec.send_request(request(pairs=GET))
        link._peer_fed(b"".join(bufs))
        ids.append(sid)
    assert ids == [1, 3, 5]
    assert link.codec.next_stream_id == 7
    link.send(request(pairs=GET))  # send() picks the next id as well
    assert [e.stream_id for e in of(link.take_peer(), ev.RequestReceived)] == [1, 3, 5, 7]
    assert link.codec.can_open_stream


def test_client_response_trailers_only() -> None:
    link = client_link()
    link.send(request(pairs=GET))
    link.peer.send_headers(
        1,
        [(b":status", b"200"), (b"content-type", b"application/grpc"), (b"grpc-status", b"14")],
        end_stream=True,
    )
    link.run()
    (head,) = link.take()
    assert head.end_stream and head.status == 200 and head.headers["grpc-status"] == "14"


def test_client_ignores_interim_responses() -> None:
    link = client_link()
    link.send(request(b"x", pairs=[*REQUEST, ("expect", "100-continue")]))
    link.peer.send_headers(1, [(b":status", b"100")])
    link.peer.send_headers(1, [(b":status", b"200")], end_stream=True)
    link.run()
    assert [f.status for f in heads(link.take())] == [200]


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_chunked_feed_gives_the_same_events(chunk: int) -> None:
    def conversation(chunk_size: int | None) -> list[object]:
        codec = Http2Codec(Role.SERVER)
        link = Link(codec, new_peer(True), chunk=chunk_size)
        link.run()
        for sid in (1, 3):
            link.peer.send_headers(sid, b([*REQUEST, ("x-s", str(sid))]))
        link.peer.send_data(1, b"a" * 300)
        link.peer.send_data(3, b"b" * 40, end_stream=True)
        link.peer.send_headers(1, [(b"x-t", b"1")], end_stream=True)
        link.run()
        return link.take()

    whole = conversation(None)
    assert [type(e) for e in whole] == [Frame, Frame, DataFrame, DataFrame, TrailersFrame]
    assert conversation(chunk) == whole
    assert trailers(whole)[0].stream_id == 1
