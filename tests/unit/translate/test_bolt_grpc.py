"""``BoltToGrpc`` against the captured SOFARPC frames (reference/bolt.md §9).

Requests: every captured protobuf call becomes the gRPC call the recipe describes, with the
captured content as the message, unchanged. Responses: a gRPC reply carrying the real Bolt
servers' content comes back as the *same bytes* those servers sent (anthunder: empty header
map; sofa-bolt-node: ``sofa_head_response_error=false``, and v2 with CRC for a v2 call).
"""

from __future__ import annotations

import struct

import pytest

from mosn_py.codecs.base import Frame, HeaderList, Role, StreamType
from mosn_py.codecs.bolt import BoltExtra, RespStatus
from mosn_py.codecs.http2 import GrpcStatus
from mosn_py.errors import ConfigError, ProxyStatus
from mosn_py.translate import BoltToGrpc, TranslationError
from mosn_py.translate.bolt_grpc import bolt_status_for_grpc
from tests.unit.codecs.bolt.vectors import build_frame, pack_header_map, vector

from .helpers import (
    HEARTBEATS,
    HELLO_CALLS,
    PB_CALLS,
    ROUTING_KEYS,
    SERVICE_IFACE,
    bolt_parse,
    bolt_wire,
    decoded,
    grpc_response,
    h2_valid_request,
    prefixed,
    pseudo_first,
)

T = BoltToGrpc.from_options(None)


def call(headers: dict[str, str], content: bytes = b"\x0a\x01x", **kw: int) -> Frame:
    """A Bolt request built by the naive packer and decoded by our codec."""
    wire = build_frame(
        class_name=b"com.alipay.sofa.rpc.core.request.SofaRequest",
        header=pack_header_map((k.encode(), v.encode()) for k, v in headers.items()),
        content=content,
        **kw,
    )
    return bolt_parse(wire, Role.SERVER)


BASIC = {
    "sofa_head_target_service": "a.b.Svc:1.0",
    "sofa_head_method_name": "hello",
    "service": "a.b.Svc:1.0",
}


# --- requests --------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", PB_CALLS)
def test_captured_call_becomes_the_recipes_grpc_call(capture: str) -> None:
    v = vector(capture, "request")
    up = T.request(decoded(capture, "request"))
    h = up.headers
    assert isinstance(h, HeaderList)
    method = v.headers["sofa_head_method_name"]
    assert h[":method"] == "POST"
    assert h[":scheme"] == "http"
    assert h[":path"] == f"/{SERVICE_IFACE}/{method}"
    assert h[":authority"] == SERVICE_IFACE
    assert h["te"] == "trailers"
    assert h["content-type"] == "application/grpc"
    assert h["grpc-timeout"] == "3000m" and up.timeout_ms == 3000
    assert pseudo_first(h)
    # every other SOFA header as metadata, lower-cased, in captured order
    expected = [(k.lower(), val) for k, val in v.header_pairs if k not in ROUTING_KEYS]
    regular = [kv for kv in h.items_all() if not kv[0].startswith(":")]
    assert regular[3:] == expected
    # the message is the captured content, unchanged, behind the 5-byte prefix
    body = bytes(up.body)
    assert body[:5] == b"\x00" + struct.pack(">I", len(v.content))
    assert body[5:] == v.content
    assert up.end_stream is True and up.protocol == "http2" and up.request_id == 0
    assert up.stream_type is StreamType.REQUEST and up.trailers is None
    h2_valid_request(up)


def test_anthunder_trace_context_is_forwarded_as_metadata() -> None:
    h = T.request(decoded("anthunder_aio__hello", "request")).headers
    assert h["rpc_trace_context.sofatraceid"] == "7f0000011795478581114100118591"
    assert h["rpc_trace_context.sofarpcid"] == "1"
    assert h["uid"] == "" and h["sofa_head_target_app"] == ""
    assert "service" not in h and "sofa_head_method_name" not in h


def test_service_falls_back_to_the_service_header_and_loses_its_version() -> None:
    up = T.request(call({"service": "x.Y:2.0:blue", "sofa_head_method_name": "Go"}))
    assert up.headers[":path"] == "/x.Y/Go"


def test_target_service_wins_over_service() -> None:
    up = T.request(call({**BASIC, "sofa_head_target_service": "p.Q:1.0"}))
    assert up.headers[":path"] == "/p.Q/hello"


