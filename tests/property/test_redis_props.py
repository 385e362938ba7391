"""Hypothesis properties of the Redis codec (STYLE 2.7):

- round trips: any command -> CLIENT send -> SERVER decode gives the same arguments and the
  same bytes back; any reply value -> encode_reply -> CLIENT decode gives the value (RESP2
  and RESP3 forms); inline commands quoted any way decode to their words;
- chunking invariance: any split of a pipeline of commands or replies gives the same frames;
- ordering: replies sent in any order come out in request order, each as soon as possible;
- robustness (h11's fuzz invariant): arbitrary, RESP-looking or mutated bytes only ever give
  frames, NEED_DATA, CLOSED or RemoteProtocolError; ERROR is final; memory stays bounded,
  however large the counts and lengths the bytes claim.
"""

from __future__ import annotations

import itertools
import tracemalloc
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Frame, Role, StreamType
from mosn_py.codecs.redis import (
    RedisCodec,
    RedisError,
    SimpleString,
    command_frame,
    encode_command,
    encode_reply,
    reply_frame,
    split_inline,
)
from mosn_py.codecs.redis.codec import CodecState
from mosn_py.errors import RemoteProtocolError

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CLOSED = ConnectionEvent.CLOSED


def pull_all(codec: RedisCodec) -> list[Any]:
    out = []
    while (ev := codec.next_event()) is not NEED_DATA:
        out.append(ev)
        if ev is CLOSED:
            break
    return out


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if a != b]


def decode_all(codec: RedisCodec, chunks: list[bytes]) -> list[Any]:
    events: list[Any] = []
    for chunk in chunks:
        codec.receive_data(chunk)
        events += pull_all(codec)
    codec.receive_data(b"")
    events += pull_all(codec)
    return events


# --- commands ---------------------------------------------------------------------------------

args_st = st.lists(st.binary(max_size=40), min_size=1, max_size=8)
# An inline word: no blank, quote or NUL (those need quoting), and not empty.
plain_word = st.binary(min_size=1, max_size=12).filter(
    lambda w: not any(c in b" \t\r\n\x0b\x0c\"'\x00" for c in w)
)


def quote(arg: bytes) -> bytes:
    """``arg`` as a double-quoted inline word (escapes as redis-cli writes them)."""
    out = bytearray(b'"')
    for c in arg:
        if c in b'"\\':
            out += b"\\" + bytes([c])
        elif 0x20 <= c < 0x7F:
            out.append(c)
        else:
            out += b"\\x%02x" % c
    return bytes(out + b'"')


@st.composite
def command_wires(draw: Any) -> tuple[bytes, list[bytes]]:
    """One command on the wire (multibulk, plain inline or quoted inline) and its words."""
    form = draw(st.sampled_from(["multibulk", "inline", "quoted"]))
    if form == "multibulk":
        args = draw(args_st)
        return encode_command(args), args
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    if form == "inline":
        words = draw(st.lists(plain_word, min_size=1, max_size=6))
        if words[0].startswith(b"*"):  # a line starting with '*' is multibulk to redis
            words[0] = b"x" + words[0]
        sep = draw(st.sampled_from([b" ", b"  ", b"\t"]))
        return sep.join(words) + end, words
    args = draw(st.lists(st.binary(max_size=20), min_size=1, max_size=5))
    return b" ".join(quote(a) for a in args) + end, args


@SETTINGS
@given(args_st)
def test_command_round_trip(args: list[bytes]) -> None:
    sender = RedisCodec(Role.CLIENT)
    (wire,) = sender.send(command_frame(args), 1)
    receiver = RedisCodec(Role.SERVER)
    receiver.receive_data(wire)
    got = receiver.next_event()
    assert isinstance(got, Frame)
    assert got.extra.args == args and got.raw == wire and got.request_id == 1
    assert receiver.next_event() is NEED_DATA
    # forwarded as is, and re-encoded from the arguments, upstream gets the same bytes
    assert RedisCodec(Role.CLIENT).send(got) == [wire]
    assert RedisCodec(Role.CLIENT).send(got.evolve(raw=None)) == [wire]


@SETTINGS
@given(st.lists(st.binary(max_size=30), min_size=1, max_size=6))
def test_quoted_inline_words_round_trip(args: list[bytes]) -> None:
    assert split_inline(b" ".join(quote(a) for a in args)) == args


