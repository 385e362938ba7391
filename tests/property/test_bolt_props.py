"""Hypothesis properties of the Bolt codec (STYLE 2.7):

- round trip: any legal frame -> send -> receive gives the same fields, and re-sending the
  decoded frame (raw fast path or from fields) gives the same bytes;
- chunking invariance: any split of a multi-frame stream gives the same frames;
- robustness (h11's fuzz invariant): arbitrary or mutated bytes only ever give frames,
  NEED_DATA, CLOSED or RemoteProtocolError, and after an error the codec stays in ERROR.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Frame, Role, StreamType
from mosn_py.codecs.bolt import ZERO_COPY_THRESHOLD, BoltCodec, BoltExtra, CodecState
from mosn_py.errors import RemoteProtocolError
from tests.unit.codecs.bolt.vectors import VECTORS

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(2**31), 2**31 - 1)
text = st.text(max_size=12)
headers_st = st.dictionaries(text, text, max_size=5)
body_st = st.binary(max_size=200)
class_st = st.binary(max_size=50)


@st.composite
def frames(draw: Any, *, response: bool) -> Frame:
    proto = draw(st.sampled_from([1, 2]))
    heartbeat = draw(st.booleans())
    if response:
        stream_type = StreamType.RESPONSE
        typ, cmdcode = 0, 0 if heartbeat else 2
    else:
        stream_type = (
            StreamType.REQUEST
            if heartbeat
            else draw(st.sampled_from([StreamType.REQUEST, StreamType.ONEWAY]))
        )
        typ = 1 if stream_type is StreamType.REQUEST else 2
        cmdcode = 0 if heartbeat else 1
    extra = BoltExtra(
        proto=proto,
        ver1=draw(u8) if proto == 2 else 1,
        type=typ,
        cmdcode=cmdcode,
        ver2=draw(u8),
        codec=draw(u8),
        switch=draw(u8) if proto == 2 else 0,
        class_name=draw(class_st),
    )
    return Frame(
        stream_type,
        draw(u32),
        draw(headers_st),
        draw(body_st),
        status=draw(u16) if response else 0,
        timeout_ms=0 if response else draw(i32),
        is_heartbeat=heartbeat,
        protocol="bolt",
        extra=extra,
    )


any_frames = st.booleans().flatmap(lambda r: st.tuples(st.just(r), frames(response=r)))


def roles(response: bool) -> tuple[Role, Role]:
    """(sender, receiver)."""
    return (Role.SERVER, Role.CLIENT) if response else (Role.CLIENT, Role.SERVER)


def wire(role: Role, frame: Frame) -> bytes:
    return b"".join(BoltCodec(role).send(frame))


def fields(frame: Frame) -> tuple[Any, ...]:
    return (
        frame.stream_type,
        frame.request_id,
        list(frame.headers.items()),
        bytes(frame.body),
        frame.status,
        frame.timeout_ms,
        frame.is_heartbeat,
        frame.extra,
    )


def pull_all(codec: BoltCodec) -> list[Any]:
    out = []
    while (ev := codec.next_event()) is not NEED_DATA:
        out.append(ev)
        if ev is ConnectionEvent.CLOSED:
            break
    return out


@SETTINGS
@given(any_frames)
def test_round_trip(case: tuple[bool, Frame]) -> None:
    response, frame = case
    sender, receiver = roles(response)
    data = wire(sender, frame)
    codec = BoltCodec(receiver)
    codec.receive_data(data)
    got = codec.next_event()
    assert isinstance(got, Frame)
    assert fields(got) == fields(frame)
    assert got.raw == data
    assert codec.next_event() is NEED_DATA
    assert wire(sender, got) == data  # raw fast path
    assert wire(sender, got.evolve(raw=None)) == data  # from fields


@settings(max_examples=20, deadline=None)
@given(
    st.booleans(),
    st.sampled_from([1, 2]),
    st.integers(ZERO_COPY_THRESHOLD - 30, ZERO_COPY_THRESHOLD + 30),
    u32,
)
def test_round_trip_big(response: bool, proto: int, size: int, new_id: int) -> None:
    """Around the zero-copy threshold, for both the patch and the field encoder."""
    sender, receiver = roles(response)
    extra = BoltExtra(proto=proto, ver1=2, switch=1 if proto == 2 else 0, class_name=b"C")
    frame = Frame(
        StreamType.RESPONSE if response else StreamType.REQUEST,
        7,
        {"k": "v"},
        bytes(range(256)) * (size // 256) + bytes(size % 256),
        extra=extra,
    )
    data = wire(sender, frame)
    codec = BoltCodec(receiver)
    codec.receive_data(data)
    got = codec.next_event()
    assert isinstance(got, Frame) and fields(got)[1:4] == fields(frame)[1:4]
    codec.receive_data(wire(sender, got.with_request_id(new_id)))
    again = codec.next_event()
    assert isinstance(again, Frame) and again.request_id == new_id and again.body == frame.body


@SETTINGS
@given(any_frames, u32)
def test_request_id_patch(case: tuple[bool, Frame], new_id: int) -> None:
    response, frame = case
    sender, receiver = roles(response)
    codec = BoltCodec(receiver)
    codec.receive_data(wire(sender, frame))
    got = codec.next_event()
    assert isinstance(got, Frame)
    patched = wire(sender, got.with_request_id(new_id))
    assert patched == wire(sender, frame.evolve(request_id=new_id))
    codec.receive_data(patched)
    again = codec.next_event()
    assert isinstance(again, Frame) and again.request_id == new_id
    assert fields(again)[2:] == fields(frame)[2:]


@SETTINGS
@given(
    st.booleans().flatmap(
        lambda r: st.tuples(st.just(r), st.lists(frames(response=r), min_size=1, max_size=5))
    ),
    st.lists(st.integers(0, 10_000), max_size=8),
)
def test_chunking_invariance(case: tuple[bool, list[Frame]], cuts: list[int]) -> None:
    response, batch = case
    sender, receiver = roles(response)
    stream = b"".join(wire(sender, f) for f in batch)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    codec = BoltCodec(receiver)
    events: list[Any] = []
    for a, b in itertools.pairwise(points):
        if a != b:
            codec.receive_data(stream[a:b])
            events += pull_all(codec)
    codec.receive_data(b"")
    events += pull_all(codec)
    assert events[-1] is ConnectionEvent.CLOSED
    assert [fields(e) for e in events[:-1]] == [fields(f) for f in batch]


def check_robust(role: Role, chunks: list[bytes]) -> None:
    """Only frames, NEED_DATA, CLOSED or RemoteProtocolError; ERROR is final."""
    codec = BoltCodec(role)
    for chunk in [*chunks, b""]:
        codec.receive_data(chunk)
        try:
            while True:
                ev = codec.next_event()
                if ev is NEED_DATA or ev is ConnectionEvent.CLOSED:
                    break
                assert isinstance(ev, Frame)
                assert isinstance(ev.raw, bytes) and ev.raw[0] in (1, 2)
                want_response = role is Role.CLIENT
                assert (ev.stream_type is StreamType.RESPONSE) is want_response
        except RemoteProtocolError as exc:
            assert exc.protocol == "bolt"
            assert codec.state is CodecState.ERROR
            for _ in range(2):
                try:
                    codec.next_event()
                except RemoteProtocolError:
                    pass
                else:  # pragma: no cover
                    raise AssertionError("codec left the ERROR state")
            return
    assert codec.next_event() is ConnectionEvent.CLOSED


# Bolt-looking starts make random bytes get past the first checks.
prefixes = st.sampled_from(
    [
        b"",
        b"\x01\x01\x00\x01\x01",
        b"\x01\x01\x00\x00\x01",
        b"\x01\x02\x00\x01\x01",
        b"\x01\x00\x00\x02\x01",
        b"\x01\x00\x00\x00\x01",
        b"\x02\x02\x01\x00\x01\x01",
        b"\x02\x01\x00\x00\x02\x01",
        b"\x02\x02\x00\x00\x02\x01",
    ]
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if a != b]


@SETTINGS
@given(prefixes, st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
def test_random_bytes(prefix: bytes, tail: bytes, cuts: list[int]) -> None:
    data = prefix + tail
    for role in Role:
        check_robust(role, chunked(data, cuts))


mutations = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]), u32, u8),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, where, value in ops:
        if not buf:
            break
        i = where % len(buf)
        if op == "flip":
            buf[i] ^= 1 << (value % 8)
        elif op == "set":
            buf[i] = value
        elif op == "cut":
            del buf[i:]
        elif op == "insert":
            buf[i:i] = bytes([value])
        else:
            del buf[i : i + 1 + value % 8]
    return bytes(buf)


@SETTINGS
@given(
    st.sampled_from(VECTORS),
    mutations,
    st.lists(st.integers(0, 500), max_size=4),
    st.integers(1, 3),
)
def test_mutated_captures(v: Any, ops: list[tuple[str, int, int]], cuts: list[int], n: int) -> None:
    data = mutate(v.wire * n, ops)
    for role in Role:
        check_robust(role, chunked(data, cuts))