@pytest.mark.parametrize(
    ("ms", "value"),
    [
        (1, "1m"),
        (3000, "3000m"),
        (99_999_999, "99999999m"),
        (100_000_000, "100000S"),
        (100_000_001, "100001S"),
        (2**31 - 1, "2147484S"),
    ],
)
def test_grpc_timeout_format(ms: int, value: str) -> None:
    up = T.request(call(BASIC, timeout=ms))
    assert up.headers["grpc-timeout"] == value
    assert up.timeout_ms == ms


@pytest.mark.parametrize("ms", [0, -1, -5])
def test_no_deadline_without_a_positive_timeout(ms: int) -> None:
    up = T.request(call(BASIC, timeout=ms))
    assert "grpc-timeout" not in up.headers and up.timeout_ms == 0


def test_metadata_filter() -> None:
    headers = {
        **BASIC,
        "Mixed_Case.Key": "v1",
        "grpc-status": "0",  # reserved for gRPC
        "grpc-timeout": "1S",
        "te": "gzip",
        "content-type": "text/plain",
        "content-length": "9",
        "connection": "close",
        "bad key": "v",
        "ключ": "v",
        "non-ascii-value": "héllo",
        "ctl-value": "a\x01b",
        "trace-bin": "AAEC/w==",
        "broken-bin": "not base64!",
        "empty": "",
    }
    h = T.request(call(headers)).headers
    regular = [kv for kv in h.items_all() if not kv[0].startswith(":")]
    assert regular == [
        ("te", "trailers"),
        ("content-type", "application/grpc"),
        ("mixed_case.key", "v1"),
        ("trace-bin", "AAEC/w=="),
        ("empty", ""),
    ]


def test_oneway_translates_the_same_way() -> None:
    up = T.request(call(BASIC, type=2))
    assert up.stream_type is StreamType.ONEWAY
    assert up.headers[":path"] == "/a.b.Svc/hello"


def test_v2_crc_call_translates_like_v1() -> None:
    up = T.request(decoded("sofaboltnode_pb_bolt2crc__hello", "request"))
    assert bytes(up.body)[5:] == vector("sofaboltnode_pb_bolt2crc__hello", "request").content


def test_request_frame_is_left_alone() -> None:
    frame = decoded("anthunder_aio__hello", "request")
    raw = frame.raw
    T.request(frame)
    assert frame.raw is raw and frame.protocol == "bolt"


# --- refusals --------------------------------------------------------------------------------


def test_hessian2_call_is_refused_with_the_reason() -> None:
    with pytest.raises(TranslationError) as info:
        T.request(decoded("sofaboltnode_hessian2__hello", "request"))
    assert info.value.status is ProxyStatus.CODEC_ERROR
    assert "codec 1 (hessian2)" in info.value.message
    assert "protobuf" in info.value.message


@pytest.mark.parametrize("capture", HEARTBEATS)
def test_heartbeats_are_refused(capture: str) -> None:
    with pytest.raises(TranslationError) as info:
        T.request(decoded(capture, "request"))
    assert info.value.status is ProxyStatus.CODEC_ERROR
    assert "heartbeat" in info.value.message


def test_protobuf_call_without_method_header_is_refused() -> None:
    with pytest.raises(TranslationError) as info:
        T.request(call({"service": "a.b.Svc:1.0"}))
    assert info.value.status is ProxyStatus.CODEC_ERROR
    assert "sofa_head_method_name" in info.value.message


def test_call_without_service_is_refused() -> None:
    with pytest.raises(TranslationError) as info:
        T.request(call({"sofa_head_method_name": "hello"}))
    assert info.value.status is ProxyStatus.CODEC_ERROR
    assert "service" in info.value.message


@pytest.mark.parametrize(
    "headers",
    [
        {**BASIC, "sofa_head_method_name": "he llo"},
        {**BASIC, "sofa_head_method_name": "a/b"},
        {**BASIC, "sofa_head_target_service": "bad name:1.0"},
        {**BASIC, "sofa_head_target_service": ":1.0"},
    ],
)
def test_names_that_cannot_be_a_grpc_path_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(TranslationError) as info:
        T.request(call(headers))
    assert info.value.status is ProxyStatus.ROUTE_NOT_FOUND


