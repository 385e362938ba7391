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
    ERRORS,
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
        size = len(buf)
        fifo = self.fifo
        if not fifo:
            if size > start:
                raise LocalProtocolError(
                    f"{size - start} octets of reply with no request outstanding: "
                    f"{bytes(buf[start : start + 40])!r}",
                    protocol=PROTOCOL,
                )
            return _CLOSED if self._eof else NEED_DATA
        if size == start:
            return _CLOSED if self._eof else NEED_DATA  # EOF between replies: the requests
            # still in the FIFO get none (pending_replies() says how many)
        rid, name = fifo[0]
        retrieval = name in RETRIEVAL
        # progress in this reply (kept in locals, saved only when more input is needed)
        off = self._off
        want = self._want
        scan = self._scan
        items = self._items
        while True:
            if want:
                if size - start < want:
                    break
                if buf[start + want - 2] != 13 or buf[start + want - 1] != 10:
                    raise LocalProtocolError("a data block not ended by CRLF", protocol=PROTOCOL)
                off = want
                want = 0
            line_at = start + off
            nl = buf.find(b"\n", scan if scan > line_at else line_at)
            if nl < 0:
                if size - line_at > self.max_line:
                    raise _long_line(self.max_line)
                scan = size
                break
            if nl - line_at > self.max_line:
                raise _long_line(self.max_line)
            line_end = nl - 1 if nl > line_at and buf[nl - 1] == 13 else nl
            if retrieval and buf.startswith(b"VALUE ", line_at):
                key, flags, n, cas = _value_line(bytes(buf[line_at:line_end]))
                vstart = nl + 1 - start
                items.append((key, flags, vstart, n, cas))
                want = vstart + n + 2
                if want > self.max_reply:
                    raise LocalProtocolError(
                        f"reply larger than {self.max_reply} octets", protocol=PROTOCOL
                    )
                scan = start + want
                continue
            if retrieval and line_end - line_at == 3 and buf.startswith(b"END", line_at):
                reply = MemcacheReply(END, [])
            else:
                reply = _line_reply(bytes(buf[line_at:line_end]), name)
            end = nl + 1
            if end == size:
                raw = bytes(buf) if start == 0 else bytes(memoryview(buf)[start:end])
                buf.clear()
                self._pos = self._scan = 0
            else:
                raw = bytes(memoryview(buf)[start:end])
                self._pos = self._scan = end
            if items:
                if reply.status == END:
                    view = memoryview(raw)
                    reply.items = [
                        MemcacheItem(key, flags, view[at : at + n], cas)
                        for key, flags, at, n, cas in items
                    ]
                self._items = []
            self._off = self._want = 0
            fifo.popleft()
            return Frame(
                _RESPONSE, rid, EMPTY_HEADERS, b"", 1 if reply.status in ERRORS else 0, 0,
                False, True, None, PROTOCOL, reply, raw,
            )
        self._off = off
        self._want = want
        self._scan = scan
        return self._need()

    def _need(self) -> Any:
        if self._eof:
            raise LocalProtocolError(
                f"connection closed inside a reply ({len(self._buf) - self._pos} octets)",
                protocol=PROTOCOL,
            )
        return NEED_DATA


def _long_line(limit: int) -> LocalProtocolError:
    return LocalProtocolError(f"reply line longer than {limit} octets", protocol=PROTOCOL)


def _value_line(line: bytes) -> tuple[bytes, int, int, int | None]:
    """``VALUE <key> <flags> <bytes> [<cas unique>]`` -> (key, flags, bytes, cas)."""
    parts = line.split(b" ")
    n = len(parts)
    if n == 4 and parts[2].isdigit() and parts[3].isdigit() and parts[1]:  # the common case
        f, v = int(parts[2]), int(parts[3])
        if f <= U32_MAX and v <= MAX_VLEN:
            return parts[1], f, v, None
    if b"" in parts:
        parts = [p for p in parts if p]
        n = len(parts)
    flags = parse_uint(parts[2], U32_MAX) if n in (4, 5) else None
    vlen = parse_uint(parts[3], MAX_VLEN) if n in (4, 5) else None
    cas = parse_uint(parts[4], U64_MAX) if n == 5 else None
    if flags is None or vlen is None or (n == 5 and cas is None):
        raise LocalProtocolError(f"malformed reply line {line[:300]!r}", protocol=PROTOCOL)
    return parts[1], flags, vlen, cas


def _line_reply(line: bytes, name: str) -> MemcacheReply:
    """A one-line reply to command ``name`` (for a retrieval: its END or an error)."""
    status = _WORD_BY_BYTES.get(line)
    if status is not None and status in EXPECTED[name]:  # the common case: one known word
        return MemcacheReply(status, [])
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
