"""Hypothesis properties of the translators (``mosn_py/translate``):

- bolt->grpc->bolt: any Bolt request (random service, method, header map, content, timeout,
  v1/v2) either is refused with ``TranslationError`` or becomes a gRPC call h2 accepts, whose
  message is the content unchanged; any gRPC answer to it (well-formed or not) becomes a Bolt
  response our codec encodes and decodes, for the right request id. Nothing else is raised.
- grpc->bolt->grpc: any gRPC call is refused or becomes an encodable Bolt request; any Bolt
  response becomes a gRPC reply h2 accepts.
- HTTP: Bolt -> HTTP -> Bolt gives back the request's header map, content, timeout and
  codec, and the response exactly; random HTTP heads only ever raise ``TranslationError``.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosn_py.codecs.base import Frame, HeaderList, Role, StreamType
from mosn_py.codecs.bolt import BoltCodec, BoltExtra
from mosn_py.codecs.http1.codec import Http1Codec
from mosn_py.codecs.http2 import wire as h2wire
from mosn_py.codecs.http2.grpc import encode_grpc_message
from mosn_py.translate import (
    BoltToGrpc,
    BoltToHttp,
    GrpcToBolt,
    HttpToBolt,
    TranslationError,
)

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

B2G = BoltToGrpc.from_options(None)
G2B = GrpcToBolt.from_options(None)
H2B = HttpToBolt.from_options(None)
B2H = BoltToHttp.from_options(None)

ident = st.from_regex(
    r"[A-Za-z_$][A-Za-z0-9_$]{0,8}(\.[A-Za-z_][A-Za-z0-9_]{0,8}){0,3}", fullmatch=True
)
name_st = st.one_of(ident, st.text(max_size=12))
service_st = st.one_of(
    st.builds(lambda i, v: f"{i}:{v}", ident, st.sampled_from(["1.0", "2.0:blue"])),
    ident,
    st.text(max_size=20),
)
key_st = st.one_of(
    st.from_regex(r"[a-zA-Z][a-zA-Z0-9_.-]{0,15}", fullmatch=True),
    st.sampled_from(
        [
            "rpc_trace_context.sofaTraceId",
            "rpc_trace_context.sofaRpcId",
            "uid",
            "grpc-status",
            "te",
            "content-type",
            "x-bin",
            "method",
            "status",
            "codec",
            "timeout",
        ]
    ),
    st.text(max_size=10),
)
value_st = st.one_of(st.text(max_size=20), st.from_regex(r"[ -~]{0,20}", fullmatch=True))
headers_st = st.dictionaries(key_st, value_st, max_size=6)
content_st = st.binary(max_size=64)
timeout_st = st.one_of(st.sampled_from([-1, 0, 3000]), st.integers(-(2**31), 2**31 - 1))


@st.composite
def bolt_calls(draw: Any) -> Frame:
    """A Bolt request as a client's codec sends it and ours decodes it."""
    headers = dict(draw(headers_st))
    wellformed = draw(st.booleans())  # half of them as a SOFARPC protobuf client sends them
    if wellformed:
        headers["sofa_head_target_service"] = headers["service"] = draw(ident) + ":1.0"
        headers["sofa_head_method_name"] = draw(ident)
    else:
        if draw(st.booleans()):
            headers["sofa_head_target_service"] = draw(service_st)
        if draw(st.integers(0, 3)):
            headers["service"] = draw(service_st)
        if draw(st.integers(0, 3)):
            headers["sofa_head_method_name"] = draw(name_st)
    proto = draw(st.sampled_from([1, 2]))
    oneway = draw(st.integers(0, 4)) == 0
    extra = BoltExtra(
        proto=proto,
        ver1=draw(st.sampled_from([1, 2])) if proto == 2 else 1,
        type=2 if oneway else 1,
        codec=11 if wellformed else draw(st.sampled_from([11, 11, 11, 1, 12])),
        switch=draw(st.sampled_from([0, 1])) if proto == 2 else 0,
        class_name=b"com.alipay.sofa.rpc.core.request.SofaRequest",
    )
    frame = Frame(
        StreamType.ONEWAY if oneway else StreamType.REQUEST,
        draw(st.integers(0, 2**32 - 1)),
        headers,
        draw(content_st),
        0,
        draw(timeout_st),
        protocol="bolt",
        extra=extra,
    )
    codec = BoltCodec(Role.SERVER)
    codec.receive_data(b"".join(BoltCodec(Role.CLIENT).send(frame)))
    decoded = codec.next_event()
    assert isinstance(decoded, Frame)
    return decoded


