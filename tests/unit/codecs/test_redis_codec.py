"""The Redis RESP codec (``mosn_py.codecs.redis``): golden vectors written by hand from the
RESP spec (https://redis.io/docs/latest/develop/reference/protocol-spec/) and redis-server's
inline rules, for every request form and every reply type, fed whole, byte by byte, split
at every offset, with trailing bytes and pipelined; the reorder buffer; limits; errors;
client FIFO matching; RESP3; and a pipeline against a real redis-server.

No vector here comes from our own encoder: every expected byte string is a literal.
"""

from __future__ import annotations

import math
import random
import shutil
import socket
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hiredis
import pytest

from mosn_py.codecs.base import (
    NEED_DATA,
    CodecLimits,
    ConnectionEvent,
    Frame,
    MatchResult,
    PoolMode,
    Role,
    StreamType,
)
from mosn_py.codecs.redis import (
    Map,
    PushNotification,
    RedisCodec,
    RedisCommand,
    RedisError,
    SimpleString,
    command_frame,
    encode_command,
    encode_reply,
    error_frame,
    error_reply,
    local_reply_text,
    match,
    parse_reply,
    reply_frame,
    split_inline,
    status_reply,
)
from mosn_py.codecs.redis.codec import CodecState
from mosn_py.codecs.redis.values import spec_value
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

CLOSED = ConnectionEvent.CLOSED

# --- harness (STYLE 2.7, h11 ``tr()``) --------------------------------------------------------


def drain(codec: RedisCodec) -> list[Any]:
    """Pull events until NEED_DATA or CLOSED (included)."""
    out: list[Any] = []
    while True:
        ev = codec.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)
        if ev is CLOSED:
            return out


def feed(codec: RedisCodec, chunks: list[bytes], *, eof: bool = False) -> list[Any]:
    events: list[Any] = []
    for chunk in chunks:
        codec.receive_data(chunk)
        events += drain(codec)
    if eof:
        codec.receive_data(b"")
        events += drain(codec)
    return events


def splits(data: bytes) -> Iterator[list[bytes]]:
    """``data`` whole, byte by byte, then cut in two at every offset."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def server() -> RedisCodec:
    return RedisCodec(Role.SERVER)


def client(n: int = 0) -> RedisCodec:
    """A CLIENT codec with ``n`` requests (ids 1..n) already sent."""
    codec = RedisCodec(Role.CLIENT)
    for i in range(1, n + 1):
        codec.send(command_frame([b"PING"]), i)
    return codec


def commands(events: list[Any]) -> list[list[bytes]]:
    return [ev.extra.args for ev in events if isinstance(ev, Frame)]


# --- request vectors --------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    name: str
    wire: bytes
    args: list[list[bytes]]  # the commands it holds (none for skipped units)


REQUESTS = [
    Req("multibulk GET", b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", [[b"GET", b"key"]]),
    Req(
        "multibulk SET",
        b"*3\r\n$3\r\nSET\r\n$5\r\nmykey\r\n$7\r\nmyvalue\r\n",
        [[b"SET", b"mykey", b"myvalue"]],
    ),
    Req(  # binary-safe: CRLF, NUL and '$' inside a bulk string
        "binary value",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\na\r\n\x00$*\xff\r\n",
        [[b"SET", b"k", b"a\r\n\x00$*\xff"]],
    ),
    Req("empty argument", b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", [[b"ECHO", b""]]),
    Req(
        "two-digit length",
        b"*2\r\n$4\r\nECHO\r\n$12\r\nhello world!\r\n",
        [[b"ECHO", b"hello world!"]],
    ),
    Req(
        "three-digit length",
        b"*2\r\n$4\r\nECHO\r\n$100\r\n" + b"x" * 100 + b"\r\n",
        [[b"ECHO", b"x" * 100]],
    ),
    Req(
        "eleven arguments",
        b"*11\r\n$4\r\nMSET\r\n"
        + b"".join(b"$2\r\nk%d\r\n$2\r\nv%d\r\n" % (i, i) for i in range(5)),
        [[b"MSET"] + [x for i in range(5) for x in (b"k%d" % i, b"v%d" % i)]],
    ),
    Req("mixed-case name", b"*1\r\n$4\r\npInG\r\n", [[b"pInG"]]),
    Req("inline CRLF", b"PING\r\n", [[b"PING"]]),
    Req("inline LF only", b"GET key\n", [[b"GET", b"key"]]),
    Req("inline blanks", b"  SET \t k   v  \r\n", [[b"SET", b"k", b"v"]]),
    Req(
        "inline double quotes",
        b'SET k "hello world"\r\n',
        [[b"SET", b"k", b"hello world"]],
    ),
    Req(
        "inline escapes",
        b'SET k "a\\x41\\n\\t\\"\\\\z"\r\n',
        [[b"SET", b"k", b'aA\n\t"\\z']],
    ),
    Req("inline single quotes", b"SET k 'it\\'s \"x\"'\r\n", [[b"SET", b"k", b"it's \"x\""]]),
    Req("inline quote mid-word", b'SET k a"b c"\r\n', [[b"SET", b"k", b"ab c"]]),
    Req("inline empty quotes", b'SET k ""\r\n', [[b"SET", b"k", b""]]),
    Req("blank line skipped", b"\r\n", []),
    Req("LF line skipped", b"\n", []),
    Req("spaces line skipped", b"   \r\n", []),
    Req("*0 skipped", b"*0\r\n", []),
    Req("*-1 skipped", b"*-1\r\n", []),
]
by_req = pytest.mark.parametrize("v", REQUESTS, ids=lambda v: v.name)


@by_req
def test_request_whole(v: Req) -> None:
    codec = server()
    codec.receive_data(v.wire)
    events = drain(codec)
    assert commands(events) == v.args
    for i, ev in enumerate(events, 1):
        assert ev.stream_type is StreamType.REQUEST
        assert ev.request_id == i
        assert ev.protocol == "redis"
        assert ev.raw == v.wire
        assert isinstance(ev.raw, bytes)
        assert ev.extra.name == v.args[i - 1][0].decode().lower()
        assert ev.headers == {} and ev.body == b""
    assert codec.buffered == 0
    codec.receive_data(b"")
    assert codec.next_event() is CLOSED
    assert codec.next_event() is CLOSED
    assert codec.state is CodecState.CLOSED


@by_req
def test_request_split_everywhere(v: Req) -> None:
    for chunks in splits(v.wire):
        events = feed(server(), chunks, eof=True)
        assert commands(events) == v.args, chunks
        assert events[-1] is CLOSED


@by_req
def test_request_byte_by_byte_needs_data_until_the_last(v: Req) -> None:
    codec = server()
    for i in range(len(v.wire) - 1):
        codec.receive_data(v.wire[i : i + 1])
        assert codec.next_event() is NEED_DATA
    codec.receive_data(v.wire[-1:])
    assert commands(drain(codec)) == v.args


@by_req
def test_request_trailing_bytes_stay_buffered(v: Req) -> None:
    codec = server()
    tail = b"*1\r\n$4\r\nPI"
    codec.receive_data(v.wire + tail)
    assert commands(drain(codec)) == v.args
    assert codec.buffered == len(tail)
    codec.receive_data(b"NG\r\n")
    (ev,) = drain(codec)
    assert ev.extra.args == [b"PING"]
    assert ev.request_id == len(v.args) + 1


def test_all_requests_pipelined_and_split_everywhere() -> None:
    stream = b"".join(v.wire for v in REQUESTS)
    want = [a for v in REQUESTS for a in v.args]
    for chunks in splits(stream):
        events = feed(server(), chunks, eof=True)
        assert commands(events) == want
        assert [e.request_id for e in events[:-1]] == list(range(1, len(want) + 1))
        assert b"".join(e.raw for e in events[:-1]) == b"".join(
            v.wire for v in REQUESTS if v.args
        )


def test_input_types_are_copied() -> None:
    wire = REQUESTS[1].wire
    for data in (bytearray(wire), memoryview(bytearray(wire))):
        codec = server()
        codec.receive_data(data)
        data[:] = b"\0" * len(data)  # the caller reuses its buffer
        assert commands(drain(codec)) == REQUESTS[1].args


def test_pipeline_of_1000_in_one_read_and_random_chunks() -> None:
    rng = random.Random(7)
    wires: list[bytes] = []
    want: list[list[bytes]] = []
    for i in range(1000):
        key = b"key:%d" % i
        if i % 3 == 0:
            wires.append(b"GET %s\r\n" % key)
            want.append([b"GET", key])
        else:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
            wires.append(encode_literal([b"SET", key, value]))
            want.append([b"SET", key, value])
    stream = b"".join(wires)
    codec = server()
    codec.receive_data(stream)
    events = drain(codec)
    assert commands(events) == want
    assert [e.raw for e in events] == wires
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(stream)), 300))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert commands(feed(server(), chunks)) == want


def encode_literal(args: list[bytes]) -> bytes:
    """A naive multibulk packer for test input (not the codec's encoder)."""
    out = b"*" + str(len(args)).encode() + b"\r\n"
    for a in args:
        out += b"$" + str(len(a)).encode() + b"\r\n" + a + b"\r\n"
    return out


def test_command_name_is_lowercased_once() -> None:
    cmd = RedisCommand([b"HGetAll", b"k"])
    assert cmd.name == "hgetall"
    assert cmd.name is cmd.name
    assert RedisCommand([b"\xc9X"]).name == "\xc9x"  # ASCII lower-casing only, as redis does
    assert RedisCommand([]).name == ""
    assert cmd == RedisCommand([b"HGetAll", b"k"]) and "HGetAll" in repr(cmd)


# --- inline splitting (redis-server sdssplitargs rules) ---------------------------------------


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"", []),
        (b"   ", []),
        (b"a b  c", [b"a", b"b", b"c"]),
        (b"\x0b\x0ca", [b"a"]),  # VT and FF are leading blanks ...
        (b"a\x0bb", [b"a\x0bb"]),  # ... but do not end a word
        (b"a\tb\rc", [b"a", b"b", b"c"]),
        (b"a\x00b c", [b"a"]),  # NUL ends the line
        (b'"a b"', [b"a b"]),
        (b'"\\x41\\x4a\\x4A"', [b"AJJ"]),
        (b'"\\x4g"', [b"x4g"]),  # not two hex digits: an ordinary escape of 'x'
        (b'"\\n\\r\\t\\b\\a\\q"', [b"\n\r\t\b\x07q"]),
        (b"'a\\nb'", [b"a\\nb"]),  # no escapes in single quotes but \'
        (b"'\\''", [b"'"]),
        (b'x"y z"w', None),  # closing quote followed by a non-blank
        (b'"abc', None),
        (b"'a'b", None),
        (b"'abc", None),
        (b'"abc\\"', None),
        (b'a "b" c', [b"a", b"b", b"c"]),
        (b'""', [b""]),
        (b"''", [b""]),
        (b'"a"\x0bb', [b"a", b"b"]),  # VT after a closing quote counts as a blank
    ],
)
def test_split_inline(line: bytes, words: list[bytes] | None) -> None:
    if words is None:
        with pytest.raises(ValueError):
            split_inline(line)
    else:
        assert split_inline(line) == words


