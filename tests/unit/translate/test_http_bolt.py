"""``HttpToBolt`` / ``BoltToHttp``: the x-mosn-bolt-* convention, both directions, and the
round trips it promises (Bolt -> HTTP -> Bolt exact; HTTP -> Bolt -> HTTP keeps path, body
and status)."""

from __future__ import annotations

import pytest

from mosn_py.codecs.base import Frame, HeaderList, Role, StreamType
from mosn_py.codecs.bolt import BoltExtra, RespStatus
from mosn_py.codecs.http1.codec import Http1Codec
from mosn_py.codecs.http2 import Http2Codec
from mosn_py.errors import ConfigError, ProxyStatus
from mosn_py.translate import (
    AnyHttpToBolt,
    BoltToHttp,
    BoltToHttp2,
    Http2ToBolt,
    HttpToBolt,
    TranslationError,
)
from mosn_py.translate.http_bolt import bolt_status_for_http, http_status_for_bolt
from tests.unit.codecs.bolt.vectors import vector

from .helpers import (
    PB_CALLS,
    SERVICE_IFACE,
    SERVICE_UNIQUE,
    bolt_parse,
    bolt_wire,
    decoded,
    h2_valid_request,
    h2_valid_response,
    pseudo_first,
)

H2B = HttpToBolt.from_options(None)
B2H = BoltToHttp.from_options(None)


def http_request(
    path: str = f"/{SERVICE_IFACE}/hello",
    fields: list[tuple[str, str]] | None = None,
    body: bytes = b"\x0a\x01x",
    *,
    method: str = "POST",
    protocol: str = "http1",
    request_id: int = 1,
) -> Frame:
    pairs = [
        (":method", method),
        (":scheme", "http"),
        (":authority", "gw.example"),
        (":path", path),
        *(fields or []),
    ]
    return Frame(
        StreamType.REQUEST, request_id, HeaderList(pairs), body, end_stream=True, protocol=protocol
    )


def http_response(
    code: int, fields: list[tuple[str, str]] | None = None, body: bytes = b""
) -> Frame:
    pairs = [(":status", str(code)), *(fields or [])]
    return Frame(StreamType.RESPONSE, 1, HeaderList(pairs), body, code, protocol="http1")


def bolt_response(status: int, headers: dict[str, str], content: bytes = b"") -> Frame:
    return Frame(StreamType.RESPONSE, 9, headers, content, status, protocol="bolt")


def refused(t: HttpToBolt, frame: Frame) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        t.request(frame)
    return info.value


# --- HTTP -> Bolt requests -------------------------------------------------------------------


def test_path_gives_service_and_method() -> None:
    bolt = H2B.request(http_request(fields=[("content-type", "application/x-protobuf")]))
    assert dict(bolt.headers) == {
        "sofa_head_target_service": SERVICE_UNIQUE,
        "sofa_head_method_name": "hello",
        "service": SERVICE_UNIQUE,
    }
    assert bytes(bolt.body) == b"\x0a\x01x"
    assert (bolt.timeout_ms, bolt.request_id, bolt.protocol) == (3000, 0, "bolt")
    assert bolt.extra == BoltExtra(
        1, 1, 1, 1, 1, 11, 0, b"com.alipay.sofa.rpc.core.request.SofaRequest"
    )
    bolt_wire(bolt, Role.CLIENT, 5)  # encodable


def test_query_is_ignored_and_segments_are_percent_decoded() -> None:
    bolt = H2B.request(http_request("/com.Outer%24Inner:2.0/h%C3%A9llo?x=1"))
    assert bolt.headers["service"] == "com.Outer$Inner:2.0"
    assert bolt.headers["sofa_head_method_name"] == "héllo"


