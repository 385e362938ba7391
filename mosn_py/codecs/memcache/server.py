"""``RequestReader``: bytes -> request frames (SERVER role, downstream).

Buffering. Input is appended to a ``bytearray``; a ``bytes`` snapshot of it is taken only
when a whole request may be there (a line end arrived, or the data block a storage line
announced). Requests are sliced out of the snapshot (``Frame.raw``, one copy) and parsed
with one ``find`` for the line end and one ``split``. While waiting, nothing is rescanned:
``_scan`` remembers where the search for a line end stopped, ``_want`` how many octets the
pending storage request needs. Swallowed data blocks are dropped as they arrive, never
buffered.

Line limits. memcached drops a connection that sends 2048 octets without a line end unless
the line starts with ``get``/``gets`` (a large multi-get). We do the same with two bounds:
``max_line`` for every line, ``max_get_line`` for retrieval lines, and apply them to the
line's length wherever its end falls, so the outcome never depends on how input is split.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Frame, StreamType
from mosn_py.codecs.memcache.order import ResponseOrder
from mosn_py.codecs.memcache.request import QUIT, parse_command
from mosn_py.codecs.memcache.wire import BAD_CHUNK, PROTOCOL
from mosn_py.errors import LocalProtocolError

EMPTY_HEADERS: Mapping[str, str] = MappingProxyType({})
_REQUEST = StreamType.REQUEST
_ONEWAY = StreamType.ONEWAY
_CLOSED = ConnectionEvent.CLOSED
_RETRIEVAL_HEADS = (b"get ", b"gets ", b"gat ", b"gats ")


class RequestReader:
    """Decodes requests and opens their response slots in ``order``."""

    __slots__ = (
        "_buf", "_pos", "_snap", "_scan", "_want", "_swallow", "_eof", "_next_id",
        "order", "max_line", "max_get_line", "max_keys", "max_value", "max_pending",
    )

    def __init__(
        self, *, max_line: int, max_get_line: int, max_keys: int, max_value: int,
        max_pending: int,
    ) -> None:
        self._buf = bytearray()
        self._pos = 0  # start of the next request in _buf (and in _snap)
        self._snap: bytes | None = b""  # bytes(_buf) while _buf is unchanged, else None
        self._scan = 0  # where the search for the next line end resumes (index in _buf)
        self._want = 0  # octets from _pos the pending storage request needs (0: a line)
        self._swallow = 0  # octets of a refused data block still to drop
        self._eof = False
        self._next_id = 1
        self.order = ResponseOrder()
        self.max_line = max_line
        self.max_get_line = max_get_line
        self.max_keys = max_keys
        self.max_value = max_value
        self.max_pending = max_pending

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    @property
    def swallowing(self) -> int:
        """Octets of a refused data block still to be dropped as they arrive."""
        return self._swallow

    @property
    def paused(self) -> bool:
        """True while ``max_pending`` responses are owed: no request is decoded."""
        return len(self.order.slots) >= self.max_pending

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        sw = self._swallow
        if sw:
            n = len(data)
            if n <= sw:
                self._swallow = sw - n
                return
            data = memoryview(data)[sw:]
            self._swallow = 0
        self._buf += data
        self._snap = None

    def feed_eof(self) -> None:
        self._eof = True

    def drop(self) -> None:
        """Forget all input (after quit or an error)."""
        self._buf = bytearray()
        self._pos = self._scan = self._want = self._swallow = 0
        self._snap = b""

    # --- decoding ---------------------------------------------------------------------------

    def next(self) -> Frame | ConnectionEvent | Any:
        """The next request ``Frame``, ``CLOSED`` (EOF or quit) or ``NEED_DATA``.

        Raises ``LocalProtocolError`` on fatal input (converted by the codec).
        """
        order = self.order
        slots = order.slots
        max_pending = self.max_pending
        while True:
            if len(slots) >= max_pending:
                return NEED_DATA  # paused: answer some requests first
            snap = self._snap
            if snap is None:
                snap = self._snapshot()
                if snap is None:
                    return self._need()
            pos = self._pos
            nl = snap.find(b"\n", pos)
            if nl < 0:
                n = len(snap) - pos
                if n > self.max_line:
                    self._check_line(snap, pos, n)
                self._scan = len(snap)
                return self._need()
            n = nl - pos
            if n > self.max_line:
                self._check_line(snap, pos, n)
            cmd, vlen = parse_command(
                snap[pos : nl - 1] if n and snap[nl - 1] == 13 else snap[pos:nl],
                self.max_keys,
                self.max_value,
            )
            end = nl + 1
            body: bytes | memoryview = b""
            if vlen < 0:
                if vlen == QUIT:
                    self.drop()
                    return _CLOSED
                raw = snap[pos:end]
            else:
                start = end
                end = start + vlen + 2
                size = len(snap)
                if cmd is not None and cmd.reply is None:
                    if end > size:
                        self._want = end - pos
                        self._scan = size
                        return self._need()
                    self._want = 0
                    raw = snap if pos == 0 and end == size else snap[pos:end]
                    if raw[end - pos - 2 : end - pos] == b"\r\n":
                        body = cmd.value = memoryview(raw)[start - pos : end - pos - 2]
                    elif cmd.noreply:
                        cmd = None  # memcached read vlen + 2 octets not ended by CRLF
                    else:
                        cmd.reply = BAD_CHUNK
                else:
                    # a refused storage request: drop its data block (memcached conn_swallow)
                    self._want = 0
                    raw = snap[pos:start]
                    if end > size:
                        self._swallow = end - size
                        end = size
            if end >= len(snap):
                self._buf.clear()
                self._snap = b""
                self._pos = self._scan = 0
            else:
                self._pos = self._scan = end
            if cmd is None:
                continue  # an error noreply suppressed
            rid = self._next_id
            self._next_id = rid + 1
            if cmd.noreply and cmd.reply is None:
                stream_type = _ONEWAY
            else:
                stream_type = _REQUEST
                slots.append(rid)
                order.opened.add(rid)
            return Frame(
                stream_type, rid, EMPTY_HEADERS, body, 0, 0, False, True, None, PROTOCOL, cmd,
                raw,
            )

    def open_slot(self) -> int:
        """A request id with a response slot, for a reply that answers no decoded request
        (the last words before closing on a fatal error)."""
        rid = self._next_id
        self._next_id = rid + 1
        self.order.open(rid)
        return rid

    def _snapshot(self) -> bytes | None:
        """``bytes`` of the buffer if a request may be complete, else None (keep waiting)."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        want = self._want
        if want:
            if avail < want:
                return None
        else:
            nl = buf.find(b"\n", self._scan)
            if nl < 0:
                if avail > self.max_line:
                    self._check_line(buf, pos, avail)
                self._scan = len(buf)
                return None
        if pos:
            del buf[:pos]
            self._pos = 0
        self._scan = 0
        snap = self._snap = bytes(buf)
        return snap

    def _need(self) -> Any:
        if not self._eof:
            return NEED_DATA
        if self._swallow or self._pos == len(self._buf):
            return _CLOSED  # memcached closes quietly at EOF inside a refused data block too
        raise LocalProtocolError(
            f"connection closed inside a command ({len(self._buf) - self._pos} octets)",
            protocol=PROTOCOL,
        )

    def _check_line(self, data: bytes | bytearray, pos: int, n: int) -> None:
        """Raise unless ``n`` octets are allowed for the line at ``pos``: ``max_line``, or
        ``max_get_line`` for a retrieval command (a multi-get)."""
        head = bytes(data[pos : pos + self.max_line]).lstrip(b" ")[:5]
        limit = self.max_get_line if head.startswith(_RETRIEVAL_HEADS) else self.max_line
        if n > limit:
            raise LineTooLong(f"command line longer than {limit} octets", protocol=PROTOCOL)


class LineTooLong(LocalProtocolError):
    """A command line over its limit: fatal, but worth a last ``CLIENT_ERROR``."""
