"""``ProxyH2Connection``: h2's ``H2Connection`` with the four behaviours a proxy needs.

h2 does the framing, HPACK, the stream state machine (RFC 9113 §5.1) and flow-control
accounting. Subclassing changes only these, each where h2 departs from what a proxy needs:

1. **Refused streams** (RFC 9113 §5.1.2, §8.7). A HEADERS that opens a stream beyond our
   SETTINGS_MAX_CONCURRENT_STREAMS -- or above the last stream id of a GOAWAY we sent
   (§6.8) -- gets RST_STREAM REFUSED_STREAM, a *stream* error the client may retry. h2 raises
   ``TooManyStreamsError`` instead, which tears the whole connection down. The header block
   is still decoded, because HPACK state is per connection (§4.3), and the stream still
   passes through h2's state machine, so frames that follow it on the wire are handled as
   "closed by RST_STREAM" (§5.4.2) rather than as a connection error.

2. **Graceful GOAWAY** (RFC 9113 §6.8). h2 moves its connection state machine to CLOSED on
   sending *or* receiving GOAWAY (python-hyper/h2#1181, open): afterwards nothing may be sent
   and a DATA frame for a stream the GOAWAY kept alive is a protocol error. A drain needs
   the opposite: streams up to the last stream id finish normally. So GOAWAY is sent and
   received here without touching h2's connection state; what GOAWAY forbids (opening new
   streams) the codec enforces itself.

3. **Split flow-control acknowledgement** (RFC 9113 §6.9, §5.2.2). h2's
   ``acknowledge_received_data`` opens the stream *and* the connection window together.
   The codec hands back the connection window as soon as DATA is decoded
   (``ack_connection``) and a stream's window only when the consumer says it has used the
   bytes (``ack_stream``). A slow reader then stalls its own stream, never the whole
   connection, and the codec's buffering stays bounded by the sum of stream windows.

4. **Settings from the first frame.** The SETTINGS we advertise are h2's *current* local
   settings from the start (``wire.local_settings`` only allows values that are safe before
   the peer ACKs them), and the HPACK decoder gets the hard header-list bound.

5. **The same behaviour, cheaper** (checked against h2 4.4.1 / hpack 4.2.0; ``pyproject``
   pins ``h2~=4.4``). h2 spends most of a proxied request's CPU on bookkeeping that these
   overrides do in O(1), with identical results:

   - ``_open_streams`` (the stream-count check before every new stream, in both
     directions) walks *every* stream; here each stream's state machine reports its
     open/closed transitions to a per-connection counter (``h2_fast``), and the closed
     streams h2 would move to ``_closed_streams`` on that walk are moved at the same calls,
     in the same order;
   - ``_receive_frame`` formats ``repr(frame)`` for a trace log on every frame, whatever the
     logger (h2's default ``DummyLogger`` drops it): not done here;
   - streams and the connection state machine come from ``h2_fast`` (table lookups by
     integer, received header blocks checked in one pass: ``inbound_checks``);
   - HPACK: ``hpack_fast`` (same octets, same header lists; see there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from h2.config import H2Configuration
from h2.connection import (
    AllowedStreamIDs,
    ConnectionInputs,
    ConnectionState,
    H2Connection,
    _decode_headers,
)
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, Event
from h2.exceptions import (
    ProtocolError,
    StreamClosedError,
    StreamIDTooLowError,
    TooManyStreamsError,
)
from h2.settings import SettingCodes, Settings
from h2.stream import H2Stream
from hpack.struct import HeaderWeaklyTyped
from hyperframe.frame import Frame as H2Frame
from hyperframe.frame import GoAwayFrame, HeadersFrame, RstStreamFrame, WindowUpdateFrame

from mosn_py.codecs.http2.h2_fast import FastConnectionStateMachine, ProxyStream, StreamCounts
from mosn_py.codecs.http2.hpack_fast import FastDecoder, FastEncoder
from mosn_py.codecs.http2.wire import (
    CONNECTION_WINDOW,
    DEFAULT_WINDOW,
    HARD_HEADER_FACTOR,
    PREFACE,
    error_code,
)


class ProxyH2Connection(H2Connection):
    """One h2 connection as the codec drives it (see the module docstring)."""

    def __init__(self, *, client_side: bool, settings: Mapping[SettingCodes | int, int]) -> None:
        super().__init__(
            H2Configuration(
                client_side=client_side,
                header_encoding=None,  # bytes in, bytes out: latin-1 at the codec's edge
                # outbound blocks are normalised and validated *before* h2 gets them
                # (wire.prepare): h2 would check them halfway through HPACK-encoding
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=True,
                normalize_inbound_headers=True,
            )
        )
        self.state_machine = FastConnectionStateMachine()
        # h2 builds these enum members per HEADERS frame (a Python-level call each time)
        self._allowed_outbound = AllowedStreamIDs(client_side)
        self._allowed_inbound = AllowedStreamIDs(not client_side)
        self.encoder = FastEncoder()
        self.decoder = FastDecoder()
        self._counts = StreamCounts()
        config = self.config
        self._fast_inbound = (
            config.normalize_inbound_headers and config.validate_inbound_headers
        )
        values = cast("dict[SettingCodes, int]", dict(settings))
        self.local_settings = Settings(client=client_side, initial_values=values)
        self.max_inbound_frame_size = self.local_settings.max_frame_size
        header_list = self.local_settings.max_header_list_size or 0
        self.decoder.max_header_list_size = HARD_HEADER_FACTOR * header_list
        self.decoder.max_allowed_table_size = self.local_settings.header_table_size
        self.refused_streams = 0  # streams answered with REFUSED_STREAM so far
        self.local_goaway: int | None = None  # last stream id of the GOAWAY we sent
        self.remote_goaway: ConnectionTerminated | None = None  # the last GOAWAY received
        self._admit_over_limit = False

    def start(self) -> None:
        """Queue the preface (client) and SETTINGS, then open the connection window."""
        self.initiate_connection()
        if CONNECTION_WINDOW > DEFAULT_WINDOW:
            self.increment_flow_control_window(CONNECTION_WINDOW - DEFAULT_WINDOW)

    # --- 5. h2's bookkeeping in O(1) (h2 4.4.1) ----------------------------------------------

    def _open_streams(self, remainder: int) -> int:
        """h2's count of open streams with ``stream_id % 2 == remainder``; like h2, first
        moves every closed stream from ``streams`` to ``_closed_streams``, in the table's
        (creation) order -- which is id order within one parity (h2 only lets ids grow)."""
        closed = self._counts.closed
        if closed:
            streams = self.streams
            closed_streams = self._closed_streams
            if len(closed) > 1:
                parity = closed[0] & 1
                if all(sid & 1 == parity for sid in closed):
                    closed.sort()
                else:  # both parities (a peer opening streams of its own): table order
                    position = {sid: i for i, sid in enumerate(streams)}
                    closed.sort(key=position.__getitem__)
            for stream_id in closed:
                stream = streams.pop(stream_id)
                closed_streams[stream_id] = stream.closed_by
            closed.clear()
        return self._counts.open[remainder]

    def _begin_new_stream(self, stream_id: int, allowed_ids: AllowedStreamIDs) -> H2Stream:
        # h2 4.4.1 ``_begin_new_stream`` (minus its DummyLogger calls), with our stream class.
        outbound = self._stream_id_is_outbound(stream_id)
        highest_stream_id = (
            self.highest_outbound_stream_id if outbound else self.highest_inbound_stream_id
        )
        if stream_id <= highest_stream_id:
            raise StreamIDTooLowError(stream_id, highest_stream_id)
        if (stream_id % 2) != int(allowed_ids):
            msg = "Invalid stream ID for peer."
            raise ProtocolError(msg)
        s = ProxyStream(
            stream_id,
            self.config,
            self.local_settings.initial_window_size,
            self.remote_settings.initial_window_size,
            self._counts,
            self._fast_inbound,
        )
        s.max_outbound_frame_size = self.max_outbound_frame_size
        self.streams[stream_id] = s
        if outbound:
            self.highest_outbound_stream_id = stream_id
        else:
            self.highest_inbound_stream_id = stream_id
        return s

    def _prepare_for_sending(self, frames: list[H2Frame]) -> None:
        # h2 4.4.1, with a list instead of a generator and the same assertion
        if not frames:
            return
        self._data_to_send += b"".join([f.serialize() for f in frames])
        max_size = self.max_outbound_frame_size
        for f in frames:
            assert f.body_len <= max_size

    def send_headers(
        self,
        stream_id: int,
        headers: Iterable[HeaderWeaklyTyped],
        end_stream: bool = False,
        priority_weight: int | None = None,
        priority_depends_on: int | None = None,
        priority_exclusive: bool | None = None,
    ) -> None:
        if not (
            priority_weight is None and priority_depends_on is None and priority_exclusive is None
        ):
            super().send_headers(
                stream_id,
                headers,
                end_stream,
                priority_weight,
                priority_depends_on,
                priority_exclusive,
            )
            return
        # h2 4.4.1 ``send_headers`` without priority information (and its DummyLogger call)
        if stream_id not in self.streams:
            max_open_streams = self.remote_settings.max_concurrent_streams
            value = self.open_outbound_streams
            if (value + 1) > max_open_streams:
                msg = f"Max outbound streams is {max_open_streams}, {value} open"
                raise TooManyStreamsError(msg)
        self.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
        stream = self._get_or_create_stream(stream_id, self._allowed_outbound)
        frames: list[H2Frame] = []
        frames.extend(stream.send_headers(headers, self.encoder, end_stream))
        self._prepare_for_sending(frames)

    def _h2_receive_headers_frame(
        self, frame: HeadersFrame
    ) -> tuple[list[H2Frame], list[Event]]:
        # h2 4.4.1 ``_receive_headers_frame``; a frame with PRIORITY goes to h2's own
        if "PRIORITY" in frame.flags:
            return super()._receive_headers_frame(frame)
        if frame.stream_id not in self.streams:
            max_open_streams = self.local_settings.max_concurrent_streams
            value = self.open_inbound_streams
            if (value + 1) > max_open_streams:
                msg = f"Max inbound streams is {max_open_streams}, {value} open"
                raise TooManyStreamsError(msg)
        headers = _decode_headers(self.decoder, frame.data)
        events = self.state_machine.process_input(ConnectionInputs.RECV_HEADERS)
        stream = self._get_or_create_stream(frame.stream_id, self._allowed_inbound)
        frames, stream_events = stream.receive_headers(
            headers, "END_STREAM" in frame.flags, self.config.header_encoding
        )
        return frames, events + stream_events

    def _receive_frame(self, frame: H2Frame) -> list[Event]:
        # h2 4.4.1 ``_receive_frame`` without its per-frame ``trace(repr(frame))``.
        events: list[Event]
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except StreamClosedError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = e.error_code
                self._prepare_for_sending([f])
                events = e._events
            else:
                raise
        except StreamIDTooLowError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = ErrorCodes.STREAM_CLOSED
                self._prepare_for_sending([f])
                events = []
            elif self._stream_is_closed_by_end(e.stream_id):
                raise StreamClosedError(e.stream_id) from e
            else:
                raise
        else:
            self._prepare_for_sending(frames)
        return events

    # --- 1. refused streams ------------------------------------------------------------------

    @property
    def open_inbound_streams(self) -> int:
        # h2's _receive_headers_frame compares this with MAX_CONCURRENT_STREAMS and raises a
        # connection error; while we admit a stream only to refuse it, report room for it.
        if self._admit_over_limit:
            return 0
        return super().open_inbound_streams

    def _must_refuse(self, stream_id: int) -> bool:
        if self.config.client_side:
            return False  # a server-opened stream is a push: h2 rejects it (ENABLE_PUSH=0)
        if self.local_goaway is not None and stream_id > self.local_goaway:
            return True  # §6.8: not going to be processed
        return self.open_inbound_streams >= self.local_settings.max_concurrent_streams

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[H2Frame], list[Event]]:
        stream_id = frame.stream_id
        if stream_id in self.streams or not self._must_refuse(stream_id):
            return self._h2_receive_headers_frame(frame)
        self._admit_over_limit = True
        try:
            frames, events = self._h2_receive_headers_frame(frame)
        finally:
            self._admit_over_limit = False
        frames.extend(self.streams[stream_id].reset_stream(ErrorCodes.REFUSED_STREAM))
        self.refused_streams += 1
        kept = [e for e in events if getattr(e, "stream_id", None) != stream_id]
        return frames, kept

    # --- 2. graceful GOAWAY ------------------------------------------------------------------

    def send_goaway(self, last_stream_id: int, code: int, debug: bytes = b"") -> None:
        """Queue a GOAWAY; unlike ``close_connection`` the connection stays usable for the
        streams up to ``last_stream_id`` (which the caller keeps non-increasing, §6.8)."""
        frame = GoAwayFrame(
            0, last_stream_id=last_stream_id, error_code=code, additional_data=debug
        )
        self._prepare_for_sending([frame])
        self.local_goaway = last_stream_id

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[H2Frame], list[Event]]:
        event = ConnectionTerminated()
        event.error_code = error_code(frame.error_code)
        previous = self.remote_goaway
        last = frame.last_stream_id
        if previous is not None and previous.last_stream_id is not None:
            last = min(last, previous.last_stream_id)  # §6.8: it MUST NOT increase
        event.last_stream_id = last
        event.additional_data = frame.additional_data or None
        self.remote_goaway = event
        return [], [event]

    # --- 3. split flow-control acknowledgement -----------------------------------------------

    def ack_connection(self, size: int) -> None:
        """Hand ``size`` flow-controlled octets back to the connection window (§6.9)."""
        increment = self._inbound_flow_control_window_manager.process_bytes(size)
        if increment:
            update = WindowUpdateFrame(0)
            update.window_increment = increment
            self._prepare_for_sending([update])

    def ack_stream(self, stream_id: int, size: int) -> None:
        """Hand ``size`` octets back to one stream's window; a no-op once it is closed."""
        stream = self.streams.get(stream_id)
        if stream is not None and stream.open and size > 0:
            self._prepare_for_sending(stream.acknowledge_received_data(size))

    # --- 4. state the codec reads ------------------------------------------------------------

    def mid_frame(self) -> bool:
        """True when received bytes stop inside the preface, a frame or a header block."""
        buf = self.incoming_buffer
        in_preface = 0 < buf._preamble_len < len(PREFACE)
        return in_preface or bool(buf._data) or bool(buf._headers_buffer)

    @property
    def closed(self) -> bool:
        """h2's connection state machine is CLOSED: after a connection error (h2 queued
        GOAWAY) or ``close_connection``; nothing can be sent any more."""
        return self.state_machine.state is ConnectionState.CLOSED