def test_fields_override_the_path() -> None:
    fields = [("x-mosn-bolt-service", "a.B:3.0"), ("x-mosn-bolt-method", "m")]
    bolt = H2B.request(http_request("/", fields))
    assert bolt.headers["service"] == bolt.headers["sofa_head_target_service"] == "a.B:3.0"
    assert bolt.headers["sofa_head_method_name"] == "m"
    bolt = H2B.request(http_request("/a.B/m2", [("x-mosn-bolt-service", "c.D")]))
    assert (bolt.headers["service"], bolt.headers["sofa_head_method_name"]) == ("c.D:1.0", "m2")


def test_method_is_optional() -> None:
    bolt = H2B.request(http_request("/a.B", [("x-mosn-bolt-codec", "hessian2")]))
    assert "sofa_head_method_name" not in bolt.headers
    assert bolt.extra.codec == 1


@pytest.mark.parametrize("path", ["/", "", "/a/b/c", "//m", "/:1.0/m"])
def test_unusable_paths_are_404(path: str) -> None:
    err = refused(H2B, http_request(path))
    assert err.status is ProxyStatus.ROUTE_NOT_FOUND


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("x-mosn-bolt-codec", "protobuf", 11),
        ("x-mosn-bolt-codec", "HESSIAN2", 1),
        ("x-mosn-bolt-codec", "12", 12),
        ("x-mosn-bolt-timeout", "-1", -1),
        ("x-mosn-bolt-timeout", " 250 ", 250),
    ],
)
def test_codec_and_timeout_fields(field: str, value: str, expected: int) -> None:
    bolt = H2B.request(http_request(fields=[(field, value)]))
    got = bolt.extra.codec if field.endswith("codec") else bolt.timeout_ms
    assert got == expected
    assert field[12:] not in bolt.headers


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("x-mosn-bolt-codec", "xml"),
        ("x-mosn-bolt-codec", "256"),
        ("x-mosn-bolt-timeout", "3s"),
        ("x-mosn-bolt-timeout", "99999999999"),
    ],
)
def test_bad_codec_or_timeout_is_400(field: str, value: str) -> None:
    err = refused(H2B, http_request(fields=[(field, value)]))
    assert err.status is ProxyStatus.CODEC_ERROR and field in err.message


def test_header_fields() -> None:
    fields = [
        ("x-mosn-bolt-rpc_trace_context.sofatraceid", "0a0b"),
        ("x-mosn-bolt-biz", "1"),
        ("x-mosn-bolt-biz", "2"),
        ("x-mosn-bolt-sofa_head_target_app", "app"),
        ("x-mosn-bolt-status", "0"),
        ("user-agent", "curl/8"),
        ("x-mosn-bolt-utf8", "h\xc3\xa9"),
        ("x-mosn-bolt-content-type", "a Bolt key, not the HTTP field"),
        ("x-mosn-bolt-te", "x"),
        ("biz", "plain loses to prefixed"),
        ("service", "plain never overrides"),
        ("content-type", "application/octet-stream"),
        ("content-length", "3"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "gone"),
        ("te", "trailers"),
        ("keep-alive", "5"),
    ]
    bolt = H2B.request(http_request(fields=fields))
    assert dict(bolt.headers) == {
        "sofa_head_target_service": SERVICE_UNIQUE,
        "sofa_head_method_name": "hello",
        "service": SERVICE_UNIQUE,
        "rpc_trace_context.sofaTraceId": "0a0b",
        "biz": "1, 2",
        "sofa_head_target_app": "app",
        "user-agent": "curl/8",
        "utf8": "hé",
        "content-type": "a Bolt key, not the HTTP field",
        "te": "x",
    }


def test_plain_headers_option_and_drop_headers() -> None:
    t = HttpToBolt.from_options({"plain_headers": False, "drop_headers": ["x-mosn-bolt-x"]})
    bolt = t.request(http_request(fields=[("user-agent", "curl/8"), ("x-mosn-bolt-y", "1")]))
    assert "user-agent" not in bolt.headers and bolt.headers["y"] == "1"
    t = HttpToBolt.from_options({"drop_headers": ["user-agent", "y"]})
    bolt = t.request(http_request(fields=[("user-agent", "curl/8"), ("x-mosn-bolt-y", "1")]))
    assert "user-agent" not in bolt.headers and "y" not in bolt.headers


