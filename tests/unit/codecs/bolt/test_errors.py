"""Bad input: every rejection raises ``RemoteProtocolError`` with a status hint, names the
request when its fixed header was readable, and leaves the codec in ERROR for good."""

from __future__ import annotations

import struct

import pytest

from mosn_py.codecs.base import NEED_DATA, CodecLimits, ConnectionEvent, Role
from mosn_py.codecs.bolt import SOFA_REQUEST_CLASS, BoltCodec, CodecState
from mosn_py.errors import ProxyStatus, RemoteProtocolError

from .vectors import Vector, build_frame, feed, pack_header_map, vector

HELLO = vector("anthunder_aio__hello", "request")  # v1, 7 headers
HELLO_RESP = vector("anthunder_aio__hello", "response")
CRC = vector("sofaboltnode_pb_bolt2crc__hello", "request")  # v2 + CRC
CRC_RESP = vector("sofaboltnode_pb_bolt2crc__hello", "response")


def reject(
    role: Role, data: bytes, *, limits: CodecLimits | None = None, eof: bool = False
) -> tuple[RemoteProtocolError, BoltCodec]:
    """Feed ``data``; it must raise on some pull; then the codec must stay in ERROR."""
    codec = BoltCodec(role) if limits is None else BoltCodec(role, limits=limits)
    codec.receive_data(data)
    if eof:
        codec.receive_data(b"")
    with pytest.raises(RemoteProtocolError) as exc:
        while codec.next_event() is not NEED_DATA:
            pass
        pytest.fail("no error")  # pragma: no cover
    err = exc.value
    assert err.protocol == "bolt"
    assert err.status_hint is ProxyStatus.CODEC_ERROR
    assert err.wire_code == 9  # CODEC_EXCEPTION
    assert codec.state is CodecState.ERROR
    for _ in range(2):  # every later pull raises again, with the same request id
        with pytest.raises(RemoteProtocolError) as again:
            codec.next_event()
        assert again.value.request_id == err.request_id
    codec.receive_data(HELLO.wire)  # ignored
    with pytest.raises(RemoteProtocolError):
        codec.next_event()
    return err, codec


# --- direction ----------------------------------------------------------------------------------


@pytest.mark.parametrize("v", [HELLO_RESP, CRC_RESP, vector("anthunder__heartbeat", "response")])
def test_server_rejects_responses(v: Vector) -> None:
    err, _ = reject(Role.SERVER, v.wire)
    assert "response" in str(err)


@pytest.mark.parametrize("v", [HELLO, CRC, vector("anthunder__heartbeat", "request")])
def test_client_rejects_requests(v: Vector) -> None:
    err, _ = reject(Role.CLIENT, v.wire)
    assert "request" in str(err)


def test_direction_is_checked_at_the_type_byte() -> None:
    err, _ = reject(Role.SERVER, HELLO_RESP.wire[:2])
    assert err.request_id is None


# --- proto / type / cmdcode ---------------------------------------------------------------------


@pytest.mark.parametrize("first", [b"\x00", b"\x03", b"\xff", b"G", b"\x16", b"*"])
@pytest.mark.parametrize("role", list(Role))
def test_unknown_proto(first: bytes, role: Role) -> None:
    err, _ = reject(role, first)
    assert err.request_id is None


@pytest.mark.parametrize("typ", [3, 4, 0x80, 0xFF])
def test_unknown_type(typ: int) -> None:
    for role in Role:
        reject(role, bytes([1, typ]))
        reject(role, bytes([2, 2, typ]))


@pytest.mark.parametrize(
    "role, typ, cmdcode",
    [
        (Role.SERVER, 1, 2),  # a request carrying RPC_RESPONSE
        (Role.SERVER, 1, 3),
        (Role.SERVER, 1, 0x100),
        (Role.SERVER, 2, 0),  # oneway heartbeat: no implementation sends it (bolt.md §3)
        (Role.SERVER, 2, 2),
        (Role.CLIENT, 0, 1),  # a response carrying RPC_REQUEST
        (Role.CLIENT, 0, 7),
    ],
)
@pytest.mark.parametrize("proto", [1, 2])
def test_bad_cmdcode(role: Role, typ: int, cmdcode: int, proto: int) -> None:
    wire = build_frame(proto=proto, type=typ, cmdcode=cmdcode, request_id=77)
    fixed = wire[: 22 if typ else 20] if proto == 1 else wire[: 24 if typ else 22]
    err, _ = reject(role, fixed)  # rejected as soon as the fixed header is in
    assert err.request_id == 77
    assert "cmdcode" in str(err)


