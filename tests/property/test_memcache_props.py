"""Hypothesis properties of the memcached text codec (STYLE 2.7):

- round trips: any valid command -> CLIENT ``send`` -> SERVER decode gives the same command
  and ``raw`` equal to the bytes sent; any valid reply -> builder -> CLIENT decode gives the
  same ``MemcacheReply``;
- chunking invariance: any split of a stream of commands (valid and malformed) or of
  replies gives the same events, and the same fatal error at the same place;
- robustness (h11's fuzz invariant): random or mutated bytes only ever give frames,
  NEED_DATA, CLOSED or RemoteProtocolError, and ERROR is final;
- bounded memory: after pulling every event the codec holds at most one incomplete request
  (and never a swallowed data block); the reorder buffer releases any permutation of
  responses in request order.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosn_py.codecs.base import NEED_DATA, CodecLimits, ConnectionEvent, Frame, Role, StreamType
from mosn_py.codecs.memcache import (
    CodecState,
    MemcacheCodec,
    MemcacheCommand,
    MemcacheItem,
    MemcacheReply,
    encode_reply,
    make_request,
    reply_frame,
)
from mosn_py.errors import RemoteProtocolError

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
BIG = CodecLimits(max_pending_frames=1 << 30)
CLOSED = ConnectionEvent.CLOSED

# --- strategies -----------------------------------------------------------------------------

_FORBIDDEN = bytes(range(0x21)) + b"\x7f"
_SAFE = bytes.maketrans(_FORBIDDEN, b"_" * len(_FORBIDDEN))  # any octet a key may hold
keys = st.one_of(
    st.binary(min_size=1, max_size=12).map(lambda b: b.translate(_SAFE)),
    st.tuples(st.integers(240, 250), st.binary(max_size=10)).map(
        lambda t: (t[1].translate(_SAFE) + b"K" * 250)[: t[0]]),
)
values = st.lists(
    st.one_of(
        st.sampled_from([b"\r\n", b"\r", b"\n", b"END\r\n", b"get k\r\n", b"VALUE k 0 1\r\n"]),
        st.binary(max_size=16),
    ),
    max_size=6,
).map(b"".join)
u32 = st.integers(0, (1 << 32) - 1)
u64 = st.integers(0, (1 << 64) - 1)
i64 = st.integers(-(1 << 63), (1 << 63) - 1)
NAMES = ["get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas",
         "delete", "incr", "decr", "touch", "flush_all", "verbosity", "version"]


@st.composite
def commands(draw: Any, name: str | None = None) -> MemcacheCommand:
    name = name or draw(st.sampled_from(NAMES))
    noreply = draw(st.booleans())
    if name in ("get", "gets"):
        return MemcacheCommand(name, draw(st.lists(keys, min_size=1, max_size=5)))
    if name in ("gat", "gats"):
        return MemcacheCommand(name, draw(st.lists(keys, min_size=1, max_size=5)),
                               exptime=draw(i64))
    if name in ("set", "add", "replace", "append", "prepend", "cas"):
        return MemcacheCommand(
            name, [draw(keys)], draw(u32), draw(i64), draw(u64) if name == "cas" else None,
            None, noreply, draw(values),
        )
    if name == "delete":
        return MemcacheCommand(name, [draw(keys)], noreply=noreply)
    if name in ("incr", "decr"):
        return MemcacheCommand(name, [draw(keys)], delta=draw(u64), noreply=noreply)
    if name == "touch":
        return MemcacheCommand(name, [draw(keys)], exptime=draw(i64), noreply=noreply)
    if name == "flush_all":
        return MemcacheCommand(name, [], exptime=draw(i64), noreply=noreply)
    if name == "verbosity":
        return MemcacheCommand(name, [], delta=draw(u32), noreply=noreply)
    return MemcacheCommand(name, [])


@st.composite
def replies_to(draw: Any, name: str) -> MemcacheReply:
    """A reply a server may give to command ``name``."""
    if draw(st.integers(0, 5)) == 0:
        status = draw(st.sampled_from(["ERROR", "CLIENT_ERROR", "SERVER_ERROR"]))
        text = "" if status == "ERROR" else draw(st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
            min_size=1, max_size=30).filter(lambda t: t.strip() == t and "  " not in t))
        return MemcacheReply(status, [], None, text)
    if name in ("get", "gets", "gat", "gats"):
        cas = name.endswith("s")
        items = draw(st.lists(st.builds(
            MemcacheItem, keys, u32, values, u64 if cas else st.none()), max_size=4))
        return MemcacheReply("END", items)
    if name in ("incr", "decr"):
        if draw(st.booleans()):
            return MemcacheReply("NOT_FOUND", [])
        return MemcacheReply("NUMBER", [], draw(u64))
    if name == "version":
        return MemcacheReply("VERSION", [], None, draw(st.sampled_from(["1.6.18", "x y z"])))
    words = {"delete": ["DELETED", "NOT_FOUND"], "touch": ["TOUCHED", "NOT_FOUND"],
             "flush_all": ["OK"], "verbosity": ["OK"]}.get(
        name, ["STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"])
    return MemcacheReply(draw(st.sampled_from(words)), [])


def encode(command: MemcacheCommand) -> bytes:
    return b"".join(bytes(b) for b in MemcacheCodec(Role.CLIENT).send(make_request(1, command)))


def request_for(rid: int, name: str) -> Frame:
    """Some request of command ``name`` (what a reply is framed by)."""
    if name in ("flush_all", "verbosity", "version"):
        return make_request(rid, MemcacheCommand(name, [], delta=0))
    return make_request(rid, MemcacheCommand(name, [b"k"], value=b"", delta=0, cas=0))


def reply_bytes(reply: MemcacheReply) -> bytes:
    return b"".join(bytes(b) for b in encode_reply(reply))


# Malformed or unusual request lines mixed into streams (each ends its own line).
ODD_LINES = st.sampled_from([
    b"foo\r\n", b"\r\n", b"get\r\n", b"gat x k\r\n", b"get " + b"k" * 251 + b"\r\n",
    b"set k 0 0\r\n", b"set k 0 0 x\r\n", b"set k 0 0 3\r\nabcde\r\n", b"set k x 0 2\r\nab\r\n",
    b"set k 0 0 50\r\n" + b"v" * 52, b"set k 0 0 50 noreply\r\n" + b"v" * 52,
    b"incr k x\r\n", b"incr k x noreply\r\n", b"delete k 1\r\n", b"touch k\r\n",
    b"flush_all x\r\n", b"verbosity\r\n", b"  get   a  \n", b"GET a\r\n",
    b"get a\x01\r\n",
])


def summary(ev: Any) -> Any:
    if not isinstance(ev, Frame):
        return ev
    x = ev.extra
    if isinstance(x, MemcacheCommand):
        value = None if x.value is None else bytes(x.value)
        extra: Any = (x.name, x.keys, x.flags, x.exptime, x.cas, x.delta, x.noreply, value,
                      x.reply)
    else:
        extra = (x.status, [(i.key, i.flags, bytes(i.value), i.cas) for i in x.items],
                 x.number, x.message)
    return (ev.stream_type, ev.request_id, bytes(ev.raw or b""), extra)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if a != b]


def run(codec: MemcacheCodec, chunks: list[bytes], eof: bool = True) -> tuple[list[Any], str]:
    """Events (summaries) and the fatal error's text ("" if none)."""
    events: list[Any] = []
    try:
        for chunk in [*chunks, b""] if eof else chunks:
            codec.receive_data(chunk)
            while (ev := codec.next_event()) is not NEED_DATA:
                events.append(summary(ev))
                if ev is CLOSED:
                    return events, ""
    except RemoteProtocolError as exc:
        return events, str(exc)
    return events, ""


