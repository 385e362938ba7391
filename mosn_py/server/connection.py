"""asyncio glue shared by every connection: read buffer, write batching, pause reasons.

Reading uses ``asyncio.BufferedProtocol``: the loop reads straight into one preallocated
buffer per connection (``get_buffer``), and ``buffer_updated`` hands a memoryview of the new
bytes to ``on_data``. A codec copies what it keeps, so the buffer is free again as soon as
``on_data`` returns.

Writing is batched: ``write()`` only queues buffers and marks the connection dirty in the
shared ``WriteBatcher``; whoever handled the event (a read, a timer, a connect) calls
``batcher.flush()`` at the end, which hands each dirty connection's buffers to the transport
in one ``writelines`` (one ``writev``/``send`` syscall). Fifty pipelined requests read in one
``recv`` thus leave in one ``send`` upstream.

Backpressure: reading is paused while any *pause reason* is set (a bit mask), so independent
causes (our own peer not reading, the other side congested, too many streams in flight,
draining) never resume each other by mistake.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, cast

READ_BUFFER_SIZE = 256 * 1024
WRITE_HIGH_WATER = 1 << 20  # pause the other side when our transport buffers this much
WRITE_LOW_WATER = 256 << 10

# Pause reasons (bits).
PAUSE_PEER_SLOW = 1  # our own transport's write buffer is above the high watermark
PAUSE_UPSTREAM = 2  # the side we forward to is congested
PAUSE_STREAMS = 4  # too many streams in flight on this connection
PAUSE_FLOW = 8  # a filter or a protocol layer asked to stop


def set_nodelay(transport: Any) -> None:
    """TCP_NODELAY on a TCP transport: a proxy forwards what it has at once (no Nagle)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class WriteBatcher:
    """Connections with queued output, flushed together at the end of each event."""

    __slots__ = ("dirty",)

    def __init__(self) -> None:
        self.dirty: list[BaseConnection] = []

    def flush(self) -> None:
        while self.dirty:
            dirty, self.dirty = self.dirty, []
            for conn in dirty:
                conn._flush()


class BaseConnection(asyncio.BufferedProtocol):
    __slots__ = (
        "transport",
        "batcher",
        "_rbuf",
        "_rmv",
        "_out",
        "_pause_mask",
        "closed",
        "activity",
        "idle_mark",
        "_loop",
    )

    def __init__(self, batcher: WriteBatcher, loop: asyncio.AbstractEventLoop) -> None:
        self.transport: asyncio.Transport | None = None
        self.batcher = batcher
        self._rbuf = bytearray(READ_BUFFER_SIZE)
        self._rmv = memoryview(self._rbuf)
        self._out: list[Any] | None = None
        self._pause_mask = 0
        self.closed = False
        self._loop = loop
        # Idle detection without a clock read per event: reads bump ``activity``; the
        # listener's sweep compares it with the value it saw last time (``idle_mark``).
        self.activity = 0
        self.idle_mark: tuple[int, float] | None = None

    # --- asyncio.BufferedProtocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream protocol is always handed a full Transport (once per connection).
        self.transport = t = cast("asyncio.Transport", transport)
        t.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        set_nodelay(t)
        if self._pause_mask:
            t.pause_reading()
        self.on_connected()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._rmv

    def buffer_updated(self, nbytes: int) -> None:
        self.activity += 1
        try:
            self.on_data(self._rmv[:nbytes])
        finally:
            self.batcher.flush()

    def eof_received(self) -> bool | None:
        try:
            return self.on_eof()
        finally:
            self.batcher.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._out = None
        try:
            self.on_closed(exc)
        finally:
            self.transport = None
            self.batcher.flush()

    def pause_writing(self) -> None:
        self.on_write_paused()

    def resume_writing(self) -> None:
        self.on_write_resumed()

    # --- hooks ---------------------------------------------------------------------------
    def on_connected(self) -> None:
        pass

    def on_data(self, data: memoryview) -> None:
        raise NotImplementedError

    def on_eof(self) -> bool | None:
        """Return True to keep the write side open (half-close)."""
        return None

    def on_closed(self, exc: Exception | None) -> None:
        pass

    def on_write_paused(self) -> None:
        pass

    def on_write_resumed(self) -> None:
        pass

    # --- output ----------------------------------------------------------------------------
    def write(self, bufs: list[Any]) -> None:
        """Queue ``bufs``; they go out at the next ``batcher.flush()``."""
        if self.closed:
            return
        out = self._out
        if out is None:
            self._out = list(bufs)
            self.batcher.dirty.append(self)
        else:
            out.extend(bufs)

    def _flush(self) -> None:
        out = self._out
        self._out = None
        t = self.transport
        if not out or t is None or self.closed:
            return
        if len(out) == 1:
            t.write(out[0])
        else:
            t.writelines(out)

    def close(self) -> None:
        """Flush what is queued, then close."""
        if self.closed:
            return
        self._flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self._out = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- backpressure ------------------------------------------------------------------------
    def pause(self, reason: int) -> None:
        if not self._pause_mask and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._pause_mask |= reason

    def resume(self, reason: int) -> None:
        if not self._pause_mask & reason:
            return
        self._pause_mask &= ~reason
        if not self._pause_mask and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    @property
    def write_buffer_size(self) -> int:
        t = self.transport
        return t.get_write_buffer_size() if t is not None else 0

    def peername(self) -> str:
        t = self.transport
        if t is None:
            return ""
        p = t.get_extra_info("peername")
        if not p:
            return ""
        return f"[{p[0]}]:{p[1]}" if ":" in p[0] else f"{p[0]}:{p[1]}"
