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

from mosn_py.codecs.base import (
    NEED_DATA,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    MatchResult,
    PoolMode,
    ResetFrame,
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.errors import ProtocolError, ProxyStatus, ResetReason
from mosn_py.filters.chain import (
    DECODE_HOOKS,
    DEFAULT_BUFFER_LIMIT,
    ENCODE_HOOKS,
    Body,
    BodyFlow,
    FilterHandle,
    HeadersStatus,
    Phase,
    StreamFilter,
    body_hooks,
)
from mosn_py.filters.network.http_route_step import response_head, route_http, settle_upgrade
from mosn_py.observability.log import log_event
from mosn_py.server.connection import PAUSE_FLOW, PAUSE_PEER_SLOW, PAUSE_STREAMS, BaseConnection
from mosn_py.translate.base import TranslationError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Coroutine

    from mosn_py.server.listener import ListenerContext
    from mosn_py.upstream.cluster import Cluster
    from mosn_py.upstream.host import Host
    from mosn_py.upstream.pool import UpstreamConnection

log = logging.getLogger("mosn_py.proxy")

GOAWAY_GRACE = 1.0  # s between a drain's first (max id) GOAWAY and the final one
_MAX_STREAM_ID = (1 << 31) - 1
MAX_STREAMS_PER_CONNECTION = 2048  # stop reading a client with this many requests in flight

_RETRY_REASONS = {
    "connect-failure": (ResetReason.CONNECT_FAILURE,),
    "reset": (ResetReason.CONNECTION_TERMINATED, ResetReason.CONNECTION_FAILED),
}

# Decode stages of a stream with filters (between the filter groups of each phase).
_STAGE_ROUTE, _STAGE_HOST, _STAGE_SEND = 0, 1, 2
_STAGE_OVER = 3  # the head went upstream, or the stream was answered


class L7Connection(BaseConnection):
    """A downstream connection speaking an L7 protocol (server role codec)."""

    __slots__ = (
        "ctx", "codec", "streams", "half_closed", "peer_addr", "peer_ip", "by_id", "serial",
        "_held", "flow", "_pumping",
    )

    def __init__(self, ctx: ListenerContext) -> None:
        super().__init__(ctx.batcher, ctx.loop)
        self.ctx = ctx
        self.codec: Any = None
        self.serial = False
        self.flow = False
        if ctx.codec_cls is not None:
            self._use_codec(ctx.codec_cls)
        self.streams: set[Stream] = set()
        self.half_closed = False
        self.peer_addr = ""
        self.peer_ip = ""
        # Streaming protocols: streams whose request or response body is still flowing,
        # by the codec's stream id (body, trailer and reset events are routed through it).
        self.by_id: dict[int, Stream] = {}
        self._held: Frame | None = None
        self._pumping = False

    def _use_codec(self, codec_cls: Any) -> None:
        self.codec = codec_cls(Role.SERVER, limits=self.ctx.limits)
        # Ping-pong protocols (HTTP/1.1) answer in request order: one exchange at a time.
        # A request head read while one is in flight waits in ``_held`` (reading paused).
        self.serial = getattr(codec_cls, "pool_mode", None) is PoolMode.PINGPONG
        # Codecs with output of their own and flow control (HTTP/2): a preface at start,
        # acks/window updates after reads (``data_to_send``), received DATA acknowledged
        # (``consumed``) once passed upstream.
        self.flow = hasattr(self.codec, "data_to_send")

    def on_connected(self) -> None:
        if self.flow:
            self.write(self.codec.initiate())
        self.peer_addr = self.peername()
        t = self.transport
        peer = t.get_extra_info("peername") if t is not None else None
        self.peer_ip = str(peer[0]) if peer else ""
        self.ctx.track(self)

    def on_data(self, data: memoryview) -> None:
        self.codec.receive_data(data)
        self._pump()

    def _pump(self) -> None:
        """Pull events from the codec until it needs data (or we must stop pulling)."""
        codec = self.codec
        outer = self._pumping
        self._pumping = True
        try:
            while not self.closed and self._held is None:
                ev = codec.next_event()
                if ev is NEED_DATA:
                    break
                if ev is ConnectionEvent.CLOSED:
                    self._on_peer_eof()
                    break
                if ev.__class__ is Frame:
                    if ev.is_heartbeat:
                        self.write(codec.send(codec.heartbeat_reply(ev)))
                    elif self.serial and self.streams:
                        self._held = ev  # answer in order: wait for the exchange in flight
                        self.pause(PAUSE_FLOW)
                    else:
                        Stream(self, ev).start()
                else:
                    self._on_stream_event(ev)
        except ProtocolError as e:
            if self.flow:
                self.write(codec.data_to_send())  # e.g. the GOAWAY naming the error
            self._on_codec_error(e)
            return
        finally:
            self._pumping = outer
        if self.flow:
            out = codec.data_to_send()
            if out:
                self.write(out)
        if len(self.streams) >= MAX_STREAMS_PER_CONNECTION:
            self.pause(PAUSE_STREAMS)

    def _on_stream_event(self, ev: Any) -> None:
        cls = ev.__class__
        if cls is DataFrame or cls is TrailersFrame or cls is ResetFrame:
            stream = self.by_id.get(ev.stream_id)
            if cls is DataFrame and self.flow and ev.data:
                # Passed on (or dropped) now: reopen the client's window for it.
                self.codec.consumed(ev.stream_id, len(ev.data))
            if stream is None:
                return  # a stream we already answered or reset: drop its remaining body
            if cls is DataFrame:
                stream.on_downstream_data(ev)
            elif cls is TrailersFrame:
                stream.on_downstream_trailers(ev)
            else:
                stream.on_downstream_reset(ev)
        # ConnectionEvent.GOAWAY and codec-internal events need nothing here yet.

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

    # --- graceful drain ----------------------------------------------------------------------
    def drain(self) -> None:
        """The listener is draining (SIGTERM): finish what is in flight, take nothing new.

        HTTP/2 (RFC 9113 §6.8): GOAWAY with the largest stream id first -- streams already on
        the wire still count -- then, one round trip later, GOAWAY naming the last stream
        really taken; reading goes on, since streams in flight need the client's
        WINDOW_UPDATEs and bodies. Other protocols stop reading (Bolt has no GOAWAY; an
        HTTP/1.1 client learns from the close). Either way the connection closes once no
        stream is left (``stream_done``), or at the drain timeout."""
        if self.closed:
            return
        if self.codec is None:  # ``protocol: http`` still sniffing: nothing started
            self.close()
            return
        if not self.flow:
            if not self.streams and self.activity == 0:
                # Accepted just before the drain, its request not read yet: serve that one
                # (the close follows in ``stream_done``) rather than fail a brand-new
                # connection; close if nothing comes.
                self.ctx.loop.call_later(GOAWAY_GRACE, self._close_if_unused)
                return
            self.pause(PAUSE_FLOW)
            if not self.streams:
                self.close()
            return
        if not self.streams:
            self._final_goaway()
            return
        self.write(self.codec.goaway(_MAX_STREAM_ID))
        self.ctx.batcher.flush()
        self.ctx.loop.call_later(GOAWAY_GRACE, self._final_goaway_if_open)

    def _close_if_unused(self) -> None:
        if not self.closed and not self.streams:
            self.close()

    def _final_goaway_if_open(self) -> None:
        if self.closed:
            return
        try:
            self.write(self.codec.goaway())
        except ProtocolError:
            pass  # already said (a lower id): nothing to add
        self.ctx.batcher.flush()

    def _final_goaway(self) -> None:
        """HTTP/2, nothing in flight: say which streams were taken, then close."""
        try:
            self.write(self.codec.goaway())
        except ProtocolError:
            pass
        self.close()

    def on_write_paused(self) -> None:
        # The client is not reading its responses: stop taking its requests. What is in
        # flight is bounded by MAX_STREAMS_PER_CONNECTION. Streaming responses stop being
        # read from their (exclusive) upstream connections until the client catches up.
        self.pause(PAUSE_PEER_SLOW)
        for s in self.by_id.values():
            s.pause_response(True)

    def on_write_resumed(self) -> None:
        self.resume(PAUSE_PEER_SLOW)
        for s in list(self.by_id.values()):
            s.pause_response(False)

    def on_closed(self, exc: Exception | None) -> None:
        self.ctx.untrack(self)
        streams, self.streams = self.streams, set()
        for s in streams:
            s.on_downstream_closed()

    def stream_done(self, stream: Stream) -> None:
        streams = self.streams
        streams.discard(stream)
        if self.by_id:
            self.by_id.pop(stream.request.request_id, None)
        n = len(streams)
        if n < MAX_STREAMS_PER_CONNECTION // 2:
            self.resume(PAUSE_STREAMS)
        if n == 0 and (self.half_closed or self.ctx.draining or self._no_more_exchanges()):
            if self.flow and self.ctx.draining and not self.half_closed:
                self._final_goaway()
                return
            self.close()
            return
        held = self._held
        if held is not None and n == 0 and not self.closed:
            # The exchange in flight is over: serve the request that waited, then read on.
            self._held = None
            Stream(self, held).start()
            if self._held is None and not self.ctx.draining:
                self.resume(PAUSE_FLOW)
                self._pump()
        elif n == 0 and self.serial and not self._pumping and not self.closed:
            # Sending the response may have released input the codec held (what followed
            # an Upgrade request the upstream refused): decode it now, not on the next read.
            self._pump()

    def _no_more_exchanges(self) -> bool:
        """Ping-pong codecs: the codec says the connection ends after the exchanges it has
        received (Connection: close, HTTP/1.0...) and every one of them is answered."""
        if not self.serial or self._held is not None:
            return False
        codec = self.codec
        return bool(codec.must_close) and not codec.pending

    def reset_stream(self, stream: Stream) -> None:
        """End a stream whose response has started and cannot be completed: protocols with
        stream resets send one; HTTP/1.1 can only drop the connection."""
        if getattr(self.codec, "pool_mode", None) is PoolMode.MULTIPLEX:
            try:
                self.write(self.codec.send(ResetFrame(stream.request.request_id, 0, "reset")))
                return
            except ProtocolError:
                pass
        self.abort()


class Stream:
    """One request through the proxy. Implements the filter callbacks, the upstream
    callbacks, and the stream side of the body machinery (``chain.BodyEngine``).

    Streaming bodies go straight through (``on_downstream_data`` -> upstream,
    ``on_upstream_data`` -> client) unless a filter of the stream has body hooks for that
    direction, or a filter holds that direction's head while its body is still to come: then
    a ``chain.BodyFlow`` (``_dflow``, ``_eflow``) runs them through the filters.
    """

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
        "_eindex",
        "_encoding",
        "done",
        "started",
        "_info",
        "status",
        "_dflow",
        "_eflow",
        "req_ended",
        "resp_started",
        "tunnel",
        "translator",
        "_tbody",
        "_tresp",
        "vhost",
    )

    def __init__(self, conn: L7Connection, request: Frame) -> None:
        self.conn = conn
        self.ctx = conn.ctx
        self.request = request
        self.response: Frame | None = None
        self.route: Any = None  # CompiledRule (Bolt) or CompiledHttpRule (HTTP)
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
        # Streaming protocols: the body flows through filters (None: straight through);
        # whether the request has ended upstream (or was abandoned); whether a
        # (non-interim) response head went downstream.
        self.vhost: Any = None  # HTTP: the matched virtual host
        self._dflow: BodyFlow | None = None
        self._eflow: BodyFlow | None = None
        self.req_ended = request.end_stream
        self.resp_started = False
        self.tunnel = False  # a 101 (or 2xx to CONNECT) turned the exchange into a tunnel
        # Protocol translation (the cluster speaks another protocol than the listener): the
        # translator; the request body being collected (streaming downstream); the
        # response being collected (streaming upstream): [head, body, trailers].
        self.translator: Any = None
        self._tbody: bytearray | None = None
        self._tresp: list[Any] | None = None

    # --- decode path ---------------------------------------------------------------------------
    def start(self) -> None:
        ctx = self.ctx
        ctx.stats.rq_total += 1
        if ctx.access_log is not None:
            self.started = time.time()
        if self.request.stream_type is not StreamType.ONEWAY:
            self.conn.streams.add(self)
        streaming = not self.req_ended
        if streaming:
            self.conn.by_id[self.request.request_id] = self
        factories = ctx.filter_factories
        if not factories:
            # Fast path: no filters.
            if self._route() and self._choose_host():
                self._send()
            return
        self.filters = tuple(f() for f in factories)
        if streaming:
            # A body follows: filters with body hooks get their handles, and the body a
            # flow through them if any has request hooks.
            if self._engage(True) & DECODE_HOOKS:
                self._dflow = self._new_flow(True)
        else:
            for f in self.filters:
                f.set_callbacks(self)
        self._run_decode()

    def _run_decode(self) -> None:
        filters = self.filters
        n = len(filters)
        while not self.done:
            stage = self._stage
            i = self._index
            end = self.request.end_stream
            while i < n:
                f = filters[i]
                i += 1
                if f.phase != stage:
                    continue
                self._index = i
                status = f.decode_headers(self.request, end)
                if status is not HeadersStatus.CONTINUE or self.done:
                    if not self.req_ended and not self.done:
                        self._decode_held(i - 1, status)
                    return  # resumed by continue_decoding()
            self._index = 0
            self._stage = stage + 1
            if stage == _STAGE_ROUTE:
                if not self._route():
                    self._abandon_request()  # answered here (no route, direct response...)
                    return
            elif stage == _STAGE_HOST:
                if not self._choose_host():
                    return
            else:
                self._send()
                return

    def continue_decoding(self) -> None:
        """Resume the request head a filter holds. (The stream's own callbacks: filters with
        body hooks call ``continue_at`` through their ``FilterHandle``.)"""
        if not self.done and self._stage <= _STAGE_SEND:
            flow = self._dflow
            if flow is None:
                self._run_decode()
            elif flow.hold is not None:
                self._resume_decode(flow, flow.hpos)
        self.ctx.batcher.flush()

    def _decode_held(self, index: int, status: HeadersStatus) -> None:
        """Filter ``index`` stopped the head of a request whose body is still to come: the
        body waits for it in a flow (one without hooks when no filter has request hooks)."""
        flow = self._dflow
        if flow is None:
            flow = self._dflow = self._new_flow(True)
        flow.head_held(index, status)

    def _resume_decode(self, flow: BodyFlow, pos: int) -> None:
        if flow.hold is not None and flow.hpos == pos:
            flow.hold = None
            self._run_decode()  # the head goes on: to a later filter's stop, or upstream
        flow.release(pos)  # then what the filter at ``pos`` kept (nothing once dropped)

    def _route(self) -> bool:
        ctx = self.ctx
        if ctx.http:
            found = route_http(self)  # may answer itself: direct response, redirect, 404
            if found is None:
                return False
            rule, cluster_name = found
        else:
            rule = ctx.route_table.match(self.request) if ctx.route_table is not None else None
            if rule is None:
                self.send_local_reply(ProxyStatus.ROUTE_NOT_FOUND, "no route for this request")
                return False
            self.route = rule
            cluster_name = rule.cluster
        cluster = ctx.clusters().get(cluster_name)
        if cluster is None:
            self.send_local_reply(
                ProxyStatus.NO_HEALTHY_UPSTREAM, f"cluster {cluster_name!r} not found"
            )
            return False
        self.cluster_obj = cluster
        if ctx.translators:
            self.translator = ctx.translator_for(rule.config, cluster.config.protocol)
        if ctx.http and self.translator is None and not settle_upgrade(
            self, cluster.config.protocol
        ):
            return False
        if rule.retry is not None:
            self.retries_left = rule.retry.attempts
        if self.timer is None and self.request.stream_type is not StreamType.ONEWAY:
            ms = self.request.timeout_ms
            if ms <= 0:
                timeout = rule.timeout
            elif ctx.http and rule.timeout is not None:
                timeout = min(ms / 1000.0, rule.timeout)  # grpc-timeout bounds the route's
            else:
                timeout = ms / 1000.0  # Bolt: a frame timeout > 0 overrides the route's
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
        request = self.request
        if self.translator is not None:
            if not request.end_stream:
                # A streaming request: translators take whole messages. Collect the body
                # (bounded), then come back here (``_translated_body``).
                self._tbody = bytearray()
                return
            try:
                request = self.translator.request(request)
            except TranslationError as e:
                self.send_local_reply(e.status, e.message)
                return
        upstream = cluster.pool(host).acquire()
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
        flow = self._dflow
        if flow is not None:
            if request.end_stream:
                self._abandon_request()  # sent whole (an Upgrade made plain...): no body
            else:
                flow.head_passed()  # what waited for the head follows it
                if not flow.hooked and self._dflow is flow:
                    self._dflow = None  # nothing to run the rest through: straight on
        if upstream.congested:
            upstream.register_backpressure(self.conn)

    # --- streaming request bodies ------------------------------------------------------------
    def on_downstream_data(self, df: DataFrame) -> None:
        if self.done or self.req_ended:
            return  # (req_ended: the end mark of an Upgrade request the proxy made plain)
        tbody = self._tbody
        if tbody is not None:
            tbody += df.data
            if df.end_stream:
                self._translated_body(None)
            elif len(tbody) > self._translate_limit():
                self.send_local_reply(ProxyStatus.CODEC_ERROR, "request too large to translate")
            return
        flow = self._dflow
        if flow is not None:
            flow.data(df.data, df.end_stream)
            return
        if df.end_stream:
            self.req_ended = True
        up = self.upstream
        if up is not None:
            up.send_data(self.upstream_id, df)
            if up.congested:
                up.register_backpressure(self.conn)
        # (No upstream and no flow: the stream was answered; the rest is dropped.)

    def on_downstream_trailers(self, tf: TrailersFrame) -> None:
        if self.done or self.req_ended:
            return
        if self._tbody is not None:
            self._translated_body(tf.trailers)
            return
        flow = self._dflow
        if flow is not None:
            flow.trailers(tf.trailers)
            return
        self.req_ended = True
        if self.upstream is not None:
            self.upstream.send_trailers(self.upstream_id, tf)

    def _translate_limit(self) -> int:
        cluster = self.cluster_obj
        return cluster.config.max_frame_size if cluster is not None else 16 << 20

    def _translated_body(self, trailers: Any) -> None:
        """The whole request body is in: translate and send it as one message."""
        tbody = self._tbody
        assert tbody is not None
        self._tbody = None
        self.req_ended = True
        self.request = self.request.evolve(body=bytes(tbody), trailers=trailers,
                                           end_stream=True)
        self._send()

    def _translated_response(self, head: Frame, body: bytes | memoryview,
                             trailers: Any) -> None:
        """The whole upstream response is in: translate it for the client."""
        self._tresp = None
        self._release_upstream()
        whole = head if head.end_stream and trailers is None and not body else head.evolve(
            body=body, trailers=trailers, end_stream=True)
        try:
            resp = self.translator.response(whole, self.request)
        except TranslationError as e:
            self.send_local_reply(e.status, e.message)
            return
        self._encode(resp)

    def on_downstream_reset(self, rf: ResetFrame) -> None:
        """The client abandoned the stream: abandon the upstream exchange too."""
        if self.done:
            return
        self._abandon_request()  # (resumes the connection if this stream paused it)
        self.on_downstream_closed()
        self.conn.stream_done(self)

    def _abandon_request(self) -> None:
        """No more of the request goes anywhere (the stream is answered, or the upstream
        exchange ended first): drop what filters kept and whatever of the body follows."""
        self.req_ended = True
        self._stage = _STAGE_OVER
        flow = self._dflow
        if flow is not None:
            self._dflow = None
            flow.drop()

    def _release_upstream(self) -> None:
        up = self.upstream
        if up is not None:
            if not self.req_ended:
                # The response is over before the request was (e.g. an early 413): the
                # upstream exchange can only be abandoned.
                up.cancel(self.upstream_id)
                self._abandon_request()
            self.upstream = None
            assert self.cluster_obj is not None and self.host is not None
            self.cluster_obj.rq_active -= 1
            self.host.rq_active -= 1

    # --- upstream callbacks ----------------------------------------------------------------------
    def on_upstream_response(self, frame: Frame) -> None:
        if self.done:
            return
        status = frame.status
        if 100 <= status < 200 and status != 101 and not frame.end_stream:
            # An interim response (100 Continue, 103 Early Hints): pass it on as it is to
            # HTTP/1.1 clients; HTTP/2 clients get only the final response.
            conn = self.conn
            if self.translator is not None:
                return
            if not conn.closed and not conn.flow:
                conn.write(conn.codec.send(frame, self.request.request_id))
            return
        if self.translator is not None:
            if frame.end_stream:
                self._translated_response(frame, frame.body, frame.trailers)
            else:
                self._tresp = [frame, bytearray(), None]
            return
        if frame.end_stream:
            self._release_upstream()
        else:
            # A streaming response: the body follows (on_upstream_data / _trailers).
            if status == 101 or (
                # only an HTTP/1.1 Upgrade/CONNECT head can open a tunnel (extra.upgrade)
                status < 300
                and getattr(self.request.extra, "upgrade", False)
                and self.request.headers.get(":method") == "CONNECT"
            ):
                # A tunnel: no response deadline any more; the listener's idle timeout
                # closes it when neither side sends anything. Its bytes are no HTTP body:
                # they bypass the body hooks.
                self.tunnel = True
                if self.timer is not None:
                    self.ctx.timers.cancel(self, self.timer)
                    self.timer = None
                flow = self._dflow
                if flow is not None:
                    flow.hooks_off()
                    if flow.idle:
                        self._dflow = None
            self.conn.by_id[self.request.request_id] = self
            if self.filters and self._engage(False) & ENCODE_HOOKS and not self.tunnel:
                self._eflow = self._new_flow(False)
        self._encode(frame)

    def on_upstream_data(self, df: DataFrame) -> None:
        if self.done:
            return
        tresp = self._tresp
        if tresp is not None:
            tresp[1] += df.data
            if df.end_stream:
                self._translated_response(tresp[0], bytes(tresp[1]), None)
            elif len(tresp[1]) > self._translate_limit():
                self._release_upstream()
                self.send_local_reply(ProxyStatus.UPSTREAM_RESET,
                                      "response too large to translate")
            return
        flow = self._eflow
        if flow is not None:
            if df.end_stream:
                flow.unpause()  # (an upstream connection goes back to its pool unpaused)
                self._release_upstream()
            flow.data(df.data, df.end_stream)
            return
        conn = self.conn
        if not conn.closed:
            conn.write(conn.codec.send(DataFrame(self.request.request_id, df.data, df.end_stream)))
        if df.end_stream:
            self._release_upstream()
            self._finish()

    def on_upstream_trailers(self, tf: TrailersFrame) -> None:
        if self.done:
            return
        tresp = self._tresp
        if tresp is not None:
            self._translated_response(tresp[0], bytes(tresp[1]), tf.trailers)
            return
        flow = self._eflow
        if flow is not None:
            flow.unpause()
            self._release_upstream()
            flow.trailers(tf.trailers)
            return
        conn = self.conn
        if not conn.closed:
            conn.write(conn.codec.send(TrailersFrame(self.request.request_id, tf.trailers)))
        self._release_upstream()
        self._finish()

    def pause_response(self, paused: bool, reason: int = PAUSE_PEER_SLOW) -> None:
        """Stop (or resume) reading the response from an exclusive upstream connection.
        ``reason``: PAUSE_PEER_SLOW for a slow client, PAUSE_FLOW for a filter's watermark
        (separate bits: neither resumes the other)."""
        up = self.upstream
        if up is not None and getattr(up.codec, "pool_mode", None) is PoolMode.PINGPONG:
            if paused:
                up.pause(reason)
            else:
                up.resume(reason)

    def on_upstream_reset(self, reason: ResetReason) -> None:
        if self.done:
            return
        host = self.host
        self._release_upstream()
        if host is not None:
            host.rq_error += 1
        if self.resp_started:
            # Part of the response already went to the client: all we can do is cut it.
            self.conn.reset_stream(self)
            self._finish()
            return
        if self.response is not None:
            # The response head is still held by a filter: answer instead (no retry).
            self.send_local_reply(reason.to_status(), f"upstream {reason.value}")
            return
        if self.retries_left > 0 and self.request.end_stream and self._retriable(reason):
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
    def send_local_reply(
        self, status: ProxyStatus, message: str = "", http_status: int = 0
    ) -> None:
        """Answer the request with ``status`` in the listener's protocol. The request side
        is over: what filters kept and the rest of the body are dropped, the upstream
        request is cancelled. A response head held by a filter gives way to the reply; one
        already sent cannot, and the stream is reset. ``http_status``: the HTTP status to
        answer instead of ``status``'s own (413 for a body over the buffer limit:
        ``ProxyStatus`` has no member for it; gRPC and non-HTTP replies are unchanged)."""
        if self.done:
            return
        self.status = status
        self._abandon_request()
        up = self.upstream
        if up is not None:
            up.cancel(self.upstream_id)  # (whatever it still sends is not wanted)
            self._release_upstream()
        self.ctx.stats.local_reply(status)
        if self.resp_started:
            # Too late for a reply of our own: the client already has a response head.
            self.conn.reset_stream(self)
            self._finish()
            return
        flow = self._eflow
        if flow is not None:
            self._eflow = None
            flow.drop()
        if self.request.stream_type is StreamType.ONEWAY:
            self._finish()
            return
        reply = self.conn.codec.local_reply(self.request, status, message)
        if http_status and reply.status >= 400 and isinstance(reply.headers, HeaderList):
            reply = reply.evolve(
                status=http_status, headers=reply.headers.replace(":status", str(http_status))
            )
        if self._encoding:
            self._write_response(reply)
        else:
            self._encode(reply)

    def _encode(self, frame: Frame) -> None:
        if self.ctx.http:
            frame = response_head(self, frame)
        self.response = frame
        filters = self.filters
        if filters:
            self._encoding = True
            self._eindex = len(filters)
            self._run_encode()
        else:
            self._write_response(frame)

    def _run_encode(self) -> None:
        filters = self.filters
        i = self._eindex
        assert self.response is not None
        end = self.response.end_stream
        while i > 0:
            i -= 1
            self._eindex = i
            assert self.response is not None
            status = filters[i].encode_headers(self.response, end)
            if self.done:
                return
            if status is not HeadersStatus.CONTINUE:
                if not end:
                    self._encode_held(i, status)
                return  # resumed by continue_encoding()
        assert self.response is not None
        self._write_response(self.response)

    def continue_encoding(self) -> None:
        """Resume the response head a filter holds (see ``continue_decoding``)."""
        if not self.done and self._encoding:
            flow = self._eflow
            if flow is None:
                self._run_encode()
            elif flow.hold is not None:
                self._resume_encode(flow, flow.hpos)
        self.ctx.batcher.flush()

    def _encode_held(self, index: int, status: HeadersStatus) -> None:
        flow = self._eflow
        if flow is None:
            flow = self._eflow = self._new_flow(False)
        flow.head_held(index, status)

    def _resume_encode(self, flow: BodyFlow, pos: int) -> None:
        if flow.hold is not None and flow.hpos == pos:
            flow.hold = None
            self._run_encode()
        flow.release(pos)

    def _write_response(self, frame: Frame) -> None:
        conn = self.conn
        if not conn.closed:
            try:
                conn.write(conn.codec.send(frame, self.request.request_id))
            except ProtocolError as e:
                if conn.flow:
                    # A multiplexed connection: only this stream is affected -- typically
                    # it was reset meanwhile (by the client, or by the codec answering a
                    # limit itself), and its queued events say so. The others go on.
                    log_event(log, logging.DEBUG, "response dropped", error=str(e))
                    self._finish()
                    return
                log_event(log, logging.ERROR, "cannot encode response", error=str(e))
                conn.close()
                self._finish()
                return
        if frame.end_stream or conn.closed:
            self._finish()
        else:
            # A streaming response head went out: its body follows.
            self.resp_started = True
            self._encoding = False
            flow = self._eflow
            if flow is not None:
                flow.head_passed()
                if not flow.hooked and self._eflow is flow:
                    self._eflow = None

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

    # The stream's own versions know the calling filter only inside a body hook; filters
    # with body hooks have a FilterHandle, which always does.
    def inject_decoded_data(self, data: Body, end_stream: bool = False) -> None:
        self._inject(True, self._calling(self._dflow, "inject_decoded_data"), data, end_stream)

    def inject_encoded_data(self, data: Body, end_stream: bool = False) -> None:
        self._inject(False, self._calling(self._eflow, "inject_encoded_data"), data, end_stream)

    def replace_decoded_data(self, data: Body) -> None:
        flow = self._dflow
        if flow is not None:
            flow.replace(self._calling(flow, "replace_decoded_data"), data)

    def replace_encoded_data(self, data: Body) -> None:
        flow = self._eflow
        if flow is not None:
            flow.replace(self._calling(flow, "replace_encoded_data"), data)

    @staticmethod
    def _calling(flow: BodyFlow | None, what: str) -> int:
        if flow is None or flow.calling < 0:
            raise RuntimeError(
                f"{what}() outside a body hook: call it on the filter's own callbacks "
                "(filters that override a body hook get a FilterHandle)"
            )
        return flow.calling

    # --- body machinery (chain.BodyEngine) ---------------------------------------------------
    def _engage(self, first: bool) -> int:
        """The stream carries a body: each filter overriding a body hook gets a handle as
        its callbacks (``first``: at start, the others get the stream). Returns the union
        of the filters' body hooks."""
        hooks = 0
        for i, f in enumerate(self.filters):
            mask = body_hooks(type(f))
            hooks |= mask
            if mask:
                if first or getattr(f, "callbacks", None) is self:
                    f.set_callbacks(FilterHandle(self, i))
            elif first:
                f.set_callbacks(self)
        return hooks

    def _new_flow(self, decode: bool) -> BodyFlow:
        limits = self.ctx.limits
        limit = limits.max_body_size or limits.max_frame_size or DEFAULT_BUFFER_LIMIT
        return BodyFlow(self, decode, self.filters, limit, hooks=not self.tunnel)

    def continue_at(self, decode: bool, index: int) -> None:
        if not self.done:
            if decode:
                flow = self._dflow
                if flow is not None:
                    self._resume_decode(flow, flow.pos[index])
                elif self._stage <= _STAGE_SEND:
                    self._run_decode()
            else:
                flow = self._eflow
                if flow is not None:
                    self._resume_encode(flow, flow.pos[index])
                elif self._encoding:
                    self._run_encode()
        self.ctx.batcher.flush()

    def inject_at(self, decode: bool, index: int, data: Body, end_stream: bool) -> None:
        flow = self._dflow if decode else self._eflow
        self._inject(decode, flow.pos[index] if flow is not None else -1, data, end_stream)
        self.ctx.batcher.flush()

    def _inject(self, decode: bool, pos: int, data: Body, end_stream: bool) -> None:
        if self.done:
            return
        flow = self._dflow if decode else self._eflow
        if flow is not None:
            flow.inject(pos, data, end_stream)
        elif (self.upstream is not None and not self.req_ended) if decode else self.resp_started:
            self.body_out(decode, data, end_stream)  # no flow: nothing between it and out

    def replace_data_at(self, decode: bool, index: int, data: Body) -> None:
        flow = self._dflow if decode else self._eflow
        if flow is not None and not self.done:
            flow.replace(flow.pos[index], data)

    def body_out(self, decode: bool, data: Body, end_stream: bool) -> None:
        if decode:
            if end_stream:
                self.req_ended = True
            up = self.upstream
            if up is not None:
                up.send_data(self.upstream_id, DataFrame(self.upstream_id, data, end_stream))
                if up.congested:
                    up.register_backpressure(self.conn)
            return
        conn = self.conn
        if not conn.closed:
            conn.write(conn.codec.send(DataFrame(self.request.request_id, data, end_stream)))
        if end_stream:
            self._response_out()

    def body_trailers_out(self, decode: bool, trailers: HeaderList) -> None:
        if decode:
            self.req_ended = True
            if self.upstream is not None:
                self.upstream.send_trailers(
                    self.upstream_id, TrailersFrame(self.upstream_id, trailers)
                )
            return
        conn = self.conn
        if not conn.closed:
            conn.write(conn.codec.send(TrailersFrame(self.request.request_id, trailers)))
        self._response_out()

    def _response_out(self) -> None:
        up = self.upstream
        if up is not None:
            # A filter ended the response before the upstream did: abandon the rest.
            up.cancel(self.upstream_id)
            self._release_upstream()
        self._finish()

    def body_continue(self, decode: bool, pos: int) -> None:
        if decode:
            flow = self._dflow
            if flow is not None and self._stage <= _STAGE_SEND:
                self._resume_decode(flow, pos)
        else:
            flow = self._eflow
            if flow is not None and self._encoding:
                self._resume_encode(flow, pos)

    def body_overflow(self, decode: bool) -> None:
        if decode:
            self.send_local_reply(ProxyStatus.CODEC_ERROR, "request body too large", 413)
        else:
            self.send_local_reply(ProxyStatus.INTERNAL_ERROR, "response body too large")

    def body_pause(self, decode: bool, paused: bool) -> None:
        if not decode:
            self.pause_response(paused, PAUSE_FLOW)
            return
        conn = self.conn
        if paused:
            conn.pause(PAUSE_FLOW)
        elif (
            conn._held is None
            and not conn.half_closed
            and (conn.flow or not self.ctx.draining)
        ):
            # (The connection's own PAUSE_FLOW reasons, a pipelined request waiting, a codec
            # error, an HTTP/1.1 drain, are not ours to lift.)
            conn.resume(PAUSE_FLOW)