# --- reply vectors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rep:
    name: str
    wire: bytes
    value: Any
    error: bool = False
    push: bool = False


NAN = object()  # marker: a float NaN (NaN != NaN)

REPLIES = [
    Rep("simple string", b"+OK\r\n", b"OK"),
    Rep("empty simple string", b"+\r\n", b""),
    Rep(
        "simple error",
        b"-ERR unknown command 'foobar'\r\n",
        RedisError("ERR unknown command 'foobar'"),
        error=True,
    ),
    Rep(
        "wrongtype error",
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        RedisError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        error=True,
    ),
    Rep("integer", b":1000\r\n", 1000),
    Rep("negative integer", b":-42\r\n", -42),
    Rep("zero", b":0\r\n", 0),
    Rep("int64 max", b":9223372036854775807\r\n", 2**63 - 1),
    Rep("bulk string", b"$5\r\nhello\r\n", b"hello"),
    Rep("empty bulk string", b"$0\r\n\r\n", b""),
    Rep("binary bulk string", b"$6\r\n\r\n\x00*$\xff\r\n", b"\r\n\x00*$\xff"),
    Rep("long bulk string", b"$1000\r\n" + b"v" * 1000 + b"\r\n", b"v" * 1000),
    Rep("null bulk string", b"$-1\r\n", None),
    Rep("empty array", b"*0\r\n", []),
    Rep("null array", b"*-1\r\n", None),
    Rep("array of bulk", b"*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n", [b"hello", b"world"]),
    Rep("array of integers", b"*3\r\n:1\r\n:2\r\n:3\r\n", [1, 2, 3]),
    Rep(
        "mixed array",
        b"*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n$5\r\nhello\r\n",
        [1, 2, 3, 4, b"hello"],
    ),
    Rep(
        "nested arrays",
        b"*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n",
        [[1, 2, 3], [b"Hello", RedisError("World")]],
    ),
    Rep(
        "null elements (MGET)",
        b"*3\r\n$5\r\nhello\r\n$-1\r\n$5\r\nworld\r\n",
        [b"hello", None, b"world"],
    ),
    Rep("deep nesting", b"*1\r\n" * 20 + b":7\r\n", [[[[[[[[[[[[[[[[[[[[7]]]]]]]]]]]]]]]]]]]]),
    # --- RESP3 ---
    Rep("null", b"_\r\n", None),
    Rep("true", b"#t\r\n", True),
    Rep("false", b"#f\r\n", False),
    Rep("double", b",1.23\r\n", 1.23),
    Rep("double integral", b",10\r\n", 10.0),
    Rep("double exponent", b",1.5e+20\r\n", 1.5e20),
    Rep("double inf", b",inf\r\n", math.inf),
    Rep("double -inf", b",-inf\r\n", -math.inf),
    Rep("double nan", b",nan\r\n", NAN),
    Rep(
        "big number",
        b"(3492890328409238509324850943850943825024385\r\n",
        b"3492890328409238509324850943850943825024385",
    ),
    Rep(
        "blob error",
        b"!21\r\nSYNTAX invalid syntax\r\n",
        RedisError("SYNTAX invalid syntax"),
        error=True,
    ),
    Rep("verbatim string", b"=15\r\ntxt:Some string\r\n", b"Some string"),
    Rep(
        "map",
        b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
        {b"first": 1, b"second": 2},
    ),
    Rep("empty map", b"%0\r\n", {}),
    Rep(
        "map keyed by an array",
        b"%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n",
        Map([([1, 2], b"v")]),
    ),
    Rep(
        "set",
        b"~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n",
        [b"orange", b"apple", True, 100, 999],
    ),
    Rep(
        "attribute before a reply",
        b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
        b"*2\r\n:2039123\r\n:9543892\r\n",
        [2039123, 9543892],
    ),
    Rep(
        "attribute inside an array",
        b"*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n",
        [1, 2, 3],
    ),
    Rep("empty attribute", b"|0\r\n+OK\r\n", b"OK"),
    Rep(
        "attribute on an error",
        b"|1\r\n+a\r\n+b\r\n-ERR x\r\n",
        RedisError("ERR x"),
        error=True,
    ),
    Rep(
        "push",
        b">4\r\n+pubsub\r\n+message\r\n+somechannel\r\n+this is the message\r\n",
        PushNotification([b"pubsub", b"message", b"somechannel", b"this is the message"]),
        push=True,
    ),
    Rep(
        "HELLO 3 reply",
        b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n"
        b"$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
        b"$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
        {
            b"server": b"redis", b"version": b"7.2.4", b"proto": 3, b"id": 5,
            b"mode": b"standalone", b"role": b"master", b"modules": [],
        },
    ),
]
by_rep = pytest.mark.parametrize("v", REPLIES, ids=lambda v: v.name)


