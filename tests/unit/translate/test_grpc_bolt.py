"""``GrpcToBolt``: a gRPC call becomes the Bolt request a real SOFARPC client sends.

The golden test rebuilds the anthunder capture byte for byte from a gRPC call carrying the
same message and metadata; responses from the real Bolt servers (captured) come back as
well-formed gRPC replies.
"""

from __future__ import annotations

import struct

import pytest

from mosn_py.codecs.base import Frame, HeaderList, Role, StreamType
from mosn_py.codecs.bolt import BoltExtra, RespStatus
from mosn_py.codecs.http2 import GrpcStatus
from mosn_py.errors import ConfigError, ProxyStatus
from mosn_py.translate import BoltToGrpc, GrpcToBolt, TranslationError
from mosn_py.translate.grpc_bolt import grpc_status_for_bolt
from tests.unit.codecs.bolt.vectors import vector

from .helpers import (
    HELLO_CALLS,
    SERVICE_IFACE,
    SERVICE_UNIQUE,
    bolt_parse,
    bolt_wire,
    decoded,
    grpc_call,
    h2_valid_request,
    h2_valid_response,
    prefixed,
)

T = GrpcToBolt.from_options(None)
PATH = f"/{SERVICE_IFACE}/hello"


def anthunder_like_call(capture: str) -> Frame:
    """The gRPC call carrying what ``capture``'s anthunder client sent."""
    v = vector(capture, "request")
    h = v.headers
    metadata = [
        ("grpc-timeout", "3000m"),
        ("user-agent", "grpc-python/1.85.1 grpc-c/52.0.0 (linux; chttp2)"),
        ("grpc-accept-encoding", "identity,deflate,gzip"),
        ("uid", h["uid"]),
        ("rpc_trace_context.sofatraceid", h["rpc_trace_context.sofaTraceId"]),
        ("rpc_trace_context.sofarpcid", h["rpc_trace_context.sofaRpcId"]),
    ]
    method = h["sofa_head_method_name"]
    return grpc_call(f"/{SERVICE_IFACE}/{method}", prefixed(v.content), metadata, timeout_ms=3000)


# --- requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "capture", ["anthunder_aio__hello", "anthunder__fail_unknown", "anthunder__no_processor"]
)
def test_call_becomes_anthunders_request_byte_for_byte(capture: str) -> None:
    real = vector(capture, "request")
    bolt = T.request(anthunder_like_call(capture))
    assert bolt.request_id == 0  # the pool assigns ids
    assert bolt_wire(bolt, Role.CLIENT, real.request_id) == real.wire


@pytest.mark.parametrize("capture", ["sofaboltnode_pb__hello", "sofarpcnode_pb__hello"])
def test_call_carries_what_sofa_node_clients_send(capture: str) -> None:
    real = vector(capture, "request")
    bolt = T.request(grpc_call(PATH, prefixed(real.content), timeout_ms=3000))
    got = bolt_parse(bolt_wire(bolt, Role.CLIENT, real.request_id), Role.SERVER)
    expected = decoded(capture, "request")
    assert dict(got.headers) == dict(expected.headers)  # same map, anthunder's order
    assert bytes(got.body) == real.content
    assert got.extra == expected.extra
    assert (got.timeout_ms, got.stream_type) == (3000, StreamType.REQUEST)


def test_content_is_the_message_without_a_copy() -> None:
    body = prefixed(b"\x0a\x03abc")
    bolt = T.request(grpc_call(PATH, body))
    assert isinstance(bolt.body, memoryview) and bolt.body.obj is body
    assert bytes(bolt.body) == b"\x0a\x03abc"


def test_frame_fields() -> None:
    bolt = T.request(grpc_call(PATH, prefixed(b"")))
    assert bolt.protocol == "bolt" and bolt.end_stream and not bolt.is_heartbeat
    assert bolt.extra == BoltExtra(
        1, 1, 1, 1, 1, 11, 0, b"com.alipay.sofa.rpc.core.request.SofaRequest"
    )
    assert list(bolt.headers) == [
        "sofa_head_target_service",
        "sofa_head_method_name",
        "sofa_head_target_app",
        "service",
    ]
    assert bolt.headers["service"] == SERVICE_UNIQUE


