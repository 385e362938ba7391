"""Playbook tests of the body hooks (``decode_data``/``_trailers``, ``encode_data``/
``_trailers``): the exact order of hook calls, what reaches the upstream and the client, every
status on both sides, the buffer limit, backpressure, injection and replacement, and that a
single-frame exchange (Bolt) still only sees the header hooks.

The harness fakes the stream's surroundings (connection, codec, cluster, upstream) and writes
one event log; ``PAUSE_FLOW`` is 8 in ``pause(8)``/``resume(8)``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mosn_py.codecs.base import (
    CodecLimits,
    DataFrame,
    Frame,
    HeaderList,
    PoolMode,
    ResetFrame,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http_status import HTTP_STATUS_BY_PROXY_STATUS
from mosn_py.errors import ProxyStatus, ResetReason
from mosn_py.filters.chain import (
    DataStatus,
    FilterHandle,
    HeadersStatus,
    Phase,
    StreamFilter,
    TrailersStatus,
    body_hooks,
)
from mosn_py.filters.network.l7_proxy import Stream
from mosn_py.server.connection import PAUSE_FLOW, WriteBatcher

C, SB, SW, SN = (DataStatus.CONTINUE, DataStatus.STOP_BUFFER, DataStatus.STOP_WATERMARK,
                 DataStatus.STOP_NO_BUFFER)
HC, HS = HeadersStatus.CONTINUE, HeadersStatus.STOP_ITERATION
HSB, HSW = HeadersStatus.STOP_ALL_BUFFER, HeadersStatus.STOP_ALL_WATERMARK
TC, TS = TrailersStatus.CONTINUE, TrailersStatus.STOP_ITERATION


# --- harness -------------------------------------------------------------------------------
class Log(list[str]):
    def take(self) -> list[str]:
        out = list(self)
        self.clear()
        return out


class Upstream:
    congested = False

    def __init__(self, log: Log) -> None:
        self.log = log
        self.codec = SimpleNamespace(pool_mode=PoolMode.PINGPONG)

    def send_request(self, frame: Frame, cb: Any) -> int:
        tag = frame.headers.get("x-tag", "")
        self.log.append(f"up.head(end={frame.end_stream}{',' + tag if tag else ''})")
        return 77

    def send_data(self, rid: int, df: DataFrame) -> None:
        self.log.append(f"up.data({bytes(df.data)!r},{df.end_stream})")

    def send_trailers(self, rid: int, tf: TrailersFrame) -> None:
        self.log.append(f"up.trailers({dict(tf.trailers)})")

    def cancel(self, rid: int) -> None:
        self.log.append("up.cancel")

    def pause(self, reason: int) -> None:
        self.log.append(f"up.pause({reason})")

    def resume(self, reason: int) -> None:
        self.log.append(f"up.resume({reason})")


class Cluster:
    name = "c"
    max_requests = 10

    def __init__(self, log: Log) -> None:
        self.rq_active = self.rq_total = self.rq_overflow = 0
        self.host = SimpleNamespace(address="h:1", rq_active=0, rq_total=0, rq_error=0)
        self.upstream = Upstream(log)
        self.lb = SimpleNamespace(choose=lambda exclude=None: self.host)

    def pool(self, host: Any) -> Any:
        return SimpleNamespace(acquire=lambda: self.upstream)


class Codec:
    def __init__(self, log: Log) -> None:
        self.log = log

    def send(self, frame: Any, request_id: int | None = None) -> list[bytes]:
        if isinstance(frame, DataFrame):
            self.log.append(f"down.data({bytes(frame.data)!r},{frame.end_stream})")
        elif isinstance(frame, TrailersFrame):
            self.log.append(f"down.trailers({dict(frame.trailers)})")
        else:
            self.log.append(f"down.head({frame.status},end={frame.end_stream})")
        return []

    def local_reply(self, request: Frame, status: ProxyStatus, message: str = "") -> Frame:
        code = HTTP_STATUS_BY_PROXY_STATUS[status]
        return Frame(StreamType.RESPONSE, request.request_id, HeaderList([(":status", str(code))]),
                     message.encode(), code)


class Stats:
    rq_total = rq_timeout = rq_retry = 0

    def __init__(self) -> None:
        self.replies: list[ProxyStatus] = []

    def local_reply(self, status: ProxyStatus) -> None:
        self.replies.append(status)


class Ctx:
    def __init__(self, log: Log, factories: tuple[Any, ...], limits: CodecLimits,
                 retry: Any = None) -> None:
        self.stats = Stats()
        self.access_log = None
        self.filter_factories = factories
        self.batcher = WriteBatcher()
        self.loop = None
        self.timers = None
        self.http = False
        self.translators: dict[Any, Any] = {}
        self.draining = False
        self.limits = limits
        self.cluster = Cluster(log)
        rule = SimpleNamespace(cluster="c", timeout=None, retry=retry)
        self.route_table = SimpleNamespace(match=lambda frame: rule)
        self._cm = SimpleNamespace(get=lambda name: self.cluster)

    def clusters(self) -> Any:
        return self._cm


class Conn:
    closed = False
    flow = False
    half_closed = False
    _held = None

    def __init__(self, log: Log, ctx: Ctx) -> None:
        self.log = log
        self.ctx = ctx
        self.codec = Codec(log)
        self.streams: set[Any] = set()
        self.by_id: dict[int, Any] = {}
        self.paused = False

    def write(self, bufs: list[bytes]) -> None:
        pass

    def pause(self, reason: int) -> None:
        if not self.paused:
            self.log.append(f"conn.pause({reason})")
        self.paused = True

    def resume(self, reason: int) -> None:
        if self.paused:
            self.log.append(f"conn.resume({reason})")
        self.paused = False

    def stream_done(self, stream: Any) -> None:
        self.log.append("stream_done")

    def reset_stream(self, stream: Any) -> None:
        self.log.append("down.reset")


Script = Any  # a status, a list of statuses (used in turn, the last one sticks), a callable


def _play(script: Script, f: Any, *args: Any) -> Any:
    if callable(script):
        return script(f, *args)
    if isinstance(script, list):
        return script.pop(0) if len(script) > 1 else script[0]
    return script


class Hdr(StreamFilter):
    """Header hooks only (like ``fault``): never asked about bodies."""

    def __init__(self, log: Log, name: str, phase: Phase = Phase.BEFORE_ROUTE,
                 dh: Script = HC, eh: Script = HC) -> None:
        super().__init__()
        self.log, self.name, self.phase = log, name, phase  # type: ignore[misc]
        self.dh, self.eh = dh, eh

    def decode_headers(self, frame: Frame, end_stream: bool) -> HeadersStatus:
        self.log.append(f"{self.name}.dh(end={end_stream})")
        return _play(self.dh, self, frame)  # type: ignore[no-any-return]

    def encode_headers(self, frame: Frame, end_stream: bool) -> HeadersStatus:
        self.log.append(f"{self.name}.eh({frame.status},end={end_stream})")
        return _play(self.eh, self, frame)  # type: ignore[no-any-return]

    def on_destroy(self) -> None:
        self.log.append(f"{self.name}.destroy")


class Bod(Hdr):
    """Every hook, each played from a script."""

    def __init__(self, log: Log, name: str, phase: Phase = Phase.BEFORE_ROUTE,
                 dh: Script = HC, eh: Script = HC, dd: Script = C, dt: Script = TC,
                 ed: Script = C, et: Script = TC) -> None:
        super().__init__(log, name, phase, dh, eh)
        self.dd, self.dt, self.ed, self.et = dd, dt, ed, et

    def decode_data(self, data: bytes | memoryview, end_stream: bool) -> DataStatus:
        self.log.append(f"{self.name}.dd({bytes(data)!r},{end_stream})")
        return _play(self.dd, self, data, end_stream)  # type: ignore[no-any-return]

    def decode_trailers(self, trailers: Any) -> TrailersStatus:
        self.log.append(f"{self.name}.dt({dict(trailers)})")
        return _play(self.dt, self, trailers)  # type: ignore[no-any-return]

    def encode_data(self, data: bytes | memoryview, end_stream: bool) -> DataStatus:
        self.log.append(f"{self.name}.ed({bytes(data)!r},{end_stream})")
        return _play(self.ed, self, data, end_stream)  # type: ignore[no-any-return]

    def encode_trailers(self, trailers: Any) -> TrailersStatus:
        self.log.append(f"{self.name}.et({dict(trailers)})")
        return _play(self.et, self, trailers)  # type: ignore[no-any-return]


class Harness:
    def __init__(self, *filters: Hdr, body: bool = True, limit: int = 1 << 20,
                 retry: Any = None, log: Log | None = None) -> None:
        self.log = log if log is not None else (filters[0].log if filters else Log())
        limits = CodecLimits(max_frame_size=limit)
        self.ctx = Ctx(self.log, tuple((lambda f=f: f) for f in filters), limits, retry)
        self.conn = Conn(self.log, self.ctx)
        head = HeaderList([(":method", "POST"), (":path", "/")])
        self.s = Stream(self.conn, Frame(StreamType.REQUEST, 5, head, end_stream=not body))  # type: ignore[arg-type]
        self.up = self.ctx.cluster.upstream

    def start(self) -> Harness:
        self.s.start()
        return self

    # client side
    def data(self, data: bytes, end: bool = False) -> None:
        self.s.on_downstream_data(DataFrame(5, memoryview(bytearray(data)), end))

    def trailers(self, **t: str) -> None:
        self.s.on_downstream_trailers(TrailersFrame(5, HeaderList(t.items())))

    # upstream side
    def response(self, status: int = 200, end: bool = False) -> None:
        self.s.on_upstream_response(
            Frame(StreamType.RESPONSE, 77, HeaderList([(":status", str(status))]),
                  status=status, end_stream=end))

    def rdata(self, data: bytes, end: bool = False) -> None:
        self.s.on_upstream_data(DataFrame(77, memoryview(bytearray(data)), end))

    def rtrailers(self, **t: str) -> None:
        self.s.on_upstream_trailers(TrailersFrame(77, HeaderList(t.items())))


def mk(log: Log, name: str, **kw: Any) -> Bod:
    return Bod(log, name, **kw)


# --- fast path and single-frame protocols ---------------------------------------------------
def test_hook_detection_is_per_class() -> None:
    log = Log()
    assert body_hooks(Hdr) == 0
    assert body_hooks(Bod) == 1 | 2 | 4 | 8

    class OnlyEncodeData(StreamFilter):
        def encode_data(self, data: bytes | memoryview, end_stream: bool) -> DataStatus:
            return DataStatus.CONTINUE

    assert body_hooks(OnlyEncodeData) == 4
    assert Hdr(log, "x").decode_data(b"", True) is DataStatus.CONTINUE  # base default


def test_without_body_hooks_chunks_go_straight_through() -> None:
    log = Log()
    a = Hdr(log, "A")
    h = Harness(a).start()
    assert a.callbacks is h.s and h.s._dflow is None
    assert log.take() == ["A.dh(end=False)", "up.head(end=False)"]
    h.data(b"ab")
    h.data(b"cd", end=True)
    assert log.take() == ["up.data(b'ab',False)", "up.data(b'cd',True)"]
    h.response()
    assert h.s._eflow is None
    h.rdata(b"xy")
    h.rtrailers(t="1")
    assert log.take() == ["A.eh(200,end=False)", "down.head(200,end=False)",
                          "down.data(b'xy',False)", "down.trailers({'t': '1'})",
                          "A.destroy", "stream_done"]


def test_single_frame_exchange_only_gets_header_hooks() -> None:
    """Bolt: one frame each way, end_stream=True, no body hook, no handle, no flow."""
    log = Log()
    a = mk(log, "A")
    h = Harness(a, body=False).start()
    h.response(end=True)
    assert log.take() == ["A.dh(end=True)", "up.head(end=True)", "A.eh(200,end=True)",
                          "down.head(200,end=True)", "A.destroy", "stream_done"]
    assert a.callbacks is h.s and h.s._dflow is None and h.s._eflow is None


# --- decode: order and head statuses --------------------------------------------------------
def test_data_follows_the_head_order_phase_then_list() -> None:
    log = Log()
    b = mk(log, "B", phase=Phase.AFTER_ROUTE)
    a = mk(log, "A")
    c = mk(log, "C")
    h = Harness(b, a, c).start()
    assert isinstance(a.callbacks, FilterHandle)
    log.clear()
    h.data(b"x", end=True)
    assert log.take() == ["A.dd(b'x',True)", "C.dd(b'x',True)", "B.dd(b'x',True)",
                          "up.data(b'x',True)"]


def test_stop_iteration_holder_sees_the_body_and_continue_from_it_resumes_the_head() -> None:
    """The buffer-filter pattern: hold the head, STOP_BUFFER until the end, CONTINUE."""
    log = Log()

    def dd(f: Bod, data: Any, end: bool) -> DataStatus:
        if not end:
            return SB
        f.callbacks.replace_request(f.callbacks.request.evolve(
            headers=f.callbacks.request.headers.with_(("x-tag", f"len={len(data)}"))))
        return C

    a = mk(log, "A", dh=HS, dd=dd)
    b = mk(log, "B")
    h = Harness(a, b).start()
    assert log.take() == ["A.dh(end=False)"]
    h.data(b"ab")
    h.data(b"cd", end=True)
    assert log.take() == ["A.dd(b'ab',False)", "A.dd(b'abcd',True)", "B.dh(end=False)",
                          "up.head(end=False,len=4)", "B.dd(b'abcd',True)",
                          "up.data(b'abcd',True)"]


def test_head_held_by_a_filter_without_body_hooks_keeps_the_body_until_it_continues() -> None:
    """A ``fault``-like delay: the body waits at the stream, merged, then follows the head."""
    log = Log()
    a = Hdr(log, "A", dh=HS)
    b = mk(log, "B")
    h = Harness(a, b).start()
    h.data(b"ab")
    h.trailers(t="1")
    assert log.take() == ["A.dh(end=False)"]
    assert not h.conn.paused
    h.s.continue_decoding()
    assert log.take() == ["B.dh(end=False)", "up.head(end=False)", "B.dd(b'ab',False)",
                          "up.data(b'ab',False)", "B.dt({'t': '1'})", "up.trailers({'t': '1'})"]
    h.s.continue_decoding()  # late or repeated: nothing is sent twice
    assert log.take() == []


def test_stop_all_buffer_holder_sees_the_body_only_after_it_continues() -> None:
    log = Log()
    a = mk(log, "A", dh=HSB)
    b = mk(log, "B")
    h = Harness(a, b).start()
    h.data(b"ab")
    h.data(b"cd", end=True)
    assert log.take() == ["A.dh(end=False)"]
    a.callbacks.continue_decoding()
    assert log.take() == ["B.dh(end=False)", "up.head(end=False)", "A.dd(b'abcd',True)",
                          "B.dd(b'abcd',True)", "up.data(b'abcd',True)"]


def test_head_hold_over_the_limit_is_answered_413_and_the_rest_dropped() -> None:
    log = Log()
    a = Hdr(log, "A", dh=HS)
    h = Harness(a, limit=8).start()
    h.data(b"12345")
    assert log.take() == ["A.dh(end=False)"]
    h.data(b"67890")
    assert log.take() == ["A.eh(413,end=True)", "down.head(413,end=True)", "A.destroy",
                          "stream_done"]
    assert h.ctx.stats.replies == [ProxyStatus.CODEC_ERROR]
    h.data(b"more", end=True)
    h.s.continue_decoding()
    assert log.take() == []


def test_stop_all_watermark_pauses_reading_at_the_limit_and_resumes_on_continue() -> None:
    log = Log()
    a = mk(log, "A", dh=HSW)
    h = Harness(a, limit=8).start()
    log.clear()
    h.data(b"12345")
    assert log.take() == []  # under the limit: no backpressure yet
    h.data(b"67890")
    assert log.take() == [f"conn.pause({PAUSE_FLOW})"]
    h.data(b"abc")  # already read when the pause began: kept, up to twice the limit
    assert log.take() == []
    a.callbacks.continue_decoding()
    assert log.take() == ["up.head(end=False)", "A.dd(b'1234567890abc',False)",
                          "up.data(b'1234567890abc',False)", f"conn.resume({PAUSE_FLOW})"]


def test_stop_all_watermark_past_twice_the_limit_fails_like_a_buffer() -> None:
    log = Log()
    h = Harness(mk(log, "A", dh=HSW), limit=8).start()
    h.data(b"0123456789")
    h.data(b"0123456789")
    assert f"conn.pause({PAUSE_FLOW})" in log
    assert "down.head(413,end=True)" in log
    assert not h.conn.paused  # a dropped flow lifts its pause
    assert h.ctx.stats.replies == [ProxyStatus.CODEC_ERROR]


def test_limit_is_max_body_size_when_set() -> None:
    log = Log()
    h = Harness(Hdr(log, "A", dh=HS))
    h.ctx.limits = CodecLimits(max_frame_size=100, max_body_size=4)
    h.start()
    h.data(b"12345")
    assert "down.head(413,end=True)" in log


# --- decode: data statuses -----------------------------------------------------------------
def test_stop_buffer_offers_the_growing_body_and_continue_passes_it_whole() -> None:
    log = Log()
    p = mk(log, "P")
    a = mk(log, "A", dd=[SB, SB, C])
    b = mk(log, "B")
    h = Harness(p, a, b).start()
    log.clear()
    h.data(b"a")
    h.data(b"b")
    h.data(b"c", end=True)
    assert log.take() == ["P.dd(b'a',False)", "A.dd(b'a',False)",
                          "P.dd(b'b',False)", "A.dd(b'ab',False)",
                          "P.dd(b'c',True)", "A.dd(b'abc',True)", "B.dd(b'abc',True)",
                          "up.data(b'abc',True)"]


def test_stop_buffer_at_the_end_waits_for_continue_decoding() -> None:
    log = Log()
    a = mk(log, "A", dd=SB)
    b = mk(log, "B")
    h = Harness(a, b).start()
    log.clear()
    h.data(b"xy", end=True)
    assert log.take() == ["A.dd(b'xy',True)"]
    a.callbacks.replace_decoded_data(b"XY!")  # outside the hook: what is kept for A
    a.callbacks.continue_decoding()
    assert log.take() == ["B.dd(b'XY!',True)", "up.data(b'XY!',True)"]


def test_stop_buffer_over_the_limit_cancels_the_upstream_request_and_answers_413() -> None:
    log = Log()
    a = mk(log, "A", dd=SB)
    h = Harness(a, limit=8).start()
    log.clear()
    h.data(b"12345")
    h.data(b"67890")
    assert log.take() == ["A.dd(b'12345',False)", "A.dd(b'1234567890',False)", "up.cancel",
                          "A.eh(413,end=True)", "down.head(413,end=True)", "A.destroy",
                          "stream_done"]
    assert h.ctx.cluster.rq_active == 0 and h.ctx.cluster.host.rq_active == 0
    h.data(b"x", end=True)
    assert log.take() == []


def test_stop_watermark_pauses_above_the_limit_until_the_filter_continues() -> None:
    log = Log()
    a = mk(log, "A", dd=SW)
    b = mk(log, "B")
    h = Harness(a, b, limit=8).start()
    log.clear()
    h.data(b"123456")
    assert log.take() == ["A.dd(b'123456',False)"]
    h.data(b"7890ab")
    assert log.take() == ["A.dd(b'1234567890ab',False)", f"conn.pause({PAUSE_FLOW})"]
    a.callbacks.continue_decoding()
    assert log.take() == ["B.dd(b'1234567890ab',False)", "up.data(b'1234567890ab',False)",
                          f"conn.resume({PAUSE_FLOW})"]
    a.dd = C
    h.data(b"z", end=True)
    assert log.take() == ["A.dd(b'z',True)", "B.dd(b'z',True)", "up.data(b'z',True)"]


def test_watermark_resume_leaves_the_connections_own_pause_alone() -> None:
    log = Log()
    a = mk(log, "A", dd=SW)
    h = Harness(a, limit=4).start()
    h.data(b"123456")
    assert h.conn.paused
    h.conn._held = object()  # type: ignore[assignment]  # a pipelined request waits
    a.callbacks.continue_decoding()
    assert h.conn.paused


def test_stop_no_buffer_and_inject_from_inside_the_hook() -> None:
    log = Log()

    def upper(f: Bod, data: Any, end: bool) -> DataStatus:
        f.callbacks.inject_decoded_data(bytes(data).upper(), end)
        return SN

    a = mk(log, "A", dd=upper)
    b = mk(log, "B")
    h = Harness(a, b).start()
    log.clear()
    h.data(b"ab")
    h.data(b"cd", end=True)
    assert log.take() == ["A.dd(b'ab',False)", "B.dd(b'AB',False)", "up.data(b'AB',False)",
                          "A.dd(b'cd',True)", "B.dd(b'CD',True)", "up.data(b'CD',True)"]


def test_stop_no_buffer_keeps_the_end_for_continue_unless_the_filter_injects_it() -> None:
    log = Log()
    a = mk(log, "A", dd=SN)
    b = mk(log, "B")
    h = Harness(a, b).start()
    log.clear()
    h.data(b"ab", end=True)
    assert log.take() == ["A.dd(b'ab',True)"]
    a.callbacks.inject_decoded_data(b"later")  # e.g. after an outside call
    a.callbacks.continue_decoding()  # the end mark follows
    assert log.take() == ["B.dd(b'later',False)", "up.data(b'later',False)",
                          "B.dd(b'',True)", "up.data(b'',True)"]

    log2 = Log()
    a2 = mk(log2, "A", dd=SN)
    h2 = Harness(a2, mk(log2, "B")).start()
    h2.data(b"ab", end=True)
    a2.callbacks.inject_decoded_data(b"all", end_stream=True)
    a2.callbacks.continue_decoding()  # nothing left to send
    assert log2.take()[-2:] == ["B.dd(b'all',True)", "up.data(b'all',True)"]


def test_data_injected_before_the_head_passed_waits_behind_it() -> None:
    log = Log()

    def take(f: Bod, data: Any, end: bool) -> DataStatus:
        f.callbacks.inject_decoded_data(b"<" + bytes(data) + b">", end)
        return SN

    a = mk(log, "A", dh=HS, dd=take)
    b = mk(log, "B")
    h = Harness(a, b).start()
    h.data(b"ab", end=True)
    assert log.take() == ["A.dh(end=False)", "A.dd(b'ab',True)"]
    a.callbacks.continue_decoding()
    assert log.take() == ["B.dh(end=False)", "up.head(end=False)", "B.dd(b'<ab>',True)",
                          "up.data(b'<ab>',True)"]


def test_replace_decoded_data_in_the_hook() -> None:
    log = Log()

    def rev(f: Bod, data: Any, end: bool) -> DataStatus:
        f.callbacks.replace_decoded_data(bytes(data)[::-1])
        return C

    h = Harness(mk(log, "A", dd=rev), mk(log, "B")).start()
    log.clear()
    h.data(b"abc", end=True)
    assert log.take() == ["A.dd(b'abc',True)", "B.dd(b'cba',True)", "up.data(b'cba',True)"]


def test_stream_callbacks_outside_a_hook_need_the_handle() -> None:
    log = Log()
    h = Harness(mk(log, "A")).start()
    with pytest.raises(RuntimeError, match="FilterHandle"):
        h.s.inject_decoded_data(b"x")


def test_continue_is_per_filter() -> None:
    """Two filters stopped at once: each continue releases only what its filter holds."""
    log = Log()
    a = mk(log, "A", dd=SB)
    b = Hdr(log, "B", dh=HS)
    h = Harness(a, b).start()
    h.data(b"xy", end=True)
    assert log.take() == ["A.dh(end=False)", "B.dh(end=False)", "A.dd(b'xy',True)"]
    h.s.continue_decoding()  # B's (the stream's own callbacks): the head
    assert log.take() == ["up.head(end=False)"]
    a.callbacks.continue_decoding()  # A's: its data
    assert log.take() == ["up.data(b'xy',True)"]


# --- decode: trailers ------------------------------------------------------------------------
def test_decode_trailers_stop_iteration_until_continue() -> None:
    log = Log()
    a = mk(log, "A", dt=TS)
    b = mk(log, "B")
    h = Harness(a, b).start()
    log.clear()
    h.data(b"x")
    h.trailers(grpc_status="0")
    assert log.take() == ["A.dd(b'x',False)", "B.dd(b'x',False)", "up.data(b'x',False)",
                          "A.dt({'grpc_status': '0'})"]
    a.callbacks.inject_decoded_data(b"+")  # data before the held trailers
    a.callbacks.continue_decoding()
    assert log.take() == ["B.dd(b'+',False)", "up.data(b'+',False)",
                          "B.dt({'grpc_status': '0'})", "up.trailers({'grpc_status': '0'})"]


def test_trailers_end_what_a_stop_buffer_filter_kept() -> None:
    log = Log()
    a = mk(log, "A", dd=SB)
    b = mk(log, "B")
    h = Harness(a, b).start()
    log.clear()
    h.data(b"x")
    h.data(b"y")
    h.trailers(t="1")
    assert log.take() == ["A.dd(b'x',False)", "A.dd(b'xy',False)", "A.dt({'t': '1'})",
                          "B.dd(b'xy',False)", "up.data(b'xy',False)", "B.dt({'t': '1'})",
                          "up.trailers({'t': '1'})"]


# --- local replies, resets, retries, tunnels ----------------------------------------------------
def test_local_reply_from_decode_data_ends_the_request_side() -> None:
    log = Log()

    def deny(f: Bod, data: Any, end: bool) -> DataStatus:
        f.callbacks.send_local_reply(ProxyStatus.UPSTREAM_OVERFLOW, "no")
        return SN

    a = mk(log, "A", dd=deny)
    b = mk(log, "B")
    h = Harness(a, b).start()
    log.clear()
    h.data(b"ab")
    assert log.take() == ["A.dd(b'ab',False)", "up.cancel", "B.eh(503,end=True)",
                          "A.eh(503,end=True)", "down.head(503,end=True)", "A.destroy",
                          "B.destroy", "stream_done"]
    h.data(b"cd", end=True)
    h.trailers(t="1")
    assert log.take() == []
    assert h.ctx.cluster.rq_active == 0


def test_downstream_reset_mid_body_lifts_the_pause_and_destroys_once() -> None:
    log = Log()
    a = mk(log, "A", dd=SW)
    h = Harness(a, limit=4).start()
    h.data(b"123456")
    assert h.conn.paused
    log.clear()
    h.s.on_downstream_reset(ResetFrame(5))
    assert log.take() == [f"conn.resume({PAUSE_FLOW})", "up.cancel", "A.destroy",
                          "stream_done"]
    a.callbacks.continue_decoding()
    h.s.on_downstream_closed()
    assert log.take() == []


def test_retry_resends_the_head_as_the_filters_left_it() -> None:
    log = Log()

    def tag(f: Hdr, frame: Frame) -> HeadersStatus:
        f.callbacks.replace_request(frame.evolve(headers=HeaderList([("x-tag", "t")])))
        return HC

    a = Hdr(log, "A", dh=tag)
    h = Harness(a, body=False, retry=SimpleNamespace(attempts=1, on=["reset"])).start()
    assert log.take() == ["A.dh(end=True)", "up.head(end=True,t)"]
    h.s.on_upstream_reset(ResetReason.CONNECTION_TERMINATED)
    assert log.take() == ["up.head(end=True,t)"]  # filters are not run again
    assert h.ctx.stats.rq_retry == 1


def test_tunnel_bytes_bypass_the_body_hooks() -> None:
    log = Log()
    a = mk(log, "A")
    h = Harness(a).start()
    h.response(101)
    log.clear()
    h.rdata(b"server")
    h.data(b"client")
    assert log.take() == ["down.data(b'server',False)", "up.data(b'client',False)"]
    assert h.s._dflow is None and h.s._eflow is None


# --- encode ------------------------------------------------------------------------------------
def test_encode_data_runs_in_reverse_order_with_stop_buffer() -> None:
    log = Log()
    a = mk(log, "A")
    b = mk(log, "B", ed=[SB, C])
    h = Harness(a, b, body=False).start()
    h.response()
    assert log.take()[-3:] == ["B.eh(200,end=False)", "A.eh(200,end=False)",
                               "down.head(200,end=False)"]
    h.rdata(b"x")
    h.rdata(b"y", end=True)
    assert log.take() == ["B.ed(b'x',False)", "B.ed(b'xy',True)", "A.ed(b'xy',True)",
                          "down.data(b'xy',True)", "A.destroy", "B.destroy", "stream_done"]
    assert h.ctx.cluster.rq_active == 0


def test_encode_head_held_by_a_filter_without_body_hooks_holds_the_body() -> None:
    log = Log()
    a = Hdr(log, "A", eh=HS)
    h = Harness(a, body=False).start()
    h.response()
    h.rdata(b"ab")
    h.rdata(b"cd")
    assert log.take()[-1] == "A.eh(200,end=False)"
    h.s.continue_encoding()
    assert log.take() == ["down.head(200,end=False)", "down.data(b'abcd',False)"]
    h.rdata(b"!", end=True)
    assert log.take() == ["down.data(b'!',True)", "A.destroy", "stream_done"]


def test_encode_stop_all_watermark_pauses_the_upstream() -> None:
    log = Log()
    a = mk(log, "A", eh=HSW)
    h = Harness(a, body=False, limit=8).start()
    h.response()
    log.clear()
    h.rdata(b"0123456789")
    assert log.take() == [f"up.pause({PAUSE_FLOW})"]
    a.callbacks.continue_encoding()
    assert log.take() == ["down.head(200,end=False)", "A.ed(b'0123456789',False)",
                          "down.data(b'0123456789',False)", f"up.resume({PAUSE_FLOW})"]


def test_encode_overflow_before_the_head_went_out_is_a_500() -> None:
    log = Log()
    a = Hdr(log, "A", eh=HS)
    h = Harness(a, body=False, limit=8).start()
    h.response()
    log.clear()
    h.rdata(b"0123456789")
    assert log.take() == ["up.cancel", "down.head(500,end=True)", "A.destroy", "stream_done"]
    assert h.ctx.stats.replies == [ProxyStatus.INTERNAL_ERROR]


def test_encode_overflow_after_the_head_went_out_resets_the_stream() -> None:
    log = Log()
    a = mk(log, "A", ed=SB)
    h = Harness(a, body=False, limit=8).start()
    h.response()
    log.clear()
    h.rdata(b"01234")
    h.rdata(b"56789")
    assert log.take() == ["A.ed(b'01234',False)", "A.ed(b'0123456789',False)", "up.cancel",
                          "down.reset", "A.destroy", "stream_done"]


def test_encode_no_buffer_inject_and_trailers_stop() -> None:
    log = Log()

    def wrap(f: Bod, data: Any, end: bool) -> DataStatus:
        f.callbacks.inject_encoded_data(b"[" + bytes(data) + b"]")
        return SN

    a = mk(log, "A")
    b = mk(log, "B", ed=wrap, et=TS)
    h = Harness(a, b, body=False).start()
    h.response()
    log.clear()
    h.rdata(b"x")
    h.rtrailers(t="1")
    assert log.take() == ["B.ed(b'x',False)", "A.ed(b'[x]',False)", "down.data(b'[x]',False)",
                          "B.et({'t': '1'})"]
    b.callbacks.continue_encoding()
    assert log.take() == ["A.et({'t': '1'})", "down.trailers({'t': '1'})", "A.destroy",
                          "B.destroy", "stream_done"]


def test_upstream_reset_while_a_filter_holds_the_response_head_is_answered() -> None:
    log = Log()
    a = Hdr(log, "A", eh=HS)
    h = Harness(a, body=False, retry=SimpleNamespace(attempts=1, on=["reset"])).start()
    h.response()
    log.clear()
    h.s.on_upstream_reset(ResetReason.CONNECTION_TERMINATED)
    assert log.take() == ["down.head(503,end=True)", "A.destroy", "stream_done"]
    assert h.ctx.stats.rq_retry == 0


def test_filter_local_reply_from_encode_headers_replaces_a_streaming_response() -> None:
    log = Log()

    def deny(f: Hdr, frame: Frame) -> HeadersStatus:
        if frame.status == 200:
            f.callbacks.send_local_reply(ProxyStatus.INTERNAL_ERROR, "no")
            return HS
        return HC

    a = Hdr(log, "A", eh=deny)
    h = Harness(a, body=False).start()
    log.clear()
    h.response()
    assert log.take() == ["A.eh(200,end=False)", "up.cancel", "down.head(500,end=True)",
                          "A.destroy", "stream_done"]
    h.rdata(b"late", end=True)
    assert log.take() == []


@pytest.mark.parametrize("chunks", [[b"a" * 3] * 5, [b"abc", b"", b"defgh"]])
def test_stop_buffer_never_keeps_a_view_of_the_callers_buffer(chunks: list[bytes]) -> None:
    """Chunks arrive as views of a buffer the codec reuses: what is kept must be a copy."""
    log = Log()
    seen: list[bytes] = []

    def keep_all(f: Bod, data: Any, end: bool) -> DataStatus:
        seen.append(bytes(data))
        return C if end else SB

    h = Harness(mk(log, "A", dd=keep_all)).start()
    shared = bytearray(16)
    for i, c in enumerate(chunks):
        shared[: len(c)] = c
        h.s.on_downstream_data(DataFrame(5, memoryview(shared)[: len(c)], i == len(chunks) - 1))
        shared[:] = b"\xff" * 16  # the codec reuses its buffer
    assert seen[-1] == b"".join(chunks)
    assert log[-1] == f"up.data({b''.join(chunks)!r},True)"

