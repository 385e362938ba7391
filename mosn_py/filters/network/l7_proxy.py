"""The L7 proxy: downstream codec -> stream filters -> router -> cluster -> pool -> upstream.

    client ─► L7Connection (codec, SERVER role) ─► Stream ─► filters ─► route ─► host
                                                     ▲                             │
                                          encode ◄───┴──── UpstreamConnection ◄────┘

One ``Stream`` per request. Everything on this path is a synchronous callback; the only
coroutines are upstream connects. A frame no filter touched goes upstream as its original
bytes with only the request id patched (``codec.send(frame, request_id)`` patches in
place), and the response comes back the same way.

Every outcome that is not the upstream's own answer is a local reply built by the
downstream codec from one ``ProxyStatus`` (no route, no healthy host, overflow, timeout,
upstream reset, codec error), so each protocol answers in its own terms.

Timeout: a request frame's own timeout wins when > 0; otherwise the route's timeout applies
(``None``: no timeout). It runs from the moment the route is matched, so it also bounds
AFTER_ROUTE filters, host choice, connecting and retries.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Frame, Role, StreamType
from mosn_py.errors import ProtocolError, ProxyStatus, ResetReason
from mosn_py.filters.chain import HeadersStatus, Phase, StreamFilter
from mosn_py.observability.log import log_event
from mosn_py.server.connection import PAUSE_FLOW, PAUSE_PEER_SLOW, PAUSE_STREAMS, BaseConnection

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Coroutine

    from mosn_py.router.routes import CompiledRule
    from mosn_py.server.listener import ListenerContext
    from mosn_py.upstream.cluster import Cluster
    from mosn_py.upstream.host import Host
    from mosn_py.upstream.pool import UpstreamConnection

log = logging.getLogger("mosn_py.proxy")

MAX_STREAMS_PER_CONNECTION = 2048  # stop reading a client with this many requests in flight

_RETRY_REASONS = {
    "connect-failure": (ResetReason.CONNECT_FAILURE,),
    "reset": (ResetReason.CONNECTION_TERMINATED, ResetReason.CONNECTION_FAILED),
}

# Decode stages of a stream with filters (between the filter groups of each phase).
_STAGE_ROUTE, _STAGE_HOST, _STAGE_SEND = 0, 1, 2


class L7Connection(BaseConnection):
    """A downstream connection speaking an L7 protocol (server role codec)."""

    __slots__ = ("ctx", "codec", "streams", "half_closed", "peer_addr")

    def __init__(self, ctx: ListenerContext) -> None:
        super().__init__(ctx.batcher, ctx.loop)
        self.ctx = ctx
        self.codec = ctx.codec_cls(Role.SERVER, limits=ctx.limits)
        self.streams: set[Stream] = set()
        self.half_closed = False
        self.peer_addr = ""

    def on_connected(self) -> None:
        self.peer_addr = self.peername()
        self.ctx.track(self)

    def on_data(self, data: memoryview) -> None:
        codec = self.codec
        codec.receive_data(data)
        try:
            while not self.closed:
                ev = codec.next_event()
                if ev is NEED_DATA:
                    break
                if ev is ConnectionEvent.CLOSED:
                    self._on_peer_eof()
                    break
                if ev.is_heartbeat:
                    self.write(codec.send(codec.heartbeat_reply(ev)))
                    continue
                Stream(self, ev).start()
        except ProtocolError as e:
            self._on_codec_error(e)
            return
        if len(self.streams) >= MAX_STREAMS_PER_CONNECTION:
            self.pause(PAUSE_STREAMS)

    def _on_codec_error(self, e: ProtocolError) -> None:
        self.ctx.stats.codec_errors += 1
        log_event(
            log, logging.WARNING, "downstream protocol error",
            listener=self.ctx.config.name, peer=self.peer_addr, error=str(e),
        )
        error_reply = getattr(self.codec, "error_reply", None)
        reply = error_reply(str(e)) if error_reply is not None else None
        if reply is not None:
            self.write(self.codec.send(reply))
        # Nothing more can be read from this connection, but the requests already in
        # flight still get their answers before it closes.
        self.pause(PAUSE_FLOW)
        self.half_closed = True
        if not self.streams:
            self.close()

    def on_eof(self) -> bool | None:
        # Feed EOF to the codec: a truncated frame is a protocol error, a clean boundary a
        # half-close. Keep our write side open while requests are in flight.
        self.codec.receive_data(b"")
        try:
            while True:
                ev = self.codec.next_event()
                if ev is NEED_DATA or ev is ConnectionEvent.CLOSED:
                    break
        except ProtocolError:
            pass
        self._on_peer_eof()
        return True if not self.closed else None

    def _on_peer_eof(self) -> None:
        self.half_closed = True
        if not self.streams:
            self.close()

    def on_write_paused(self) -> None:
        # The client is not reading its responses: stop taking its requests. What is in
        # flight is bounded by MAX_STREAMS_PER_CONNECTION.
        self.pause(PAUSE_PEER_SLOW)

    def on_write_resumed(self) -> None:
        self.resume(PAUSE_PEER_SLOW)

    def on_closed(self, exc: Exception | None) -> None:
        self.ctx.untrack(self)
        streams, self.streams = self.streams, set()
        for s in streams:
            s.on_downstream_closed()

    def stream_done(self, stream: Stream) -> None:
        streams = self.streams
        streams.discard(stream)
        n = len(streams)
        if n < MAX_STREAMS_PER_CONNECTION // 2:
            self.resume(PAUSE_STREAMS)
        if n == 0 and (self.half_closed or self.ctx.draining):
            self.close()


class Stream:
    """One request through the proxy. Implements the filter callbacks and the upstream
    callbacks."""

    __slots__ = (
        "conn",
        "ctx",
        "request",
        "response",
        "route",
        "cluster_obj",
        "host",
        "upstream",
        "upstream_id",
        "timer",
        "retries_left",
        "tried",
        "filters",
        "_stage",
        "_index",
        "_encoding",
        "done",
        "started",
        "_info",
        "status",
    )

    def __init__(self, conn: L7Connection, request: Frame) -> None:
        self.conn = conn
        self.ctx = conn.ctx
        self.request = request
        self.response: Frame | None = None
        self.route: CompiledRule | None = None
        self.cluster_obj: Cluster | None = None
        self.host: Host | None = None
        self.upstream: UpstreamConnection | None = None
        self.upstream_id = -1
        self.timer: int | None = None  # TimerWheel token
        self.retries_left = 0
        self.tried: list[Host] | None = None
        self.filters: tuple[StreamFilter, ...] = ()
        self._stage = 0
        self._index = 0
        self._encoding = False
        self.done = False
        self.started = 0.0
        self._info: dict[str, Any] | None = None
        self.status = ProxyStatus.OK

    # --- decode path ---------------------------------------------------------------------------
    def start(self) -> None:
        ctx = self.ctx
        ctx.stats.rq_total += 1
        if ctx.access_log is not None:
            self.started = time.time()
        if self.request.stream_type is not StreamType.ONEWAY:
            self.conn.streams.add(self)
        factories = ctx.filter_factories
        if not factories:
            # Fast path: no filters.
            if self._route() and self._choose_host():
                self._send()
            return
        self.filters = tuple(f() for f in factories)
        for f in self.filters:
            f.set_callbacks(self)  # type: ignore[arg-type]
        self._run_decode()

    def _run_decode(self) -> None:
        filters = self.filters
        n = len(filters)
        while not self.done:
            stage = self._stage
            i = self._index
            while i < n:
                f = filters[i]
                i += 1
                if f.phase != stage:
                    continue
                self._index = i
                status = f.decode_headers(self.request, True)
                if status is not HeadersStatus.CONTINUE or self.done:
                    return  # resumed by continue_decoding()
            self._index = 0
            self._stage = stage + 1
            if stage == _STAGE_ROUTE:
                if not self._route():
                    return
            elif stage == _STAGE_HOST:
                if not self._choose_host():
                    return
            else:
                self._send()
                return

    def continue_decoding(self) -> None:
        if not self.done:
            self._run_decode()
        self.ctx.batcher.flush()

    def _route(self) -> bool:
        ctx = self.ctx
        rule = ctx.route_table.match(self.request) if ctx.route_table is not None else None
        if rule is None:
            self.send_local_reply(ProxyStatus.ROUTE_NOT_FOUND, "no route for this request")
            return False
        self.route = rule
        cluster = ctx.clusters().get(rule.cluster)
        if cluster is None:
            self.send_local_reply(
                ProxyStatus.NO_HEALTHY_UPSTREAM, f"cluster {rule.cluster!r} not found"
            )
            return False
        self.cluster_obj = cluster
        if rule.retry is not None:
            self.retries_left = rule.retry.attempts
        if self.timer is None and self.request.stream_type is not StreamType.ONEWAY:
            ms = self.request.timeout_ms
            timeout = ms / 1000.0 if ms > 0 else rule.timeout
            if timeout is not None:
                self.timer = self.ctx.timers.schedule(self, timeout)
        return True

    def _choose_host(self) -> bool:
        cluster = self.cluster_obj
        assert cluster is not None
        if cluster.rq_active >= cluster.max_requests:
            cluster.rq_overflow += 1
            self.send_local_reply(ProxyStatus.UPSTREAM_OVERFLOW, "upstream overflow")
            return False
        host = cluster.lb.choose(self.tried)
        if host is None and self.tried:
            host = cluster.lb.choose()  # every host tried: a retry may go to one again
        if host is None:
            self.send_local_reply(ProxyStatus.NO_HEALTHY_UPSTREAM, "no healthy upstream")
            return False
        self.host = host
        return True

    def _send(self) -> None:
        cluster = self.cluster_obj
        host = self.host
        assert cluster is not None and host is not None
        upstream = cluster.pool(host).acquire()
        request = self.request
        cluster.rq_total += 1
        host.rq_total += 1
        if request.stream_type is StreamType.ONEWAY:
            upstream.send_request(request, None)
            self._finish()
            return
        cluster.rq_active += 1
        host.rq_active += 1
        self.upstream = upstream
        self.upstream_id = upstream.send_request(request, self)
        if upstream.congested:
            upstream.register_backpressure(self.conn)

    def _release_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream = None
            assert self.cluster_obj is not None and self.host is not None
            self.cluster_obj.rq_active -= 1
            self.host.rq_active -= 1

    # --- upstream callbacks ----------------------------------------------------------------------
    def on_upstream_response(self, frame: Frame) -> None:
        if self.done:
            return
        self._release_upstream()
        self._encode(frame)

    def on_upstream_reset(self, reason: ResetReason) -> None:
        if self.done:
            return
        host = self.host
        self._release_upstream()
        if host is not None:
            host.rq_error += 1
        if self.retries_left > 0 and self._retriable(reason):
            self.retries_left -= 1
            if self.tried is None:
                self.tried = []
            if host is not None:
                self.tried.append(host)
            self.ctx.stats.rq_retry += 1
            if self._choose_host():
                self._send()
            return
        self.send_local_reply(reason.to_status(), f"upstream {reason.value}")

    def _retriable(self, reason: ResetReason) -> bool:
        retry = self.route.retry if self.route is not None else None
        if retry is None:
            return False
        return any(reason in _RETRY_REASONS.get(on, ()) for on in retry.on)

    def on_deadline(self) -> None:
        """The request's timeout expired (called by the TimerWheel)."""
        self.timer = None
        if self.done:
            return
        if self.upstream is not None:
            self.upstream.cancel(self.upstream_id)
            if self.host is not None:
                self.host.rq_error += 1
            self._release_upstream()
        self.ctx.stats.rq_timeout += 1
        self.send_local_reply(ProxyStatus.TIMEOUT, "request timed out")
        self.ctx.batcher.flush()

    # --- encode path --------------------------------------------------------------------------
    def send_local_reply(self, status: ProxyStatus, message: str = "") -> None:
        if self.done:
            return
        self.status = status
        self.ctx.stats.local_reply(status)
        if self.request.stream_type is StreamType.ONEWAY:
            self._finish()
            return
        reply = self.conn.codec.local_reply(self.request, status, message)
        if self._encoding:
            self._write_response(reply)
        else:
            self._encode(reply)

    def _encode(self, frame: Frame) -> None:
        self.response = frame
        filters = self.filters
        if filters:
            self._encoding = True
            self._index = len(filters)
            self._run_encode()
        else:
            self._write_response(frame)

    def _run_encode(self) -> None:
        filters = self.filters
        i = self._index
        while i > 0:
            i -= 1
            self._index = i
            assert self.response is not None
            status = filters[i].encode_headers(self.response, True)
            if self.done:
                return
            if status is not HeadersStatus.CONTINUE:
                return  # resumed by continue_encoding()
        assert self.response is not None
        self._write_response(self.response)

    def continue_encoding(self) -> None:
        if not self.done and self._encoding:
            self._run_encode()
        self.ctx.batcher.flush()

    def _write_response(self, frame: Frame) -> None:
        conn = self.conn
        if not conn.closed:
            try:
                conn.write(conn.codec.send(frame, self.request.request_id))
            except ProtocolError as e:
                log_event(log, logging.ERROR, "cannot encode response", error=str(e))
                conn.close()
        self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self._release_stream_resources()
        ctx = self.ctx
        if ctx.access_log is not None:
            self._access_log()
        self.conn.stream_done(self)

    def on_downstream_closed(self) -> None:
        """The client went away: forget the upstream request, free everything."""
        if self.done:
            return
        if self.upstream is not None:
            self.upstream.cancel(self.upstream_id)
            self._release_upstream()
        self._release_stream_resources()
        if self.ctx.access_log is not None:
            self.stream_info["downstream_closed"] = True
            self._access_log()

    def _release_stream_resources(self) -> None:
        self.done = True
        if self.timer is not None:
            self.ctx.timers.cancel(self, self.timer)
            self.timer = None
        for f in self.filters:
            f.on_destroy()

    def _access_log(self) -> None:
        req = self.request
        resp = self.response
        host = self.host
        assert self.ctx.access_log is not None
        self.ctx.access_log.write(
            {
                "listener": self.ctx.config.name,
                "downstream": self.conn.peer_addr,
                "protocol": req.protocol,
                "request_id": req.request_id,
                "service": self.ctx.describe(req),
                "cluster": self.cluster_obj.name if self.cluster_obj else "",
                "upstream": str(host.address) if host else "",
                "status": resp.status if resp is not None else None,
                "proxy_status": self.status.value,
                "downstream_closed": bool(self._info and self._info.get("downstream_closed")),
                "duration_ms": round((time.time() - self.started) * 1000, 3),
            }
        )

    # --- filter callbacks ---------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.ctx.loop

    @property
    def stream_info(self) -> dict[str, Any]:
        """Free-form per-stream data filters share (created on first use)."""
        if self._info is None:
            self._info = {}
        return self._info

    def replace_request(self, frame: Frame) -> None:
        self.request = frame

    def replace_response(self, frame: Frame) -> None:
        self.response = frame

    def cluster(self, name: str) -> Cluster | None:
        return self.ctx.clusters().get(name)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self.ctx.loop.create_task(coro)


def make_l7_protocol(ctx: ListenerContext) -> L7Connection:
    return L7Connection(ctx)


__all__ = ["L7Connection", "Phase", "Stream", "make_l7_protocol"]