def test_options() -> None:
    t = HttpToBolt.from_options(
        {
            "version": "2.0",
            "codec": "json",
            "timeout": "500ms",
            "target_app": "backend",
            "path_prefix": "/rpc/",
            "content_type": "application/x-protobuf",
        }
    )
    bolt = t.request(http_request("/rpc/a.B/m"))
    assert (
        bolt.headers["service"] == "a.B:2.0" and bolt.headers["sofa_head_target_app"] == "backend"
    )
    assert (bolt.extra.codec, bolt.timeout_ms) == (12, 500)
    assert refused(t, http_request("/other/a.B/m")).status is ProxyStatus.ROUTE_NOT_FOUND
    assert refused(t, http_request("/rpcx/a.B/m")).status is ProxyStatus.ROUTE_NOT_FOUND
    reply = t.response(bolt_response(0, {}), http_request())
    assert reply.headers["content-type"] == "application/x-protobuf"
    assert HttpToBolt.from_options({"codec": 1}).request(http_request()).extra.codec == 1
    assert HttpToBolt.from_options({"timeout": 0}).request(http_request()).timeout_ms == -1


def test_option_errors() -> None:
    with pytest.raises(ConfigError) as info:
        HttpToBolt.from_options(
            {
                "codec": "xml",
                "path_prefix": "rpc",
                "content_type": "nope",
                "plain_headers": 1,
                "version": "",
                "versoin": "1",
            }
        )
    text = "\n".join(info.value.errors)
    for needle in (
        "codec",
        "path_prefix",
        "content_type",
        "plain_headers",
        "version",
        "versoin: unknown http1->bolt option (did you mean 'version'?)",
    ):
        assert needle in text, text
    with pytest.raises(ConfigError, match=r"^codec: "):
        HttpToBolt.from_options({"codec": True})
    with pytest.raises(ConfigError, match=r"^authority: "):
        BoltToHttp.from_options({"authority": "a b"})
    with pytest.raises(ConfigError, match="unknown bolt->http2 option"):
        BoltToHttp2.from_options({"timeout": "1s"})


# --- Bolt -> HTTP responses (HttpToBolt.response) ----------------------------------------------


def test_ok_response() -> None:
    reply = H2B.response(
        bolt_response(0, {"sofa_head_response_error": "false", "Biz.Code": "7"}, b"\x08\x01"),
        http_request(protocol="http2", request_id=3),
    )
    assert reply.headers == HeaderList(
        [
            (":status", "200"),
            ("content-type", "application/octet-stream"),
            ("x-mosn-bolt-status", "0"),
            ("x-mosn-bolt-sofa_head_response_error", "false"),
            ("x-mosn-bolt-biz.code", "7"),
        ]
    )
    assert (reply.status, bytes(reply.body), reply.request_id) == (200, b"\x08\x01", 3)
    assert reply.protocol == "http2" and reply.end_stream
    h2_valid_response(reply)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (1, 500),
        (2, 500),
        (3, 500),
        (4, 503),
        (5, 502),
        (6, 404),
        (7, 504),
        (8, 502),
        (9, 502),
        (0x10, 502),
        (0x11, 500),
        (0x12, 400),
        (0x13, 500),
    ],
)
def test_error_status_table(status: int, code: int) -> None:
    assert http_status_for_bolt(status) == code
    reply = H2B.response(bolt_response(status, {}, b"boom"), http_request())
    assert (reply.status, reply.headers[":status"]) == (code, str(code))
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["x-mosn-bolt-status"] == str(status)
    assert bytes(reply.body) == b"boom"


def test_java_style_error_and_binary_error_content() -> None:
    reply = H2B.response(
        bolt_response(0, {"sofa_head_response_error": "true"}, b"\xff\xfe"), http_request()
    )
    assert reply.status == 500
    assert reply.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize("capture", ["sofaboltnode_pb__fail", "anthunder__no_processor"])