def small_server() -> MemcacheCodec:
    return MemcacheCodec(Role.SERVER, limits=CodecLimits(max_pending_frames=1 << 30,
                                                         max_header_size=512),
                         max_value_size=40, max_line=300, max_keys=6)


# --- round trips ----------------------------------------------------------------------------


@SETTINGS
@given(commands(), st.lists(st.integers(0, 2000), max_size=4))
def test_request_round_trip(command: MemcacheCommand, cuts: list[int]) -> None:
    data = encode(command)
    codec = MemcacheCodec(Role.SERVER, limits=BIG)
    events, error = run(codec, chunked(data, cuts))
    assert error == ""
    assert len(events) == 2 and events[1] is CLOSED
    stream_type, rid, raw, _ = events[0]
    assert (stream_type, rid, raw) == (
        StreamType.ONEWAY if command.noreply else StreamType.REQUEST, 1, data)
    got = MemcacheCodec(Role.SERVER, limits=BIG)
    got.receive_data(data)
    frame = got.next_event()
    assert frame.extra == command
    # the decoded frame goes upstream as the same bytes, raw or re-encoded
    assert encode(frame.extra) == data
    assert b"".join(bytes(b) for b in MemcacheCodec(Role.CLIENT).send(frame)) == data


@SETTINGS
@given(st.sampled_from(NAMES).flatmap(lambda n: st.tuples(st.just(n), replies_to(n))),
       st.lists(st.integers(0, 2000), max_size=4))
