"""Hypothesis properties of the HTTP/2 codec (STYLE 2.7):

- exchange: random requests and responses (random headers, bodies split into random
  DataFrames, optional trailers, bodies past the flow-control windows) between our SERVER
  and our CLIENT codec arrive intact, whatever sizes the byte streams are cut into, and
  both codecs end with nothing pending and no stream left;
- chunking invariance: a captured client byte stream decodes to the same events fed whole
  or split at random offsets;
- robustness (h11's fuzz invariant): random or mutated bytes after a valid preface only
  ever give events, NEED_DATA or RemoteProtocolError -- never another exception -- and an
  error leaves the codec in ERROR with a GOAWAY queued.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes
from hyperframe.frame import Frame as RawFrame
from hyperframe.frame import GoAwayFrame
from hypothesis import HealthCheck, event, given, settings
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
from mosn_py.codecs.http2 import CodecState, Http2Codec
from mosn_py.errors import RemoteProtocolError

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Names h2 treats specially on one side or the other (cookie crumbs are re-joined, Host is
# checked against :authority, content-length against the body, hop-by-hop fields dropped).
SPECIAL = {
    "cookie",
    "host",
    "content-length",
    "te",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
}
name_st = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=10).filter(
    lambda s: s not in SPECIAL
)
# any latin-1 octet a field value may hold (RFC 9113 §8.2.1): no NUL/CR/LF, and no outer
# ASCII whitespace (h2 strips what ``bytes.strip()`` strips before sending)
value_st = st.text(st.characters(codec="latin-1", exclude_characters="\x00\r\n"), max_size=20).map(
    lambda s: s.strip(" \t\x0b\x0c")
)
fields_st = st.lists(st.tuples(name_st, value_st), max_size=5)
# mostly small parts; one in ten is larger than a stream window (65535), so flow control
# and pending data take part
part_st = st.integers(0, 9).flatmap(
    lambda k: (
        st.integers(66_000, 100_000).map(lambda n: bytes([k + 65]) * n)
        if k == 0
        else st.binary(max_size=2000)
    )
)
# feed sizes: some tiny (split frames everywhere), at least one large (keep runs short)
cuts_st = st.tuples(
    st.lists(st.one_of(st.integers(1, 64), st.integers(1024, 70_000)), max_size=5),
    st.integers(1024, 70_000),
).map(lambda t: [*t[0], t[1]])


@dataclass
class Message:
    head: list[tuple[str, str]]
    parts: list[bytes]
    trailers: list[tuple[str, str]] | None

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


@st.composite
def messages(draw: Any, *, response: bool) -> Message:
    if response:
        pseudo = [(":status", str(draw(st.sampled_from([200, 201, 404, 500, 503]))))]
    else:
        pseudo = [
            (":method", draw(st.sampled_from(["GET", "POST", "PUT"]))),
            (":scheme", "http"),
            (":authority", "example.com"),
            (":path", "/" + draw(name_st)),
        ]
    parts = draw(st.lists(part_st, max_size=3))
    trailers = draw(
        st.one_of(st.none(), st.lists(st.tuples(name_st, value_st), min_size=1, max_size=3))
    )
    return Message(pseudo + draw(fields_st), parts, trailers)


def send_message(codec: Http2Codec, msg: Message, sid: int | None) -> tuple[int, list[bytes]]:
    response = sid is not None
    end_on_head = not msg.parts and msg.trailers is None
    head = Frame(
        StreamType.RESPONSE if response else StreamType.REQUEST,
        sid or 0,
        HeaderList(msg.head),
        b"",
        int(msg.head[0][1]) if response else 0,
        end_stream=end_on_head,
    )
    out: list[bytes] = []
    if response:
        assert sid is not None
        out += codec.send(head)
    else:
        sid, bufs = codec.send_request(head)
        out += bufs
    for i, part in enumerate(msg.parts):
        last = i == len(msg.parts) - 1 and msg.trailers is None
        out += codec.send(DataFrame(sid, part, last))
    if msg.trailers is not None:
        out += codec.send(TrailersFrame(sid, HeaderList(msg.trailers)))
    return sid, out


class Received:
    def __init__(self) -> None:
        self.head: Frame | None = None
        self.body = bytearray()
        self.trailers: list[tuple[str, str]] | None = None
        self.ended = False

    def add(self, ev: Any) -> None:
        assert not self.ended, ev
        if isinstance(ev, Frame):
            assert self.head is None
            self.head = ev
            self.ended = ev.end_stream
        elif isinstance(ev, DataFrame):
            self.body += ev.data
            self.ended = ev.end_stream
        elif isinstance(ev, TrailersFrame):
            self.trailers = list(ev.trailers.items_all())
            self.ended = True
        else:
            raise AssertionError(f"unexpected {ev!r}")

    def matches(self, msg: Message) -> bool:
        assert self.head is not None and self.ended
        assert list(self.head.headers.items_all()) == msg.head
        assert bytes(self.body) == msg.body
        assert self.trailers == msg.trailers
        return True


def pull(codec: Http2Codec, got: dict[int, Received]) -> list[int]:
    """Pull every event, consume DATA at once; returns the streams that just ended."""
    ended = []
    while (ev := codec.next_event()) is not NEED_DATA:
        assert not isinstance(ev, (ResetFrame, ConnectionEvent)), ev
        sid = ev.request_id if isinstance(ev, Frame) else ev.stream_id
        rec = got.setdefault(sid, Received())
        rec.add(ev)
        if isinstance(ev, DataFrame):
            codec.consumed(sid, len(ev.data))
        if rec.ended:
            ended.append(sid)
    return ended


def run_exchange(
    requests: list[Message], responses: list[Message], cuts: list[int]
) -> tuple[bytes, dict[int, Received], dict[int, Received]]:
    server, client = Http2Codec(Role.SERVER), Http2Codec(Role.CLIENT)
    c2s = bytearray(b"".join(client.initiate()))
    s2c = bytearray(b"".join(server.initiate()))
    captured = bytearray()
    answer: dict[int, Message] = {}
    for req, resp in zip(requests, responses, strict=True):
        sid, out = send_message(client, req, None)
        answer[sid] = resp
        c2s += b"".join(out)
    at_server: dict[int, Received] = {}
    at_client: dict[int, Received] = {}
    to_server, to_client = itertools.cycle(cuts), itertools.cycle(cuts)
    for _ in range(10_000):
        if not c2s and not s2c:
            break
        while c2s:  # everything the client wrote, in pieces of the drawn sizes
            n = next(to_server)
            piece = bytes(c2s[:n])
            del c2s[:n]
            captured += piece
            server.receive_data(piece)
            for sid in pull(server, at_server):
                s2c += b"".join(send_message(server, answer[sid], sid)[1])
        s2c += b"".join(server.data_to_send())
        while s2c:
            n = next(to_client)
            piece = bytes(s2c[:n])
            del s2c[:n]
            client.receive_data(piece)
            pull(client, at_client)
        c2s += b"".join(client.data_to_send())
    assert not c2s and not s2c, "exchange did not settle"
    for codec in (server, client):
        assert codec.pending_total == 0 and codec.active_streams == 0
    return bytes(captured), at_server, at_client


exchange_st = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.lists(messages(response=False), min_size=n, max_size=n),
        st.lists(messages(response=True), min_size=n, max_size=n),
        cuts_st,
    )
)


@SETTINGS
@given(exchange_st)
def test_random_exchanges_arrive_intact(
    case: tuple[list[Message], list[Message], list[int]],
) -> None:
    requests, responses, cuts = case
    big = any(len(m.body) > 65535 for m in requests + responses)
    event("a body beyond the stream window" if big else "bodies within the window")
    _, at_server, at_client = run_exchange(requests, responses, cuts)
    sids = sorted(at_server)
    assert sids == sorted(at_client) == list(range(1, 2 * len(requests), 2))
    for sid, req, resp in zip(sids, requests, responses, strict=True):
        assert at_server[sid].matches(req)
        assert at_client[sid].matches(resp)
        head = at_client[sid].head
        assert head is not None and head.status == int(resp.head[0][1])


def decode_all(data: bytes, cuts: list[int]) -> list[Any]:
    codec = Http2Codec(Role.SERVER, settings={SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    events: list[Any] = []
    pos = 0
    for n in itertools.cycle(cuts):
        if pos >= len(data):
            break
        codec.receive_data(data[pos : pos + n])
        pos += n
        while (ev := codec.next_event()) is not NEED_DATA:
            events.append(ev)
    codec.receive_data(b"")
    assert codec.next_event() is ConnectionEvent.CLOSED
    return events


@SETTINGS
@given(exchange_st, cuts_st)
def test_chunking_invariance(
    case: tuple[list[Message], list[Message], list[int]], splits: list[int]
) -> None:
    requests, responses, cuts = case
    captured, _, _ = run_exchange(requests, responses, cuts)
    whole = decode_all(captured, [len(captured)])
    assert decode_all(captured, splits) == whole
    assert sum(isinstance(e, Frame) for e in whole) == len(requests)


# --- robustness --------------------------------------------------------------------------------

_OK = (Frame, DataFrame, TrailersFrame, ResetFrame)


def client_start() -> bytes:
    conn = H2Connection(H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1, [(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/")]
    )
    conn.send_data(1, b"hello")
    return conn.data_to_send()


START = client_start()


def survive(codec: Http2Codec, data: bytes, cuts: list[int]) -> None:
    """Feed ``data`` in pieces; only events / NEED_DATA / RemoteProtocolError may come."""
    pos = 0
    try:
        for n in itertools.cycle(cuts):
            if pos >= len(data):
                break
            codec.receive_data(data[pos : pos + n])
            pos += n
            while (ev := codec.next_event()) is not NEED_DATA:
                assert isinstance(ev, _OK) or ev is ConnectionEvent.GOAWAY, ev
        codec.receive_data(b"")
        while (ev := codec.next_event()) is not ConnectionEvent.CLOSED:
            assert isinstance(ev, _OK) or ev is ConnectionEvent.GOAWAY, ev
    except RemoteProtocolError as err:
        assert err.wire_code is not None
        assert codec.state is CodecState.ERROR
        out = b"".join(codec.data_to_send())
        assert any(isinstance(f, GoAwayFrame) for f in frames_of(out))
        try:
            codec.next_event()
        except RemoteProtocolError:
            pass
        else:  # pragma: no cover
            raise AssertionError("ERROR state must keep raising") from None
    codec.data_to_send()


def frames_of(data: bytes) -> list[RawFrame]:
    view = memoryview(data)
    out = []
    while len(view) >= 9:
        frame, length = RawFrame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        out.append(frame)
        view = view[9 + length :]
    return out


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(1, 64), min_size=1, max_size=5))
def test_random_bytes_after_the_preface(junk: bytes, cuts: list[int]) -> None:
    survive(Http2Codec(Role.SERVER), START + junk, cuts)


@FUZZ
@given(st.data())
def test_mutated_streams(data: st.DataObject) -> None:
    wire = bytearray(START)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(24, len(wire) - 1))
        wire[at] = data.draw(st.integers(0, 255))
    survive(Http2Codec(Role.SERVER), bytes(wire), [len(wire)])


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_to_a_client(junk: bytes) -> None:
    codec = Http2Codec(Role.CLIENT)
    codec.initiate()
    codec.send_request(
        Frame(
            StreamType.REQUEST,
            0,
            HeaderList(
                [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/")]
            ),
        )
    )
    server = H2Connection(H2Configuration(client_side=False))
    server.initiate_connection()
    survive(codec, server.data_to_send() + junk, [len(junk) + 100])


# frames with valid 9-octet headers (RFC 9113 §4.1) around random payloads reach h2's
# per-frame handlers instead of failing at the first length check
raw_frame_st = st.builds(
    lambda typ, flags, sid, payload: (
        len(payload).to_bytes(3, "big") + bytes([typ, flags]) + sid.to_bytes(4, "big") + payload
    ),
    st.integers(0, 10),
    st.integers(0, 255),
    st.sampled_from([0, 1, 2, 3, 5, 2**31 - 1]),
    st.binary(max_size=40),
)


@FUZZ
@given(st.lists(raw_frame_st, max_size=8), st.lists(st.integers(1, 64), min_size=1, max_size=5))
def test_random_frames_after_the_preface(frames: list[bytes], cuts: list[int]) -> None:
    survive(Http2Codec(Role.SERVER), START + b"".join(frames), cuts)