def test_captured_errors(capture: str) -> None:
    real = vector(capture, "response")
    reply = H2B.response(decoded(capture, "response"), http_request())
    assert reply.status == http_status_for_bolt(real.status)
    assert bytes(reply.body) == real.content


def test_response_header_names_that_cannot_travel_are_dropped() -> None:
    reply = H2B.response(
        bolt_response(0, {"bad key": "1", "status": "x", "ok": "a\nb", "pad": " v "}),
        http_request(),
    )
    assert [k for k, _ in reply.headers.items_all()][3:] == ["x-mosn-bolt-pad"]  # type: ignore[attr-defined]
    assert reply.headers["x-mosn-bolt-pad"] == "v"


# --- Bolt -> HTTP requests (BoltToHttp) ------------------------------------------------------


@pytest.mark.parametrize("capture", PB_CALLS)
def test_captured_call_becomes_an_http_request(capture: str) -> None:
    real = vector(capture, "request")
    up = B2H.request(decoded(capture, "request"))
    h = up.headers
    assert isinstance(h, HeaderList) and pseudo_first(h)
    method = real.headers["sofa_head_method_name"]
    assert (h[":method"], h[":scheme"]) == ("POST", "http")
    assert h[":path"] == f"/{SERVICE_IFACE}/{method}"
    assert h[":authority"] == SERVICE_IFACE
    assert h["content-type"] == "application/octet-stream"
    assert (h["x-mosn-bolt-codec"], h["x-mosn-bolt-timeout"]) == ("11", "3000")
    for k, v in real.header_pairs:
        assert h["x-mosn-bolt-" + k.lower()] == v
    assert bytes(up.body) == real.content
    assert (up.protocol, up.request_id, up.timeout_ms, up.end_stream) == ("http1", 0, 3000, True)
    Http1Codec(Role.CLIENT).send(up)  # both codecs accept it as is
    h2 = Http2Codec(Role.CLIENT)
    h2.initiate()
    h2.send(BoltToHttp2.from_options(None).request(decoded(capture, "request")))
    h2_valid_request(up)


def test_hessian2_call_has_no_method_segment() -> None:
    up = B2H.request(decoded("sofaboltnode_hessian2__hello", "request"))
    assert up.headers[":path"] == f"/{SERVICE_IFACE}"
    assert up.headers["x-mosn-bolt-codec"] == "1"


def test_bolt_to_http_options_and_escaping() -> None:
    t = BoltToHttp.from_options(
        {
            "authority": "api.internal:8080",
            "content_type": "application/x-protobuf",
            "path_prefix": "/rpc",
            "drop_headers": ["uid"],
        }
    )
    frame = Frame(
        StreamType.ONEWAY,
        1,
        {
            "service": "com.A$B:1.0",
            "sofa_head_method_name": "gét",
            "uid": "u",
            "codec": "x",
            "Bad Key": "v",
            "ok": "é",
        },
        b"",
        timeout_ms=-1,
        extra=BoltExtra(type=2),
    )
    up = t.request(frame)
    assert up.headers[":path"] == "/rpc/com.A$B/g%C3%A9t"
    assert up.headers[":authority"] == "api.internal:8080"
    assert up.headers["content-type"] == "application/x-protobuf"
    assert up.headers["x-mosn-bolt-timeout"] == "-1" and up.timeout_ms == 0
    assert up.headers["x-mosn-bolt-ok"] == "\xc3\xa9"  # UTF-8 octets, latin-1 str
    assert "x-mosn-bolt-uid" not in up.headers and up.headers["x-mosn-bolt-codec"] == "11"
    assert up.stream_type is StreamType.ONEWAY
    Http1Codec(Role.CLIENT).send(up)


