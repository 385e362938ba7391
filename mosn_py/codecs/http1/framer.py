"""Where HTTP/1.x messages start and end: what the decoder feeds llhttp, and when.

httptools reports fields and bodies but not *offsets*, so ``Framer`` hands llhttp exactly
one unit at a time and always knows where the next message starts (RFC 9112 §2.1, §6.3,
§7.1)::

    HEAD / TRAILERS  up to the empty line that ends the field section (CRLF CRLF); while
                     incomplete, only whole lines (and the start of a first line) go in
    CHUNK_SIZE       one chunk-size line; the size is read from the octets llhttp accepted
    CHUNK_DATA       the chunk's data and its CRLF
    BODY             exactly Content-Length octets
    UNTIL_CLOSE, TUNNEL, RAW_BODY   not HTTP (or llhttp stopped): octets become data directly

That gives exact head sizes (``max_header_size`` -> 431) before anything piles up; lets the
decoder stop llhttp after a head whose body it would misjudge without losing an octet; and
never makes httptools join a field split across feeds (it does ``bytes +=``, quadratic).

Input is decoded as it arrives. Once ``max_pending_frames`` events wait unpulled the framer
pauses and keeps the rest as raw octets (``buffered``) until ``next_event()`` drains the
queue; it also keeps what follows an Upgrade/CONNECT request until the response decides
(HOLD). The receive buffer is consumed by offset and compacted only when at least half of
it is consumed (amortised O(1) per octet, never ``buf = buf[n:]``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from mosn_py.codecs.http1.states import RxState
from mosn_py.codecs.http1.wire import HEXDIGITS

if TYPE_CHECKING:
    from mosn_py.codecs.base import ConnectionEvent, DataFrame, Frame, ResetFrame, TrailersFrame

    Event = Frame | DataFrame | TrailersFrame | ResetFrame | ConnectionEvent

_HEAD = RxState.HEAD
_BODY = RxState.BODY
_CHUNK_SIZE = RxState.CHUNK_SIZE
_CHUNK_DATA = RxState.CHUNK_DATA
_TRAILERS = RxState.TRAILERS
_RAW_BODY = RxState.RAW_BODY
_UNTIL_CLOSE = RxState.UNTIL_CLOSE
_HOLD = RxState.HOLD
_TUNNEL = RxState.TUNNEL
_DONE = RxState.DONE
_ERROR = RxState.ERROR
_COMPACT_MIN = 64 * 1024


class Framer:
    """Input buffering and message boundaries; ``decoder.Decoder`` adds the semantics."""

    __slots__ = (
        "_bpos",
        "_buf",
        "_eof",
        "_head_size",
        "_in_msg",
        "_line_start",
        "_max_body",
        "_max_head",
        "_max_pending",
        "_parts",
        "_received",
        "_remaining",
        "_scanned",
        "events",
        "paused",
        "state",
    )

    def __init__(self, max_head: int, max_body: int, max_pending: int) -> None:
        self.state = _HEAD
        self.events: deque[Event] = deque()
        self.paused = False  # stopped on a full event queue with input left
        self._max_head = max_head
        self._max_body = max_body
        self._max_pending = max(1, max_pending)
        self._buf = bytearray()  # input not processed yet (a partial line, held or paused)
        self._bpos = 0
        self._eof = False
        self._head_size = 0  # octets of the current head / trailer section so far
        self._scanned = 0  # octets after the read position already searched for CRLFCRLF
        self._in_msg = False  # llhttp saw the start of the current message
        self._line_start = True  # what llhttp was fed ends at a line boundary
        self._remaining = 0  # BODY / CHUNK_DATA / RAW_BODY octets still due
        self._received = 0  # body octets of the current message (max_body_size)
        self._parts: list[bytes] = []  # body pieces not yet emitted as a DataFrame

    # the decoder's side of the contract
    def _feed(self, view: memoryview) -> None:
        raise NotImplementedError

    def _fail(self, code: int, msg: str) -> None:
        raise NotImplementedError

    def _flush(self, end_stream: bool) -> None:
        raise NotImplementedError

    def _enter_hold(self) -> None:
        raise NotImplementedError

    def on_eof(self) -> None:
        raise NotImplementedError

    @property
    def buffered(self) -> int:
        """Octets received but not processed yet (held, paused or an unfinished line)."""
        return len(self._buf) - self._bpos

    def receive(self, data: bytes | bytearray | memoryview) -> None:
        state = self.state
        if state is _ERROR:
            return
        if self._eof:
            if data:
                raise RuntimeError("receive_data() after EOF")
            return
        if not data:
            self._eof = True
            self.pump()
            return
        if state is _DONE:
            return
        if self._bpos < len(self._buf) or self.paused:
            self._buf += data
            self.pump()
            return
        if type(data) is memoryview:
            data = bytes(data)  # memoryview has no find(); the copy receive_data promises
        pos = self._run(data, 0, len(data))
        if pos < len(data) and self.state is not _ERROR:
            self._buf += memoryview(data)[pos:]

    def pump(self) -> None:
        """Process buffered input (after a pause or a hold), then a pending EOF."""
        buf = self._buf
        pos = self._bpos
        if pos < len(buf):
            pos = self._run(buf, pos, len(buf))
            if self._buf is not buf:
                return  # failed: the buffer was dropped
            if pos >= len(buf):
                buf.clear()
                pos = 0
            elif pos >= _COMPACT_MIN and pos * 2 >= len(buf):
                del buf[:pos]  # amortised O(1) per octet, never ``buf = buf[n:]``
                pos = 0
            self._bpos = pos
        if self._eof and not self.paused:
            self.on_eof()

    def _run(self, buf: bytes | bytearray, pos: int, end: int) -> int:
        """Consume ``buf[pos:end]`` as far as the state allows; the new read position."""
        events = self.events
        limit = self._max_pending
        with memoryview(buf) as mv:
            while pos < end:
                if len(events) >= limit:
                    break
                state = self.state
                if state is _HEAD or state is _TRAILERS:
                    new = self._run_fields(buf, mv, pos, end)
                elif state is _BODY or state is _CHUNK_DATA:
                    new = pos + min(self._remaining, end - pos)
                    self._remaining -= new - pos
                    if state is _CHUNK_DATA and not self._remaining:
                        self.state = _CHUNK_SIZE
                    self._feed(mv[pos:new])
                elif state is _CHUNK_SIZE:
                    new = self._run_chunk_size(buf, mv, pos, end)
                elif state is _UNTIL_CLOSE or state is _TUNNEL:
                    new = end
                    self._take(buf, mv, pos, end)
                elif state is _RAW_BODY:
                    new = pos + min(self._remaining, end - pos)
                    self._take(buf, mv, pos, new)
                    self._remaining -= new - pos
                    if not self._remaining:
                        self._flush(False)
                        self._enter_hold()
                elif state is _HOLD:
                    break
                else:  # DONE, CLOSED, ERROR: nothing more will be read
                    new = end
                if new == pos:
                    break
                pos = new
        self.paused = pos < end and len(events) >= limit
        if self._parts:
            self._flush(False)
        return pos

    def _take(self, buf: bytes | bytearray, mv: memoryview, pos: int, end: int) -> None:
        """Body octets that bypass llhttp (tunnel, until-close, raw body)."""
        if type(buf) is bytes and pos == 0 and end == len(buf):
            self._parts.append(buf)  # the caller's bytes object itself: no copy
        else:
            self._parts.append(bytes(mv[pos:end]))
        if self.state is _UNTIL_CLOSE and self._max_body:
            self._received += end - pos
            if self._received > self._max_body:
                self._fail(413, f"body larger than {self._max_body} octets")

    def _run_fields(self, buf: bytes | bytearray, mv: memoryview, pos: int, end: int) -> int:
        """HEAD / TRAILERS: feed llhttp whole lines; the section ends at an empty line."""
        if self._in_msg and self._line_start and buf.startswith(b"\r\n", pos, end):
            stop = pos + 2  # the empty line right after lines fed earlier
        else:
            i = buf.find(b"\r\n\r\n", pos + max(0, self._scanned - 3), end)
            if i < 0:
                return self._run_partial(buf, mv, pos, end)
            stop = i + 4
        if self._head_size + stop - pos > self._max_head:
            self._fail_head_size()
            return end
        self._head_size += stop - pos
        self._scanned = 0
        self._line_start = True
        self._feed(mv[pos:stop])
        if not self._in_msg:
            self._head_size = 0  # empty lines before a request (RFC 9112 §2.2) or a message end
        return stop

    def _run_partial(self, buf: bytes | bytearray, mv: memoryview, pos: int, end: int) -> int:
        """An incomplete head: feed llhttp its complete lines now, so it rejects garbage early
        and never joins a field split across feeds (httptools does ``bytes +=``). The start
        of a first line goes in at once (a TLS ClientHello fails on its first octet); a
        trailing CR waits, so an empty line never straddles what was fed and what was not."""
        j = buf.rfind(b"\n", pos, end)
        if j >= 0:
            new = j + 1
            self._line_start = True
        elif not self._in_msg:
            new = end - 1 if buf[end - 1] == 13 else end
            self._line_start = False
        else:
            new = pos
        if new > pos:
            self._head_size += new - pos
            self._feed(mv[pos:new])
            if self.state is _ERROR:
                return end
        self._scanned = end - new
        if self._head_size + end - new > self._max_head:
            self._fail_head_size()
            return end
        return new

    def _run_chunk_size(self, buf: bytes | bytearray, mv: memoryview, pos: int, end: int) -> int:
        i = buf.find(b"\n", pos, end)
        if i < 0:
            if end - pos > self._max_head:
                self._fail(400, "chunk-size line too long (RFC 9112 §7.1)")
                return end
            return pos
        self._feed(mv[pos : i + 1])  # llhttp validates the size, extensions and CRLF
        if self.state is _ERROR:
            return end
        m = HEXDIGITS.match(buf, pos, i)
        assert m is not None  # llhttp accepted the line: it starts with 1*HEXDIG
        size = int(m.group(), 16)
        if not size:
            self.state = _TRAILERS
            self._head_size = 0
            self._scanned = 0
            self._line_start = True
            return i + 1
        self._received += size
        if self._max_body and self._received > self._max_body:
            self._fail(413, f"chunked body larger than {self._max_body} octets")
            return end
        self.state = _CHUNK_DATA
        self._remaining = size + 2  # the data, then its CRLF
        return i + 1

    def _fail_head_size(self) -> None:
        what = "trailer section" if self.state is _TRAILERS else "head"
        self._fail(431, f"{what} larger than {self._max_head} octets")