def test_reply_round_trip(case: tuple[str, MemcacheReply], cuts: list[int]) -> None:
    name, reply = case
    frame = reply_frame(9, reply)
    server = MemcacheCodec(Role.SERVER, limits=BIG)
    server.receive_data(b"".join(bytes(b) for b in
                                 MemcacheCodec(Role.CLIENT).send(request_for(1, name))))
    assert server.next_event().request_id == 1
    data = b"".join(bytes(b) for b in server.send(frame, 1))
    assert data == reply_bytes(reply)
    client = MemcacheCodec(Role.CLIENT)
    client.send(request_for(5, name))
    events, error = run(client, chunked(data, cuts))
    assert error == ""
    assert events[0][:3] == (StreamType.RESPONSE, 5, data)
    assert events[0][3] == summary(frame)[3]
    assert events[1] is CLOSED


# --- chunking invariance --------------------------------------------------------------------


@SETTINGS
@given(
    st.lists(st.one_of(commands().map(encode), ODD_LINES), min_size=1, max_size=8),
    st.lists(st.integers(0, 5000), max_size=8),
    st.booleans(),
)
def test_server_chunking_invariance(parts: list[bytes], cuts: list[int], junk: bool) -> None:
    stream = b"".join(parts) + (b"x" * 700 if junk else b"")
    whole = run(small_server(), [stream])
    assert run(small_server(), chunked(stream, cuts)) == whole
    if len(stream) < 200:
        assert run(small_server(), [stream[i : i + 1] for i in range(len(stream))]) == whole


@SETTINGS
@given(
    st.lists(st.sampled_from(NAMES).flatmap(lambda n: st.tuples(st.just(n), replies_to(n))),
             min_size=1, max_size=6),
    st.lists(st.integers(0, 5000), max_size=8),
)
def test_client_chunking_invariance(pairs: list[tuple[str, MemcacheReply]],
                                    cuts: list[int]) -> None:
    stream = b"".join(reply_bytes(r) for _, r in pairs)

    def fresh() -> MemcacheCodec:
        codec = MemcacheCodec(Role.CLIENT)
        for i, (name, _) in enumerate(pairs):
            codec.send(request_for(i, name))
        return codec

    whole = run(fresh(), [stream])
    assert whole[1] == ""
    assert [e[1] for e in whole[0][:-1]] == list(range(len(pairs)))
    assert run(fresh(), chunked(stream, cuts)) == whole


# --- robustness -----------------------------------------------------------------------------


def check_robust(codec: MemcacheCodec, chunks: list[bytes]) -> None:
    """Only frames, NEED_DATA, CLOSED or RemoteProtocolError; ERROR is final; request ids
    count up; the response slots match the two-way requests."""
    server = codec.role is Role.SERVER
    last_id = 0
    two_way = 0
    for chunk in [*chunks, b""]:
        codec.receive_data(chunk)
        try:
            while True:
                ev = codec.next_event()
                if ev is NEED_DATA or ev is CLOSED:
                    break
                assert isinstance(ev, Frame) and isinstance(ev.raw, bytes) and ev.raw
                if server:
                    assert ev.request_id == last_id + 1
                    last_id = ev.request_id
                    assert isinstance(ev.extra, MemcacheCommand)
                    if ev.stream_type is StreamType.REQUEST:
                        two_way += 1
                    else:
                        assert ev.stream_type is StreamType.ONEWAY and ev.extra.noreply
                    assert codec.pending_replies() == two_way
                else:
                    assert ev.stream_type is StreamType.RESPONSE
                    assert isinstance(ev.extra, MemcacheReply)
        except RemoteProtocolError as exc:
            assert exc.protocol == "memcache"
            assert codec.state is CodecState.ERROR
            for _ in range(2):
                try:
                    codec.next_event()
                except RemoteProtocolError:
                    pass
                else:  # pragma: no cover
                    raise AssertionError("codec left the ERROR state") from None
            return
    assert codec.next_event() is CLOSED


