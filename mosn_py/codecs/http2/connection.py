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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, Event
from h2.settings import SettingCodes, Settings
from hyperframe.frame import Frame as H2Frame
from hyperframe.frame import GoAwayFrame, HeadersFrame, WindowUpdateFrame

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
            return super()._receive_headers_frame(frame)
        self._admit_over_limit = True
        try:
            frames, events = super()._receive_headers_frame(frame)
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