# --- limits -------------------------------------------------------------------------------------


def test_oversize_frame_rejected_at_header_time() -> None:
    limits = CodecLimits(max_frame_size=1024)
    wire = build_frame(request_id=99, content_len=2000)  # only the fixed header exists
    err, _ = reject(Role.SERVER, wire, limits=limits)
    assert err.request_id == 99
    assert "1024" in str(err)


def test_oversize_is_the_whole_frame() -> None:
    limits = CodecLimits(max_frame_size=len(HELLO.wire) - 1)
    err, _ = reject(Role.SERVER, HELLO.wire[:22], limits=limits)
    assert err.request_id == HELLO.request_id


def test_oversize_counts_the_crc() -> None:
    limits = CodecLimits(max_frame_size=len(CRC.wire) - 1)
    reject(Role.SERVER, CRC.wire[:24], limits=limits)
    limits = CodecLimits(max_frame_size=len(CRC.wire))
    assert len(feed(Role.SERVER, [CRC.wire])) == 1


def test_oversize_response() -> None:
    limits = CodecLimits(max_frame_size=100)
    wire = build_frame(type=0, cmdcode=2, request_id=5, content_len=10**9)
    err, _ = reject(Role.CLIENT, wire, limits=limits)
    assert err.request_id == 5


def test_header_limit() -> None:
    limits = CodecLimits(max_header_size=HELLO.fields["header_len"] - 1)
    err, _ = reject(Role.SERVER, HELLO.wire[:22], limits=limits)
    assert err.request_id == HELLO.request_id


@pytest.mark.parametrize("field", ["class_len", "header_len"])
def test_short_lengths_above_32767(field: str) -> None:
    wire = build_frame(request_id=3, **{field: 0x8000})  # type: ignore[arg-type]
    limits = CodecLimits(max_header_size=1 << 20)
    err, _ = reject(Role.SERVER, wire, limits=limits)
    assert err.request_id == 3


def test_negative_content_length() -> None:
    err, _ = reject(Role.SERVER, build_frame(request_id=4, content_len=-1))
    assert err.request_id == 4


# --- header map ---------------------------------------------------------------------------------


def hello_with_header(block: bytes) -> bytes:
    return build_frame(
        request_id=12, timeout=3000, class_name=SOFA_REQUEST_CLASS, header=block, content=b"x"
    )


@pytest.mark.parametrize(
    "block",
    [
        struct.pack(">i", 100) + b"key",  # key overruns the block
        pack_header_map([(b"k", b"v")])[:-1],  # value overruns
        pack_header_map([(b"k", b"v")]) + b"\x00\x00",  # stray bytes
        pack_header_map([(b"k", b"v")]) + struct.pack(">i", 1) + b"k",  # no value length
        struct.pack(">i", -2) + struct.pack(">i", 0),  # negative key length
        pack_header_map([(b"k", b"")])[:-4] + struct.pack(">i", -5),  # negative value length
    ],
    ids=[
        "key-overrun",
        "value-overrun",
        "stray",
        "no-value-len",
        "neg-key",
        "neg-value",
    ],
)
def test_malformed_header_map(block: bytes) -> None:
    err, _ = reject(Role.SERVER, hello_with_header(block))
    assert err.request_id == 12
    assert "header map" in str(err)


def test_invalid_utf8_is_replaced_like_java() -> None:
    """Framing is validated eagerly; strings are decoded lazily and leniently, as Java's
    ``new String(bytes, UTF_8)`` does: malformed sequences become U+FFFD, the frame stands
    (and is forwarded byte for byte)."""
    block = pack_header_map([(b"k", b"\xff\xfe"), (b"\xc3", b"v"), (b"service", b"s:1.0")])
    wire = hello_with_header(block)
    codec = BoltCodec(Role.SERVER)
    codec.receive_data(wire)
    frame = codec.next_event()
    assert frame.headers.get("service") == "s:1.0"
    assert frame.headers["k"] == "\ufffd\ufffd"
    assert dict(frame.headers) == {"k": "\ufffd\ufffd", "\ufffd": "v", "service": "s:1.0"}
    assert BoltCodec(Role.CLIENT).send(frame) == [wire]


