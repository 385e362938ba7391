"""Where each command and each reply starts and ends, checked before anything is allocated.

hiredis parses RESP in C, but it cannot be handed untrusted bytes directly:

- it allocates an aggregate's list as soon as it reads the count: ``*2147483647\\r\\n`` makes
  it ``calloc`` 16 GiB of pointers and spend seconds freeing them;
- it does not say how many octets a value took (``Reader.len()`` is the size of its buffer,
  which it trims only past 1 KiB consumed), and the proxy must forward exact bytes;
- it has no inline commands, counts a RESP3 attribute as an element of its parent and
  rejects RESP3 blob errors.

So ``RequestReader`` (SERVER role) and ``ReplyReader`` (CLIENT role) walk the headers in
Python: one ``find`` of CRLF and one ``int`` per length or count line, and the payload of a
bulk string is skipped by arithmetic, never scanned. Every count and length is checked
against the limits as it is read. Only a complete, checked unit is then given to hiredis
(requests: the argument list; replies: the value, see ``values.value_of``).

Both readers resume where they stopped: a command or reply that arrives in many pieces is
walked once, not once per piece. The receive buffer is a ``bytearray`` consumed by offset
and compacted when at least half of it is consumed (amortised O(1) per octet).
"""

from __future__ import annotations

from typing import Any

import hiredis

from mosn_py.codecs.base import ConnectionEvent
from mosn_py.codecs.redis.inline import split_inline
from mosn_py.codecs.redis.values import value_of
from mosn_py.codecs.redis.wire import (
    CR,
    HEADER_MAX,
    INLINE_MAX_SIZE,
    LF,
    MAX_DEPTH,
    MIN_ARG_SIZE,
    MIN_ELEMENT_SIZE,
    NDIGITS,
    PROTOCOL,
    T_ARRAY,
    T_ATTRIBUTE,
    T_BIGNUM,
    T_BLOB_ERROR,
    T_BOOLEAN,
    T_BULK,
    T_DOUBLE,
    T_ERROR,
    T_INTEGER,
    T_MAP,
    T_NULL,
    T_PUSH,
    T_SET,
    T_SIMPLE,
    T_VERBATIM,
    canonical_length,
)
from mosn_py.errors import RemoteProtocolError

_CLOSED = ConnectionEvent.CLOSED
_COMPACT_MIN = 64 * 1024
_LINE_TYPES = frozenset((T_SIMPLE, T_ERROR, T_INTEGER, T_DOUBLE, T_BIGNUM))
_AGGREGATE_TYPES = frozenset((T_ARRAY, T_MAP, T_SET, T_PUSH, T_ATTRIBUTE))
_BOOLEANS = frozenset(b"tf")
_LENGTH_TYPES = frozenset((T_BULK, T_BLOB_ERROR, T_VERBATIM))
_PAIR_TYPES = frozenset((T_MAP, T_ATTRIBUTE))


class Violation(Exception):
    """Bad input; ``str()`` is the message for the client (``Protocol error: ...``)."""


