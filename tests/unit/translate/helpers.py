"""Shared by the translator tests: captured Bolt frames decoded by our codec, whole gRPC
and HTTP messages as the engine hands them to a translator, and wire-validity checks."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from mosn_py.codecs.base import Frame, HeaderList, Role, StreamType
from mosn_py.codecs.bolt import BoltCodec
from mosn_py.codecs.http2 import wire
from tests.unit.codecs.bolt.vectors import VECTORS, vector

SERVICE_IFACE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb"
SERVICE_UNIQUE = SERVICE_IFACE + ":1.0"

# Captured protobuf RPC calls (cmdcode 1, codec 11) and their real servers' answers.
PB_CALLS = sorted(
    v.capture
    for v in VECTORS
    if v.is_request and v.fields["cmdcode"] == 1 and v.fields["codec"] == 11
)
HELLO_CALLS = [c for c in PB_CALLS if c.endswith("__hello")]
HEARTBEATS = sorted(v.capture for v in VECTORS if v.is_request and v.fields["cmdcode"] == 0)
ROUTING_KEYS = {"service", "sofa_head_target_service", "sofa_head_method_name"}


def decoded(capture: str, kind: str) -> Frame:
    """The captured frame as our codec decodes it (the role that receives it)."""
    v = vector(capture, kind)
    codec = BoltCodec(v.receiver)
    codec.receive_data(v.wire)
    frame = codec.next_event()
    assert isinstance(frame, Frame)
    return frame


def bolt_wire(frame: Frame, role: Role = Role.SERVER, request_id: int | None = None) -> bytes:
    return b"".join(BoltCodec(role).send(frame, request_id))


def bolt_parse(data: bytes, role: Role) -> Frame:
    codec = BoltCodec(role)
    codec.receive_data(data)
    frame = codec.next_event()
    assert isinstance(frame, Frame)
    return frame


def prefixed(*messages: bytes, flag: int = 0) -> bytes:
    """gRPC Length-Prefixed-Messages, written out by hand."""
    return b"".join(struct.pack(">BI", flag, len(m)) + m for m in messages)


def grpc_response(
    body: bytes = b"",
    *,
    status: str | None = "0",
    message: str | None = None,
    http_status: int = 200,
    trailers_only: bool = False,
    extra_head: Iterable[tuple[str, str]] = (),
) -> Frame:
    """A whole gRPC response as the engine collects it (head, body, trailers)."""
    head = [(":status", str(http_status)), ("content-type", "application/grpc"), *extra_head]
    tail: list[tuple[str, str]] = []
    if status is not None:
        tail.append(("grpc-status", status))
    if message is not None:
        tail.append(("grpc-message", message))
    if trailers_only:
        return Frame(
            StreamType.RESPONSE, 1, HeaderList(head + tail), b"", http_status, protocol="http2"
        )
    return Frame(
        StreamType.RESPONSE,
        1,
        HeaderList(head),
        body,
        http_status,
        trailers=HeaderList(tail) if tail else None,
        protocol="http2",
    )


def grpc_call(
    path: str,
    body: bytes,
    metadata: Iterable[tuple[str, str]] = (),
    *,
    timeout_ms: int = 0,
    content_type: str = "application/grpc",
    method: str = "POST",
    stream_id: int = 1,
) -> Frame:
    """A whole gRPC request as the HTTP/2 codec decodes it (grpc-timeout -> timeout_ms)."""
    pairs = [
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1:50051"),
        ("te", "trailers"),
        ("content-type", content_type),
        *metadata,
    ]
    return Frame(
        StreamType.REQUEST,
        stream_id,
        HeaderList(pairs),
        body,
        0,
        timeout_ms,
        end_stream=True,
        protocol="http2",
    )


def h2_valid_request(frame: Frame) -> None:
    """h2 would send this head (it raises otherwise)."""
    assert isinstance(frame.headers, HeaderList)
    wire.encode_headers(frame.headers, wire.REQUEST_HEAD)


def h2_valid_response(frame: Frame) -> None:
    assert isinstance(frame.headers, HeaderList)
    wire.encode_headers(frame.headers, wire.RESPONSE_HEAD)
    if frame.trailers:
        wire.encode_headers(frame.trailers, wire.SERVER_TRAILERS)


def pseudo_first(headers: HeaderList) -> bool:
    names = [k for k, _ in headers.items_all()]
    n = sum(1 for k in names if k.startswith(":"))
    return all(k.startswith(":") for k in names[:n])