def test_timeouts() -> None:
    body = prefixed(b"")
    assert T.request(grpc_call(PATH, body, timeout_ms=250)).timeout_ms == 250
    # a frame built without the codec's parsing: the header is read
    assert T.request(grpc_call(PATH, body, [("grpc-timeout", "2S")])).timeout_ms == 2000
    assert T.request(grpc_call(PATH, body)).timeout_ms == 3000  # anthunder's default
    assert T.request(grpc_call(PATH, body, timeout_ms=10**12)).timeout_ms == 2**31 - 1
    t = GrpcToBolt.from_options({"timeout": "1.5s"})
    assert t.request(grpc_call(PATH, body)).timeout_ms == 1500
    t = GrpcToBolt.from_options({"timeout": 0})
    assert t.request(grpc_call(PATH, body)).timeout_ms == -1  # none, as Java sends it


def test_metadata_mapping() -> None:
    metadata = [
        ("rpc_trace_context.sofatraceid", "0a0b"),
        ("rpc_trace_context.syspenattrs", "x"),
        ("x-tag", "a"),
        ("x-tag", "b"),
        ("traceparent", "00-abc-def-01"),
        ("blob-bin", "AAE="),
        ("utf8", "h\xc3\xa9"),  # HeaderList values are latin-1: UTF-8 octets decoded
        ("grpc-encoding", "identity"),
        ("content-length", "7"),
        ("user-agent", "grpc-go/1.60"),
        ("service", "evil:1.0"),
        ("sofa_head_method_name", "evil"),
        ("connection", "close"),
    ]
    h = T.request(grpc_call(PATH, prefixed(b""), metadata)).headers
    assert dict(h) == {
        "sofa_head_target_service": SERVICE_UNIQUE,
        "sofa_head_method_name": "hello",
        "sofa_head_target_app": "",
        "service": SERVICE_UNIQUE,
        "rpc_trace_context.sofaTraceId": "0a0b",
        "rpc_trace_context.sysPenAttrs": "x",
        "x-tag": "a, b",
        "traceparent": "00-abc-def-01",
        "blob-bin": "AAE=",
        "utf8": "hé",
    }


def test_huge_metadata_is_refused_before_the_codec_would() -> None:
    metadata = [(f"k{i}", "v" * 1000) for i in range(40)]
    with pytest.raises(TranslationError) as info:
        T.request(grpc_call(PATH, prefixed(b""), metadata))
    assert info.value.status is ProxyStatus.CODEC_ERROR
    assert "32767" in info.value.message


def test_content_type_variants_accepted() -> None:
    for ctype in ("application/grpc", "application/grpc+proto", "application/GRPC; charset=x"):
        T.request(grpc_call(PATH, prefixed(b""), content_type=ctype))


