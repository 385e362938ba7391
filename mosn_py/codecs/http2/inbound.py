"""The receive path of the HTTP/2 codec: h2 events in, the codec's frames out.

h2 turns bytes into events (``h2.events``); ``Inbound.translate`` turns those into the
streaming contract of ``mosn_py.codecs.base``, per stream::

    RequestReceived / ResponseReceived -> Frame (head; end_stream if END_STREAM was on it)
    DataReceived                       -> DataFrame (empty non-final DATA is dropped)
    TrailersReceived                   -> TrailersFrame (always ends the stream, §8.1)
    StreamReset                        -> ResetFrame(code, "remote reset" | "protocol error")
    ConnectionTerminated (GOAWAY)      -> ConnectionEvent.GOAWAY, then ResetFrame
                                          REFUSED_STREAM for our streams above its last id
    WindowUpdated, RemoteSettingsChanged  -> flush pending DATA (output only)
    SETTINGS/PING acks, PRIORITY, 1xx, ALTSVC, unknown frames -> nothing (h2 answers)

h2 attaches ``StreamEnded`` to the event of the frame that carried END_STREAM, so the
separate ``StreamEnded`` event is redundant except as a safety net.

Flow control on receipt (RFC 9113 §6.9): the connection window is handed back at once
(``ack_connection``); padding (§6.1) is acknowledged on the stream at once, since no
consumer ever sees it; the data itself waits for ``Http2Codec.consumed()``.

Limits, each answered without tearing the connection down:

- a head over SETTINGS_MAX_HEADER_LIST_SIZE or ``CodecLimits.max_header_count``: the server
  answers ``431`` itself (RFC 9113 §10.5.1, RFC 6585 §5) and, if the request is still
  arriving, RST_STREAM(NO_ERROR) (§8.1) -- the application never sees that stream
  (``rejected_heads`` counts them); the client resets the stream with CANCEL and reports a
  ``ResetFrame``. Oversized trailers reset the stream (CANCEL) in both roles.
- a body over ``CodecLimits.max_body_size``: the server answers ``413`` and
  RST_STREAM(NO_ERROR) if its response has not started, otherwise RST_STREAM(CANCEL); the
  client resets with CANCEL. Either way the application gets a ``ResetFrame`` whose
  ``code`` is what went on the wire and whose ``reason`` starts with ``"local: "`` and
  names the limit (``"... answered 413"`` when the 413 was sent) -- the status hint for a
  proxy that must tell the other side why.
- a response ``:status`` that is not three digits is malformed (§8.1.1): RST_STREAM
  PROTOCOL_ERROR and a ``ResetFrame``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RemoteSettingsChanged,
    RequestReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error
from h2.settings import SettingCodes
from hpack.struct import Header

from mosn_py.codecs.base import (
    CodecLimits,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    ResetFrame,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http2 import wire
from mosn_py.codecs.http2.connection import ProxyH2Connection
from mosn_py.codecs.http2.grpc import parse_grpc_timeout
from mosn_py.codecs.http2.replies import status_reply
from mosn_py.codecs.http2.streams import Outbox, StreamState
from mosn_py.codecs.http2.wire import PROTOCOL


class Inbound:
    """Turns one connection's h2 events into queued frames (see the module docstring)."""

    __slots__ = ("_h2", "_header_limit", "_limits", "_out", "_server", "events", "rejected_heads")

    def __init__(
        self,
        h2: ProxyH2Connection,
        out: Outbox,
        limits: CodecLimits,
        header_limit: int,
        server: bool,
    ) -> None:
        self._h2 = h2
        self._out = out
        self._limits = limits
        self._header_limit = header_limit
        self._server = server
        self.events: deque[Any] = deque()
        self.rejected_heads = 0  # heads answered with 431, never surfaced

    def translate(self, events: list[Event]) -> None:
        """Queue the frames ``events`` mean; act on flow control and limits."""
        for ev in events:
            if isinstance(ev, DataReceived):
                self._on_data(ev)
            elif isinstance(ev, WindowUpdated):
                if ev.stream_id:
                    self._out.flush_stream(ev.stream_id)
                else:
                    self._out.flush_blocked()
                self._out.settle(self._server)
            elif isinstance(ev, (RequestReceived, ResponseReceived)):
                self._on_head(ev.stream_id, ev.headers or [], ev.stream_ended is not None)
            elif isinstance(ev, TrailersReceived):
                self._on_trailers(ev.stream_id, ev.headers or [])
            elif isinstance(ev, StreamEnded):
                self._on_stream_ended(ev.stream_id)
            elif isinstance(ev, StreamReset):
                self._on_reset(ev)
            elif isinstance(ev, RemoteSettingsChanged):
                changed = ev.changed_settings
                if SettingCodes.INITIAL_WINDOW_SIZE in changed or (
                    SettingCodes.MAX_FRAME_SIZE in changed
                ):
                    self._out.flush_blocked()
                    self._out.settle(self._server)
            elif isinstance(ev, ConnectionTerminated):
                self._on_goaway(ev)
            # SETTINGS/PING acks, PRIORITY, 1xx, ALTSVC, unknown frames: nothing to report

    def _on_head(self, sid: int, raw: list[Header], ended: bool) -> None:
        size, count, fields = wire.decode_head(raw)
        if size > self._header_limit or count > self._limits.max_header_count:
            self._oversized_head(sid, ended, size, count)
            return
        headers = HeaderList(fields)
        if self._server:
            limit = self._limits.max_body_size
            if limit and not ended and _declared_length(headers) > limit:
                self._reject_head(sid, ended, 413)  # content-length over max_body_size
                return
            st = self._out.open(sid)
            st.remote_ended = ended
            timeout = parse_grpc_timeout(headers.get("grpc-timeout"))
            self.events.append(
                Frame(
                    StreamType.REQUEST, sid, headers, b"", 0, timeout, False, ended, None, PROTOCOL
                )
            )
            return
        maybe = self._out.get(sid)
        if maybe is None:
            return  # we reset it meanwhile
        status = wire.status_of(headers)
        if status is None:  # RFC 9113 §8.1.1: malformed -> stream error PROTOCOL_ERROR
            self.reset(maybe, ErrorCodes.PROTOCOL_ERROR, "malformed :status in response")
            return
        maybe.remote_ended = ended
        self.events.append(
            Frame(StreamType.RESPONSE, sid, headers, b"", status, 0, False, ended, None, PROTOCOL)
        )
        if ended:
            self._out.retire_if_done(maybe)

    def _oversized_head(self, sid: int, ended: bool, size: int, count: int) -> None:
        reason = (
            f"header list of {size} octets / {count} fields over the limit "
            f"({self._header_limit} / {self._limits.max_header_count})"
        )
        if not self._server:
            st = self._out.get(sid)
            if st is not None:
                self.reset(st, ErrorCodes.CANCEL, reason)
            return
        # RFC 9113 §10.5.1 / RFC 6585 §5: 431.
        self._reject_head(sid, ended, 431)

    def _reject_head(self, sid: int, ended: bool, status: int) -> None:
        """SERVER: answer ``status`` to a request the application never sees, then
        RST_STREAM(NO_ERROR) if the request is still arriving (RFC 9113 §8.1)."""
        self.rejected_heads += 1
        reply = status_reply(sid, status)
        try:
            self._h2.send_headers(
                sid, wire.encode_headers(reply.headers, wire.RESPONSE_HEAD), end_stream=True
            )
            if not ended:
                self._h2.reset_stream(sid, ErrorCodes.NO_ERROR)
        except H2Error:
            pass  # the peer closed it in the same read

    def _on_data(self, ev: DataReceived) -> None:
        sid = ev.stream_id
        data = ev.data or b""
        flow = ev.flow_controlled_length or 0
        self._h2.ack_connection(flow)
        st = self._out.get(sid)
        if st is None:
            return  # a stream the application does not know (any more): dropped
        n = len(data)
        if flow > n:
            self._h2.ack_stream(sid, flow - n)  # padding (§6.1) is nobody's to consume
        ended = ev.stream_ended is not None
        st.received += n
        limit = self._limits.max_body_size
        if limit and st.received > limit:
            self._body_too_large(st, limit)
            return
        if not n and not ended:
            return  # empty DATA without END_STREAM carries nothing (CVE-2019-9518 noise)
        st.unacked += n
        if ended:
            st.remote_ended = True
        self.events.append(DataFrame(sid, data, ended))
        if ended:
            self._out.retire_if_done(st)

    def _body_too_large(self, st: StreamState, limit: int) -> None:
        reason = f"body of more than {limit} octets (limits.max_body_size)"
        if self._server and not st.head_sent:
            # answer 413 ourselves, then stop the upload: RST_STREAM(NO_ERROR) (§8.1)
            reply = status_reply(st.stream_id, 413)
            try:
                headers = wire.encode_headers(reply.headers, wire.RESPONSE_HEAD)
                self._h2.send_headers(st.stream_id, headers, end_stream=True)
            except H2Error:
                pass
            self.reset(st, ErrorCodes.NO_ERROR, reason + ": answered 413")
        else:
            self.reset(st, ErrorCodes.CANCEL, reason)

    def _on_trailers(self, sid: int, raw: list[Header]) -> None:
        st = self._out.get(sid)
        if st is None:
            return
        size, count = wire.header_list_size(raw)
        if size > self._header_limit or count > self._limits.max_header_count:
            self.reset(st, ErrorCodes.CANCEL, f"trailers of {size} octets over the limit")
            return
        st.remote_ended = True
        self.events.append(TrailersFrame(sid, wire.to_header_list(raw)))
        self._out.retire_if_done(st)

    def _on_stream_ended(self, sid: int) -> None:
        # h2 attaches StreamEnded to the HEADERS/DATA event that carried END_STREAM, which
        # already reported it; this is only a safety net.
        st = self._out.get(sid)
        if st is not None and not st.remote_ended:
            st.remote_ended = True
            self.events.append(DataFrame(sid, b"", True))
            self._out.retire_if_done(st)

    def _on_reset(self, ev: StreamReset) -> None:
        sid = ev.stream_id
        if self._out.drop(sid) is None:
            return
        reason = "remote reset" if ev.remote_reset else "protocol error: h2 reset the stream"
        self.events.append(ResetFrame(sid, int(ev.error_code or 0), reason))

    def _on_goaway(self, ev: ConnectionTerminated) -> None:
        self.events.append(ConnectionEvent.GOAWAY)
        last = ev.last_stream_id or 0
        ours = 0 if self._server else 1  # parity of the streams this side opens
        for sid in [s for s in self._out.streams if s > last and s % 2 == ours]:
            self._out.drop(sid)
            self.events.append(
                ResetFrame(
                    sid,
                    int(ErrorCodes.REFUSED_STREAM),
                    "GOAWAY: not processed by the peer, safe to retry",
                )
            )

    def reset(self, st: StreamState, code: ErrorCodes, reason: str) -> None:
        """Reset ``st`` on the wire and tell the application (``ResetFrame``)."""
        self._out.drop(st.stream_id)
        try:
            self._h2.reset_stream(st.stream_id, code)
        except H2Error:
            pass  # already closed in h2
        self.events.append(ResetFrame(st.stream_id, int(code), "local: " + reason))


def _declared_length(headers: HeaderList) -> int:
    """The request's ``content-length`` (0 when absent or unreadable: h2 itself rejects a
    malformed one and checks the DATA against it)."""
    value = headers.get("content-length")
    if value is None or not value.isdigit() or len(value) > 18:
        return 0
    return int(value)