@SETTINGS
@given(
    st.lists(command_wires(), min_size=1, max_size=8),
    st.lists(st.integers(0, 2000), max_size=8),
)
def test_command_pipeline_chunking_invariance(
    batch: list[tuple[bytes, list[bytes]]], cuts: list[int]
) -> None:
    stream = b"".join(w for w, _ in batch)
    events = decode_all(RedisCodec(Role.SERVER), chunked(stream, cuts))
    assert events[-1] is CLOSED
    frames = events[:-1]
    assert [f.extra.args for f in frames] == [a for _, a in batch]
    assert [f.raw for f in frames] == [w for w, _ in batch]
    assert [f.request_id for f in frames] == list(range(1, len(batch) + 1))


# --- replies ----------------------------------------------------------------------------------

line_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    max_size=20,
)
leaves = st.one_of(
    st.binary(max_size=30),
    st.integers(-(2**63), 2**63 - 1),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    line_text.map(SimpleString),
    line_text.map(lambda t: RedisError("ERR " + t)),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.binary(max_size=8), children, max_size=4),
    ),
    max_leaves=25,
)


def expected(value: Any, resp3: bool) -> Any:
    """What a CLIENT codec decodes from ``encode_reply(value, resp3=resp3)``."""
    if isinstance(value, SimpleString):
        return value.encode("utf-8")
    if isinstance(value, bool):
        return value if resp3 else int(value)
    if isinstance(value, float):
        return value if resp3 else repr(value).encode()
    if isinstance(value, list):
        return [expected(v, resp3) for v in value]
    if isinstance(value, dict):
        if resp3:
            return {k: expected(v, resp3) for k, v in value.items()}
        return [x for k, v in value.items() for x in (k, expected(v, resp3))]
    return value