def test_non_rpc_frames_are_refused() -> None:
    response = decoded("anthunder_aio__hello", "response")
    with pytest.raises(TranslationError):
        T.request(response)
    odd = Frame(StreamType.REQUEST, 1, BASIC, b"", extra=BoltExtra(cmdcode=7))
    with pytest.raises(TranslationError) as info:
        T.request(odd)
    assert "cmdcode 7" in info.value.message


# --- responses: byte-identical to the real servers --------------------------------------------


@pytest.mark.parametrize("capture", HELLO_CALLS)
def test_ok_reply_is_byte_identical_to_the_real_servers_response(capture: str) -> None:
    real = vector(capture, "response")
    # sofa-bolt-node marks successes with sofa_head_response_error=false, anthunder sends none
    t = BoltToGrpc.from_options({"response_error_header": bool(real.headers)})
    request = decoded(capture, "request")
    down = t.response(grpc_response(prefixed(real.content)), request)
    assert down.request_id == request.request_id
    assert bolt_wire(down) == real.wire


def test_v2_crc_call_is_answered_in_v2_with_crc() -> None:
    capture = "sofaboltnode_pb_bolt2crc__hello"
    real = vector(capture, "response")
    down = T.response(grpc_response(prefixed(real.content)), decoded(capture, "request"))
    got = bolt_parse(bolt_wire(down), Role.CLIENT)  # our decoder checks the CRC
    expected = decoded(capture, "response")
    assert got.extra == expected.extra
    assert got.extra.has_crc
    assert (got.request_id, got.status, bytes(got.body)) == (2, 0, real.content)
    assert dict(got.headers) == {}  # default: anthunder's empty map


def test_error_reply_is_byte_identical_to_sofa_bolt_nodes_error() -> None:
    capture = "sofaboltnode_pb__fail"
    real = vector(capture, "response")
    text = real.content.decode()
    request = decoded(capture, "request")
    for whole in (
        grpc_response(status="2", message=text),
        grpc_response(status="2", message=text, trailers_only=True),
    ):
        assert bolt_wire(T.response(whole, request)) == real.wire


def test_unimplemented_answers_no_processor_like_anthunder() -> None:
    capture = "anthunder__no_processor"
    down = T.response(
        grpc_response(status="12", message="Method not found!", trailers_only=True),
        decoded(capture, "request"),
    )
    assert down.status == vector(capture, "response").status == RespStatus.NO_PROCESSOR
    assert dict(down.headers) == {"sofa_head_response_error": "true"}
    assert bytes(down.body) == b"Method not found!"


@pytest.mark.parametrize("code", list(GrpcStatus))
def test_status_table(code: GrpcStatus) -> None:
    expected = {
        GrpcStatus.OK: 0,
        GrpcStatus.DEADLINE_EXCEEDED: 7,
        GrpcStatus.UNIMPLEMENTED: 6,
        GrpcStatus.RESOURCE_EXHAUSTED: 4,
    }.get(code, 2)
    assert bolt_status_for_grpc(code) == expected
    if code:
        down = T.response(
            grpc_response(status=str(int(code)), message="m"),
            decoded("anthunder_aio__hello", "request"),
        )
        assert down.status == expected
        assert down.headers == {"sofa_head_response_error": "true"}


def test_unknown_grpc_code_is_a_server_exception() -> None:
    down = T.response(grpc_response(status="99"), decoded("anthunder_aio__hello", "request"))
    assert down.status == 2 and bytes(down.body) == b"gRPC status 99 ?"


def test_grpc_message_is_percent_decoded_utf8() -> None:
    request = decoded("anthunder_aio__hello", "request")
    down = T.response(grpc_response(status="5", message="n%C3%B6 such %E2%9C%93 100%"), request)
    assert bytes(down.body) == "nö such ✓ 100%".encode()


def test_empty_grpc_message_names_the_status() -> None:
    down = T.response(grpc_response(status="14"), decoded("anthunder_aio__hello", "request"))
    assert (down.status, bytes(down.body)) == (2, b"gRPC status 14 UNAVAILABLE")


@pytest.mark.parametrize(
    ("http_status", "bolt_status"), [(404, 6), (503, 2), (502, 2), (500, 2), (401, 2)]
)
def test_non_200_status(http_status: int, bolt_status: int) -> None:
    whole = grpc_response(http_status=http_status, status=None)
    down = T.response(whole, decoded("anthunder_aio__hello", "request"))
    assert down.status == bolt_status
    assert f"HTTP {http_status}".encode() in bytes(down.body)
    assert down.headers == {"sofa_head_response_error": "true"}