def prefixed(message: bytes, flag: int = 0) -> bytes:
    return struct.pack(">BI", flag, len(message)) + message


@st.composite
def grpc_answers(draw: Any) -> Frame:
    """Whatever a gRPC upstream (or something pretending to be one) may answer."""
    kind = draw(st.integers(0, 2))
    if kind == 0:  # a unary success
        return Frame(
            StreamType.RESPONSE,
            1,
            HeaderList([(":status", "200"), ("content-type", "application/grpc")]),
            prefixed(draw(content_st)),
            200,
            trailers=HeaderList([("grpc-status", "0")]),
        )
    if kind == 1:  # a Trailers-Only error
        pairs = [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", str(draw(st.integers(1, 20)))),
            ("grpc-message", encode_grpc_message(draw(st.text(max_size=30)))),
        ]
        return Frame(StreamType.RESPONSE, 1, HeaderList(pairs), b"", 200)
    http_status = draw(st.sampled_from([200, 200, 200, 404, 503, 500]))
    status = draw(
        st.one_of(st.none(), st.sampled_from(["0", "0", "2", "4", "12", "14"]), st.text(max_size=4))
    )
    message = draw(
        st.one_of(
            st.none(),
            st.text(max_size=30).map(encode_grpc_message),
            st.from_regex(r"[ -~]{0,30}", fullmatch=True),
        )
    )
    body = draw(
        st.one_of(
            content_st.map(prefixed),
            st.tuples(content_st, content_st).map(lambda m: prefixed(m[0]) + prefixed(m[1])),
            content_st.map(lambda m: prefixed(m, flag=1)),
            st.binary(max_size=20),
        )
    )
    tail = []
    if status is not None:
        tail.append(("grpc-status", status))
    if message is not None:
        tail.append(("grpc-message", message))
    head = [(":status", str(http_status)), ("content-type", "application/grpc")]
    if draw(st.booleans()):  # Trailers-Only
        return Frame(StreamType.RESPONSE, 1, HeaderList(head + tail), b"", http_status)
    return Frame(
        StreamType.RESPONSE,
        1,
        HeaderList(head),
        body,
        http_status,
        trailers=HeaderList(tail) if tail else None,
    )


def roundtrip_bolt_response(frame: Frame) -> Frame:
    data = b"".join(BoltCodec(Role.SERVER).send(frame))
    codec = BoltCodec(Role.CLIENT)
    codec.receive_data(data)
    got = codec.next_event()
    assert isinstance(got, Frame)
    return got


@SETTINGS
@given(bolt_calls(), grpc_answers())
def test_bolt_grpc_bolt(call: Frame, answer: Frame) -> None:
    try:
        up = B2G.request(call)
    except TranslationError as e:
        assert e.message.startswith("bolt->grpc: ")
        return
    assert isinstance(up.headers, HeaderList)
    h2wire.encode_headers(up.headers, h2wire.REQUEST_HEAD)  # h2 would send it
    body = bytes(up.body)
    assert body == prefixed(bytes(call.body))
    assert up.stream_type is call.stream_type
    down = B2G.response(answer, call)
    got = roundtrip_bolt_response(down)
    assert got.request_id == call.request_id
    assert got.extra.proto == call.extra.proto and got.extra.switch == call.extra.switch
    if got.status == 0:
        assert answer.status == 200
        assert prefixed(bytes(got.body)) == bytes(answer.body)
    else:
        assert dict(got.headers) == {"sofa_head_response_error": "true"}
        assert got.body  # always says why


metadata_st = st.lists(
    st.tuples(
        st.one_of(st.from_regex(r"[a-z0-9_.-]{1,12}", fullmatch=True), st.text(max_size=8)),
        st.one_of(
            st.from_regex(r"[ -~]{0,12}", fullmatch=True),
            st.text(max_size=8).map(lambda t: t.encode().decode("latin-1")),
        ),
    ),
    max_size=6,
)
path_st = st.one_of(
    st.builds(lambda s, m: f"/{s}/{m}", ident, ident),
    st.text(max_size=20),
)