def test_header_map_overrun_in_a_capture() -> None:
    """The first key length of a real request made to run past the header block."""
    wire = bytearray(HELLO.wire)
    start = 22 + HELLO.fields["class_len"]
    struct.pack_into(">i", wire, start, HELLO.fields["header_len"])
    err, _ = reject(Role.SERVER, bytes(wire))
    assert err.request_id == HELLO.request_id


# --- CRC ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", [7, 30, 100, -5, -1])  # id, class, header, content, trailer
def test_bad_crc(where: int) -> None:
    for v in (CRC, CRC_RESP):
        wire = bytearray(v.wire)
        wire[where] ^= 0x01
        err, _ = reject(v.receiver, bytes(wire))
        assert err.request_id == int.from_bytes(wire[6:10], "big")
        assert "CRC" in str(err)


def test_crc_missing_at_eof() -> None:
    err, _ = reject(Role.SERVER, CRC.wire[:-4], eof=True)
    assert err.request_id == CRC.request_id


# --- EOF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 2, 21, 22, 100, len(HELLO.wire) - 1])
def test_truncated_at_eof(cut: int) -> None:
    err, _ = reject(Role.SERVER, HELLO.wire[:cut], eof=True)
    assert err.request_id == (HELLO.request_id if cut >= 22 else None)
    assert "closed" in str(err)


def test_eof_at_boundary_is_closed_not_error() -> None:
    codec = BoltCodec(Role.CLIENT)
    codec.receive_data(b"")
    assert codec.next_event() is ConnectionEvent.CLOSED
    assert codec.next_event() is ConnectionEvent.CLOSED
    with pytest.raises(RuntimeError):
        codec.receive_data(b"\x01")
    codec.receive_data(b"")  # a second EOF is harmless


def test_data_after_eof_before_pulling() -> None:
    codec = BoltCodec(Role.SERVER)
    codec.receive_data(HELLO.wire)
    codec.receive_data(b"")
    with pytest.raises(RuntimeError):
        codec.receive_data(HELLO.wire)


# --- error_reply --------------------------------------------------------------------------------


def test_error_reply_answers_the_bad_request() -> None:
    server = BoltCodec(Role.SERVER)
    server.receive_data(hello_with_header(struct.pack(">i", 100) + b"key"))
    with pytest.raises(RemoteProtocolError) as exc:
        server.next_event()
    reply = server.error_reply()
    assert reply is not None
    assert reply.request_id == 12 == exc.value.request_id
    assert reply.status == 9
    assert bytes(reply.body) == str(exc.value).encode()
    back = feed(Role.CLIENT, [b"".join(server.send(reply))])[0]
    assert back.request_id == 12 and back.status == 9
    assert server.error_reply("custom").body == b"custom"  # type: ignore[union-attr]


def test_error_reply_mirrors_v2_crc() -> None:
    wire = bytearray(CRC.wire)
    wire[-1] ^= 0xFF
    server = BoltCodec(Role.SERVER)
    server.receive_data(bytes(wire))
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    reply = server.error_reply()
    assert reply is not None and reply.extra.proto == 2 and reply.extra.switch == 1
    back = feed(Role.CLIENT, [b"".join(server.send(reply))])[0]
    assert back.request_id == CRC.request_id and back.status == 9


@pytest.mark.parametrize(
    "role, data",
    [
        (Role.SERVER, b"GET /"),  # no header
        (Role.SERVER, HELLO_RESP.wire),  # wrong direction
        (Role.SERVER, build_frame(type=2, request_id=5, content_len=-1)),  # oneway: no reply
        (Role.CLIENT, build_frame(type=0, cmdcode=2, request_id=5, content_len=-1)),
        (Role.SERVER, HELLO.wire[:10]),  # header incomplete at EOF
    ],
)
def test_no_error_reply(role: Role, data: bytes) -> None:
    codec = BoltCodec(role)
    codec.receive_data(data)
    codec.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        codec.next_event()
    assert codec.error_reply() is None


def test_no_error_reply_without_error() -> None:
    codec = BoltCodec(Role.SERVER)
    codec.receive_data(HELLO.wire)
    codec.next_event()
    assert codec.error_reply() is None