class _Input:
    """The receive buffer shared by both readers."""

    __slots__ = ("buf", "pos", "eof", "max_size")

    def __init__(self, max_size: int) -> None:
        self.buf = bytearray()
        self.pos = 0  # start of the unit being read (everything before is consumed)
        self.eof = False
        self.max_size = max_size

    @property
    def buffered(self) -> int:
        return len(self.buf) - self.pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append a copy of ``data``; ``b""`` marks EOF."""
        if not data:
            self.eof = True
            return
        buf = self.buf
        pos = self.pos
        if pos:
            # Positions saved by a reader are relative to ``pos``, so moving the buffer's
            # start under them is safe.
            if pos == len(buf):
                buf.clear()
                self.pos = 0
            elif pos >= _COMPACT_MIN and pos * 2 >= len(buf):
                del buf[:pos]
                self.pos = 0
        buf += data

    def drop(self) -> None:
        """Forget everything (after an error nothing more is read)."""
        self.buf = bytearray()
        self.pos = 0


def _show(octet: int) -> str:
    """An octet for an error message: itself when printable ASCII, else ``\\xHH`` (the
    message becomes an error reply line, which must not hold CR or LF)."""
    return chr(octet) if 0x20 <= octet < 0x7F else f"\\x{octet:02x}"


def _length(seg: bytearray) -> int:
    """``canonical_length`` with the common small case inlined; ``ValueError`` if bad."""
    n = int(seg)
    if 0 <= n < 10000 and len(seg) == NDIGITS[n]:
        return n
    return canonical_length(seg)


class RequestReader(_Input):
    """SERVER role: multibulk and inline commands -> ``(raw, args)``."""

    __slots__ = ("_left", "_scan", "_inline_seen", "_inline_max", "_args_reader")

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self._left = -1  # arguments of the multibulk at ``pos`` not yet walked; -1: none begun
        self._scan = 0  # offset from ``pos`` of the next argument header
        self._inline_seen = 0  # offset from ``pos`` up to which an inline line has no LF
        self._inline_max = min(INLINE_MAX_SIZE, max_size)
        self._args_reader = hiredis.Reader()

    def read(self) -> tuple[bytes, list[bytes]] | ConnectionEvent | None:
        """The next command as ``(raw, args)``; ``None``: more bytes needed; ``CLOSED``: EOF
        on a command boundary. Raises ``Violation``."""
        buf = self.buf
        end = len(buf)
        find = buf.find
        while True:
            pos = self.pos
            if pos >= end:
                return _CLOSED if self.eof else None
            left = self._left
            if left < 0:
                if buf[pos] != T_ARRAY:
                    got = self._inline(buf, pos, end)
                    if got is not None or self.pos == pos:
                        return got
                    continue  # an empty line: skipped, as redis-server does
                if pos + 4 <= end and buf[pos + 2] == CR and buf[pos + 3] == LF:
                    left = buf[pos + 1] - 0x30  # fast path: a one-digit count
                    if not 0 <= left <= 9:
                        raise Violation("Protocol error: invalid multibulk length")
                    p = pos + 4
                else:
                    nl = find(b"\r\n", pos + 1, pos + HEADER_MAX)
                    if nl < 0:
                        if end - pos >= HEADER_MAX:
                            raise Violation("Protocol error: invalid multibulk length")
                        self._check_eof()
                        return None
                    try:
                        left = _length(buf[pos + 1 : nl])
                    except ValueError:
                        raise Violation("Protocol error: invalid multibulk length") from None
                    p = nl + 2
                if left <= 0:
                    # ``*0`` and ``*-1`` are no command: redis-server skips them silently.
                    self.pos = p
                    continue
                if p - pos + left * MIN_ARG_SIZE > self.max_size:
                    raise Violation("Protocol error: invalid multibulk length")
            else:
                p = pos + self._scan
            max_end = pos + self.max_size
            while left:
                # Fast paths: "$<d>\r\n" and "$<dd>\r\n" (most names, keys and small
                # values) are read by index, without find() and int().
                if p + 4 <= end and buf[p + 2] == CR and buf[p] == T_BULK and buf[p + 3] == LF:
                    n = buf[p + 1] - 0x30
                    if not 0 <= n <= 9:
                        raise Violation("Protocol error: invalid bulk length")
                    q = p + 4 + n
                elif p + 5 <= end and buf[p + 3] == CR and buf[p] == T_BULK and buf[p + 4] == LF:
                    d1 = buf[p + 1] - 0x30
                    d2 = buf[p + 2] - 0x30
                    if not (1 <= d1 <= 9 and 0 <= d2 <= 9):
                        raise Violation("Protocol error: invalid bulk length")
                    q = p + 5 + d1 * 10 + d2
                else:
                    if p >= end:
                        break
                    if buf[p] != T_BULK:
                        raise Violation(f"Protocol error: expected '$', got '{_show(buf[p])}'")
                    nl = find(b"\r\n", p + 1, p + HEADER_MAX)
                    if nl < 0:
                        if end - p >= HEADER_MAX:
                            raise Violation("Protocol error: invalid bulk length")
                        break
                    try:
                        n = _length(buf[p + 1 : nl])
                    except ValueError:
                        raise Violation("Protocol error: invalid bulk length") from None
                    if n < 0 or n > self.max_size:
                        raise Violation("Protocol error: invalid bulk length")
                    q = nl + 2 + n
                if q + 2 > max_end:
                    raise Violation(f"Protocol error: command larger than {self.max_size} bytes")
                if q + 2 > end:
                    break
                if buf[q] != CR or buf[q + 1] != LF:
                    raise Violation("Protocol error: bulk string not followed by CRLF")
                p = q + 2
                left -= 1
            if left:
                self._left = left
                self._scan = p - pos
                self._check_eof()
                return None
            self._left = -1
            raw = bytes(buf[pos:p])
            self.pos = p
            # Checked above: a flat array of bulk strings within the limits, so hiredis
            # gives exactly the argument list, in C.
            reader = self._args_reader
            reader.feed(raw)
            args: list[bytes] = reader.gets()
            return raw, args

    def _inline(self, buf: bytearray, pos: int, end: int) -> tuple[bytes, list[bytes]] | None:
        """An inline command at ``pos`` (``self.pos`` unchanged: incomplete; moved with
        ``None`` returned: an empty line was skipped)."""
        limit = self._inline_max
        nl = buf.find(b"\n", pos + self._inline_seen, min(end, pos + limit + 1))
        if nl < 0:
            if end - pos > limit:
                raise Violation("Protocol error: too big inline request")
            self._inline_seen = end - pos
            self._check_eof()
            return None
        self._inline_seen = 0
        stop = nl - 1 if nl > pos and buf[nl - 1] == CR else nl
        raw = bytes(buf[pos : nl + 1])
        self.pos = nl + 1
        try:
            args = split_inline(raw[: stop - pos])
        except ValueError:
            raise Violation("Protocol error: unbalanced quotes in request") from None
        return (raw, args) if args else None

    def _check_eof(self) -> None:
        """Called when the buffered bytes end inside a command."""
        if self.eof:
            raise Violation("Protocol error: connection closed in the middle of a command")


class ReplyReader(_Input):
    """CLIENT role: one reply -> ``(raw, type byte, needs the spec reader)``.

    The type byte is that of the value itself (after any attribute). The flag is set when
    the reply holds an attribute or a blob error, which hiredis frames differently.
    """

    __slots__ = ("_stack", "_scan", "_top", "_odd")

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        # Elements still expected by each open aggregate, innermost last; an attribute's
        # entry is negative (when it ends, its parent still waits for the annotated value).
        self._stack: list[int] = []
        self._scan = 0  # offset from ``pos`` of the next element to walk
        self._top = 0
        self._odd = False

    def read(self) -> tuple[bytes, int, bool] | ConnectionEvent | None:
        """The next reply, ``None`` (more bytes needed) or ``CLOSED`` (EOF on a boundary).
        Raises ``Violation``."""
        buf = self.buf
        pos = self.pos
        end = len(buf)
        if pos >= end:
            return _CLOSED if self.eof else None
        stack = self._stack
        p = pos + self._scan
        top = self._top
        odd = self._odd
        max_end = pos + self.max_size
        find = buf.find
        while True:
            if p >= end:
                break
            t = buf[p]
            if not stack and t != T_ATTRIBUTE:
                top = t
            if t == T_BULK and p + 4 <= end and buf[p + 2] == CR and buf[p + 3] == LF:
                n = buf[p + 1] - 0x30  # fast path: "$<d>\r\n"
                if not 0 <= n <= 9:
                    raise Violation("Protocol error: invalid bulk length")
                q = p + 6 + n
                if q > max_end:
                    raise Violation(f"Protocol error: reply larger than {self.max_size} bytes")
                if q > end:
                    break
                if buf[q - 2] != CR or buf[q - 1] != LF:
                    raise Violation("Protocol error: bulk string not followed by CRLF")
            elif t in _LENGTH_TYPES:
                nl = find(b"\r\n", p + 1, p + HEADER_MAX)
                if nl < 0:
                    if end - p >= HEADER_MAX:
                        raise Violation("Protocol error: invalid bulk length")
                    break
                try:
                    n = _length(buf[p + 1 : nl])
                except ValueError:
                    raise Violation("Protocol error: invalid bulk length") from None
                if n < 0 or n > self.max_size:
                    if n != -1 or t != T_BULK:
                        raise Violation("Protocol error: invalid bulk length")
                    q = nl + 2
                else:
                    if t == T_BLOB_ERROR or (t == T_VERBATIM and n < 4):
                        odd = True
                    q = nl + 4 + n
                    if q > max_end:
                        raise Violation(f"Protocol error: reply larger than {self.max_size} bytes")
                    if q > end:
                        break
                    if buf[q - 2] != CR or buf[q - 1] != LF:
                        raise Violation("Protocol error: bulk string not followed by CRLF")
            elif t in _LINE_TYPES:
                nl = find(b"\r\n", p + 1, max_end)
                if nl < 0:
                    if end >= max_end:
                        raise Violation(f"Protocol error: reply larger than {self.max_size} bytes")
                    break
                q = nl + 2
            elif t in _AGGREGATE_TYPES:
                nl = find(b"\r\n", p + 1, p + HEADER_MAX)
                if nl < 0:
                    if end - p >= HEADER_MAX:
                        raise Violation("Protocol error: invalid multibulk length")
                    break
                try:
                    n = _length(buf[p + 1 : nl])
                except ValueError:
                    raise Violation("Protocol error: invalid multibulk length") from None
                q = nl + 2
                if n < 0:
                    if n != -1 or t != T_ARRAY:
                        raise Violation("Protocol error: invalid multibulk length")
                else:
                    if t in _PAIR_TYPES:
                        n *= 2
                        odd = odd or t == T_ATTRIBUTE
                    if q + n * MIN_ELEMENT_SIZE > max_end:
                        raise Violation("Protocol error: invalid multibulk length")
                    if n:
                        if len(stack) >= MAX_DEPTH:
                            raise Violation(
                                f"Protocol error: reply nested deeper than {MAX_DEPTH} levels"
                            )
                        stack.append(-n if t == T_ATTRIBUTE else n)
                        p = q
                        continue
                    if t == T_ATTRIBUTE:
                        p = q  # an empty attribute: the annotated value follows
                        continue
            elif t == T_NULL:
                if p + 3 > end:
                    break
                if buf[p + 1] != CR or buf[p + 2] != LF:
                    raise Violation("Protocol error: bad null")
                q = p + 3
            elif t == T_BOOLEAN:
                if p + 4 > end:
                    break
                if buf[p + 1] not in _BOOLEANS or buf[p + 2] != CR or buf[p + 3] != LF:
                    raise Violation("Protocol error: bad boolean")
                q = p + 4
            else:
                raise Violation(f"Protocol error: unknown reply type byte '{_show(t)}'")
            p = q
            # One element ended at ``p``: close the aggregates it completes.
            while stack:
                c = stack[-1]
                if c > 1:
                    stack[-1] = c - 1
                    break
                if c == 1:
                    stack.pop()  # this aggregate is complete: an element of its parent
                    continue
                if c < -1:
                    stack[-1] = c + 1
                    break
                stack.pop()  # an attribute is complete; the value it annotates follows
                break
            else:
                if p > max_end:
                    raise Violation(f"Protocol error: reply larger than {self.max_size} bytes")
                self._scan = 0
                self._top = 0
                self._odd = False
                raw = bytes(buf[pos:p])
                self.pos = p
                return raw, top, odd
        if p > max_end:
            raise Violation(f"Protocol error: reply larger than {self.max_size} bytes")
        self._scan = p - pos
        self._top = top
        self._odd = odd
        if self.eof:
            raise Violation("Protocol error: connection closed in the middle of a reply")
        return None


def parse_reply(data: bytes | bytearray | memoryview, *, max_size: int = 512 << 20) -> Any:
    """The value of ``data``, which must hold exactly one complete reply.

    Safe on untrusted bytes (framed and bounded first). Raises ``RemoteProtocolError`` for
    anything else: malformed, incomplete, or followed by more bytes.
    """
    reader = ReplyReader(max_size)
    reader.feed(data)
    reader.feed(b"")
    try:
        got = reader.read()
    except Violation as v:
        raise RemoteProtocolError(str(v), protocol=PROTOCOL) from None
    if not isinstance(got, tuple) or reader.buffered:
        raise RemoteProtocolError(
            "Protocol error: expected exactly one reply", protocol=PROTOCOL
        )
    raw, _, odd = got
    return value_of(raw, simple=not odd)