@pytest.mark.parametrize(
    ("whole", "why"),
    [
        (grpc_response(prefixed(b"x"), status=None), b"no grpc-status"),
        (grpc_response(prefixed(b"x"), status="zero"), b"grpc-status 'zero'"),
        (grpc_response(b""), b"no message"),
        (grpc_response(prefixed(b"a", b"b")), b"2 messages"),
        (grpc_response(prefixed(b"a", b"b")[:-1]), b"1 message and a truncated one"),
        (grpc_response(prefixed(b"abc", flag=1)), b"compressed"),
        (grpc_response(prefixed(b"abc", flag=2)), b"compressed-flag byte 0x02"),
        (grpc_response(prefixed(b"abc")[:-1]), b"truncated message"),
        (grpc_response(b"\x00\x00"), b"truncated message prefix"),
    ],
)
def test_malformed_replies_become_server_exceptions(whole: Frame, why: bytes) -> None:
    down = T.response(whole, decoded("anthunder_aio__hello", "request"))
    assert down.status == RespStatus.SERVER_EXCEPTION
    assert why in bytes(down.body), bytes(down.body)


def test_empty_message_is_a_valid_reply() -> None:
    down = T.response(grpc_response(prefixed(b"")), decoded("anthunder_aio__hello", "request"))
    assert (down.status, bytes(down.body)) == (0, b"")


def test_error_reply_to_a_v2_crc_call_is_v2_with_crc() -> None:
    capture = "sofaboltnode_pb_bolt2crc__hello"
    down = T.response(grpc_response(status="4", message="late"), decoded(capture, "request"))
    got = bolt_parse(bolt_wire(down), Role.CLIENT)
    assert got.extra.has_crc and (got.status, bytes(got.body)) == (7, b"late")


# --- options ---------------------------------------------------------------------------------


def test_services_and_methods_options() -> None:
    t = BoltToGrpc.from_options(
        {
            "services": {"a.b.Svc": "pkg.v1.Svc", "x.Y:2.0": "pkg.v2.Y"},
            "methods": {"hello": "SayHello"},
            "authority": "backend:50051",
        }
    )
    up = t.request(call(BASIC))
    assert up.headers[":path"] == "/pkg.v1.Svc/SayHello"
    assert up.headers[":authority"] == "backend:50051"
    up = t.request(call({"service": "x.Y:2.0", "sofa_head_method_name": "other"}))
    assert up.headers[":path"] == "/pkg.v2.Y/other"
    up = t.request(call({"service": "x.Y:3.0", "sofa_head_method_name": "other"}))
    assert up.headers[":path"] == "/x.Y/other"


def test_drop_headers_option() -> None:
    t = BoltToGrpc.from_options({"drop_headers": ["UID", "sofa_head_target_app"]})
    h = t.request(decoded("anthunder_aio__hello", "request")).headers
    assert "uid" not in h and "sofa_head_target_app" not in h
    assert "rpc_trace_context.sofarpcid" in h


def test_option_errors_name_the_option() -> None:
    with pytest.raises(ConfigError) as info:
        BoltToGrpc.from_options(
            {
                "service": {},
                "services": {"a.b": "x:y", "bad name": "z"},
                "methods": ["x"],
                "authority": "a/b",
                "drop_headers": "uid",
                "response_error_header": "yes",
            }
        )
    lines = info.value.errors
    # every line starts with the option it is about (the loader prefixes the rule's path)
    assert {line.split(":")[0].split("[")[0] for line in lines} == {
        "service",
        "services",
        "methods",
        "authority",
        "drop_headers",
        "response_error_header",
    }
    text = "\n".join(lines)
    assert "service: unknown bolt->grpc option (did you mean 'services'?)" in text
    assert "services['a.b']: 'x:y': a gRPC service name has no ':'" in lines
    assert "services['a.b']" in text
    assert "services['bad name']" in text
    assert "methods: expected a mapping" in text
    assert "authority" in text
    assert "drop_headers: expected a list" in text
    assert "response_error_header: expected true or false" in text


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping of bolt->grpc options"):
        BoltToGrpc.from_options(["services"])  # type: ignore[arg-type]
