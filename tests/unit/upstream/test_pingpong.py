"""Ping-pong pool: one exchange per connection, reuse after both directions end, close
when an exchange is abandoned or the codec says the connection cannot be reused."""

from __future__ import annotations

import asyncio
from typing import Any

from mosn_py.codecs.base import (
    NEED_DATA,
    CodecLimits,
    DataFrame,
    Frame,
    HeaderList,
    PoolMode,
    StreamType,
    TrailersFrame,
)
from mosn_py.config.model import Address
from mosn_py.errors import ResetReason
from mosn_py.server.connection import WriteBatcher
from mosn_py.upstream.host import Host
from mosn_py.upstream.pingpong import PingPongConnection, PingPongPool


class FakeCodec:
    pool_mode = PoolMode.PINGPONG

    def __init__(self, role: Any, *, limits: Any) -> None:
        self.sent: list[Any] = []
        self.inbox: list[Any] = []
        self.must_close = False

    def send(self, frame: Any, request_id: int | None = None) -> list[bytes]:
        self.sent.append((type(frame).__name__, request_id))
        return [b"x"]

    def receive_data(self, data: Any) -> None:
        pass

    def next_event(self) -> Any:
        return self.inbox.pop(0) if self.inbox else NEED_DATA


class Owner:
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_upstream_response(self, f: Frame) -> None:
        self.events.append(f"head {f.status}")

    def on_upstream_data(self, df: DataFrame) -> None:
        self.events.append(f"data {bytes(df.data)!r} {df.end_stream}")

    def on_upstream_trailers(self, tf: TrailersFrame) -> None:
        self.events.append("trailers")

    def on_upstream_reset(self, reason: ResetReason) -> None:
        self.events.append(f"reset {reason.value}")


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    abort = close

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: Any) -> None:
        pass

    writelines = write


def make() -> tuple[PingPongPool, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    pool = PingPongPool(
        Host(Address("127.0.0.1", 1)), size=1, codec_factory=FakeCodec, limits=CodecLimits(),
        connect_timeout=1.0, loop=loop, batcher=WriteBatcher(), cluster_name="c",
    )
    return pool, loop


def connected(pool: PingPongPool) -> PingPongConnection:
    c = PingPongConnection(pool)
    pool.conns.append(c)
    c.transport = FakeTransport()  # type: ignore[assignment]
    c.on_connected()
    return c


def head(status: int, end: bool) -> Frame:
    return Frame(StreamType.RESPONSE, 1, HeaderList([(":status", str(status))]), status=status,
                 end_stream=end)


def test_exchange_then_reuse() -> None:
    pool, loop = make()
    c = connected(pool)
    owner = Owner()
    rid = c.send_request(Frame(StreamType.REQUEST, 9, HeaderList(), end_stream=False), owner)
    c.send_data(rid, DataFrame(9, b"body", end_stream=True))
    c.codec.inbox = [head(100, False), head(200, False), DataFrame(1, b"ok", False),
                     DataFrame(1, b"", True)]
    c.on_data(memoryview(b""))
    assert owner.events == ["head 100", "head 200", "data b'ok' False", "data b'' True"]
    assert c.streams == {} and pool.idle == [c]  # both directions over: back to the pool
    assert pool.acquire() is c
    loop.close()


def test_response_before_request_end_keeps_connection_until_cancel() -> None:
    pool, loop = make()
    c = connected(pool)
    owner = Owner()
    rid = c.send_request(Frame(StreamType.REQUEST, 1, HeaderList(), end_stream=False), owner)
    c.codec.inbox = [head(413, True)]
    c.on_data(memoryview(b""))
    assert owner.events == ["head 413"] and pool.idle == []  # request still open
    c.cancel(rid)  # the proxy abandons the rest of the upload
    assert c.transport.closed  # type: ignore[union-attr]
    loop.close()


def test_must_close_and_trailers() -> None:
    pool, loop = make()
    c = connected(pool)
    owner = Owner()
    c.send_request(Frame(StreamType.REQUEST, 1, HeaderList(), end_stream=True), owner)
    c.codec.must_close = True
    c.codec.inbox = [head(200, False), TrailersFrame(1, HeaderList([("grpc-status", "0")]))]
    c.on_data(memoryview(b""))
    assert owner.events == ["head 200", "trailers"]
    assert pool.idle == [] and c.transport.closed  # type: ignore[union-attr]
    loop.close()


def test_close_mid_exchange_resets_the_owner() -> None:
    pool, loop = make()
    c = connected(pool)
    owner = Owner()
    c.send_request(Frame(StreamType.REQUEST, 1, HeaderList(), end_stream=True), owner)
    c.on_closed(None)
    assert owner.events == ["reset connection_terminated"] and c not in pool.conns
    loop.close()
