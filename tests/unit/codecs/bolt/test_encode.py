"""Encoding: pass-through, request-id patching, encoding from fields, local replies and
heartbeats, all checked against captured bytes where a capture exists."""

from __future__ import annotations

import array
import struct
import zlib

import pytest

from mosn_py.codecs.base import Frame, Role, StreamType
from mosn_py.codecs.bolt import (
    SOFA_REQUEST_CLASS,
    SOFA_RESPONSE_CLASS,
    ZERO_COPY_THRESHOLD,
    BoltCodec,
    BoltExtra,
    local_reply_for_id,
)
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

from .vectors import (
    REQUESTS,
    VECTORS,
    Vector,
    build_frame,
    feed,
    pack_header_map,
    vector,
)

by_name = pytest.mark.parametrize("v", VECTORS, ids=lambda v: v.name)


def decoded(v: Vector) -> Frame:
    frame = feed(v.receiver, [v.wire])[0]
    assert isinstance(frame, Frame)
    return frame


def wire_of(buffers: list[bytes | bytearray | memoryview]) -> bytes:
    assert buffers and all(isinstance(b, (bytes, bytearray, memoryview)) for b in buffers)
    return b"".join(buffers)


# --- pass-through -----------------------------------------------------------------------------


@by_name
def test_passthrough_is_the_captured_bytes(v: Vector) -> None:
    frame = decoded(v)
    out = BoltCodec(v.sender).send(frame)
    assert out == [v.wire]
    assert out[0] is frame.raw  # forwarded, not copied


@by_name
@pytest.mark.parametrize("new_id", [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 123456789])
def test_changed_request_id_patches_only_the_id(v: Vector, new_id: int) -> None:
    if new_id == v.request_id:
        new_id += 1
    out = wire_of(BoltCodec(v.sender).send(decoded(v).with_request_id(new_id)))
    off = v.id_offset
    assert len(out) == len(v.wire)
    assert out[off : off + 4] == struct.pack(">I", new_id)
    if v.has_crc:
        assert out[:off] == v.wire[:off]
        assert out[off + 4 : -4] == v.wire[off + 4 : -4]
        assert out[-4:] == struct.pack(">I", zlib.crc32(out[:-4]))
        assert out[-4:] != v.wire[-4:]
    else:
        assert out[:off] + out[off + 4 :] == v.wire[:off] + v.wire[off + 4 :]
    # and the peer reads it back with the new id and nothing else changed
    again = decoded(Vector(v.capture, v.kind, out, {**v.fields, "request_id": new_id}))
    assert again.request_id == new_id


def test_patched_crc_matches_java_and_node_formula() -> None:
    v = vector("sofaboltnode_pb_bolt2crc__hello", "request")
    out = wire_of(BoltCodec(Role.CLIENT).send(decoded(v).with_request_id(77)))
    expected = build_frame(
        proto=2,
        ver1=2,
        type=1,
        cmdcode=1,
        request_id=77,
        codec=11,
        switch=1,
        timeout=3000,
        class_name=SOFA_REQUEST_CLASS,
        header=v.wire[24 + 44 : 24 + 44 + 227],
        content=v.content,
    )
    assert out == expected


# --- encoding from fields ---------------------------------------------------------------------


@by_name
def test_encode_from_index_fields(v: Vector) -> None:
    """A frame built only from index.json values encodes to the captured bytes."""
    out = BoltCodec(v.sender).send(v.frame_from_index())
    assert out == [v.wire]


@by_name
def test_encode_decoded_frame_without_raw(v: Vector) -> None:
    frame = decoded(v).evolve(raw=None)
    assert frame.raw is None
    assert wire_of(BoltCodec(v.sender).send(frame)) == v.wire


@by_name
def test_evolve_then_encode_round_trips(v: Vector) -> None:
    frame = decoded(v).evolve(headers={**v.headers, "x-mosn": "ü"}, body=b"new body")
    out = wire_of(BoltCodec(v.sender).send(frame))
    again = feed(v.receiver, [out])[0]
    assert dict(again.headers) == {**v.headers, "x-mosn": "ü"}
    assert bytes(again.body) == b"new body"
    assert again.extra == v.extra and again.request_id == v.request_id


