"""Playbook tests of the stream-filter chain (mitmproxy tutils style): the exact order of
filter hooks and router steps, stops and resumes, local replies."""

from __future__ import annotations

from typing import Any

from mosn_py.codecs.base import Frame, StreamType
from mosn_py.errors import ProxyStatus, ResetReason
from mosn_py.filters.chain import HeadersStatus, Phase, StreamFilter
from mosn_py.filters.network.l7_proxy import Stream
from mosn_py.server.connection import WriteBatcher


class Recorder:
    def __init__(self) -> None:
        self.log: list[str] = []


class FakeHost:
    def __init__(self, rec: Recorder) -> None:
        self.address = "h:1"
        self.rq_active = self.rq_total = self.rq_error = 0
        self.rec = rec


class FakeUpstream:
    congested = False

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.pending: dict[int, Any] = {}

    def send_request(self, frame: Frame, cb: Any) -> int:
        self.rec.log.append(f"upstream.send({frame.request_id})")
        self.pending[77] = cb
        return 77

    def cancel(self, rid: int) -> None:
        self.rec.log.append(f"upstream.cancel({rid})")


class FakeCluster:
    name = "c"
    max_requests = 10

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.rq_active = self.rq_total = self.rq_overflow = 0
        self.host = FakeHost(rec)
        self.upstream = FakeUpstream(rec)
        outer = self

        class LB:
            def choose(self, exclude: Any = None) -> Any:
                outer.rec.log.append("lb.choose")
                return outer.host

        class Pool:
            def acquire(self) -> Any:
                return outer.upstream

        self.lb = LB()
        self._pool = Pool()

    def pool(self, host: Any) -> Any:
        return self._pool


class FakeRule:
    cluster = "c"
    timeout = None
    retry = None


class FakeRouteTable:
    def __init__(self, rec: Recorder, hit: bool = True) -> None:
        self.rec = rec
        self.hit = hit

    def match(self, frame: Frame) -> Any:
        self.rec.log.append("route.match")
        return FakeRule() if self.hit else None


class FakeCodec:
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def local_reply(self, request: Frame, status: ProxyStatus, message: str = "") -> Frame:
        return Frame(StreamType.RESPONSE, request.request_id, {}, status=99, extra=status)

    def send(self, frame: Frame, request_id: int | None = None) -> list[bytes]:
        self.rec.log.append(f"downstream.send(status={frame.status})")
        return [b""]


class FakeStats:
    rq_total = rq_timeout = rq_retry = 0

    def __init__(self) -> None:
        self.replies: list[ProxyStatus] = []

    def local_reply(self, status: ProxyStatus) -> None:
        self.replies.append(status)


class FakeCtx:
    def __init__(self, rec: Recorder, factories: tuple[Any, ...], hit: bool = True) -> None:
        self.stats = FakeStats()
        self.access_log = None
        self.filter_factories = factories
        self.route_table = FakeRouteTable(rec, hit)
        self.batcher = WriteBatcher()
        self.loop = None
        self.timers = None
        self.http = False
        self.translators: dict[Any, Any] = {}
        self.cluster = FakeCluster(rec)
        outer = self

        class CM:
            def get(self, name: str) -> Any:
                return outer.cluster

        self._cm = CM()

    def clusters(self) -> Any:
        return self._cm


class FakeConn:
    closed = False

    def __init__(self, rec: Recorder, ctx: FakeCtx) -> None:
        self.rec = rec
        self.ctx = ctx
        self.codec = FakeCodec(rec)
        self.streams: set[Any] = set()

    def write(self, bufs: list[bytes]) -> None:
        pass

    def stream_done(self, stream: Any) -> None:
        self.rec.log.append("stream_done")


class Rec(StreamFilter):
    def __init__(self, rec: Recorder, name: str, phase: Phase,
                 decode: HeadersStatus = HeadersStatus.CONTINUE,
                 encode: HeadersStatus = HeadersStatus.CONTINUE,
                 reply: ProxyStatus | None = None) -> None:
        super().__init__()
        self.rec, self.name, self.phase = rec, name, phase  # type: ignore[misc]
        self.d, self.e, self.reply = decode, encode, reply

    def decode_headers(self, frame: Frame, end_stream: bool) -> HeadersStatus:
        self.rec.log.append(f"{self.name}.decode")
        if self.reply is not None:
            self.callbacks.send_local_reply(self.reply, "no")
            return HeadersStatus.STOP_ITERATION
        return self.d

    def encode_headers(self, frame: Frame, end_stream: bool) -> HeadersStatus:
        self.rec.log.append(f"{self.name}.encode")
        return self.e

    def on_destroy(self) -> None:
        self.rec.log.append(f"{self.name}.destroy")