prefixes = st.sampled_from([b"", b"get ", b"set k 0 0 ", b"VALUE k 0 ", b"gat 1 ", b"cas ",
                            b"delete ", b"incr k ", b"END\r\n", b"STORED\r\n"])
fifo = st.lists(st.sampled_from(NAMES), max_size=4)


@SETTINGS
@given(prefixes, st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6), fifo)
def test_random_bytes(prefix: bytes, tail: bytes, cuts: list[int], names: list[str]) -> None:
    data = prefix + tail
    check_robust(small_server(), chunked(data, cuts))
    client = MemcacheCodec(Role.CLIENT, limits=CodecLimits(max_frame_size=1000), max_line=200)
    for i, name in enumerate(names):
        client.send(request_for(i, name))
    check_robust(client, chunked(data, cuts))


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


mutations = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]),
              st.integers(0, 1 << 20), st.integers(0, 255)),
    min_size=1, max_size=4,
)


@SETTINGS
@given(st.lists(commands(), min_size=1, max_size=5), mutations,
       st.lists(st.integers(0, 3000), max_size=5))
def test_mutated_streams(batch: list[MemcacheCommand], ops: list[tuple[str, int, int]],
                         cuts: list[int]) -> None:
    data = mutate(b"".join(encode(c) for c in batch), ops)
    check_robust(small_server(), chunked(data, cuts))
    assert run(small_server(), chunked(data, cuts)) == run(small_server(), [data])


# --- bounded memory -------------------------------------------------------------------------


@SETTINGS
@given(
    st.lists(st.one_of(commands().map(encode), ODD_LINES, st.binary(max_size=80)),
             min_size=1, max_size=10),
    st.lists(st.integers(0, 5000), max_size=12),
)
def test_buffer_holds_at_most_one_incomplete_request(parts: list[bytes],
                                                     cuts: list[int]) -> None:
    codec = small_server()
    bound = max(512, 300 + 1 + 40 + 2)  # a retrieval line, or a storage line + its block
    try:
        for chunk in chunked(b"".join(parts), cuts):
            codec.receive_data(chunk)
            while (ev := codec.next_event()) is not NEED_DATA and ev is not CLOSED:
                pass
            assert codec.buffered <= bound
            if codec.swallowing:
                assert codec.buffered == 0  # a refused data block is never kept
    except RemoteProtocolError:
        assert codec.buffered == 0  # an error drops the input


@SETTINGS
@given(st.permutations(list(range(1, 13))), st.sets(st.integers(1, 12)))
def test_reorder_buffer_releases_in_order(order: list[int], oneway: set[int]) -> None:
    codec = MemcacheCodec(Role.SERVER, limits=BIG)
    wire = b"".join(b"delete k%d noreply\r\n" % i if i in oneway else b"get k%d\r\n" % i
                    for i in range(1, 13))
    codec.receive_data(wire)
    while codec.next_event() is not NEED_DATA:
        pass
    two_way = [i for i in range(1, 13) if i not in oneway]
    assert codec.pending_replies() == len(two_way)
    out: list[bytes] = []
    for rid in (i for i in order if i not in oneway):
        released = [bytes(b) for b in codec.send(MemcacheCodec.version_reply(rid, str(rid)))]
        # what leaves is always the next run of responses in request order
        assert released == [b"VERSION %d\r\n" % i for i in two_way[len(out):len(out)
                                                                       + len(released)]]
        out += released
        assert codec.pending_replies() == len(two_way) - len(out)
    assert out == [b"VERSION %d\r\n" % i for i in two_way]
