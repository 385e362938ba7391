"""h2's per-stream machinery with the same behaviour and less bookkeeping (h2 4.4.1).

``ProxyH2Connection`` (``connection.py``) creates its streams and its connection state
machine from the classes here. Each override was checked against h2 4.4.1 (``pyproject``
pins ``h2~=4.4``) and changes cost, not behaviour:

- ``CountingStateMachine``: h2's stream state machine (same transition table, same errors),
  looked up by the states' and inputs' integer values -- h2 hashes ``Enum`` members, which
  is a Python-level call per transition -- and reporting every change of "open" (RFC 9113
  §5.1.2) and the move to CLOSED to the connection's ``StreamCounts``, so that
  ``_open_streams`` needs no walk over every stream;
- ``FastConnectionStateMachine``: the connection state machine, looked up the same way;
- ``ProxyStream``: ``H2Stream`` whose received header blocks are checked in one pass
  (``inbound_checks``), whose header-validation flags come from a table, and whose
  ``send_headers`` skips h2's re-encoding copy of a block ``wire.prepare`` already made
  (``Prepared``: bytes names and values, checked).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from h2.config import H2Configuration
from h2.connection import ConnectionInputs, ConnectionState, H2ConnectionStateMachine
from h2.events import Event
from h2.exceptions import ProtocolError
from h2.stream import (
    STREAM_OPEN,
    H2Stream,
    H2StreamStateMachine,
    StreamInputs,
    StreamState,
    _transitions,
)
from h2.utilities import (
    HeaderValidationFlags,
    authority_from_headers,
    extract_method_header,
    is_informational_response,
    utf8_encode_headers,
)
from h2.windows import WindowManager
from hpack.hpack import Encoder
from hpack.struct import Header
from hyperframe.frame import ContinuationFrame, HeadersFrame, PushPromiseFrame

from mosn_py.codecs.http2.inbound_checks import validate_inbound
from mosn_py.codecs.http2.wire import Prepared

_CLOSED = StreamState.CLOSED
_SEND_HEADERS = StreamInputs.SEND_HEADERS
_SEND_INFORMATIONAL_HEADERS = StreamInputs.SEND_INFORMATIONAL_HEADERS
_SEND_END_STREAM = StreamInputs.SEND_END_STREAM

# h2's stream transition table, keyed by the integer values of (state, input).
_StreamTransition = tuple[Callable[[H2StreamStateMachine, StreamState], list[Event]] | None,
                          StreamState]
_STREAM_TRANSITIONS: dict[tuple[int, int], _StreamTransition] = {
    (state.value, input_.value): entry for (state, input_), entry in _transitions.items()
}
_CONNECTION_TRANSITIONS: dict[tuple[int, int], tuple[Any, ConnectionState]] = {
    (state.value, input_.value): entry
    for (state, input_), entry in H2ConnectionStateMachine._transitions.items()
}


class StreamCounts:
    """Open streams by parity (``open[stream_id & 1]``) and the ids of streams that closed
    since h2 last pruned its stream table."""

    __slots__ = ("closed", "open")

    def __init__(self) -> None:
        self.open = [0, 0]
        self.closed: list[int] = []


class CountingStateMachine(H2StreamStateMachine):
    """h2 4.4.1 ``H2StreamStateMachine.process_input``, counting (see the module docstring).
    Every state change h2 makes goes through ``process_input``."""

    def __init__(self, stream_id: int, counts: StreamCounts) -> None:
        super().__init__(stream_id)
        self._counts = counts

    def process_input(self, input_: StreamInputs) -> list[Event]:
        if not isinstance(input_, StreamInputs):
            msg = "Input must be an instance of StreamInputs"
            raise ValueError(msg)
        old_state = self.state
        entry = _STREAM_TRANSITIONS.get((old_state._value_, input_._value_))
        if entry is None:
            self._move(old_state, _CLOSED)
            msg = f"Invalid input {input_} in state {old_state}"
            raise ProtocolError(msg)
        func, target_state = entry
        if target_state is not old_state:
            self._move(old_state, target_state)
        if func is None:
            return []
        try:
            events: list[Event] = func(self, old_state)
        except ProtocolError:
            self._move(target_state, _CLOSED)
            raise
        except AssertionError as err:  # pragma: no cover (h2's internal checks)
            self._move(target_state, _CLOSED)
            raise ProtocolError(err) from err
        return events

    def _move(self, old_state: StreamState, new_state: StreamState) -> None:
        """Enter ``new_state``; count the change of "open", and the arrival in CLOSED (a
        final state, so reported once)."""
        self.state = new_state
        if new_state is old_state:
            return
        was_open = STREAM_OPEN[old_state]
        if STREAM_OPEN[new_state] is not was_open:
            self._counts.open[self.stream_id & 1] += -1 if was_open else 1
        if new_state is _CLOSED:
            self._counts.closed.append(self.stream_id)


class FastConnectionStateMachine(H2ConnectionStateMachine):
    """h2 4.4.1 ``H2ConnectionStateMachine.process_input`` with an integer-keyed table."""

    def process_input(self, input_: ConnectionInputs) -> list[Event]:
        if not isinstance(input_, ConnectionInputs):
            msg = "Input must be an instance of ConnectionInputs"
            raise ValueError(msg)
        entry = _CONNECTION_TRANSITIONS.get((self.state._value_, input_._value_))
        if entry is None:
            old_state = self.state
            self.state = ConnectionState.CLOSED
            msg = f"Invalid input {input_} in state {old_state}"
            raise ProtocolError(msg)
        func, target_state = entry
        self.state = target_state
        if func is not None:  # pragma: no cover (h2 has none)
            result: list[Event] = func()
            return result
        return []


_FLAGS: dict[tuple[type, bool], HeaderValidationFlags] = {}


class ProxyStream(H2Stream):
    """``H2Stream`` with the counting state machine and the faster paths above."""

    def __init__(
        self,
        stream_id: int,
        config: H2Configuration,
        inbound_window_size: int,
        outbound_window_size: int,
        counts: StreamCounts,
        fast_inbound: bool,
    ) -> None:
        # h2 4.4.1 ``H2Stream.__init__``, with our state machine
        self.state_machine = CountingStateMachine(stream_id, counts)
        self.stream_id = stream_id
        self.max_outbound_frame_size: int | None = None
        self.request_method: bytes | None = None
        self.outbound_flow_control_window = outbound_window_size
        self._inbound_window_manager = WindowManager(inbound_window_size)
        self._expected_content_length: int | None = None
        self._actual_content_length = 0
        self._authority: bytes | None = None
        self.config = config
        # header_encoding None, inbound normalisation and validation on: one-pass checks
        self._fast_inbound = fast_inbound
        # outbound normalisation / validation off: blocks go to HPACK as they are
        self._plain_outbound = not (
            config.normalize_outbound_headers or config.validate_outbound_headers
        )

    def _build_headers_frames(
        self,
        headers: Iterable[Header],
        encoder: Encoder,
        first_frame: HeadersFrame | PushPromiseFrame,
        hdr_validation_flags: HeaderValidationFlags,
    ) -> list[HeadersFrame | ContinuationFrame | PushPromiseFrame]:
        if not self._plain_outbound:
            return super()._build_headers_frames(
                headers, encoder, first_frame, hdr_validation_flags
            )
        # h2 4.4.1 ``_build_headers_frames`` with normalisation and validation off
        encoded_headers = encoder.encode(headers)
        step = self.max_outbound_frame_size or 0
        header_blocks = [
            encoded_headers[i : i + step] for i in range(0, len(encoded_headers), step)
        ]
        frames: list[HeadersFrame | ContinuationFrame | PushPromiseFrame] = []
        first_frame.data = header_blocks[0]
        frames.append(first_frame)
        for block in header_blocks[1:]:
            cf = ContinuationFrame(self.stream_id)
            cf.data = block
            frames.append(cf)
        frames[-1].flags.add("END_HEADERS")
        return frames

    def _build_hdr_validation_flags(self, events: Any) -> HeaderValidationFlags:
        # h2 4.4.1's flags depend only on the first event's type and the stream's role
        client = self.state_machine.client or False
        key = (events[0].__class__, client)
        flags = _FLAGS.get(key)
        if flags is None:
            flags = _FLAGS[key] = super()._build_hdr_validation_flags(events)
        return flags

    def _process_received_headers(
        self,
        headers: Iterable[Header],
        header_validation_flags: HeaderValidationFlags,
        header_encoding: bool | str | None,
    ) -> list[Header]:
        if self._fast_inbound and header_encoding is None:
            return validate_inbound(headers, header_validation_flags)
        return super()._process_received_headers(
            headers, header_validation_flags, header_encoding
        )

    def send_headers(
        self, headers: Iterable[Any], encoder: Encoder, end_stream: bool = False
    ) -> list[HeadersFrame | ContinuationFrame | PushPromiseFrame]:
        # h2 4.4.1 ``H2Stream.send_headers`` (minus its DummyLogger call); a ``Prepared``
        # block is bytes already and is not copied by ``utf8_encode_headers``.
        input_ = _SEND_HEADERS
        sm = self.state_machine
        bytes_headers = headers if type(headers) is Prepared else utf8_encode_headers(headers)
        if (not sm.client) and is_informational_response(bytes_headers):
            if end_stream:
                msg = "Cannot set END_STREAM on informational responses."
                raise ProtocolError(msg)
            input_ = _SEND_INFORMATIONAL_HEADERS
        events = sm.process_input(input_)
        hf = HeadersFrame(self.stream_id)
        hdr_validation_flags = self._build_hdr_validation_flags(events)
        frames = self._build_headers_frames(bytes_headers, encoder, hf, hdr_validation_flags)
        if end_stream:
            sm.process_input(_SEND_END_STREAM)
            frames[0].flags.add("END_STREAM")
        if sm.trailers_sent and not end_stream:
            msg = "Trailers must have END_STREAM set."
            raise ProtocolError(msg)
        if sm.client and self._authority is None:
            self._authority = authority_from_headers(bytes_headers)
        self.request_method = extract_method_header(bytes_headers)
        return frames