def test_bolt_to_http_refusals() -> None:
    for frame in (
        decoded("anthunder__heartbeat", "request"),
        Frame(StreamType.REQUEST, 1, {"sofa_head_method_name": "m"}, b""),
        Frame(StreamType.REQUEST, 1, {"service": ":1.0"}, b""),
    ):
        with pytest.raises(TranslationError) as info:
            B2H.request(frame)
        assert info.value.status is ProxyStatus.CODEC_ERROR


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (200, 0),
        (204, 0),
        (404, 6),
        (503, 4),
        (429, 4),
        (504, 7),
        (408, 7),
        (502, 5),
        (500, 2),
        (400, 2),
        (302, 2),
        (418, 2),
    ],
)
def test_http_status_to_bolt(code: int, status: int) -> None:
    assert bolt_status_for_http(code) == status
    request = decoded("anthunder_aio__hello", "request")
    down = B2H.response(http_response(code, [("server", "x")], b"text"), request)
    assert (down.status, bytes(down.body), down.request_id) == (status, b"text", request.request_id)
    assert dict(down.headers) == ({} if status == 0 else {"sofa_head_response_error": "true"})
    bolt_parse(bolt_wire(down), Role.CLIENT)


def test_status_field_and_prefixed_fields_win() -> None:
    request = decoded("sofaboltnode_pb_bolt2crc__hello", "request")
    down = B2H.response(
        http_response(
            500,
            [
                ("x-mosn-bolt-status", "3"),
                ("x-mosn-bolt-rpc_trace_context.sofarpcid", "1.1"),
                ("x-mosn-bolt-x", "a"),
            ],
        ),
        request,
    )
    assert down.status == 3 and dict(down.headers) == {
        "rpc_trace_context.sofaRpcId": "1.1",
        "x": "a",
    }
    got = bolt_parse(bolt_wire(down), Role.CLIENT)
    assert got.extra.has_crc  # v2 CRC call, v2 CRC answer


@pytest.mark.parametrize("value", ["abc", "70000", "-1"])
def test_bad_status_field_falls_back_to_the_http_status(value: str) -> None:
    down = B2H.response(
        http_response(404, [("x-mosn-bolt-status", value)]),
        decoded("anthunder_aio__hello", "request"),
    )
    assert down.status == RespStatus.NO_PROCESSOR


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("capture", PB_CALLS)
def test_bolt_http_bolt_request_round_trip_is_exact(capture: str) -> None:
    original = decoded(capture, "request")
    for b2h, h2b in ((B2H, H2B), (BoltToHttp2.from_options(None), Http2ToBolt.from_options(None))):
        back = h2b.request(b2h.request(original))
        assert dict(back.headers) == dict(original.headers)
        assert bytes(back.body) == bytes(original.body)
        assert (back.timeout_ms, back.extra.codec) == (original.timeout_ms, original.extra.codec)


@pytest.mark.parametrize(
    "capture",
    [c for c in PB_CALLS if "bolt2crc" not in c],
)
def test_bolt_http_bolt_response_round_trip_is_byte_exact(capture: str) -> None:
    request = decoded(capture, "request")
    real = vector(capture, "response")
    http_reply = H2B.response(decoded(capture, "response"), B2H.request(request))
    back = B2H.response(http_reply, request)
    assert bolt_wire(back) == real.wire


def test_http_bolt_http_round_trip() -> None:
    request = http_request(fields=[("x-mosn-bolt-k", "v"), ("x-trace", "t")], body=b"payload")
    up = B2H.request(H2B.request(request))
    assert up.headers[":path"] == request.headers[":path"]
    assert bytes(up.body) == b"payload"
    assert up.headers["x-mosn-bolt-k"] == "v" and up.headers["x-mosn-bolt-x-trace"] == "t"
    for code in (200, 404, 500, 502, 503, 504):
        bolt = B2H.response(http_response(code, body=b"r"), H2B.request(request))
        back = H2B.response(bolt, request)
        assert (back.status, bytes(back.body)) == (code, b"r")


def test_every_http_listener_flavour_answers_in_its_own_protocol() -> None:
    for cls, proto in ((HttpToBolt, "http1"), (Http2ToBolt, "http2"), (AnyHttpToBolt, "http2")):
        t = cls.from_options(None)
        reply = t.response(bolt_response(0, {}), http_request(protocol=proto))
        assert reply.protocol == proto