def test_translator_frame_defaults() -> None:
    """A frame with no BoltExtra: v1, protobuf, ver2 1, SofaRequest / SofaResponse."""
    req = Frame(StreamType.REQUEST, 9, {"service": "a.B:1.0"}, b"\x0a\x01x", timeout_ms=1000)
    out = wire_of(BoltCodec(Role.CLIENT).send(req))
    assert out == build_frame(
        request_id=9,
        timeout=1000,
        class_name=SOFA_REQUEST_CLASS,
        header=pack_header_map([(b"service", b"a.B:1.0")]),
        content=b"\x0a\x01x",
    )
    resp = Frame(StreamType.RESPONSE, 9, {}, b"ok", status=0)
    out = wire_of(BoltCodec(Role.SERVER).send(resp))
    assert out == build_frame(
        type=0, cmdcode=2, request_id=9, class_name=SOFA_RESPONSE_CLASS, content=b"ok"
    )
    oneway = Frame(StreamType.ONEWAY, 10, {}, b"")
    out = wire_of(BoltCodec(Role.CLIENT).send(oneway))
    assert out == build_frame(type=2, request_id=10, class_name=SOFA_REQUEST_CLASS)


def test_header_values_none_are_skipped() -> None:
    req = Frame(StreamType.REQUEST, 1, {"a": "1", "b": None, "c": ""}, b"")  # type: ignore[dict-item]
    out = wire_of(BoltCodec(Role.CLIENT).send(req))
    frame = feed(Role.SERVER, [out])[0]
    assert dict(frame.headers) == {"a": "1", "c": ""}


# --- big frames: the body is never copied -----------------------------------------------------


