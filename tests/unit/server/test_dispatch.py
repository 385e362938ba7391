"""The Dispatcher's decisions with real codecs and a fake transport: which listener an
intercepted connection goes to (by sniffing among listeners sharing a port), the bytes it
read replayed unchanged, TLS passed through, server-first protocols after the timeout, and a
connection dialled straight to the capture port refused."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mosn_py.codecs.http1.codec import Http1Codec
from mosn_py.codecs.http2.codec import Http2Codec
from mosn_py.codecs.redis.codec import RedisCodec
from mosn_py.config.model import Address
from mosn_py.server import dispatch
from tests.unit.codecs.test_tls_hello import real_hello


class FakeSock:
    family = socket.AF_INET

    def __init__(self, local: tuple[str, int]) -> None:
        self.local = local

    def getsockopt(self, level: int, opt: int, size: int = 0) -> Any:
        if size:  # SO_ORIGINAL_DST: not NATed (TPROXY)
            raise OSError("no conntrack entry")
        return 1  # IP_TRANSPARENT

    def getsockname(self) -> tuple[str, int]:
        return self.local


class FakeTransport(asyncio.Transport):
    def __init__(self, local: tuple[str, int]) -> None:
        super().__init__()
        self.sock = FakeSock(local)
        self.protocol: Any = None
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Recorder(asyncio.BufferedProtocol):
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.data = bytearray()
        self.buf = bytearray(7)  # small: the replay must loop
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self.buf[:nbytes]


class Obj:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def candidate(name: str, protocol: str, codec: Any = None, auto: Any = None) -> Any:
    return Obj(config=Obj(name=name, protocol=protocol), codec_cls=codec, auto_codecs=auto)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.fixture(autouse=True)
def passthrough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "make_tcp_protocol", Recorder)


def start(loop: asyncio.AbstractEventLoop, candidates: list[Any],
          local: tuple[str, int] = ("10.0.0.2", 8080)) -> tuple[Any, FakeTransport]:
    runtime = Obj(virtual_listeners=lambda dst: candidates,
                  protocol_factory=lambda cfg: Recorder)
    ctx = Obj(config=Obj(name="capture", address=Address("0.0.0.0", 15001),
                         sniff_timeout=0.05),
              runtime=runtime, loop=loop, stats=Obj(cx_total=0))
    d = dispatch.Dispatcher(ctx)  # type: ignore[arg-type]
    t = FakeTransport(local)
    t.protocol = d
    d.connection_made(t)
    return d, t


def feed(d: Any, data: bytes) -> None:
    buf = d.get_buffer(len(data))
    buf[: len(data)] = data
    d.buffer_updated(len(data))


HTTP = candidate("out_http", "http1", Http1Codec)
REDIS = candidate("out_redis", "redis", RedisCodec)
H2 = candidate("out_h2", "http", auto=(Http2Codec, Http1Codec))
TCP = candidate("out_tcp", "tcp")


def test_sniffing_picks_the_listener_and_replays_every_byte(
    loop: asyncio.AbstractEventLoop,
) -> None:
    for data, want in ((b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", "out_http"),
                       (b"*1\r\n$4\r\nPING\r\n", "out_redis")):
        d, t = start(loop, [HTTP, REDIS])
        feed(d, data)
        assert t.protocol.ctx.config.name == want
        assert bytes(t.protocol.data) == data


def test_a_split_prefix_waits_for_more(loop: asyncio.AbstractEventLoop) -> None:
    d, t = start(loop, [REDIS, H2])
    feed(d, b"PRI * HT")
    assert t.protocol is d  # undecided
    feed(d, b"TP/2.0\r\n\r\nSM\r\n\r\n")
    assert t.protocol.ctx.config.name == "out_h2"
    assert bytes(t.protocol.data) == b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def test_tls_from_the_application_goes_to_tcp(loop: asyncio.AbstractEventLoop) -> None:
    hello = real_hello("db.internal", ["postgresql"], ssl.TLSVersion.TLSv1_3)
    d, t = start(loop, [HTTP, TCP])
    feed(d, hello)
    assert t.protocol.ctx.config.name == "out_tcp"
    assert d.hello.server_name == "db.internal" and d.hello.alpn == ("postgresql",)
    assert bytes(t.protocol.data) == hello


def test_unknown_bytes_and_silence_fall_back(loop: asyncio.AbstractEventLoop) -> None:
    d, t = start(loop, [HTTP, REDIS])
    feed(d, b"\x00\x01binary")
    assert t.protocol.ctx.config.name == "capture"  # the listener's own passthrough
    d, t = start(loop, [HTTP, TCP])
    loop.run_until_complete(asyncio.sleep(0.1))  # a server-first protocol: nothing sent
    assert t.protocol.ctx.config.name == "out_tcp" and t.protocol.data == b""


def test_only_tcp_candidates_hand_over_at_once(loop: asyncio.AbstractEventLoop) -> None:
    _, t = start(loop, [TCP])
    assert t.protocol.ctx.config.name == "out_tcp"
    _, t = start(loop, [])
    assert t.protocol.ctx.config.name == "capture"


def test_a_connection_dialled_straight_to_the_capture_port_is_closed(
    loop: asyncio.AbstractEventLoop,
) -> None:
    d, t = start(loop, [HTTP], local=("127.0.0.1", 15001))
    assert t.closed and t.protocol is d


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=6),
       st.sampled_from([[HTTP, REDIS], [REDIS, H2, TCP], [HTTP], [H2]]))
def test_any_bytes_are_handed_over_whole_or_kept_waiting(
    chunks: list[bytes], candidates: list[Any]
) -> None:
    """Whatever a client sends first, the dispatcher never raises: either it is still
    reading (a prefix some protocol could continue) or the connection went to one listener
    with every byte read so far, in order."""
    loop = asyncio.new_event_loop()
    try:
        d, t = start(loop, candidates)
        sent = b""
        for chunk in chunks:
            if t.protocol is not d:
                break
            feed(d, chunk)
            sent += chunk
        if t.protocol is not d:
            assert bytes(t.protocol.data) == sent
    finally:
        loop.close()