def same(got: Any, want: Any) -> bool:
    if type(got) is not type(want):
        return False
    if isinstance(want, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    return bool(got == want)


@SETTINGS
@given(values, st.booleans())
def test_reply_round_trip(value: Any, resp3: bool) -> None:
    wire = encode_reply(value, resp3=resp3)
    # the SERVER puts it on the wire unchanged
    server = RedisCodec(Role.SERVER)
    server.receive_data(b"PING\r\n")
    req = server.next_event()
    assert server.send(reply_frame(req.request_id, value, resp3=resp3)) == [wire]
    # the CLIENT decodes it back
    client = RedisCodec(Role.CLIENT)
    client.send(command_frame([b"X"]), 42)
    client.receive_data(wire)
    got = client.next_event()
    assert isinstance(got, Frame) and got.request_id == 42 and got.raw == wire
    assert same(got.extra, expected(value, resp3)), (got.extra, value)
    assert got.status == (1 if isinstance(value, RedisError) else 0)
    assert client.next_event() is NEED_DATA


@SETTINGS
@given(
    st.lists(st.tuples(st.booleans(), values), min_size=1, max_size=6),
    st.lists(st.integers(0, 3000), max_size=8),
)
def test_reply_pipeline_chunking_invariance_and_fifo(
    batch: list[tuple[bool, Any]], cuts: list[int]
) -> None:
    """Replies (and RESP3 pushes between them) split anywhere: same frames, FIFO ids."""
    wires = [
        b">1\r\n" + encode_reply(v, resp3=True) if push else encode_reply(v, resp3=True)
        for push, v in batch
    ]
    stream = b"".join(wires)
    client = RedisCodec(Role.CLIENT)
    answers = sum(1 for push, _ in batch if not push)
    for i in range(answers):
        client.send(command_frame([b"GET", b"k"]), 1000 + i)
    events = decode_all(client, chunked(stream, cuts))
    assert events[-1] is CLOSED
    frames = events[:-1]
    assert [f.raw for f in frames] == wires
    ids = iter(range(1000, 1000 + answers))
    for f, (push, v) in zip(frames, batch, strict=True):
        if push:
            assert f.stream_type is StreamType.ONEWAY and f.request_id == 0
            assert same(list(f.extra), [expected(v, True)])
        else:
            assert f.stream_type is StreamType.RESPONSE and f.request_id == next(ids)
            assert same(f.extra, expected(v, True))


# --- ordering ---------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(1, 40).flatmap(lambda n: st.permutations(range(1, n + 1))))
def test_replies_in_any_order_leave_in_request_order(order: list[int]) -> None:
    n = len(order)
    codec = RedisCodec(Role.SERVER)
    codec.receive_data(b"PING\r\n" * n)
    assert [f.request_id for f in pull_all(codec)] == list(range(1, n + 1))
    answered: set[int] = set()
    next_due = 1
    out: list[Any] = []
    for rid in order:
        got = codec.send(reply_frame(rid, b"%d" % rid))
        answered.add(rid)
        due = []
        while next_due in answered:
            due.append(encode_reply(b"%d" % next_due))
            next_due += 1
        assert got == due  # exactly what became sendable, at once
        out += got
        assert codec.pending_replies() == n - len(out)
    assert out == [encode_reply(b"%d" % i) for i in range(1, n + 1)]


# --- robustness -------------------------------------------------------------------------------


def check_robust(role: Role, chunks: list[bytes]) -> None:
    """Only frames, NEED_DATA, CLOSED or RemoteProtocolError; ERROR is final."""
    codec = RedisCodec(role)
    if role is Role.CLIENT:
        for i in range(50):
            codec.send(command_frame([b"GET", b"k"]), i)
    for chunk in [*chunks, b""]:
        codec.receive_data(chunk)
        try:
            while True:
                ev = codec.next_event()
                if ev is NEED_DATA or ev is CLOSED:
                    break
                assert isinstance(ev, Frame)
                assert isinstance(ev.raw, bytes) and ev.raw
                if role is Role.SERVER:
                    assert ev.stream_type is StreamType.REQUEST and ev.extra.args
                    codec.send(reply_frame(ev.request_id, b"ok"))
                else:
                    assert ev.stream_type in (StreamType.RESPONSE, StreamType.ONEWAY)
        except RemoteProtocolError as exc:
            assert exc.protocol == "redis"
            assert str(exc).startswith("Protocol error")
            assert codec.state is CodecState.ERROR
            for _ in range(2):
                try:
                    codec.next_event()
                except RemoteProtocolError:
                    pass
                else:  # pragma: no cover
                    raise AssertionError("codec left the ERROR state")
            if role is Role.SERVER:
                assert codec.error_reply_for(exc) == [
                    b"-ERR " + str(exc).encode() + b"\r\n"
                ]
            return
    assert codec.next_event() is CLOSED


# RESP-looking starts make random bytes get past the first checks.
prefixes = st.sampled_from(
    [b"", b"*", b"*1\r\n", b"*2\r\n$", b"*3\r\n$3\r\nSET\r\n", b"$", b"$3\r\n", b"+", b"-",
     b":", b"%", b"~", b">", b"|", b"_", b"#", b",", b"(", b"!", b"=", b"GET ", b'SET "']
)


@SETTINGS
@given(prefixes, st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
def test_random_bytes(prefix: bytes, tail: bytes, cuts: list[int]) -> None:
    data = prefix + tail
    for role in Role:
        check_robust(role, chunked(data, cuts))


resp_tokens = st.sampled_from(
    [b"*", b"$", b"+", b"-", b":", b"%", b"~", b">", b"|", b"_", b"#", b",", b"(", b"!", b"=",
     b"\r\n", b"\r", b"\n", b"0", b"1", b"2", b"3", b"-1", b"t", b"f", b"abc", b" ", b'"', b"'",
     b"\\", b"x", b"\x00", b"99999999999999999999"]
)


@SETTINGS
@given(st.lists(resp_tokens, max_size=60), st.lists(st.integers(0, 400), max_size=6))
def test_resp_token_soup(tokens: list[bytes], cuts: list[int]) -> None:
    data = b"".join(tokens)
    for role in Role:
        check_robust(role, chunked(data, cuts))


mutations = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]),
              st.integers(0, 2**32), st.integers(0, 255)),
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
    st.lists(command_wires(), min_size=1, max_size=4),
    st.lists(values, min_size=1, max_size=3),
    mutations,
    st.lists(st.integers(0, 500), max_size=4),
)
def test_mutated_streams(
    cmds: list[tuple[bytes, list[bytes]]],
    replies: list[Any],
    ops: list[tuple[str, int, int]],
    cuts: list[int],
) -> None:
    requests = mutate(b"".join(w for w, _ in cmds), ops)
    check_robust(Role.SERVER, chunked(requests, cuts))
    answers = mutate(b"".join(encode_reply(v, resp3=True) for v in replies), ops)
    check_robust(Role.CLIENT, chunked(answers, cuts))


claims = st.tuples(
    st.sampled_from([b"*", b"$", b"%", b"~", b">", b"|", b"!", b"=", b"*1\r\n$", b"*1\r\n*"]),
    st.integers(0, 2**64),
    st.binary(max_size=40),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims)
def test_claimed_sizes_never_allocate(claim: tuple[bytes, int, bytes]) -> None:
    """Whatever count or length a header claims, decoding allocates in proportion to the
    bytes actually received, not to the claim."""
    head, n, tail = claim
    data = head + b"%d\r\n" % n + tail
    tracemalloc.start()
    try:
        for role in Role:
            check_robust(role, [data])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024
