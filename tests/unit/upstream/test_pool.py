"""Upstream request ids: fresh per request, u32, wrapping, never reusing one in flight; a
dying connection answers every pending request at once."""

from __future__ import annotations

import asyncio
from typing import Any

from mosn_py.codecs.base import CodecLimits, Frame, StreamType
from mosn_py.config.model import Address
from mosn_py.errors import ResetReason
from mosn_py.server.connection import WriteBatcher
from mosn_py.upstream.host import Host
from mosn_py.upstream.pool import MultiplexPool, UpstreamConnection


class FakeCodec:
    def __init__(self, role: Any, *, limits: Any) -> None:
        self.sent: list[int] = []
        self.inbox: list[Frame] = []

    def receive_data(self, data: Any) -> None:
        pass

    def next_event(self) -> Any:
        from mosn_py.codecs.base import NEED_DATA

        return self.inbox.pop(0) if self.inbox else NEED_DATA

    def send(self, frame: Frame, request_id: int | None = None) -> list[bytes]:
        self.sent.append(request_id if request_id is not None else frame.request_id)
        return [b"x"]


class Owner:
    def __init__(self) -> None:
        self.resets: list[ResetReason] = []
        self.responses: list[Frame] = []

    def on_upstream_response(self, frame: Frame) -> None:
        self.responses.append(frame)

    def on_upstream_reset(self, reason: ResetReason) -> None:
        self.resets.append(reason)


def make_conn() -> tuple[UpstreamConnection, MultiplexPool, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    pool = MultiplexPool(
        Host(Address("127.0.0.1", 1)), size=1, codec_factory=FakeCodec, limits=CodecLimits(),
        connect_timeout=1.0, loop=loop, batcher=WriteBatcher(), cluster_name="c",
    )
    conn = UpstreamConnection(pool)
    pool.conns.append(conn)
    return conn, pool, loop


def test_ids_wrap_at_u32_and_skip_ids_in_flight() -> None:
    conn, _, loop = make_conn()
    req = Frame(StreamType.REQUEST, 7, {})
    owner = Owner()
    first = conn.send_request(req, owner)  # id 1, stays in flight
    conn._next_id = 2**32 - 2
    ids = [conn.send_request(req, Owner()) for _ in range(2)]
    conn._next_id = first  # pretend the counter came round to an id still in flight
    ids.append(conn.send_request(req, Owner()))
    assert first == 1
    assert ids == [2**32 - 2, 2**32 - 1, 2]  # 1 is in flight: skipped
    assert conn.codec.sent == [1, 2**32 - 2, 2**32 - 1, 2]  # what went on the wire
    assert conn._next_id == 3
    conn.send_request(req, None)  # oneway: no entry kept
    assert len(conn.streams) == 4
    loop.close()


def test_requests_queue_while_connecting_and_all_fail_at_once() -> None:
    conn, pool, loop = make_conn()
    owners = [Owner() for _ in range(5)]
    for o in owners:
        conn.send_request(Frame(StreamType.REQUEST, 1, {}), o)
    assert conn._queued == [b"x"] * 5  # nothing written before connect
    conn._fail_all(ResetReason.CONNECT_FAILURE)
    assert all(o.resets == [ResetReason.CONNECT_FAILURE] for o in owners)
    assert conn not in pool.conns and conn.streams == {}
    loop.close()


def test_responses_match_by_id_late_and_unknown_ones_are_dropped() -> None:
    conn, _, loop = make_conn()
    timed_out, live = Owner(), Owner()
    late = conn.send_request(Frame(StreamType.REQUEST, 1, {}), timed_out)
    rid = conn.send_request(Frame(StreamType.REQUEST, 2, {}), live)
    conn.cancel(late)  # its timeout fired
    conn.codec.inbox = [
        Frame(StreamType.RESPONSE, 999, {}),  # nobody asked (e.g. anthunder's close notice)
        Frame(StreamType.RESPONSE, late, {}),  # too late
        Frame(StreamType.RESPONSE, rid, {}, status=3),
    ]
    conn.on_data(memoryview(b""))
    assert timed_out.responses == [] and [f.status for f in live.responses] == [3]
    assert conn.streams == {}
    loop.close()