def big_request(proto: int, body_len: int) -> bytes:
    return build_frame(
        proto=proto,
        ver1=2,
        switch=1 if proto == 2 else 0,
        request_id=5,
        timeout=3000,
        class_name=SOFA_REQUEST_CLASS,
        header=pack_header_map([(b"service", b"s:1.0")]),
        content=bytes(range(256)) * (body_len // 256),
    )


@pytest.mark.parametrize("proto", [1, 2])
def test_big_frame_patch_does_not_copy_the_body(proto: int) -> None:
    wire = big_request(proto, 300_000)
    frame = feed(Role.SERVER, [wire])[0]
    out = BoltCodec(Role.CLIENT).send(frame.with_request_id(6))
    assert len(out) >= 2
    views = [b for b in out if isinstance(b, memoryview)]
    assert views and all(view.obj is frame.raw for view in views)
    assert sum(len(b) for b in out[:1]) < 64
    joined = wire_of(out)
    again = feed(Role.SERVER, [joined])[0]
    assert again.request_id == 6 and again.body == frame.body
    if proto == 2:
        assert joined[-4:] == struct.pack(">I", zlib.crc32(joined[:-4]))


@pytest.mark.parametrize("proto", [1, 2])
def test_big_body_encode_does_not_copy_the_body(proto: int) -> None:
    body = bytes(ZERO_COPY_THRESHOLD + 1)
    extra = BoltExtra(proto=proto, ver1=2, switch=1 if proto == 2 else 0)
    frame = Frame(StreamType.REQUEST, 3, {"k": "v"}, body, timeout_ms=5, extra=extra)
    out = BoltCodec(Role.CLIENT).send(frame)
    assert any(b is body for b in out)
    again = feed(Role.SERVER, [wire_of(out)])[0]
    assert again.body == body and again.request_id == 3 and dict(again.headers) == {"k": "v"}
    view_body = memoryview(bytearray(body))
    out = BoltCodec(Role.CLIENT).send(frame.evolve(body=view_body))
    assert any(b is view_body for b in out)


def test_body_buffer_kinds() -> None:
    """Any bytes-like body encodes as its bytes; bytearray bodies are not copied either."""
    items = array.array("I", [1, 2, 3])
    for body in (
        memoryview(items),  # 4-byte items: cast to bytes
        memoryview(bytes(range(12)))[::2],  # non-contiguous: copied
        bytearray(b"abc"),
    ):
        frame = Frame(StreamType.REQUEST, 1, {}, body)  # type: ignore[arg-type]
        got = feed(Role.SERVER, [wire_of(BoltCodec(Role.CLIENT).send(frame))])[0]
        assert bytes(got.body) == bytes(memoryview(body).tobytes())
    big = bytearray(ZERO_COPY_THRESHOLD + 1)
    out = BoltCodec(Role.CLIENT).send(Frame(StreamType.REQUEST, 1, {}, big))  # type: ignore[arg-type]
    assert isinstance(out[-1], memoryview) and out[-1].obj is big
    with pytest.raises(LocalProtocolError):
        BoltCodec(Role.CLIENT).send(Frame(StreamType.REQUEST, 1, {}, "text"))  # type: ignore[arg-type]


# --- heartbeats -------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", ["anthunder__heartbeat", "sofaboltnode__heartbeat"])
def test_heartbeat_reply_is_the_captured_ack(capture: str) -> None:
    req = vector(capture, "request")
    ack = vector(capture, "response")
    server = BoltCodec(Role.SERVER)
    reply = server.heartbeat_reply(decoded(req))
    assert reply.raw is None and reply.is_heartbeat and reply.status == 0
    assert server.send(reply) == [ack.wire]


def test_heartbeat_is_anthunders() -> None:
    req = vector("anthunder__heartbeat", "request")
    client = BoltCodec(Role.CLIENT)
    hb = client.heartbeat(req.request_id)
    assert hb.is_heartbeat and hb.stream_type is StreamType.REQUEST and hb.timeout_ms == 0
    assert client.send(hb) == [req.wire]


def test_heartbeat_reply_mirrors_v2() -> None:
    v2 = build_frame(proto=2, ver1=2, switch=1, cmdcode=0, request_id=8, codec=1, timeout=-1)
    server = BoltCodec(Role.SERVER)
    out = wire_of(server.send(server.heartbeat_reply(feed(Role.SERVER, [v2])[0])))
    assert out == build_frame(proto=2, ver1=2, switch=1, type=0, cmdcode=0, request_id=8, codec=1)


def test_heartbeat_reply_needs_a_heartbeat() -> None:
    server = BoltCodec(Role.SERVER)
    with pytest.raises(LocalProtocolError):
        server.heartbeat_reply(decoded(vector("anthunder_aio__hello", "request")))
    with pytest.raises(LocalProtocolError):
        server.heartbeat_reply(decoded(vector("anthunder__heartbeat", "response")))


# --- local replies ----------------------------------------------------------------------------

# The mapping MOSN uses (written out here, independent of wire.py).
EXPECTED_RESP_STATUS = {
    ProxyStatus.OK: 0,
    ProxyStatus.ROUTE_NOT_FOUND: 6,
    ProxyStatus.NO_HEALTHY_UPSTREAM: 6,
    ProxyStatus.UPSTREAM_CONNECT_FAILED: 6,
    ProxyStatus.UPSTREAM_RESET: 6,
    ProxyStatus.UPSTREAM_OVERFLOW: 4,
    ProxyStatus.DRAINING: 4,
    ProxyStatus.TIMEOUT: 7,
    ProxyStatus.CODEC_ERROR: 9,
    ProxyStatus.INTERNAL_ERROR: 1,
}


def test_mapping_covers_every_proxy_status() -> None:
    assert set(EXPECTED_RESP_STATUS) == set(ProxyStatus)


@pytest.mark.parametrize("status", list(ProxyStatus), ids=lambda s: s.name)
@pytest.mark.parametrize("v", REQUESTS, ids=lambda v: v.name)
def test_local_reply(v: Vector, status: ProxyStatus) -> None:
    server = BoltCodec(Role.SERVER)
    reply = server.local_reply(decoded(v), status, "boom ü")
    assert reply.stream_type is StreamType.RESPONSE and reply.raw is None
    assert reply.request_id == v.request_id
    assert reply.status == EXPECTED_RESP_STATUS[status]
    assert dict(reply.headers) == {} and bytes(reply.body) == "boom ü".encode()
    back = feed(Role.CLIENT, [wire_of(server.send(reply))])[0]
    assert back.request_id == v.request_id and back.status == EXPECTED_RESP_STATUS[status]
    assert back.extra.proto == v.extra.proto and back.extra.ver1 == v.extra.ver1
    assert back.extra.switch == v.extra.switch and back.extra.codec == v.extra.codec
    assert back.extra.cmdcode == 2 and back.extra.class_name == SOFA_RESPONSE_CLASS
    assert not back.is_heartbeat and bytes(back.body) == "boom ü".encode()


def test_local_reply_equals_anthunders_no_processor() -> None:
    """anthunder answers an unknown method with exactly what local_reply(ROUTE_NOT_FOUND) is."""
    req = vector("anthunder__no_processor", "request")
    resp = vector("anthunder__no_processor", "response")
    server = BoltCodec(Role.SERVER)
    reply = server.local_reply(decoded(req), ProxyStatus.ROUTE_NOT_FOUND)
    assert server.send(reply) == [resp.wire]


def test_local_reply_v2_crc() -> None:
    req = vector("sofaboltnode_pb_bolt2crc__hello", "request")
    server = BoltCodec(Role.SERVER)
    out = wire_of(server.send(server.local_reply(decoded(req), ProxyStatus.TIMEOUT, "late")))
    assert out == build_frame(
        proto=2,
        ver1=2,
        switch=1,
        type=0,
        cmdcode=2,
        request_id=req.request_id,
        codec=11,
        status=7,
        class_name=SOFA_RESPONSE_CLASS,
        content=b"late",
    )
    assert out[-4:] == struct.pack(">I", zlib.crc32(out[:-4]))


def test_local_reply_for_id() -> None:
    reply = local_reply_for_id(42, ProxyStatus.CODEC_ERROR)
    assert BoltCodec.local_reply_for_id is local_reply_for_id
    out = wire_of(BoltCodec(Role.SERVER).send(reply))
    assert out == build_frame(
        type=0, cmdcode=2, request_id=42, status=9, class_name=SOFA_RESPONSE_CLASS
    )
    like = BoltExtra(proto=2, ver1=2, switch=1, codec=1)
    out = wire_of(BoltCodec(Role.SERVER).send(local_reply_for_id(1, ProxyStatus.OK, like=like)))
    assert out == build_frame(
        proto=2, ver1=2, switch=1, type=0, cmdcode=2, codec=1, class_name=SOFA_RESPONSE_CLASS
    )


def test_local_reply_needs_a_request() -> None:
    with pytest.raises(LocalProtocolError):
        BoltCodec(Role.SERVER).local_reply(
            decoded(vector("anthunder_aio__hello", "response")), ProxyStatus.TIMEOUT
        )


# --- illegal sends ----------------------------------------------------------------------------


def req(**kw: object) -> Frame:
    return Frame(**{"stream_type": StreamType.REQUEST, "request_id": 1, "headers": {}, **kw})  # type: ignore[arg-type]


def resp(**kw: object) -> Frame:
    return Frame(**{"stream_type": StreamType.RESPONSE, "request_id": 1, "headers": {}, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "role, frame",
    [
        (Role.SERVER, req()),
        (Role.SERVER, req(stream_type=StreamType.ONEWAY)),
        (Role.CLIENT, resp()),
        (Role.SERVER, decoded(vector("anthunder_aio__hello", "request"))),  # raw too
        (Role.CLIENT, decoded(vector("anthunder_aio__hello", "response"))),
        (Role.CLIENT, req(request_id=-1)),
        (Role.CLIENT, req(request_id=2**32)),
        (Role.CLIENT, req(request_id=2**32, raw=vector("anthunder_aio__hello", "request").wire)),
        (Role.CLIENT, req(timeout_ms=2**31)),
        (Role.CLIENT, req(timeout_ms=-(2**31) - 1)),
        (Role.SERVER, resp(status=0x10000)),
        (Role.SERVER, resp(status=-1)),
        (Role.CLIENT, req(extra=BoltExtra(codec=256))),
        (Role.CLIENT, req(extra=BoltExtra(proto=2, switch=256))),
        (Role.CLIENT, req(extra=BoltExtra(proto=2, ver1=-1))),
        (Role.CLIENT, req(extra=BoltExtra(ver2=300))),
        (Role.CLIENT, req(extra=BoltExtra(proto=3))),
        (Role.CLIENT, req(extra=BoltExtra(class_name=b"x" * 0x8000))),
        (Role.CLIENT, req(headers={"k": "v" * 0x8000})),
        (Role.CLIENT, req(headers={"k": 1})),
        (Role.CLIENT, req(headers={b"k": "v"})),
        (Role.CLIENT, req(stream_type=StreamType.ONEWAY, is_heartbeat=True)),
        (Role.CLIENT, req(raw=b"\x07garbage")),
    ],
)
def test_illegal_sends(role: Role, frame: Frame) -> None:
    with pytest.raises(LocalProtocolError) as exc:
        BoltCodec(role).send(frame)
    assert exc.value.protocol == "bolt"


def test_range_errors_name_the_field() -> None:
    with pytest.raises(LocalProtocolError, match="timeout_ms"):
        BoltCodec(Role.CLIENT).send(req(timeout_ms=2**31))
    with pytest.raises(LocalProtocolError, match="codec"):
        BoltCodec(Role.CLIENT).send(req(extra=BoltExtra(codec=256)))
    with pytest.raises(LocalProtocolError, match="status"):
        BoltCodec(Role.SERVER).send(resp(status=-1))


def test_send_works_after_a_receive_error() -> None:
    server = BoltCodec(Role.SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    reply = local_reply_for_id(1, ProxyStatus.CODEC_ERROR)
    assert wire_of(server.send(reply))