class AutoHttpConnection(L7Connection):
    """``protocol: http``: HTTP/2 or HTTP/1.1, decided per connection: by ALPN on TLS
    connections, else by whether the client starts with the HTTP/2 connection preface
    (RFC 9113 §3.4, prior knowledge) — the first 24 bytes at most are looked at."""

    __slots__ = ("_sniff",)

    def __init__(self, ctx: ListenerContext) -> None:
        super().__init__(ctx)
        self._sniff: bytearray | None = None

    def on_connected(self) -> None:
        t = self.transport
        ssl_obj = t.get_extra_info("ssl_object") if t is not None else None
        auto = self.ctx.auto_codecs
        assert auto is not None
        if ssl_obj is not None:
            h2 = ssl_obj.selected_alpn_protocol() == "h2"
            self._use_codec(auto[0] if h2 else auto[1])
        else:
            self._sniff = bytearray()
        super().on_connected()

    def on_data(self, data: memoryview) -> None:
        sniff = self._sniff
        if sniff is None:
            return super().on_data(data)
        sniff += data
        auto = self.ctx.auto_codecs
        assert auto is not None
        verdict = auto[0].match(sniff)
        if verdict is MatchResult.NEED_MORE:
            return None
        self._sniff = None
        self._use_codec(auto[0] if verdict is MatchResult.MATCH else auto[1])
        if self.flow:
            self.write(self.codec.initiate())
        return super().on_data(memoryview(bytes(sniff)))

    def on_eof(self) -> bool | None:
        if self.codec is None:
            self.close()
            return None
        return super().on_eof()


def make_l7_protocol(ctx: ListenerContext) -> L7Connection:
    if ctx.auto_codecs is not None:
        return AutoHttpConnection(ctx)
    return L7Connection(ctx)


__all__ = ["L7Connection", "Phase", "Stream", "make_l7_protocol"]