@pytest.mark.parametrize(
    ("kwargs", "status", "why"),
    [
        ({"body": prefixed(b"x", flag=1)}, ProxyStatus.CODEC_ERROR, "compressed"),
        ({"body": b""}, ProxyStatus.CODEC_ERROR, "no message"),
        ({"body": prefixed(b"a", b"b")}, ProxyStatus.CODEC_ERROR, "2 messages"),
        ({"body": prefixed(b"abc")[:-1]}, ProxyStatus.CODEC_ERROR, "truncated"),
        ({"method": "GET"}, ProxyStatus.CODEC_ERROR, "POST"),
        ({"content_type": "application/json"}, ProxyStatus.CODEC_ERROR, "content-type"),
        ({"content_type": "application/grpc+json"}, ProxyStatus.CODEC_ERROR, "content-type"),
        ({"content_type": "application/grpc-web"}, ProxyStatus.CODEC_ERROR, "content-type"),
        ({"path": "/only"}, ProxyStatus.ROUTE_NOT_FOUND, "/<service>/<method>"),
        ({"path": "/a/b/c"}, ProxyStatus.ROUTE_NOT_FOUND, "/<service>/<method>"),
        ({"path": "a/b"}, ProxyStatus.ROUTE_NOT_FOUND, "/<service>/<method>"),
        ({"path": "/a b/c"}, ProxyStatus.ROUTE_NOT_FOUND, "/<service>/<method>"),
        ({"path": "//c"}, ProxyStatus.ROUTE_NOT_FOUND, "/<service>/<method>"),
    ],
)
def test_refusals(kwargs: dict[str, object], status: ProxyStatus, why: str) -> None:
    args: dict[str, object] = {"path": PATH, "body": prefixed(b"x")}
    args.update(kwargs)
    with pytest.raises(TranslationError) as info:
        T.request(grpc_call(**args))  # type: ignore[arg-type]
    assert info.value.status is status
    assert why in info.value.message


# --- responses -------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", HELLO_CALLS)
def test_real_servers_ok_response_becomes_a_grpc_reply(capture: str) -> None:
    real = vector(capture, "response")
    call = grpc_call(PATH, prefixed(b""), stream_id=7)
    reply = T.response(decoded(capture, "response"), call)
    assert reply.request_id == 7 and reply.stream_type is StreamType.RESPONSE
    assert list(reply.headers.items_all()) == [  # type: ignore[attr-defined]
        (":status", "200"),
        ("content-type", "application/grpc"),
    ]  # sofa_head_response_error=false is not metadata
    assert reply.status == 200 and reply.end_stream and reply.protocol == "http2"
    assert bytes(reply.body) == struct.pack(">BI", 0, len(real.content)) + real.content
    assert reply.trailers == HeaderList([("grpc-status", "0")])
    h2_valid_response(reply)


@pytest.mark.parametrize(
    ("capture", "code", "message"),
    [
        ("sofaboltnode_pb__fail", 2, "intentional failure from bolt_server.js (fail)"),
        ("anthunder__fail_unknown", 2, "bolt respStatus 3 UNKNOWN"),
        ("anthunder__no_processor", 12, "bolt respStatus 6 NO_PROCESSOR"),
    ],
)
def test_real_servers_errors_become_trailers_only(capture: str, code: int, message: str) -> None:
    reply = T.response(decoded(capture, "response"), grpc_call(PATH, prefixed(b"")))
    assert reply.headers == HeaderList(
        [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", str(code)),
            ("grpc-message", message),
        ]
    )
    assert reply.body == b"" and reply.trailers is None
    h2_valid_response(reply)


@pytest.mark.parametrize("status", [int(s) for s in RespStatus if s] + [0x13, 0xFFFF])
def test_status_table(status: int) -> None:
    expected = {
        0x04: GrpcStatus.RESOURCE_EXHAUSTED,
        0x05: GrpcStatus.UNAVAILABLE,
        0x06: GrpcStatus.UNIMPLEMENTED,
        0x07: GrpcStatus.DEADLINE_EXCEEDED,
        0x08: GrpcStatus.INTERNAL,
        0x09: GrpcStatus.INTERNAL,
        0x10: GrpcStatus.UNAVAILABLE,
        0x11: GrpcStatus.INTERNAL,
        0x12: GrpcStatus.INTERNAL,
    }.get(status, GrpcStatus.UNKNOWN)
    assert grpc_status_for_bolt(status) is expected
    whole = Frame(StreamType.RESPONSE, 1, {}, b"", status)
    reply = T.response(whole, grpc_call(PATH, b""))
    assert reply.headers["grpc-status"] == str(int(expected))