def make(rec: Recorder, *filters: Rec, hit: bool = True) -> tuple[Stream, FakeCtx]:
    ctx = FakeCtx(rec, tuple((lambda f=f: f) for f in filters), hit)
    conn = FakeConn(rec, ctx)
    s = Stream(conn, Frame(StreamType.REQUEST, 5, {}))  # type: ignore[arg-type]
    return s, ctx


def test_phases_interleave_with_router_steps_and_encode_runs_in_reverse() -> None:
    rec = Recorder()
    a = Rec(rec, "A", Phase.BEFORE_ROUTE)
    b = Rec(rec, "B", Phase.AFTER_ROUTE)
    c = Rec(rec, "C", Phase.AFTER_CHOOSE_HOST)
    a2 = Rec(rec, "A2", Phase.BEFORE_ROUTE)
    s, ctx = make(rec, c, b, a, a2)  # list order != phase order
    s.start()
    assert rec.log == ["A.decode", "A2.decode", "route.match", "B.decode", "lb.choose",
                       "C.decode", "upstream.send(5)"]
    rec.log.clear()
    s.on_upstream_response(Frame(StreamType.RESPONSE, 77, {}, status=0))
    # Reverse list order, then the downstream codec with the client's id restored.
    assert rec.log == ["A2.encode", "A.encode", "B.encode", "C.encode",
                       "downstream.send(status=0)", "C.destroy", "B.destroy", "A.destroy",
                       "A2.destroy", "stream_done"]
    assert ctx.cluster.rq_active == 0 and ctx.cluster.host.rq_active == 0


def test_stop_iteration_holds_until_continue_decoding() -> None:
    rec = Recorder()
    a = Rec(rec, "A", Phase.BEFORE_ROUTE, decode=HeadersStatus.STOP_ITERATION)
    b = Rec(rec, "B", Phase.BEFORE_ROUTE)
    s, _ = make(rec, a, b)
    s.start()
    assert rec.log == ["A.decode"]
    s.continue_decoding()
    assert rec.log == ["A.decode", "B.decode", "route.match", "lb.choose", "upstream.send(5)"]


def test_stop_iteration_on_encode_holds_response() -> None:
    rec = Recorder()
    a = Rec(rec, "A", Phase.BEFORE_ROUTE)
    b = Rec(rec, "B", Phase.BEFORE_ROUTE, encode=HeadersStatus.STOP_ITERATION)
    s, _ = make(rec, a, b)
    s.start()
    rec.log.clear()
    s.on_upstream_response(Frame(StreamType.RESPONSE, 77, {}))
    assert rec.log == ["B.encode"]
    s.continue_encoding()
    assert rec.log[:3] == ["B.encode", "A.encode", "downstream.send(status=0)"]


def test_local_reply_from_filter_skips_upstream_and_is_encoded() -> None:
    rec = Recorder()
    a = Rec(rec, "A", Phase.BEFORE_ROUTE)
    b = Rec(rec, "B", Phase.BEFORE_ROUTE, reply=ProxyStatus.UPSTREAM_OVERFLOW)
    c = Rec(rec, "C", Phase.AFTER_ROUTE)
    s, ctx = make(rec, a, b, c)
    s.start()
    # Like Envoy, a local reply passes through every filter's encode hook, in reverse order.
    assert rec.log[:5] == ["A.decode", "B.decode", "C.encode", "B.encode", "A.encode"]
    assert "route.match" not in rec.log and "upstream.send(5)" not in rec.log
    assert "downstream.send(status=99)" in rec.log
    assert ctx.stats.replies == [ProxyStatus.UPSTREAM_OVERFLOW]
    # A finished stream ignores a late continue.
    n = len(rec.log)
    s.continue_decoding()
    assert len(rec.log) == n


def test_no_route_is_a_local_reply() -> None:
    rec = Recorder()
    s, ctx = make(rec, Rec(rec, "A", Phase.AFTER_ROUTE), hit=False)
    s.start()
    assert rec.log[0] == "route.match" and "A.decode" not in rec.log
    assert ctx.stats.replies == [ProxyStatus.ROUTE_NOT_FOUND]


def test_upstream_reset_without_retry_replies_with_reset_status() -> None:
    rec = Recorder()
    s, ctx = make(rec)
    s.start()
    s.on_upstream_reset(ResetReason.CONNECTION_TERMINATED)
    assert ctx.stats.replies == [ProxyStatus.UPSTREAM_RESET]
    assert ctx.cluster.rq_active == 0 and ctx.cluster.host.rq_error == 1
    # A response after the reset is ignored.
    s.on_upstream_response(Frame(StreamType.RESPONSE, 77, {}))
    assert rec.log.count("downstream.send(status=99)") == 1


def test_downstream_close_cancels_upstream_request() -> None:
    rec = Recorder()
    a = Rec(rec, "A", Phase.BEFORE_ROUTE)
    s, ctx = make(rec, a)
    s.start()
    s.on_downstream_closed()
    assert "upstream.cancel(77)" in rec.log and "A.destroy" in rec.log
    assert ctx.cluster.rq_active == 0