def same_value(got: Any, want: Any) -> bool:
    if want is NAN:
        return isinstance(got, float) and math.isnan(got)
    return type(got) is type(want) and got == want


def check_reply(ev: Any, v: Rep, request_id: int) -> None:
    assert isinstance(ev, Frame)
    assert ev.raw == v.wire
    assert ev.protocol == "redis"
    assert same_value(ev.extra, v.value), (ev.extra, v.value)
    if v.push:
        assert ev.stream_type is StreamType.ONEWAY and ev.request_id == 0
    else:
        assert ev.stream_type is StreamType.RESPONSE and ev.request_id == request_id
    assert ev.status == (1 if v.error else 0)


@by_rep
def test_reply_whole(v: Rep) -> None:
    codec = client(1)
    codec.receive_data(v.wire)
    ev = codec.next_event()
    check_reply(ev, v, 1)
    assert codec.next_event() is NEED_DATA
    assert codec.pending_replies() == (1 if v.push else 0)
    codec.receive_data(b"")
    assert codec.next_event() is CLOSED


@by_rep
def test_reply_split_everywhere(v: Rep) -> None:
    for chunks in splits(v.wire):
        events = feed(client(1), chunks, eof=True)
        assert len(events) == 2, chunks
        check_reply(events[0], v, 1)
        assert events[1] is CLOSED


@by_rep
def test_reply_byte_by_byte_needs_data_until_the_last(v: Rep) -> None:
    codec = client(1)
    for i in range(len(v.wire) - 1):
        codec.receive_data(v.wire[i : i + 1])
        assert codec.next_event() is NEED_DATA
    codec.receive_data(v.wire[-1:])
    check_reply(codec.next_event(), v, 1)


@by_rep
def test_reply_trailing_bytes_stay_buffered(v: Rep) -> None:
    codec = client(2)
    codec.receive_data(v.wire + b"$3\r\nab")
    check_reply(codec.next_event(), v, 1)
    assert codec.next_event() is NEED_DATA
    assert codec.buffered == 6
    codec.receive_data(b"c\r\n")
    ev = codec.next_event()
    assert ev.extra == b"abc" and ev.request_id == (1 if v.push else 2)


@by_rep
def test_reply_parse_replies_off_passes_raw_only(v: Rep) -> None:
    codec = RedisCodec(Role.CLIENT, parse_replies=False)
    codec.send(command_frame([b"X"]), 9)
    codec.receive_data(v.wire)
    ev = codec.next_event()
    assert ev.raw == v.wire and ev.extra is None
    assert same_value(parse_reply(ev.raw), v.value)


def test_all_replies_pipelined_fifo_order_and_pushes_out_of_band() -> None:
    stream = b"".join(v.wire for v in REPLIES)
    answers = [v for v in REPLIES if not v.push]
    for chunks in splits(stream):
        codec = RedisCodec(Role.CLIENT)
        for i in range(len(answers)):
            codec.send(command_frame([b"GET", b"k"]), 100 + i)
        events = feed(codec, chunks, eof=True)
        assert events[-1] is CLOSED
        frames = events[:-1]
        assert len(frames) == len(REPLIES)
        i = 0
        for ev, v in zip(frames, REPLIES, strict=True):
            check_reply(ev, v, 100 + i)
            i += 0 if v.push else 1
        assert codec.pending_replies() == 0


def test_client_fifo_matches_replies_to_requests() -> None:
    codec = RedisCodec(Role.CLIENT)
    sent = []
    for rid, args in ((10, [b"SET", b"a", b"1"]), (3, [b"GET", b"a"]), (77, [b"DEL", b"a"])):
        sent += codec.send(command_frame(args), rid)
    assert b"".join(sent) == (
        b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
        b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
        b"*2\r\n$3\r\nDEL\r\n$1\r\na\r\n"
    )
    assert codec.pending_replies() == 3
    codec.receive_data(b"+OK\r\n$1\r\n1\r\n>2\r\n+invalidate\r\n*1\r\n$1\r\na\r\n:1\r\n")
    events = drain(codec)
    assert [(e.stream_type, e.request_id, e.extra) for e in events] == [
        (StreamType.RESPONSE, 10, b"OK"),
        (StreamType.RESPONSE, 3, b"1"),
        (StreamType.ONEWAY, 0, [b"invalidate", [b"a"]]),
        (StreamType.RESPONSE, 77, 1),
    ]
    assert codec.pending_replies() == 0