@SETTINGS
@given(
    path_st,
    metadata_st,
    st.one_of(content_st.map(prefixed), st.binary(max_size=20)),
    st.sampled_from(["application/grpc", "application/grpc+proto", "text/plain"]),
    st.integers(0, 2**40),
    st.integers(0, 0xFFFF),
    headers_st,
    content_st,
)
def test_grpc_bolt_grpc(
    path: str,
    metadata: list[tuple[str, str]],
    body: bytes,
    ctype: str,
    timeout: int,
    status: int,
    resp_headers: dict[str, str],
    resp_content: bytes,
) -> None:
    head = HeaderList(
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "a"),
            ("content-type", ctype),
            *metadata,
        ]
    )
    call = Frame(StreamType.REQUEST, 3, head, body, 0, timeout, protocol="http2")
    try:
        bolt = G2B.request(call)
    except TranslationError as e:
        assert e.message.startswith("grpc->bolt: ")
        return
    data = b"".join(BoltCodec(Role.CLIENT).send(bolt, 1))  # encodable
    codec = BoltCodec(Role.SERVER)
    codec.receive_data(data)
    back = codec.next_event()
    assert isinstance(back, Frame)
    assert prefixed(bytes(back.body)) == body
    assert 0 < back.timeout_ms <= 2**31 - 1
    answer = Frame(StreamType.RESPONSE, 1, resp_headers, resp_content, status, protocol="bolt")
    reply = G2B.response(answer, call)
    assert reply.request_id == 3
    assert isinstance(reply.headers, HeaderList)
    h2wire.encode_headers(reply.headers, h2wire.RESPONSE_HEAD)
    if reply.trailers is not None:
        h2wire.encode_headers(reply.trailers, h2wire.SERVER_TRAILERS)
        assert bytes(reply.body) == prefixed(resp_content)


http_key_st = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_.-]{0,12}", fullmatch=True),
    # Bolt keys that are HTTP plumbing as plain fields: fine behind the prefix
    st.sampled_from(["te", "host", "content-type", "connection", "content-length", "uid"]),
).filter(lambda k: k not in {"method", "codec", "timeout", "status"})
http_value_st = st.one_of(
    st.from_regex(r"[!-~]([ -~]{0,10}[!-~])?", fullmatch=True),
    st.text(alphabet=st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF), max_size=6),
    st.just(""),
)


@SETTINGS
@given(
    ident,
    st.one_of(st.none(), ident),
    st.dictionaries(http_key_st, http_value_st, max_size=6),
    content_st,
    timeout_st,
    st.sampled_from([11, 1, 12]),
    st.integers(0, 0x12),
    st.dictionaries(http_key_st, http_value_st, max_size=4),
    content_st,
)
def test_bolt_http_bolt_round_trip(
    iface: str,
    method: str | None,
    extra_headers: dict[str, str],
    content: bytes,
    timeout: int,
    codec: int,
    status: int,
    resp_headers: dict[str, str],
    resp_content: bytes,
) -> None:
    unique = f"{iface}:1.0"
    headers = {"sofa_head_target_service": unique, "service": unique}
    if method:
        headers["sofa_head_method_name"] = method
    headers.update(extra_headers)
    call = Frame(
        StreamType.REQUEST,
        9,
        headers,
        content,
        0,
        timeout,
        extra=BoltExtra(codec=codec, class_name=b"C"),
    )
    up = B2H.request(call)
    Http1Codec(Role.CLIENT).send(up)
    h2wire.encode_headers(up.headers, h2wire.REQUEST_HEAD)
    back = H2B.request(up)
    assert dict(back.headers) == headers
    assert (bytes(back.body), back.timeout_ms, back.extra.codec) == (content, timeout, codec)
    answer = Frame(StreamType.RESPONSE, 1, resp_headers, resp_content, status)
    reply = H2B.response(answer, up)
    h2wire.encode_headers(reply.headers, h2wire.RESPONSE_HEAD)
    again = B2H.response(reply, call)
    assert (again.status, dict(again.headers), bytes(again.body)) == (
        status,
        resp_headers,
        resp_content,
    )


@SETTINGS
@given(
    st.text(max_size=30),
    st.lists(
        st.tuples(st.from_regex(r"[a-z:][a-z0-9-]{0,14}", fullmatch=True), st.text(max_size=10)),
        max_size=6,
    ),
    content_st,
)
def test_http_to_bolt_raises_only_translation_errors(
    path: str, fields: list[tuple[str, str]], body: bytes
) -> None:
    head = HeaderList([(":method", "POST"), (":path", path), *fields])
    frame = Frame(StreamType.REQUEST, 1, head, body, protocol="http1")
    try:
        bolt = H2B.request(frame)
    except TranslationError as e:
        assert e.message.startswith("http1->bolt: ")
        return
    b"".join(BoltCodec(Role.CLIENT).send(bolt, 1))
