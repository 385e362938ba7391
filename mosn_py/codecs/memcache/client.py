"""``ReplyReader``: bytes -> response frames (CLIENT role, upstream).

memcached replies carry no request id and their framing depends on the command, so the
codec records ``(request_id, command name)`` for every request it sends that expects a
reply, in a FIFO, and frames the input by the head's command::

    get/gets/gat/gats   (VALUE <key> <flags> <bytes> [<cas>]\\r\\n <data>\\r\\n)* END\\r\\n
    storage             STORED | NOT_STORED | EXISTS | NOT_FOUND
    delete              DELETED | NOT_FOUND
    incr/decr           <u64> | NOT_FOUND          (the number may be space-padded)
    touch               TOUCHED | NOT_FOUND
    flush_all/verbosity OK
    version             VERSION <text>
    any                 ERROR | CLIENT_ERROR <text> | SERVER_ERROR <text>

A reply that fits none of these is a desynchronised connection: fatal. A multi-item reply is
parsed as it arrives (the progress survives between calls, nothing is rescanned) and copied
out of the buffer once, when complete; item values are views into ``Frame.raw``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Frame, StreamType
from mosn_py.codecs.memcache.server import EMPTY_HEADERS
from mosn_py.codecs.memcache.wire import (
    CLIENT_ERROR,
    END,
    ERROR,
    EXPECTED,
    MAX_VLEN,
    NUMBER,
    PROTOCOL,
    RETRIEVAL,
    SERVER_ERROR,
    U32_MAX,
    U64_MAX,
    VERSION,
    WORDS,
    MemcacheItem,
    MemcacheReply,
    parse_uint,
)
from mosn_py.errors import LocalProtocolError

_RESPONSE = StreamType.RESPONSE
_CLOSED = ConnectionEvent.CLOSED
_COMPACT_MIN = 64 * 1024
_WORD_BY_BYTES = {w.encode(): w for w in WORDS}
_TEXT_REPLIES = {b"CLIENT_ERROR": CLIENT_ERROR, b"SERVER_ERROR": SERVER_ERROR, b"VERSION": VERSION}


class ReplyReader:
    """Frames replies by the FIFO of commands sent (``expect``)."""

    __slots__ = (
        "_buf", "_pos", "_scan", "_eof", "fifo", "_items", "_off", "_want",
        "max_line", "max_reply",
    )

    def __init__(self, *, max_line: int, max_reply: int) -> None:
        self._buf = bytearray()
        self._pos = 0  # start of the reply being read
        self._scan = 0  # where the search for a line end resumes (index in _buf)
        self._eof = False
        self.fifo: deque[tuple[int, str]] = deque()
        # progress inside a retrieval reply, offsets relative to _pos:
        # (key, flags, value offset, value length, cas) per VALUE line read so far
        self._items: list[tuple[bytes, int, int, int, int | None]] = []
        self._off = 0  # where the next line starts
        self._want = 0  # octets the reply needs to hold the pending data block (0: a line)
        self.max_line = max_line
        self.max_reply = max_reply

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def expect(self, request_id: int, name: str) -> None:
        """A request that expects a reply was sent."""
        self.fifo.append((request_id, name))

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        buf = self._buf
        pos = self._pos
        if pos >= _COMPACT_MIN and pos * 2 >= len(buf):
            del buf[:pos]
            self._scan -= pos
            self._pos = 0
        buf += data

    def feed_eof(self) -> None:
        self._eof = True

    def drop(self) -> None:
        self._buf = bytearray()
        self._pos = self._scan = self._off = self._want = 0
        self._items = []

    def next(self) -> Frame | ConnectionEvent | Any:
        """The next response ``Frame``, ``CLOSED`` (EOF between replies) or ``NEED_DATA``.

        Raises ``LocalProtocolError`` on a reply that does not fit (converted by the codec).
        """
        buf = self._buf
        start = self._pos
        if not self.fifo:
            if len(buf) > start:
                raise LocalProtocolError(
                    f"{len(buf) - start} octets of reply with no request outstanding: "
                    f"{bytes(buf[start : start + 40])!r}",
                    protocol=PROTOCOL,
                )
            return _CLOSED if self._eof else NEED_DATA
        if self._eof and len(buf) == start:
            return _CLOSED  # between replies; the requests still in the FIFO get none
        rid, name = self.fifo[0]
        retrieval = name in RETRIEVAL
        off = self._off
        while True:
            want = self._want
            if want:
                if len(buf) - start < want:
                    return self._need()
                if buf[start + want - 2 : start + want] != b"\r\n":
                    raise LocalProtocolError("a data block not ended by CRLF", protocol=PROTOCOL)
                off = self._off = want
                self._want = 0
            line_at = start + off
            nl = buf.find(b"\n", max(self._scan, line_at))
            if nl < 0:
                if len(buf) - line_at > self.max_line:
                    raise LocalProtocolError(
                        f"reply line longer than {self.max_line} octets", protocol=PROTOCOL
                    )
                self._scan = len(buf)
                return self._need()
            if nl - line_at > self.max_line:
                raise LocalProtocolError(
                    f"reply line longer than {self.max_line} octets", protocol=PROTOCOL
                )
            line_end = nl - 1 if nl > line_at and buf[nl - 1] == 13 else nl
            line = bytes(buf[line_at:line_end])
            if retrieval and line[:6] == b"VALUE ":
                vstart = nl + 1 - start
                self._items.append(_value_line(line, vstart, self.max_reply))
                want = vstart + self._items[-1][3] + 2
                if want > self.max_reply:
                    raise LocalProtocolError(
                        f"reply larger than {self.max_reply} octets", protocol=PROTOCOL
                    )
                self._want = want
                self._scan = start + want
                continue
            reply = _line_reply(line, name)
            end = nl + 1
            break
        raw = bytes(memoryview(buf)[start:end]) if start or end != len(buf) else bytes(buf)
        if reply.status == END and self._items:
            view = memoryview(raw)
            reply.items = [
                MemcacheItem(key, flags, view[at : at + n], cas)
                for key, flags, at, n, cas in self._items
            ]
        if self._items:
            self._items = []
        self._off = 0
        self.fifo.popleft()
        if end == len(buf):
            buf.clear()
            self._pos = self._scan = 0
        else:
            self._pos = self._scan = end
        return Frame(
            _RESPONSE, rid, EMPTY_HEADERS, b"", 0, 0, False, True, None, PROTOCOL, reply, raw
        )

    def _need(self) -> Any:
        if self._eof:
            raise LocalProtocolError(
                f"connection closed inside a reply ({len(self._buf) - self._pos} octets)",
                protocol=PROTOCOL,
            )
        return NEED_DATA


def _value_line(line: bytes, at: int, max_reply: int) -> tuple[bytes, int, int, int, int | None]:
    """``VALUE <key> <flags> <bytes> [<cas unique>]`` -> (key, flags, at, bytes, cas)."""
    parts = line.split(b" ")
    if b"" in parts:
        parts = [p for p in parts if p]
    n = len(parts)
    flags = parse_uint(parts[2], U32_MAX) if n in (4, 5) else None
    vlen = parse_uint(parts[3], MAX_VLEN) if n in (4, 5) else None
    cas = parse_uint(parts[4], U64_MAX) if n == 5 else None
    if flags is None or vlen is None or (n == 5 and cas is None):
        raise LocalProtocolError(f"malformed reply line {line[:300]!r}", protocol=PROTOCOL)
    return parts[1], flags, at, vlen, cas


def _line_reply(line: bytes, name: str) -> MemcacheReply:
    """A one-line reply to command ``name`` (for a retrieval: its END or an error)."""
    word, _, rest = line.partition(b" ")
    status = _WORD_BY_BYTES.get(word) if not rest or word == b"ERROR" else None
    message = ""
    number = None
    if status is None:
        text_status = _TEXT_REPLIES.get(word)
        if text_status is not None:
            status = text_status
            message = rest.decode("utf-8", "replace")
        else:
            # incr/decr: the new value; memcached may pad it with spaces (protocol.txt)
            digits = line.rstrip(b" ")
            if digits.isdigit() and int(digits) <= U64_MAX:
                number = int(digits)
                status = NUMBER
    elif status == ERROR:
        message = rest.decode("utf-8", "replace")
    if status is None or (
        status not in (ERROR, CLIENT_ERROR, SERVER_ERROR) and status not in EXPECTED[name]
    ):
        raise LocalProtocolError(
            f"unexpected reply {line[:300]!r} to {name}", protocol=PROTOCOL
        )
    return MemcacheReply(status, [], number, message)