def test_client_send_uses_raw_else_encodes_extra_args() -> None:
    codec = RedisCodec(Role.CLIENT)
    frame = Frame(StreamType.REQUEST, 5, {}, raw=b"PING\r\n")
    assert codec.send(frame) == [b"PING\r\n"]
    frame = Frame(StreamType.REQUEST, 6, {}, extra=RedisCommand([b"ECHO", b"hi"]))
    assert codec.send(frame) == [b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"]
    codec.receive_data(b"+PONG\r\n$2\r\nhi\r\n")
    assert [e.request_id for e in drain(codec)] == [5, 6]
    with pytest.raises(LocalProtocolError):
        codec.send(Frame(StreamType.REQUEST, 7, {}))  # neither raw nor a RedisCommand
    with pytest.raises(LocalProtocolError):
        codec.send(Frame(StreamType.REQUEST, 7, {}, extra=RedisCommand([])))
    with pytest.raises(LocalProtocolError):
        codec.send(reply_frame(1, b"x"))
    with pytest.raises(LocalProtocolError):
        codec.send(Frame(StreamType.ONEWAY, 1, {}, raw=b"PING\r\n"))
    assert codec.pending_replies() == 0


def test_client_request_limit_is_an_overflow() -> None:
    codec = RedisCodec(Role.CLIENT, limits=CodecLimits(max_pending_frames=2))
    codec.send(command_frame([b"PING"]), 1)
    codec.send(command_frame([b"PING"]), 2)
    with pytest.raises(LocalProtocolError) as exc:
        codec.send(command_frame([b"PING"]), 3)
    assert exc.value.status_hint is ProxyStatus.UPSTREAM_OVERFLOW
    codec.receive_data(b"+PONG\r\n")
    drain(codec)
    codec.send(command_frame([b"PING"]), 3)


def test_client_eof_with_requests_pending_is_closed_on_a_boundary() -> None:
    codec = client(2)
    codec.receive_data(b"+OK\r\n")
    codec.receive_data(b"")
    assert [e if e is CLOSED else e.request_id for e in drain(codec)] == [1, CLOSED]
    assert codec.pending_replies() == 1  # the proxy resets what is still pending


def test_resp3_session_after_hello_3() -> None:
    """HELLO 3 changes nothing in the codec: its map reply and then RESP3 replies parse."""
    codec = RedisCodec(Role.CLIENT)
    for rid, args in enumerate(
        [[b"HELLO", b"3"], [b"HGETALL", b"h"], [b"SMEMBERS", b"s"], [b"EXISTS", b"k"],
         [b"GET", b"nokey"], [b"ZSCORE", b"z", b"m"]], 1,
    ):
        codec.send(command_frame(args), rid)
    hello = next(v for v in REPLIES if v.name == "HELLO 3 reply")
    codec.receive_data(
        hello.wire
        + b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n~1\r\n$1\r\nm\r\n#t\r\n_\r\n,1.5\r\n"
    )
    values = [ev.extra for ev in drain(codec)]
    assert values == [hello.value, {b"f": b"v"}, [b"m"], True, None, 1.5]


# --- the SERVER side: ordering ----------------------------------------------------------------


def decoded(n: int, **kw: Any) -> tuple[RedisCodec, list[Frame]]:
    codec = RedisCodec(Role.SERVER, **kw)
    codec.receive_data(b"".join(encode_literal([b"GET", b"k%d" % i]) for i in range(n)))
    return codec, drain(codec)


def answer(i: int) -> Frame:
    return reply_frame(i, b"v%d" % i)


def test_replies_in_order_go_out_at_once() -> None:
    codec, reqs = decoded(3)
    assert [r.request_id for r in reqs] == [1, 2, 3]
    assert codec.pending_replies() == 3
    for i in (1, 2, 3):
        assert codec.send(answer(i)) == [b"$2\r\nv%d\r\n" % i]
    assert codec.pending_replies() == 0


def test_replies_out_of_order_are_released_in_request_order() -> None:
    codec, _ = decoded(5)
    assert codec.send(answer(3)) == []
    assert codec.send(answer(5)) == []
    assert codec.send(answer(2)) == []
    assert codec.pending_replies() == 5
    assert codec.send(answer(1)) == [b"$2\r\nv1\r\n", b"$2\r\nv2\r\n", b"$2\r\nv3\r\n"]
    assert codec.pending_replies() == 2
    assert codec.send(answer(4)) == [b"$2\r\nv4\r\n", b"$2\r\nv5\r\n"]
    assert codec.pending_replies() == 0


def test_reply_request_id_argument_overrides_the_frame() -> None:
    codec, _ = decoded(2)
    upstream = reply_frame(99, b"x")  # e.g. a frame whose id is an upstream id
    assert codec.send(upstream, 2) == []
    assert codec.send(upstream, 1) == [b"$1\r\nx\r\n", b"$1\r\nx\r\n"]


def test_pipeline_of_1000_answered_in_random_order() -> None:
    codec, reqs = decoded(1000)
    assert [r.request_id for r in reqs] == list(range(1, 1001))
    order = list(range(1, 1001))
    random.Random(3).shuffle(order)
    out: list[Any] = []
    for i in order:
        out += codec.send(answer(i))
    assert out == [b"$%d\r\nv%d\r\n" % (len(b"v%d" % i), i) for i in range(1, 1001)]


@pytest.mark.parametrize(
    ("rid", "why"),
    [(0, "awaits"), (-1, "awaits"), (4, "awaits"), (1, "already"), (3, "already")],
)
def test_reply_for_an_unknown_or_answered_command_is_refused(rid: int, why: str) -> None:
    codec, _ = decoded(3)
    codec.send(answer(1))
    codec.send(answer(3))  # parked
    with pytest.raises(LocalProtocolError, match=why):
        codec.send(reply_frame(rid, b"dup"))
    assert codec.send(answer(2)) == [b"$2\r\nv2\r\n", b"$2\r\nv3\r\n"]


def test_server_sends_replies_and_pushes_only() -> None:
    codec, _ = decoded(1)
    with pytest.raises(LocalProtocolError):
        codec.send(command_frame([b"GET", b"k"]))
    push = Frame(StreamType.ONEWAY, 0, {}, extra=PushNotification([b"message", b"c", b"m"]))
    assert codec.send(push) == [b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"]
    assert codec.pending_replies() == 1


def test_reply_without_raw_is_encoded_from_extra() -> None:
    codec, _ = decoded(2)
    assert codec.send(reply_frame(1, 5).evolve(status=0)) == [b":5\r\n"]  # raw cleared
    assert codec.send(Frame(StreamType.RESPONSE, 2, {})) == [b"$-1\r\n"]  # extra None: nil


def test_reorder_buffer_is_bounded_by_pausing_the_decoder() -> None:
    codec, reqs = decoded(10, limits=CodecLimits(max_pending_frames=3))
    assert [r.request_id for r in reqs] == [1, 2, 3]
    assert codec.paused and codec.next_event() is NEED_DATA
    assert codec.buffered > 0
    codec.send(answer(2))
    assert codec.paused  # 1 is still owed: nothing released
    assert codec.send(answer(1)) == [b"$2\r\nv1\r\n", b"$2\r\nv2\r\n"]
    assert not codec.paused
    more = drain(codec)
    assert [r.request_id for r in more] == [4, 5]
    codec.receive_data(b"")
    for i in range(3, 11):
        codec.send(answer(i))
        if CLOSED not in more:
            more += drain(codec)
    assert [r.request_id if r is not CLOSED else r for r in more] == [
        4, 5, 6, 7, 8, 9, 10, CLOSED,
    ]


# --- errors (SERVER) --------------------------------------------------------------------------

BAD_REQUESTS = [
    (b"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
    (b"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
    (b"*1\r\n*1\r\n$1\r\na\r\n", "Protocol error: expected '$', got '*'"),
    (b"*1\r\n\r\n", "Protocol error: expected '$', got '\\x0d'"),  # no CR in the reply line
    (b"*x\r\n", "Protocol error: invalid multibulk length"),
    (b"*01\r\n", "Protocol error: invalid multibulk length"),
    (b"*+1\r\n", "Protocol error: invalid multibulk length"),
    (b"* 1\r\n", "Protocol error: invalid multibulk length"),
    (b"*1 \r\n", "Protocol error: invalid multibulk length"),
    (b"*-0\r\n", "Protocol error: invalid multibulk length"),
    (b"*1_0\r\n", "Protocol error: invalid multibulk length"),
    (b"*\r\n", "Protocol error: invalid multibulk length"),
    (b"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"),
    (b"*" + b"1" * 30, "Protocol error: invalid multibulk length"),  # no CRLF in sight
    (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$01\r\na\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$+1\r\na\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$-\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$" + b"9" * 30, "Protocol error: invalid bulk length"),
    (b"*1\r\n$3\r\nabcXY", "Protocol error: bulk string not followed by CRLF"),
    (b"*1\r\n$1\r\na\nX", "Protocol error: bulk string not followed by CRLF"),
    (b'SET k "abc\r\n', "Protocol error: unbalanced quotes in request"),
    (b'SET k "a"b\r\n', "Protocol error: unbalanced quotes in request"),
    (b"SET k 'abc\r\n", "Protocol error: unbalanced quotes in request"),
    (b"GET " + b"k" * (64 * 1024), "Protocol error: too big inline request"),
]


@pytest.mark.parametrize(("wire", "message"), BAD_REQUESTS, ids=lambda x: repr(x)[:40])
def test_bad_request(wire: bytes, message: str) -> None:
    for chunks in ([wire], [wire[:1], wire[1:]]):
        codec = server()
        codec.receive_data(b"PING\r\n")
        assert commands(drain(codec)) == [[b"PING"]]
        with pytest.raises(RemoteProtocolError) as exc:
            feed(codec, chunks)
        err = exc.value
        assert str(err) == message
        assert err.status_hint is ProxyStatus.CODEC_ERROR
        assert err.protocol == "redis"
        assert err.request_id == 2  # the id its error reply takes
        assert codec.state is CodecState.ERROR
        with pytest.raises(RemoteProtocolError, match="Protocol error"):
            codec.next_event()  # stays in ERROR
        codec.receive_data(b"PING\r\n")  # dropped
        assert codec.buffered == 0
        assert codec.state is CodecState.ERROR


def test_error_reply_follows_the_earlier_replies() -> None:
    codec = server()
    codec.receive_data(b"GET a\r\nGET b\r\n*1\r\n$x\r\n")
    reqs = []
    with pytest.raises(RemoteProtocolError) as exc:
        while True:
            ev = codec.next_event()
            reqs.append(ev)
    assert [r.request_id for r in reqs] == [1, 2]
    assert codec.pending_replies() == 2
    assert codec.error_reply_for(exc.value) == []  # queued behind replies 1 and 2
    assert codec.error_reply_for(exc.value) == []  # once only
    assert codec.pending_replies() == 3
    assert codec.send(answer(2)) == []
    assert codec.send(answer(1)) == [
        b"$2\r\nv1\r\n", b"$2\r\nv2\r\n", b"-ERR Protocol error: invalid bulk length\r\n",
    ]
    assert codec.pending_replies() == 0


def test_error_reply_frame_for_the_l7_proxy() -> None:
    codec = server()
    codec.receive_data(b"*1\r\n:1\r\n")
    with pytest.raises(RemoteProtocolError) as exc:
        codec.next_event()
    frame = codec.error_reply(str(exc.value))
    assert frame is not None
    assert frame.request_id == exc.value.request_id == 1
    assert frame.raw == b"-ERR Protocol error: expected '$', got ':'\r\n"
    assert frame.status == 1
    assert frame.extra == RedisError("ERR Protocol error: expected '$', got ':'")
    assert codec.send(frame) == [frame.raw]
    custom = codec.error_reply("bye\r\nnow")
    assert custom is not None and custom.raw == b"-ERR bye  now\r\n"


def test_no_error_reply_when_not_in_error_or_on_the_client() -> None:
    assert server().error_reply() is None
    assert server().error_reply_for(RuntimeError("x")) == []
    codec = client()
    codec.receive_data(b"+unsolicited\r\n")
    with pytest.raises(RemoteProtocolError):
        codec.next_event()
    assert codec.error_reply() is None and codec.error_reply_for(RuntimeError()) == []


@pytest.mark.parametrize(
    "wire", [b"*1\r\n$4\r\nPI", b"*2\r\n$4\r\nPING\r\n", b"*", b"PING", b"GET k\r"]
)
def test_eof_inside_a_command_is_an_error(wire: bytes) -> None:
    codec = server()
    codec.receive_data(wire)
    assert codec.next_event() is NEED_DATA
    codec.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="connection closed in the middle"):
        codec.next_event()
    assert codec.pending_replies() == 0  # nothing owed: the proxy may close at once


def test_receive_after_eof_is_a_caller_bug() -> None:
    codec = server()
    codec.receive_data(b"")
    with pytest.raises(RuntimeError):
        codec.receive_data(b"PING\r\n")
    assert codec.next_event() is CLOSED
    codec.receive_data(b"")  # a second EOF is harmless
    with pytest.raises(RuntimeError):
        codec.receive_data(b"PING\r\n")


# --- errors (CLIENT) --------------------------------------------------------------------------

BAD_REPLIES = [
    (b"?x\r\n", "unknown reply type byte"),
    (b"$-2\r\n", "invalid bulk length"),
    (b"$x\r\n", "invalid bulk length"),
    (b"$01\r\na\r\n", "invalid bulk length"),
    (b"!-1\r\n", "invalid bulk length"),
    (b"=-1\r\n", "invalid bulk length"),
    (b"$1\r\nabc\r\n", "bulk string not followed by CRLF"),
    (b"$10\r\n0123456789XX", "bulk string not followed by CRLF"),
    (b"*-2\r\n", "invalid multibulk length"),
    (b"%-1\r\n", "invalid multibulk length"),
    (b">-1\r\n", "invalid multibulk length"),
    (b"*x\r\n", "invalid multibulk length"),
    (b"_x\r\n", "bad null"),
    (b"#x\r\n", "bad boolean"),
    (b"#tt\r\n", "bad boolean"),
    (b":abc\r\n", "malformed reply value"),  # leaves are checked when parsed
    (b",1.2.3\r\n", "malformed reply value"),
    (b"=2\r\nab\r\n", "malformed reply value"),  # verbatim without its format
    (b"*1\r\n" * 40 + b":1\r\n", "nested deeper than"),
]


@pytest.mark.parametrize(("wire", "message"), BAD_REPLIES, ids=lambda x: repr(x)[:30])
def test_bad_reply(wire: bytes, message: str) -> None:
    codec = client(1)
    codec.receive_data(wire)
    with pytest.raises(RemoteProtocolError, match=message) as exc:
        codec.next_event()
    assert exc.value.status_hint is ProxyStatus.CODEC_ERROR
    assert exc.value.request_id is None
    assert codec.state is CodecState.ERROR
    with pytest.raises(RemoteProtocolError):
        codec.next_event()


def test_reply_with_no_request_pending_is_an_error() -> None:
    codec = client(0)
    codec.receive_data(b"+OK\r\n")
    with pytest.raises(RemoteProtocolError, match="no request pending"):
        codec.next_event()


def test_eof_inside_a_reply_is_an_error() -> None:
    codec = client(1)
    codec.receive_data(b"*2\r\n:1\r\n")
    assert codec.next_event() is NEED_DATA
    codec.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="middle of a reply"):
        codec.next_event()


# --- limits: refused at once, nothing allocated -----------------------------------------------


@pytest.mark.parametrize(
    ("role", "wire"),
    [
        (Role.SERVER, b"*2147483647\r\n"),
        (Role.SERVER, b"*9223372036854775807\r\n"),
        (Role.SERVER, b"*1\r\n$1099511627776\r\n"),
        (Role.SERVER, b"*1\r\n$9223372036854775807\r\n"),
        (Role.CLIENT, b"*2147483647\r\n"),
        (Role.CLIENT, b"*1\r\n*2147483647\r\n"),
        (Role.CLIENT, b"%2147483647\r\n"),
        (Role.CLIENT, b"$1099511627776\r\n"),
        (Role.CLIENT, b"~1\r\n!1099511627776\r\n"),
    ],
)
def test_huge_claims_are_refused_at_once_without_allocating(role: Role, wire: bytes) -> None:
    codec = RedisCodec(role)
    if role is Role.CLIENT:
        codec.send(command_frame([b"X"]), 1)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        codec.receive_data(wire)
        with pytest.raises(RemoteProtocolError, match=r"invalid (multi)?bulk length"):
            codec.next_event()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.1
    assert peak < 64 * 1024


def test_max_frame_size_bounds_bulk_and_command_and_inline() -> None:
    limits = CodecLimits(max_frame_size=100)
    codec = RedisCodec(Role.SERVER, limits=limits)
    codec.receive_data(b"*1\r\n$101\r\n")
    with pytest.raises(RemoteProtocolError, match="invalid bulk length"):
        codec.next_event()
    codec = RedisCodec(Role.SERVER, limits=limits)
    codec.receive_data(b"*2\r\n$50\r\n" + b"a" * 50 + b"\r\n$50\r\n")
    with pytest.raises(RemoteProtocolError, match="command larger than 100 bytes"):
        codec.next_event()
    codec = RedisCodec(Role.SERVER, limits=limits)
    codec.receive_data(b"*17\r\n")  # 17 arguments cannot fit in 100 bytes
    with pytest.raises(RemoteProtocolError, match="invalid multibulk length"):
        codec.next_event()
    codec = RedisCodec(Role.SERVER, limits=limits)
    codec.receive_data(b"GET " + b"k" * 100)
    with pytest.raises(RemoteProtocolError, match="too big inline request"):
        codec.next_event()
    codec = RedisCodec(Role.SERVER, limits=limits)
    codec.receive_data(b"*2\r\n$3\r\nGET\r\n$80\r\n" + b"k" * 80 + b"\r\n")  # exactly 100
    assert commands(drain(codec)) == [[b"GET", b"k" * 80]]


def test_max_frame_size_bounds_replies() -> None:
    limits = CodecLimits(max_frame_size=64)
    for wire, message in (
        (b"$100\r\n", "invalid bulk length"),
        (b"$60\r\n", "reply larger than 64 bytes"),
        (b"+" + b"x" * 80, "reply larger than 64 bytes"),
        (b"*30\r\n", "invalid multibulk length"),
        (b"*10\r\n" + b"$3\r\nabc\r\n" * 10, "reply larger than 64 bytes"),
    ):
        codec = RedisCodec(Role.CLIENT, limits=limits)
        codec.send(command_frame([b"X"]), 1)
        codec.receive_data(wire)
        with pytest.raises(RemoteProtocolError, match=message):
            codec.next_event()
    # Counts pass their first check (3 elements of at least 3 bytes fit) but the nested
    # headers make the reply outgrow the limit: caught complete or not.
    nested = b"*1\r\n_\r\n" * 2 + b"_\r\n"  # 17 bytes
    for wire in (b"*3\r\n" + nested, b"*4\r\n" + nested + b"#"):
        codec = RedisCodec(Role.CLIENT, limits=CodecLimits(max_frame_size=20))
        codec.send(command_frame([b"X"]), 1)
        codec.receive_data(wire)
        with pytest.raises(RemoteProtocolError, match="reply larger than 20 bytes"):
            codec.next_event()
    codec = RedisCodec(Role.CLIENT, limits=limits)
    codec.send(command_frame([b"X"]), 1)
    codec.receive_data(b"$57\r\n" + b"v" * 57 + b"\r\n")  # exactly 64
    assert codec.next_event().extra == b"v" * 57


def test_large_value_arriving_in_small_reads_is_walked_once() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n" + value + b"\r\n"
    codec = server()
    events: list[Any] = []
    for i in range(0, len(wire), 1000):
        codec.receive_data(wire[i : i + 1000])
        events += drain(codec)
    assert commands(events) == [[b"SET", b"k", value]]
    reply = b"*2\r\n$1048576\r\n" + value + b"\r\n:1\r\n"
    codec = client(1)
    for i in range(0, len(reply), 1000):
        codec.receive_data(reply[i : i + 1000])
        events = drain(codec)
    assert events[0].extra == [value, 1] and events[0].raw == reply


def test_many_argument_command_in_small_reads_is_linear() -> None:
    args = [b"DEL"] + [b"key:%d" % i for i in range(100_000)]
    wire = encode_literal(args)
    codec = server()
    started = time.perf_counter()
    events: list[Any] = []
    for i in range(0, len(wire), 512):
        codec.receive_data(wire[i : i + 512])
        events += drain(codec)
    assert time.perf_counter() - started < 10  # quadratic re-walking would take minutes
    assert commands(events) == [args]


# --- encoding: golden bytes -------------------------------------------------------------------

ENCODINGS: list[tuple[Any, bytes, bytes]] = [  # value, RESP2, RESP3
    (b"hello", b"$5\r\nhello\r\n", b"$5\r\nhello\r\n"),
    (bytearray(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    (memoryview(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    ("h\u00e9", b"$3\r\nh\xc3\xa9\r\n", b"$3\r\nh\xc3\xa9\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (0, b":0\r\n", b":0\r\n"),
    (-7, b":-7\r\n", b":-7\r\n"),
    (2**64, b"$20\r\n18446744073709551616\r\n", b"(18446744073709551616\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (math.inf, b"$3\r\ninf\r\n", b",inf\r\n"),
    (-math.inf, b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (math.nan, b"$3\r\nnan\r\n", b",nan\r\n"),
    (SimpleString("OK"), b"+OK\r\n", b"+OK\r\n"),
    (RedisError("ERR no\r\nway"), b"-ERR no  way\r\n", b"-ERR no  way\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
    ((b"a",), b"*1\r\n$1\r\na\r\n", b"*1\r\n$1\r\na\r\n"),
    ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
    (Map([(b"k", [1])]), b"%1\r\n$1\r\nk\r\n*1\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n*1\r\n:1\r\n"),
    ({b"m"}, b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
    (PushNotification([b"x"]), b">1\r\n$1\r\nx\r\n", b">1\r\n$1\r\nx\r\n"),
    ([[1, [2]]], b"*1\r\n*2\r\n:1\r\n*1\r\n:2\r\n", b"*1\r\n*2\r\n:1\r\n*1\r\n:2\r\n"),
    (StreamType.RESPONSE, b":2\r\n", b":2\r\n"),  # an IntEnum: its int value
]


@pytest.mark.parametrize(("value", "resp2", "resp3"), ENCODINGS, ids=lambda x: repr(x)[:30])
def test_encode_reply(value: Any, resp2: bytes, resp3: bytes) -> None:
    assert encode_reply(value) == resp2
    assert encode_reply(value, resp3=True) == resp3


def test_encode_reply_refuses_what_resp_cannot_say() -> None:
    loop: list[Any] = []
    loop.append(loop)
    for bad in (object(), SimpleString("a\r\nb"), loop, {1.5j}):
        with pytest.raises(LocalProtocolError):
            encode_reply(bad)


def test_encode_command() -> None:
    assert encode_command([b"SET", b"k", b"v"]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
    assert encode_command(("INCRBY", "k\u00e9", 5)) == (
        b"*3\r\n$6\r\nINCRBY\r\n$3\r\nk\xc3\xa9\r\n$1\r\n5\r\n"
    )
    assert encode_command([b"X", bytearray(b"b"), memoryview(b"m"), True, 2.5]) == (
        b"*5\r\n$1\r\nX\r\n$1\r\nb\r\n$1\r\nm\r\n$1\r\n1\r\n$3\r\n2.5\r\n"
    )
    for bad in ([], [b"X", None], [b"X", object()]):
        with pytest.raises(LocalProtocolError):
            encode_command(bad)  # type: ignore[arg-type]


def test_command_frame() -> None:
    frame = command_frame([b"MGET", "a", 1])
    assert frame.stream_type is StreamType.REQUEST and frame.protocol == "redis"
    assert frame.extra == RedisCommand([b"MGET", b"a", b"1"])
    assert frame.raw == b"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert command_frame([b"x", 1.5, True, bytearray(b"y")]).extra.args == [
        b"x", b"1.5", b"1", b"y",
    ]


def test_reply_and_error_frames() -> None:
    f = reply_frame(4, [b"a", None])
    assert (f.stream_type, f.request_id, f.status, f.extra) == (
        StreamType.RESPONSE, 4, 0, [b"a", None],
    )
    assert f.raw == b"*2\r\n$1\r\na\r\n$-1\r\n"
    assert reply_frame(1, {b"a": 1}, resp3=True).raw == b"%1\r\n$1\r\na\r\n:1\r\n"
    assert reply_frame(1, RedisError("ERR x")).status == 1
    e = error_frame(2, "NOAUTH Authentication required.")
    assert e.raw == b"-NOAUTH Authentication required.\r\n" and e.status == 1
    assert e.extra == RedisError("NOAUTH Authentication required.")
    assert error_reply(3, "no such thing").raw == b"-ERR no such thing\r\n"


LOCAL_REPLIES = [
    (ProxyStatus.OK, "", b"+OK\r\n"),
    (ProxyStatus.ROUTE_NOT_FOUND, "", b"-ERR no route\r\n"),
    (ProxyStatus.ROUTE_NOT_FOUND, "no route for this key", b"-ERR no route for this key\r\n"),
    (ProxyStatus.NO_HEALTHY_UPSTREAM, "", b"-ERR no healthy upstream\r\n"),
    (
        ProxyStatus.NO_HEALTHY_UPSTREAM,
        "cluster 'c' not found",
        b"-ERR no healthy upstream: cluster 'c' not found\r\n",
    ),
    (ProxyStatus.UPSTREAM_CONNECT_FAILED, "", b"-ERR upstream connect failed\r\n"),
    (ProxyStatus.UPSTREAM_RESET, "", b"-ERR upstream connection reset\r\n"),
    (
        ProxyStatus.UPSTREAM_OVERFLOW,
        "upstream overflow (max_requests)",
        b"-ERR upstream overflow (max_requests)\r\n",
    ),
    (ProxyStatus.TIMEOUT, "", b"-ERR upstream timeout\r\n"),
    (ProxyStatus.TIMEOUT, "request timed out", b"-ERR upstream timeout: request timed out\r\n"),
    (ProxyStatus.CODEC_ERROR, "", b"-ERR Protocol error\r\n"),
    (
        ProxyStatus.CODEC_ERROR,
        "Protocol error: invalid bulk length",
        b"-ERR Protocol error: invalid bulk length\r\n",
    ),
    (ProxyStatus.DRAINING, "", b"-ERR proxy is draining\r\n"),
    (ProxyStatus.INTERNAL_ERROR, "oops\nhere", b"-ERR internal proxy error: oops here\r\n"),
]


@pytest.mark.parametrize(("status", "message", "wire"), LOCAL_REPLIES)
def test_local_reply(status: ProxyStatus, message: str, wire: bytes) -> None:
    codec, (req,) = decoded(1)
    reply = codec.local_reply(req, status, message)
    assert reply.raw == wire and reply.request_id == 1
    assert reply.status == (0 if status is ProxyStatus.OK else 1)
    assert codec.send(reply) == [wire]
    assert status_reply(1, status, message).raw == wire
    assert local_reply_text(status, message) == wire[1:-2].decode()


def test_every_status_has_a_local_reply() -> None:
    for status in ProxyStatus:
        assert status_reply(1, status).raw.endswith(b"\r\n")


def test_local_reply_needs_a_request() -> None:
    with pytest.raises(LocalProtocolError):
        server().local_reply(reply_frame(1, b"x"), ProxyStatus.TIMEOUT)


@by_rep
def test_spec_reader_agrees_with_hiredis(v: Rep) -> None:
    """The pure-Python fallback reader gives what the codec gives (hiredis where it can)."""
    assert same_value(spec_value(v.wire), v.value)


@pytest.mark.parametrize(
    "wire",
    [b"", b"$-2\r\n", b"$3\r\nab\r\n", b"$2\r\nabcd", b"_x\r\n", b"#x\r\n", b"*-2\r\n",
     b"%-1\r\n", b"?\r\n", b"*1\r\n" * 40 + b":1\r\n", b"$1\r\na\r\n+x\r\n", b"=2\r\nab\r\n",
     b":1.5\r\n", b"+OK"],
)
def test_spec_reader_refuses_malformed_values(wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        spec_value(wire)


def test_value_types() -> None:
    assert hash(RedisError("ERR x")) == hash(RedisError("ERR x"))
    assert RedisError("ERR x") != RedisError("ERR y") and RedisError().message == ""
    assert RedisError("ERR x") != "ERR x"
    assert SimpleString("OK") == "OK"
    assert Map({b"a": 1}) == Map([(b"a", 1)]) and Map() != Map([(1, 2)])
    assert "Map" in repr(Map()) and "RedisError" in repr(RedisError("E"))

    class Key(bytes):
        pass

    assert encode_reply(Key(b"k")) == b"$1\r\nk\r\n"
    assert encode_command([b"X", "\u00e9", bytearray(b"y")]) == (
        b"*3\r\n$1\r\nX\r\n$2\r\n\xc3\xa9\r\n$1\r\ny\r\n"
    )


def test_parse_reply_is_safe_on_any_bytes() -> None:
    assert parse_reply(b"*2\r\n:1\r\n$1\r\na\r\n") == [1, b"a"]
    for bad in (b"", b"+OK", b"+OK\r\n+OK\r\n", b"*2147483647\r\n", b"?\r\n"):
        with pytest.raises(RemoteProtocolError):
            parse_reply(bad)


def test_class_attributes() -> None:
    assert RedisCodec.protocol == "redis"
    assert RedisCodec.pool_mode is PoolMode.PIPELINE


# --- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "verdict"),
    [
        (b"", MatchResult.NEED_MORE),
        (b"*", MatchResult.NEED_MORE),
        (b"*3", MatchResult.NEED_MORE),
        (b"*3\r", MatchResult.NEED_MORE),
        (b"*3\r\n", MatchResult.NEED_MORE),
        (b"*3\r\n$", MatchResult.MATCH),
        (b"*12\r\n$4\r\nMSET\r\n", MatchResult.MATCH),
        (b"*0\r\n", MatchResult.NO_MATCH),
        (b"*01\r\n$", MatchResult.NO_MATCH),
        (b"*3\r\n:", MatchResult.NO_MATCH),
        (b"*3\n$", MatchResult.NO_MATCH),
        (b"*x", MatchResult.NO_MATCH),
        (b"*12345678901\r\n$", MatchResult.NO_MATCH),
        (b"PING\r\n", MatchResult.MATCH),
        (b"ping\n", MatchResult.MATCH),
        (b"PIN", MatchResult.NEED_MORE),
        (b"AUTH secret\r\n", MatchResult.MATCH),
        (b"info server\r\n", MatchResult.MATCH),
        (b"HELLO 3\r\n", MatchResult.MATCH),
        (b"DEL", MatchResult.NEED_MORE),
        (b"DELETE /x HTTP/1.1\r\n", MatchResult.NO_MATCH),  # HTTP
        (b"GET / HTTP/1.1\r\n", MatchResult.NO_MATCH),  # HTTP (and memcached's get)
        (b"get k\r\n", MatchResult.NO_MATCH),  # memcached text protocol
        (b"set k 0 0 1\r\n", MatchResult.NO_MATCH),
        (b"PRI * HTTP/2.0\r\n", MatchResult.NO_MATCH),
        (b"\x16\x03\x01", MatchResult.NO_MATCH),  # TLS
        (b"\x01\x01\x00\x01", MatchResult.NO_MATCH),  # Bolt
        (b"\x80\x00", MatchResult.NO_MATCH),  # memcached binary
        (b"PINGPONGPINGPONGPINGPONG", MatchResult.NO_MATCH),
    ],
)
def test_match(prefix: bytes, verdict: MatchResult) -> None:
    assert match(prefix) is verdict
    assert RedisCodec.match(bytearray(prefix)) is verdict
    assert RedisCodec.match(memoryview(prefix)) is verdict


# --- hiredis facts the design rests on --------------------------------------------------------


def test_hiredis_preallocates_aggregates_which_is_why_headers_are_checked_first() -> None:
    """hiredis refuses a count above 2**32-1 but allocates any count below it before a
    single element is read; the framer must see every count first."""
    reader = hiredis.Reader()
    reader.feed(b"*4294967296\r\n")
    with pytest.raises(hiredis.ProtocolError):
        reader.gets()
    reader = hiredis.Reader()
    reader.feed(b"*3\r\n")
    assert reader.gets() is False  # allocated a 3-slot list, waits for the elements


# --- a real redis-server ----------------------------------------------------------------------

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_port() -> Iterator[int]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--protected-mode", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def roundtrip(port: int, requests: list[list[bytes]]) -> list[Frame]:
    """Send ``requests`` as one pipeline over a plain socket; decode every reply."""
    codec = RedisCodec(Role.CLIENT)
    out: list[bytes | bytearray | memoryview] = []
    for i, args in enumerate(requests, 1):
        out += codec.send(command_frame(args), i)
    frames: list[Frame] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(out))
        while len(frames) < len(requests):
            data = sock.recv(65536)
            assert data, "redis-server closed the connection"
            codec.receive_data(data)
            frames += [ev for ev in drain(codec) if isinstance(ev, Frame)]
    assert [f.request_id for f in frames] == list(range(1, len(requests) + 1))
    return frames


def test_real_redis_server_pipeline(redis_port: int) -> None:
    requests = [
        [b"SET", b"k1", b"v1"],
        [b"SET", b"k2", b"\r\n\x00binary"],
        [b"GET", b"k1"],
        [b"MGET", b"k1", b"k2", b"missing"],
        [b"DEL", b"k1", b"missing"],
        [b"RPUSH", b"list", b"a", b"b", b"c"],
        [b"LRANGE", b"list", b"0", b"-1"],
        [b"INCR", b"counter"],
        [b"INCR", b"k2"],  # not an integer: an error reply
        [b"NOSUCHCOMMAND"],
        [b"HSET", b"hash", b"f1", b"x", b"f2", b"y"],
        [b"HGETALL", b"hash"],  # RESP2: a flat array
        [b"HELLO", b"3"],
        [b"HGETALL", b"hash"],  # RESP3: a map
        [b"SADD", b"set", b"m"],
        [b"SMEMBERS", b"set"],  # RESP3: a set
        [b"ZADD", b"z", b"1.5", b"m"],
        [b"ZSCORE", b"z", b"m"],  # RESP3: a double
        [b"GET", b"missing"],  # RESP3: _
        [b"EXISTS", b"k2"],
        [b"INCR", b"k2"],  # RESP3 error
    ]
    frames = roundtrip(redis_port, requests)
    values = [f.extra for f in frames]
    assert values[:8] == [
        b"OK", b"OK", b"v1", [b"v1", b"\r\n\x00binary", None], 1, 3, [b"a", b"b", b"c"], 1,
    ]
    assert isinstance(values[8], RedisError) and values[8].message.startswith("ERR value is not")
    assert frames[8].status == 1 and frames[8].raw.startswith(b"-ERR value is not")
    assert isinstance(values[9], RedisError) and "unknown command" in values[9].message
    assert values[10] == 2
    assert values[11] == [b"f1", b"x", b"f2", b"y"]
    assert isinstance(values[12], dict) and values[12][b"proto"] == 3
    assert frames[12].raw.startswith(b"%")
    assert values[13] == {b"f1": b"x", b"f2": b"y"} and frames[13].raw.startswith(b"%2\r\n")
    assert values[14] == 1
    assert values[15] == [b"m"] and frames[15].raw.startswith(b"~1\r\n")
    assert values[16] == 1
    assert values[17] == 1.5 and frames[17].raw == b",1.5\r\n"
    assert values[18] is None and frames[18].raw == b"_\r\n"
    assert values[19] == 1
    assert isinstance(values[20], RedisError) and frames[20].status == 1
    # Every raw reply is exactly what hiredis reads as one reply.
    for f in frames:
        reader = hiredis.Reader()
        reader.feed(f.raw)
        assert reader.gets() is not False and not reader.has_data()


def test_real_redis_server_answers_our_encodings_and_errors(redis_port: int) -> None:
    """The SERVER codec's view of a command and redis-server's agree: what we decode and
    re-encode (inline -> multibulk) is executed identically."""
    wire = b'SET "a b" "x\\x41y"\r\n*2\r\n$3\r\nGET\r\n$3\r\na b\r\nECHO \'it\\\'s\'\r\n'
    codec = server()
    codec.receive_data(wire)
    reqs = drain(codec)
    frames = roundtrip(redis_port, [r.extra.args for r in reqs])
    assert [f.extra for f in frames] == [b"OK", b"xAy", b"it's"]
    # and the raw inline bytes mean the same to redis-server
    with socket.create_connection(("127.0.0.1", redis_port), timeout=10) as sock:
        sock.sendall(b"".join(r.raw for r in reqs))
        got = client(3)
        events: list[Any] = []
        while len(events) < 3:
            got.receive_data(sock.recv(65536))
            events += drain(got)
    assert [e.extra for e in events] == [b"OK", b"xAy", b"it's"]
