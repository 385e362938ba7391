"""Multiplexed upstream connections for streaming protocols (HTTP/2, gRPC).

Like ``pool.UpstreamConnection`` (many streams share one connection, matched by stream id)
but for codecs that own their stream ids and frame bodies as separate events:

- the codec assigns the stream id (``codec.send_request(head) -> (id, buffers)``);
- it writes a preface first (``codec.initiate()``) and has output of its own after every
  read (acks, window updates, flushed DATA: ``codec.data_to_send()``);
- responses arrive as a head, DATA and trailers (and RST_STREAM as ``ResetFrame``), routed
  to the stream's owner: ``on_upstream_response`` / ``on_upstream_data`` /
  ``on_upstream_trailers`` / ``on_upstream_reset``;
- received DATA is acknowledged (``codec.consumed``) once handed to the owner, which
  writes it downstream at once; the downstream's own backpressure pauses this connection's
  reading when the client is slow, which stops the acknowledgements and so closes the
  HTTP/2 window: flow control end to end.
"""

from __future__ import annotations

from typing import Any

from mosn_py.codecs.base import (
    NEED_DATA,
    ConnectionEvent,
    DataFrame,
    Frame,
    ResetFrame,
    TrailersFrame,
)
from mosn_py.errors import LocalProtocolError, ProtocolError, ResetReason
from mosn_py.upstream.pool import UpstreamConnection


class StreamingUpstreamConnection(UpstreamConnection):
    __slots__ = ()

    def on_connected(self) -> None:
        # The preface goes before anything queued while connecting.
        self._queued[:0] = self.codec.initiate()
        super().on_connected()

    def send_request(self, frame: Frame, cb: Any) -> int:
        try:
            sid, bufs = self.codec.send_request(frame)
        except LocalProtocolError:
            # No stream can be opened here (GOAWAY received, stream ids exhausted): this
            # connection is done for new requests; the owner retries or answers.
            self.pool.remove(self)
            if cb is not None:
                self.pool.loop.call_soon(cb.on_upstream_reset, ResetReason.CONNECTION_TERMINATED)
            return -1
        if cb is not None:
            self.streams[sid] = cb
        self.activity += 1
        self._emit(bufs)
        return int(sid)

    def send_data(self, rid: int, df: DataFrame) -> None:
        if rid in self.streams:
            self._emit(self.codec.send(DataFrame(rid, df.data, df.end_stream)))
            self.activity += 1

    def send_trailers(self, rid: int, tf: TrailersFrame) -> None:
        if rid in self.streams:
            self._emit(self.codec.send(TrailersFrame(rid, tf.trailers)))

    def cancel(self, rid: int) -> None:
        """Abandon stream ``rid``: RST_STREAM CANCEL upstream, forget its owner."""
        if self.streams.pop(rid, None) is not None and not self.closed:
            try:
                self._emit(self.codec.send(ResetFrame(rid, 0x8, "cancel")))
            except ProtocolError:
                pass

    def on_data(self, data: memoryview) -> None:
        codec = self.codec
        codec.receive_data(data)
        streams = self.streams
        try:
            while not self.closed:
                ev = codec.next_event()
                if ev is NEED_DATA:
                    break
                if ev is ConnectionEvent.CLOSED:
                    break
                if ev is ConnectionEvent.GOAWAY:
                    # No new streams here; the ones the server keeps finish normally.
                    self.pool.remove(self)
                    continue
                cls = ev.__class__
                if cls is Frame:
                    cb = streams.get(ev.request_id)
                    if cb is not None:
                        if ev.end_stream and not (100 <= ev.status < 200):
                            del streams[ev.request_id]
                        cb.on_upstream_response(ev)
                elif cls is DataFrame:
                    sid = ev.stream_id
                    cb = streams.get(sid)
                    if ev.end_stream:
                        streams.pop(sid, None)
                    if cb is not None:
                        cb.on_upstream_data(ev)
                    if ev.data:
                        codec.consumed(sid, len(ev.data))
                elif cls is TrailersFrame:
                    cb = streams.pop(ev.stream_id, None)
                    if cb is not None:
                        cb.on_upstream_trailers(ev)
                elif cls is ResetFrame:
                    cb = streams.pop(ev.stream_id, None)
                    if cb is not None:
                        cb.on_upstream_reset(ResetReason.REMOTE_RESET)
        except ProtocolError:
            out = codec.data_to_send()
            if out and self.transport is not None:
                self.transport.writelines(out)
            self._fail_all(ResetReason.CODEC_ERROR)
            self.abort()
            return
        out = codec.data_to_send()
        if out:
            self.write(out)
        if not streams and codec.goaway_received and not self.closed:
            self.close()  # out of the pool since the GOAWAY, and nothing left in flight
