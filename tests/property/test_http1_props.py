"""Hypothesis properties of the HTTP/1.1 codec (STYLE 2.7):

- round trip, both directions: random request heads and bodies go CLIENT ``send()`` ->
  bytes -> SERVER ``receive_data()``; random responses (interim ones too) go SERVER ``send()``
  -> CLIENT; whatever the bytes are cut into, the decoded fields, bodies and trailers are the
  ones sent (chunking invariance), and the stream grammar holds;
- robustness (h11's fuzz invariant): random bytes, and golden vectors with octets flipped,
  inserted or dropped, only ever give events, NEED_DATA, CLOSED or ``RemoteProtocolError``;
  after an error the codec stays in ERROR.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosn_py.codecs.base import (
    NEED_DATA,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    ResetFrame,
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http1 import Http1Codec, RxState
from mosn_py.errors import RemoteProtocolError
from tests.unit.codecs.http1.vectors import VECTORS, request

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(SETTINGS, max_examples=1000)

TCHAR = "abcdefghijklmnopqrstuvwxyz0123456789-!#$%&'*+.^_`|~"
VCHAR = "".join(chr(c) for c in [*range(0x21, 0x7F), *range(0x80, 0x100)])
FRAMING = frozenset(("content-length", "transfer-encoding", "connection", "host", "upgrade"))

names = st.text(TCHAR, min_size=1, max_size=12).filter(lambda n: n not in FRAMING)
values = st.builds(
    lambda a, mid, b: a + mid + b if mid else a,
    st.text(VCHAR, min_size=1, max_size=4),
    st.text(VCHAR + " \t", max_size=16),
    st.text(VCHAR, min_size=1, max_size=2),
) | st.just("")
fields_st = st.lists(st.tuples(names, values), max_size=6)
paths = st.builds(lambda p: "/" + p, st.text("abcXYZ09-._~/?=&%", max_size=20))
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
pieces = st.lists(st.binary(min_size=0, max_size=64), max_size=4)
# body: ("none",) | ("whole", bytes) | ("length", [pieces]) | ("chunked", [pieces], trailers)
bodies = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("whole"), st.binary(min_size=1, max_size=200)),
    st.tuples(st.just("length"), pieces),
    st.tuples(st.just("chunked"), pieces, st.lists(st.tuples(names, values), max_size=3)),
)


def cuts(data: st.DataObject, wire: bytes) -> list[bytes]:
    """``wire`` in random pieces (whole, bytewise and everything between)."""
    points = sorted(data.draw(st.sets(st.integers(1, max(1, len(wire) - 1)), max_size=12)))
    out, last = [], 0
    for p in points:
        if p < len(wire):
            out.append(wire[last:p])
            last = p
    out.append(wire[last:])
    return out


def send_message(codec: Http1Codec, head: Frame, body: tuple[Any, ...]) -> bytes:
    """Send ``head`` with ``body`` (see ``bodies``); the wire octets."""
    out: list[bytes | memoryview] = []
    kind = body[0]
    rid = head.request_id
    if kind == "none":
        out += codec.send(head)
    elif kind == "whole":
        out += codec.send(head.evolve(body=body[1]))
    else:
        parts: list[bytes] = body[1]
        fields = head.headers
        if kind == "length":
            assert isinstance(fields, HeaderList)
            fields = fields.with_(("content-length", str(sum(map(len, parts)))))
        out += codec.send(head.evolve(headers=fields, end_stream=False))
        for part in parts:
            out += codec.send(DataFrame(rid, part, False))
        if kind == "chunked" and body[2]:
            out += codec.send(TrailersFrame(rid, HeaderList(body[2])))
        else:
            out += codec.send(DataFrame(rid, b"", True))
    return b"".join(bytes(b) for b in out)


def pull(codec: Http1Codec, chunks: list[bytes]) -> list[Any]:
    """Feed ``chunks`` one by one, pulling every event after each (and once up front)."""
    events: list[Any] = []
    for chunk in [b"", *chunks] if chunks else [b""]:
        if chunk:
            codec.receive_data(chunk)
        while (ev := codec.next_event()) is not NEED_DATA:
            events.append(ev)
    return events


def streams(events: list[Any]) -> dict[int, dict[str, Any]]:
    """Group events per stream, checking the grammar: interim* head data* [trailers]."""
    out: dict[int, dict[str, Any]] = {}
    for ev in events:
        if isinstance(ev, Frame):
            s = out.setdefault(ev.request_id, {"interim": [], "head": None, "body": b""})
            assert s["head"] is None, "two final heads on one stream"
            assert isinstance(ev.headers, HeaderList)
            if ev.extra.interim:
                s["interim"].append(ev)
            else:
                s["head"] = ev
                s["ended"] = ev.end_stream
        elif isinstance(ev, DataFrame):
            s = out[ev.stream_id]
            assert s["head"] is not None and not s["ended"], "data outside a message"
            assert isinstance(ev.data, bytes)
            s["body"] += ev.data
            s["ended"] = ev.end_stream
        elif isinstance(ev, TrailersFrame):
            s = out[ev.stream_id]
            assert s["head"] is not None and not s["ended"]
            s["trailers"] = ev.trailers.items_all()
            s["ended"] = True
        else:
            raise AssertionError(f"unexpected {ev!r}")
    return out


def expected_body(body: tuple[Any, ...]) -> bytes:
    if body[0] == "none":
        return b""
    if body[0] == "whole":
        return bytes(body[1])
    return b"".join(body[1])


def check_framing(head: Frame, body: tuple[Any, ...], no_body: bool = False) -> None:
    fields = head.headers
    kind = body[0]
    if kind == "chunked" and not no_body:
        assert fields.get("transfer-encoding") == "chunked" and "content-length" not in fields
    elif kind in ("whole", "length") and not no_body:
        assert fields.get("content-length") == str(len(expected_body(body)))


# --- round trips ------------------------------------------------------------------------------


@SETTINGS
@given(
    st.lists(st.tuples(methods, paths, fields_st, bodies), min_size=1, max_size=3),
    st.data(),
)
def test_requests_round_trip(reqs: list[tuple[Any, ...]], data: st.DataObject) -> None:
    client = Http1Codec(Role.CLIENT)
    wire = b""
    for i, (method, path, fields, body) in enumerate(reqs, 1):
        head = request(method, path, *fields, rid=i)
        wire += send_message(client, head, body)
    server = Http1Codec(Role.SERVER)
    got = streams(pull(server, cuts(data, wire)))
    assert sorted(got) == list(range(1, len(reqs) + 1))
    for i, (method, path, fields, body) in enumerate(reqs, 1):
        s = got[i]
        head = s["head"]
        assert s["ended"] and not s["interim"]
        plain = [kv for kv in head.headers.items_all() if kv[0] not in FRAMING]
        pseudo = [(":method", method), (":scheme", "http"), (":authority", "a"), (":path", path)]
        assert plain == pseudo + list(fields)
        assert s["body"] == expected_body(body)
        assert s.get("trailers", ()) == tuple(body[2] if body[0] == "chunked" else ())
        assert head.end_stream is (body[0] != "chunked" and not expected_body(body))
        check_framing(head, body)
    assert server.pending == len(reqs) and server.state is RxState.HEAD


statuses = st.sampled_from([200, 201, 204, 206, 301, 304, 400, 404, 418, 500, 503, 599])
interims = st.lists(st.sampled_from([100, 102, 103]), max_size=2)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["GET", "HEAD", "POST"]), interims, statuses, fields_st, bodies),
        min_size=1,
        max_size=3,
    ),
    st.data(),
)
def test_responses_round_trip(exchanges: list[tuple[Any, ...]], data: st.DataObject) -> None:
    client = Http1Codec(Role.CLIENT)
    server = Http1Codec(Role.SERVER)
    for i, (method, *_rest) in enumerate(exchanges, 1):
        server.receive_data(b"".join(bytes(b) for b in client.send(request(method, rid=i))))
    assert len(pull(server, [])) == len(exchanges)
    wire = b""
    for i, (method, early, status, fields, body) in enumerate(exchanges, 1):
        for code in early:
            wire += b"".join(
                bytes(b) for b in server.send(Frame(StreamType.RESPONSE, i, {}, status=code))
            )
        no_body = method == "HEAD" or status in (204, 304)
        if status in (204, 304) and body[0] != "none":
            body = ("none",)
        head = Frame(StreamType.RESPONSE, i, HeaderList([(":status", str(status)), *fields]))
        wire += send_message(server, head, body)
    assert server.pending == 0 and not server.must_close
    got = streams(pull(client, cuts(data, wire)))
    for i, (method, early, status, fields, body) in enumerate(exchanges, 1):
        s = got[i]
        assert [f.status for f in s["interim"]] == early
        head = s["head"]
        assert head.status == status and s["ended"]
        assert [kv for kv in head.headers.items_all() if kv[0] not in FRAMING] == [
            (":status", str(status)),
            *fields,
        ]
        no_body = method == "HEAD" or status in (204, 304)
        assert s["body"] == (b"" if no_body else expected_body(body))
        if not no_body:
            trailers = body[2] if body[0] == "chunked" else ()
            assert s.get("trailers", ()) == tuple(trailers)
            check_framing(head, body)
    assert client.pending == 0 and client.is_idle


# --- robustness -------------------------------------------------------------------------------

ALLOWED = (Frame, DataFrame, TrailersFrame, ResetFrame)


def survive(codec: Http1Codec, chunks: list[bytes], eof: bool) -> None:
    """Only events, NEED_DATA, CLOSED or RemoteProtocolError; ERROR is for good."""
    try:
        for chunk in [*chunks, *([b""] if eof else [])]:
            codec.receive_data(chunk)
            while (ev := codec.next_event()) is not NEED_DATA:
                if ev is ConnectionEvent.CLOSED:
                    assert codec.next_event() is ConnectionEvent.CLOSED
                    return
                assert isinstance(ev, ALLOWED), ev
                if isinstance(ev, DataFrame):
                    assert isinstance(ev.data, bytes)
    except RemoteProtocolError as err:
        assert codec.state is RxState.ERROR
        assert err.wire_code in (400, 413, 431, 502, 505)
        try:
            codec.next_event()
        except RemoteProtocolError:
            return
        raise AssertionError("ERROR did not stick") from None


def codec_for(role: Role) -> Http1Codec:
    if role is Role.SERVER:
        return Http1Codec(Role.SERVER)
    codec = Http1Codec(Role.CLIENT)
    for i, method in enumerate(["GET", "HEAD", "CONNECT"], 1):
        if method == "CONNECT":
            codec.send(
                Frame(
                    StreamType.REQUEST,
                    i,
                    HeaderList([(":method", "CONNECT"), (":authority", "a:1")]),
                )
            )
        else:
            codec.send(request(method, rid=i))
    return codec


@FUZZ
@given(
    st.sampled_from([Role.SERVER, Role.CLIENT]),
    st.lists(st.binary(max_size=64), max_size=6),
    st.booleans(),
)
def test_random_bytes(role: Role, chunks: list[bytes], eof: bool) -> None:
    survive(codec_for(role), chunks, eof)


@st.composite
def mutated(draw: Any) -> tuple[Role, bytes, list[Frame]]:
    v = draw(st.sampled_from(VECTORS))
    wire = bytearray(v.wire)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        i = draw(st.integers(0, max(0, len(wire) - 1)))
        if op == "flip" and wire:
            wire[i] = draw(st.sampled_from([0, 9, 10, 13, 32, 58, 48, 0x7F, 0xFF, wire[i] ^ 0x20]))
        elif op == "insert":
            wire[i:i] = draw(
                st.sampled_from([b"\r\n", b" ", b":", b"0", b";", b"\n", b"\x00", b"a"])
            )
        elif op == "delete" and wire:
            del wire[i : i + draw(st.integers(1, 4))]
        else:
            wire[i:i] = wire[i : i + draw(st.integers(1, 16))]
    return v.role, bytes(wire), list(v.sent)


@FUZZ
@given(mutated(), st.data(), st.booleans())
def test_mutated_vectors(
    case: tuple[Role, bytes, list[Frame]], data: st.DataObject, eof: bool
) -> None:
    role, wire, sent = case
    codec = Http1Codec(role)
    for i, frame in enumerate(sent, 1):
        codec.send(frame, frame.request_id or i)
    survive(codec, cuts(data, wire), eof)
