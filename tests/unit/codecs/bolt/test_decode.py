"""Decoding the captured Bolt frames: whole, byte by byte, split everywhere, with trailing
bytes, pipelined, and at EOF (STYLE 2.7, h11 ``tr()``)."""

from __future__ import annotations

import zlib

import pytest

from mosn_py.codecs.base import NEED_DATA, CodecLimits, ConnectionEvent, Role, StreamType
from mosn_py.codecs.bolt import BoltCodec, CodecState
from mosn_py.errors import RemoteProtocolError

from .vectors import (
    CAPTURES,
    REQUESTS,
    RESPONSES,
    VECTORS,
    Vector,
    assert_frame_matches,
    build_frame,
    bytewise,
    drain,
    feed,
    splits,
    vector,
)

by_name = pytest.mark.parametrize("v", VECTORS, ids=lambda v: v.name)


def test_every_capture_has_both_directions() -> None:
    assert len(CAPTURES) >= 13  # bolt.md §10
    assert len(REQUESTS) == len(RESPONSES) == len(CAPTURES)


@by_name
def test_fixture_files_agree_with_index(v: Vector) -> None:
    """The .hex file, index.json's hex and its declared lengths all describe one frame."""
    f = v.fields
    assert v.wire.hex() == f["hex"]
    assert len(v.wire) == f["frame_len"]
    crc = 4 if v.has_crc else 0
    assert f["fixed_len"] + f["class_len"] + f["header_len"] + f["content_len"] + crc == len(v.wire)
    assert len(v.content) == f["content_len"]


@by_name
def test_whole(v: Vector) -> None:
    codec = BoltCodec(v.receiver)
    codec.receive_data(v.wire)
    frame = codec.next_event()
    assert_frame_matches(frame, v)
    assert codec.next_event() is NEED_DATA
    assert codec.buffered == 0
    codec.receive_data(b"")
    assert codec.next_event() is ConnectionEvent.CLOSED
    assert codec.next_event() is ConnectionEvent.CLOSED  # and it stays closed
    assert codec.state is CodecState.CLOSED


@by_name
def test_byte_by_byte(v: Vector) -> None:
    codec = BoltCodec(v.receiver)
    for b in bytewise(v.wire[:-1]):
        codec.receive_data(b)
        assert codec.next_event() is NEED_DATA
    codec.receive_data(v.wire[-1:])
    assert_frame_matches(codec.next_event(), v)
    assert codec.next_event() is NEED_DATA


@by_name
def test_split_at_every_offset(v: Vector) -> None:
    for chunks in splits(v.wire):
        events = feed(v.receiver, chunks, eof=True)
        assert len(events) == 2, chunks
        assert_frame_matches(events[0], v)
        assert events[1] is ConnectionEvent.CLOSED


@by_name
def test_input_types(v: Vector) -> None:
    """bytes, bytearray and memoryview input decode alike; the caller may reuse its buffer."""
    for data in (bytearray(v.wire), memoryview(bytearray(v.wire))):
        codec = BoltCodec(v.receiver)
        codec.receive_data(data)
        data[:] = b"\0" * len(data)  # the caller reuses its buffer: the codec copied it
        assert_frame_matches(codec.next_event(), v)


@by_name
@pytest.mark.parametrize("keep", [1, 2, 5, 19, 20, 21, 23, -1])
def test_trailing_bytes_stay_buffered(v: Vector, keep: int) -> None:
    """Bytes after a frame are the start of the next one: buffered, then completed."""
    n = min(keep if keep > 0 else len(v.wire) + keep, len(v.wire) - 1)
    codec = BoltCodec(v.receiver)
    codec.receive_data(v.wire + v.wire[:n])
    assert_frame_matches(codec.next_event(), v)
    assert codec.next_event() is NEED_DATA
    assert codec.buffered == n
    codec.receive_data(v.wire[n:])
    assert_frame_matches(codec.next_event(), v)
    assert codec.next_event() is NEED_DATA
    assert codec.buffered == 0


@by_name
def test_three_pipelined(v: Vector) -> None:
    stream = v.wire * 3
    for chunks in ([stream], bytewise(stream), [stream[:7], stream[7:50], stream[50:]]):
        events = feed(v.receiver, chunks)
        assert len(events) == 3
        for ev in events:
            assert_frame_matches(ev, v)


@pytest.mark.parametrize("vs", [REQUESTS, RESPONSES], ids=["requests", "responses"])
def test_all_captures_pipelined_on_one_connection(vs: list[Vector]) -> None:
    """Every capture back to back (v1, v2+CRC, heartbeats mixed), split at every offset."""
    stream = b"".join(v.wire for v in vs)
    role = vs[0].receiver
    for cut in range(1, len(stream), 7):
        events = feed(role, [stream[:cut], stream[cut:]], eof=True)
        assert len(events) == len(vs) + 1
        for ev, v in zip(events, vs, strict=False):
            assert_frame_matches(ev, v)
        assert events[-1] is ConnectionEvent.CLOSED


