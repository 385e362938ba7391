"""Test harness: our ``Http2Codec`` wired to a *real* HTTP/2 endpoint in-process.

The other end is python-hyper's ``h2.connection.H2Connection`` -- an independent, widely
used implementation -- so what it decodes from our bytes, and what we decode from its
bytes, is the golden reference (never our own encoder checking our own decoder).
``Link.run()`` shuttles bytes both ways until neither side has anything left to say,
optionally in small chunks (chunking must not matter).

Raw frames for cases no well-behaved peer produces (floods, malformed frames, GOAWAY
without h2's state change) are serialised with ``hyperframe``, the frame library h2 uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import h2.events as ev
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes
from hpack import Encoder
from hyperframe.frame import ContinuationFrame, GoAwayFrame, HeadersFrame
from hyperframe.frame import Frame as RawFrame

from mosn_py.codecs.base import (
    NEED_DATA,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    ResetFrame,
    Role,
    TrailersFrame,
)
from mosn_py.codecs.http2 import PREFACE, Http2Codec

REQUEST = [
    (":method", "POST"),
    (":scheme", "http"),
    (":authority", "example.com"),
    (":path", "/svc"),
]
GET = [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"), (":path", "/")]


def b(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def h(headers: Iterable[tuple[Any, Any]]) -> list[tuple[str, str]]:
    """h2 event headers (bytes) as str pairs."""
    out = []
    for k, v in headers:
        out.append(
            (
                k.decode("latin-1") if isinstance(k, bytes) else k,
                v.decode("latin-1") if isinstance(v, bytes) else v,
            )
        )
    return out


def new_peer(client_side: bool, settings: dict[int, int] | None = None) -> H2Connection:
    conn = H2Connection(H2Configuration(client_side=client_side, header_encoding=None))
    conn.initiate_connection()
    if settings:
        conn.update_settings(settings)  # type: ignore[arg-type]
    return conn


class Link:
    """``codec`` <-> ``peer`` byte shuttle.

    ``auto_consume``: call ``codec.consumed()`` for each DataFrame pulled (a fast reader).
    ``peer_acks``: the peer acknowledges the data it receives (h2's own flow control).
    ``chunk``: feed the codec in pieces of this size (None: whole).
    """

    def __init__(
        self,
        codec: Http2Codec,
        peer: H2Connection,
        *,
        auto_consume: bool = True,
        peer_acks: bool = True,
        chunk: int | None = None,
    ) -> None:
        self.codec = codec
        self.peer = peer
        self.auto_consume = auto_consume
        self.peer_acks = peer_acks
        self.chunk = chunk
        self.events: list[Any] = []  # what the codec reported
        self.peer_events: list[ev.Event] = []  # what the peer decoded
        self.wire_to_peer = bytearray()  # every byte the codec wrote
        self.wire_to_codec = bytearray()
        self._peer_fed(b"".join(codec.initiate()))

    def _peer_fed(self, data: bytes) -> None:
        if not data:
            return
        self.wire_to_peer += data
        events = self.peer.receive_data(data)
        self.peer_events.extend(events)
        if self.peer_acks:
            for e in events:
                if isinstance(e, ev.DataReceived) and e.flow_controlled_length:
                    self.peer.acknowledge_received_data(e.flow_controlled_length, e.stream_id)

    def feed_codec(self, data: bytes) -> None:
        self.wire_to_codec += data
        step = self.chunk or max(len(data), 1)
        for i in range(0, len(data), step):
            self.codec.receive_data(data[i : i + step])
            self.pull()

    def pull(self) -> list[Any]:
        got = []
        while (e := self.codec.next_event()) is not NEED_DATA:
            got.append(e)
            if e is ConnectionEvent.CLOSED:
                break
            if self.auto_consume and isinstance(e, DataFrame) and e.data:
                self.codec.consumed(e.stream_id, len(e.data))
        self.events.extend(got)
        return got

    def run(self, rounds: int = 1000) -> None:
        for _ in range(rounds):
            moved = False
            data = self.peer.data_to_send()
            if data:
                self.feed_codec(data)
                moved = True
            self.pull()
            out = b"".join(self.codec.data_to_send())
            if out:
                self._peer_fed(out)
                moved = True
            if not moved:
                return
        raise AssertionError("link did not settle")

    def send(self, frame: Any) -> None:
        """``codec.send(frame)`` and deliver the bytes to the peer (then settle)."""
        self._peer_fed(b"".join(self.codec.send(frame)))
        self.run()

    def take(self) -> list[Any]:
        out, self.events = self.events, []
        return out

    def take_peer(self) -> list[ev.Event]:
        out, self.peer_events = self.peer_events, []
        return out

    # --- views -----------------------------------------------------------------------------

    def body(self, stream_id: int) -> bytes:
        return b"".join(
            bytes(e.data)
            for e in self.events
            if isinstance(e, DataFrame) and e.stream_id == stream_id
        )

    def peer_body(self, stream_id: int) -> bytes:
        return b"".join(
            e.data or b""
            for e in self.peer_events
            if isinstance(e, ev.DataReceived) and e.stream_id == stream_id
        )


def server_link(settings: dict[int, int] | None = None, *, settle: bool = True, **kw: Any) -> Link:
    """Our SERVER codec, a real h2 client peer (prefaces exchanged unless ``settle=False``)."""
    codec = Http2Codec(Role.SERVER, **kw)
    link = Link(codec, new_peer(True, settings))
    if settle:
        link.run()
    return link


def client_link(settings: dict[int, int] | None = None, **kw: Any) -> Link:
    """Our CLIENT codec, a real h2 server peer."""
    codec = Http2Codec(Role.CLIENT, **kw)
    link = Link(codec, new_peer(False, settings))
    link.run()
    return link


_CONTROL = (
    ev.WindowUpdated,
    ev.RemoteSettingsChanged,
    ev.SettingsAcknowledged,
    ev.PingAckReceived,
    ev.PingReceived,
)


def names(events: Iterable[Any]) -> list[str]:
    """Type names of the stream-level h2 events (control chatter left out)."""
    return [type(e).__name__ for e in events if not isinstance(e, _CONTROL)]


def of(events: Iterable[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def heads(events: Iterable[Any]) -> list[Frame]:
    return of(events, Frame)


def resets(events: Iterable[Any]) -> list[ResetFrame]:
    return of(events, ResetFrame)


def trailers(events: Iterable[Any]) -> list[TrailersFrame]:
    return of(events, TrailersFrame)


def parse_frames(data: bytes, *, skip_preface: bool = False) -> list[RawFrame]:
    """Decode a byte string into hyperframe frames (independent of our codec)."""
    view = memoryview(data)
    if skip_preface:
        assert bytes(view[: len(PREFACE)]) == PREFACE
        view = view[len(PREFACE) :]
    out = []
    while len(view) >= 9:
        frame, length = RawFrame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        out.append(frame)
        view = view[9 + length :]
    assert len(view) == 0, "trailing partial frame"
    return out


def goaway_frames(data: bytes) -> list[GoAwayFrame]:
    return [f for f in parse_frames(data) if isinstance(f, GoAwayFrame)]


def client_preface(settings: dict[int, int] | None = None) -> tuple[bytes, Encoder]:
    """A raw client preface + SETTINGS (via a throwaway h2 client) and a fresh HPACK encoder
    for hand-built HEADERS frames that follow it."""
    conn = H2Connection(H2Configuration(client_side=True))
    conn.initiate_connection()
    if settings:
        conn.update_settings(settings)  # type: ignore[arg-type]
    return conn.data_to_send(), Encoder()


def raw_headers(
    encoder: Encoder,
    stream_id: int,
    headers: list[tuple[str, str]],
    *,
    end_stream: bool = False,
    end_headers: bool = True,
) -> bytes:
    frame = HeadersFrame(stream_id)
    frame.data = encoder.encode(b(headers))
    if end_stream:
        frame.flags.add("END_STREAM")
    if end_headers:
        frame.flags.add("END_HEADERS")
    return frame.serialize()


def raw_continuation(stream_id: int, data: bytes = b"", *, end: bool = False) -> bytes:
    frame = ContinuationFrame(stream_id)
    frame.data = data
    if end:
        frame.flags.add("END_HEADERS")
    return frame.serialize()


def raw_goaway(last_stream_id: int, code: int = 0, debug: bytes = b"") -> bytes:
    return GoAwayFrame(
        0, last_stream_id=last_stream_id, error_code=code, additional_data=debug
    ).serialize()


SETTING = SettingCodes
__all__ = ["GET", "REQUEST", "HeaderList", "Link"]