def test_java_style_error_status_zero_with_error_flag() -> None:
    whole = Frame(StreamType.RESPONSE, 1, {"sofa_head_response_error": "true"}, "bäd".encode(), 0)
    reply = T.response(whole, grpc_call(PATH, b""))
    assert reply.headers["grpc-status"] == "2"
    assert reply.headers["grpc-message"] == "b%C3%A4d"


def test_long_error_text_is_cut() -> None:
    whole = Frame(StreamType.RESPONSE, 1, {}, b"x" * 100_000, 2)
    reply = T.response(whole, grpc_call(PATH, b""))
    assert reply.headers["grpc-message"] == "x" * 1024


def test_response_headers_become_metadata() -> None:
    whole = Frame(
        StreamType.RESPONSE,
        1,
        {"sofa_head_response_error": "false", "Biz.Code": "7", "bad key": "x", "v": "é"},
        b"\x08\x01",
        0,
    )
    reply = T.response(whole, grpc_call(PATH, b""))
    assert reply.headers == HeaderList(
        [(":status", "200"), ("content-type", "application/grpc"), ("biz.code", "7")]
    )


# --- symmetry with BoltToGrpc ----------------------------------------------------------------


def test_grpc_to_bolt_to_grpc_keeps_path_message_and_metadata() -> None:
    call = anthunder_like_call("anthunder_aio__hello")
    again = BoltToGrpc.from_options(None).request(T.request(call))
    h2_valid_request(again)
    assert again.headers[":path"] == call.headers[":path"]
    assert bytes(again.body) == bytes(call.body)
    assert again.headers["grpc-timeout"] == "3000m"
    for key in ("uid", "rpc_trace_context.sofatraceid", "rpc_trace_context.sofarpcid"):
        assert again.headers[key] == call.headers[key]


# --- options ---------------------------------------------------------------------------------


def test_service_method_version_and_app_options() -> None:
    t = GrpcToBolt.from_options(
        {
            "services": {"pkg.v1.Greeter": "com.example.Greeter", "pkg.v2.G": "com.ex.G:2.0:blue"},
            "methods": {"SayHello": "sayHello"},
            "version": "1.1",
            "target_app": "greeter-app",
        }
    )
    h = t.request(grpc_call("/pkg.v1.Greeter/SayHello", prefixed(b""))).headers
    assert h["service"] == h["sofa_head_target_service"] == "com.example.Greeter:1.1"
    assert h["sofa_head_method_name"] == "sayHello"
    assert h["sofa_head_target_app"] == "greeter-app"
    h = t.request(grpc_call("/pkg.v2.G/Other", prefixed(b""))).headers
    assert h["service"] == "com.ex.G:2.0:blue" and h["sofa_head_method_name"] == "Other"
    h = t.request(grpc_call("/pkg.Unmapped/m", prefixed(b""))).headers
    assert h["service"] == "pkg.Unmapped:1.1"


def test_drop_headers_option() -> None:
    t = GrpcToBolt.from_options({"drop_headers": ["X-Secret"]})
    h = t.request(grpc_call(PATH, prefixed(b""), [("x-secret", "s"), ("x-ok", "1")])).headers
    assert "x-secret" not in h and h["x-ok"] == "1"


def test_option_errors_name_the_option() -> None:
    with pytest.raises(ConfigError) as info:
        GrpcToBolt.from_options(
            {
                "services": {"a:b": "c", "d": "bad name"},
                "methods": {"M": 3},
                "version": "1:0",
                "target_app": 5,
                "timeout": "soon",
                "timeuot": "1s",
            }
        )
    text = "\n".join(info.value.errors)
    for needle in (
        "services['a:b']",
        "services['d']",
        "methods['M']",
        "version",
        "target_app: expected a string",
        "timeout: expected a duration",
        "timeuot: unknown grpc->bolt option (did you mean 'timeout'?)",
    ):
        assert needle in text, text


@pytest.mark.parametrize("value", [-1, "-1s", float("nan"), True, "1d", 10**9])
def test_bad_timeouts(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^timeout: "):
        GrpcToBolt.from_options({"timeout": value})