@by_name
def test_truncated_at_eof(v: Vector) -> None:
    for cut in (1, len(v.wire) // 2, len(v.wire) - 1):
        codec = BoltCodec(v.receiver)
        codec.receive_data(v.wire[:cut])
        assert codec.next_event() is NEED_DATA
        codec.receive_data(b"")
        with pytest.raises(RemoteProtocolError) as exc:
            codec.next_event()
        assert exc.value.protocol == "bolt"
        fixed = v.fields["fixed_len"]
        assert exc.value.request_id == (v.request_id if cut >= fixed else None)
        assert codec.state is CodecState.ERROR
        with pytest.raises(RemoteProtocolError):
            codec.next_event()


@by_name
def test_frame_after_frame_then_eof_inside_second(v: Vector) -> None:
    events = []
    codec = BoltCodec(v.receiver)
    codec.receive_data(v.wire + v.wire[:3])
    codec.receive_data(b"")
    events.append(codec.next_event())
    assert_frame_matches(events[0], v)
    with pytest.raises(RemoteProtocolError):
        codec.next_event()


def test_v2_crc_fixture() -> None:
    for kind in ("request", "response"):
        v = vector("sofaboltnode_pb_bolt2crc__hello", kind)
        assert v.has_crc and v.fields["crc32_ok"]
        trailer = int.from_bytes(v.wire[-4:], "big")
        assert trailer == v.fields["crc32"] == zlib.crc32(v.wire[:-4])
        frame = feed(v.receiver, [v.wire])[0]
        assert_frame_matches(frame, v)
        assert frame.extra.proto == 2 and frame.extra.ver1 == 2 and frame.extra.switch == 1
        assert frame.extra.has_crc
        # the body stops before the trailer
        assert bytes(frame.body) == v.content


@pytest.mark.parametrize("capture", ["anthunder__heartbeat", "sofaboltnode__heartbeat"])
def test_heartbeats_are_flagged(capture: str) -> None:
    req = vector(capture, "request")
    ack = vector(capture, "response")
    frame = feed(Role.SERVER, [req.wire])[0]
    assert frame.is_heartbeat and frame.stream_type is StreamType.REQUEST
    assert frame.extra.class_name == b"" and frame.headers == {} and bytes(frame.body) == b""
    frame = feed(Role.CLIENT, [ack.wire])[0]
    assert frame.is_heartbeat and frame.stream_type is StreamType.RESPONSE and frame.status == 0


def test_rpc_frames_are_not_heartbeats() -> None:
    for v in VECTORS:
        if v.fields["cmdcode"] != 0:
            assert not feed(v.receiver, [v.wire])[0].is_heartbeat


def test_body_is_a_view_into_raw() -> None:
    """Zero copy: body is a read-only memoryview slice of the one copy held in ``raw``."""
    v = vector("anthunder_aio__hello", "request")
    frame = feed(Role.SERVER, [v.wire])[0]
    assert isinstance(frame.body, memoryview) and frame.body.readonly
    assert frame.body.obj is frame.raw
    assert frame.body == v.content


def test_request_id_read_unsigned() -> None:
    v = vector("sofaboltnode_pb__hello", "request")
    wire = v.wire[:5] + b"\xff\xff\xff\xfe" + v.wire[9:]
    frame = feed(Role.SERVER, [wire])[0]
    assert frame.request_id == 0xFFFFFFFE


def test_timeout_read_signed() -> None:
    v = vector("sofaboltnode_pb__hello", "request")
    wire = v.wire[:10] + b"\xff\xff\xff\xff" + v.wire[14:]  # Java's default -1
    assert feed(Role.SERVER, [wire])[0].timeout_ms == -1


def test_oneway_request() -> None:
    v = vector("anthunder_aio__hello", "request")
    wire = v.wire[:1] + b"\x02" + v.wire[2:]
    frame = feed(Role.SERVER, [wire])[0]
    assert frame.stream_type is StreamType.ONEWAY and frame.extra.type == 2
    assert dict(frame.headers) == v.headers


def test_limits_are_inclusive() -> None:
    v = vector("anthunder_aio__hello", "request")
    limits = CodecLimits(max_frame_size=len(v.wire), max_header_size=v.fields["header_len"])
    codec = BoltCodec(Role.SERVER, limits=limits)
    codec.receive_data(v.wire)
    assert_frame_matches(codec.next_event(), v)


def test_many_frames_consume_in_place() -> None:
    """A long pipelined stream is decoded without re-slicing the buffer per frame."""
    v = vector("sofaboltnode_pb__hello", "request")
    codec = BoltCodec(Role.SERVER)
    chunk = v.wire * 500 + v.wire[:100]
    codec.receive_data(chunk)
    for _ in range(500):
        assert_frame_matches(codec.next_event(), v)
    assert codec.next_event() is NEED_DATA
    assert codec.buffered == 100
    codec.receive_data(v.wire[100:] + v.wire)  # compaction happens here
    assert len(drain(codec)) == 2
    assert codec.buffered == 0


@pytest.mark.parametrize(
    "ver1, switch, has_crc",
    [(2, 1, True), (1, 1, False), (2, 0, False), (1, 0, False), (2, 2, False), (2, 3, True)],
)
def test_v2_crc_rule(ver1: int, switch: int, has_crc: bool) -> None:
    """CRC32 trailer only when ver1 == 2 and switch bit 0 is set (Java sofa-bolt's framing,
    bolt.md §7): a default Java v2 client sends ver1=1 with the CRC switch on and no trailer."""
    wire = build_frame(proto=2, ver1=ver1, switch=switch, request_id=3, content=b"abc")
    assert len(wire) == 24 + 3 + (4 if has_crc else 0)
    frame = feed(Role.SERVER, [wire])[0]
    assert frame.extra.has_crc is has_crc and bytes(frame.body) == b"abc"
    assert frame.extra.ver1 == ver1 and frame.extra.switch == switch
    if has_crc:
        assert feed(Role.SERVER, [wire[:-4]]) == []  # NEED_DATA: the trailer is missing
