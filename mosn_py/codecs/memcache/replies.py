"""Frames a proxy builds itself: replies (SERVER role) and requests (CLIENT role).

``Frame.status`` of a reply is 1 for ``ERROR``, ``CLIENT_ERROR`` and ``SERVER_ERROR``, else 0
(the same on replies the CLIENT codec decodes).

Every reply frame carries a ``MemcacheReply`` in ``extra`` and, unless a value is larger
than ``ZERO_COPY_THRESHOLD``, its encoded bytes in ``raw``; ``send()`` encodes the others
from ``extra`` without copying the large values. Request frames built here have ``raw=None``
and are encoded from their ``MemcacheCommand`` by the CLIENT codec's ``send()``.
"""

from __future__ import annotations

from collections.abc import Iterable

from mosn_py.codecs.base import Frame, StreamType
from mosn_py.codecs.memcache.server import EMPTY_HEADERS
from mosn_py.codecs.memcache.wire import (
    CLIENT_ERROR,
    END,
    ERROR,
    NUMBER,
    PROTOCOL,
    SERVER_ERROR,
    VERSION,
    WORDS,
    Buffers,
    ItemLike,
    MemcacheCommand,
    MemcacheItem,
    MemcacheReply,
    encode_command,
    encode_reply,
    one_line,
)
from mosn_py.errors import LocalProtocolError, ProxyStatus

# What ``local_reply`` says after SERVER_ERROR when the caller gives no message.
DEFAULT_MESSAGES: dict[ProxyStatus, str] = {
    ProxyStatus.OK: "ok",
    ProxyStatus.ROUTE_NOT_FOUND: "no route for this key",
    ProxyStatus.NO_HEALTHY_UPSTREAM: "no healthy upstream",
    ProxyStatus.UPSTREAM_CONNECT_FAILED: "upstream connect failed",
    ProxyStatus.UPSTREAM_RESET: "upstream connection reset",
    ProxyStatus.UPSTREAM_OVERFLOW: "upstream overflow",
    ProxyStatus.TIMEOUT: "upstream timeout",
    ProxyStatus.CODEC_ERROR: "protocol error",
    ProxyStatus.DRAINING: "proxy is draining",
    ProxyStatus.INTERNAL_ERROR: "internal proxy error",
}


def _single(bufs: Buffers) -> bytes | memoryview | None:
    """The one buffer of ``bufs`` (as ``Frame.raw``), or None when it takes several."""
    if len(bufs) != 1:
        return None
    raw = bufs[0]
    return bytes(raw) if isinstance(raw, bytearray) else raw


def reply_frame(request_id: int, reply: MemcacheReply) -> Frame:
    """A response frame for ``reply`` (validated and encoded now)."""
    return Frame(
        StreamType.RESPONSE, request_id, EMPTY_HEADERS, b"", 1 if reply.is_error else 0, 0,
        False, True, None, PROTOCOL, reply, _single(encode_reply(reply)),
    )


def value_reply(request_id: int, items: Iterable[ItemLike]) -> Frame:
    """``VALUE <key> <flags> <bytes> [<cas>]`` + data for each item, then ``END``.

    ``items`` are ``(key, flags, value, cas_or_None)`` tuples (``MemcacheItem`` or plain);
    an empty list gives a bare ``END`` (every key missed). Raises ``LocalProtocolError`` for
    an invalid key or a number out of range.
    """
    listed = [i if isinstance(i, MemcacheItem) else MemcacheItem(*i) for i in items]
    return reply_frame(request_id, MemcacheReply(END, listed))


def status_reply(request_id: int, status: str) -> Frame:
    """A one-word reply: STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, TOUCHED, OK, END
    or ERROR."""
    if status not in WORDS:
        raise LocalProtocolError(f"{status!r} is not a one-word reply", protocol=PROTOCOL)
    return reply_frame(request_id, MemcacheReply(status, []))


def number_reply(request_id: int, value: int) -> Frame:
    """The new value of an incr/decr (a decimal u64)."""
    return reply_frame(request_id, MemcacheReply(NUMBER, [], value))


def version_reply(request_id: int, version: str) -> Frame:
    """``VERSION <version>``."""
    return reply_frame(request_id, MemcacheReply(VERSION, [], None, one_line(version)))


def client_error(request_id: int, message: str) -> Frame:
    """``CLIENT_ERROR <message>`` (CR/LF in ``message`` become spaces)."""
    return reply_frame(request_id, MemcacheReply(CLIENT_ERROR, [], None, one_line(message)))


def server_error(request_id: int, message: str) -> Frame:
    """``SERVER_ERROR <message>`` (CR/LF in ``message`` become spaces)."""
    return reply_frame(request_id, MemcacheReply(SERVER_ERROR, [], None, one_line(message)))


def error(request_id: int) -> Frame:
    """``ERROR``: memcached's answer to a command it does not know."""
    return reply_frame(request_id, MemcacheReply(ERROR, []))


def local_reply_for_id(request_id: int, status: ProxyStatus, message: str = "") -> Frame:
    """``SERVER_ERROR <message>`` telling the client the proxy could not serve the request
    (protocol.txt §Error strings: "some sort of server error prevents the server from
    carrying out the command"); ``message`` defaults to ``DEFAULT_MESSAGES[status]``."""
    return server_error(request_id, message or DEFAULT_MESSAGES.get(status, status.value))


def canned_reply(request_id: int, line: bytes) -> Frame:
    """A reply frame for one reply line the codec chose (``MemcacheCommand.reply``)."""
    word, _, rest = line[:-2].partition(b" ")
    reply = MemcacheReply(word.decode("ascii", "replace"), [], None,
                          rest.decode("utf-8", "replace"))
    return Frame(
        StreamType.RESPONSE, request_id, EMPTY_HEADERS, b"", 1 if reply.is_error else 0, 0,
        False, True, None, PROTOCOL, reply, line,
    )


# --- requests (CLIENT role) -----------------------------------------------------------------


def make_request(request_id: int, command: MemcacheCommand) -> Frame:
    """A request frame for ``command``, encoded now (``raw``; ``None`` when a large value
    makes it several buffers: ``send()`` encodes it again from ``extra``, value uncopied).

    Raises ``LocalProtocolError`` if ``command`` cannot be encoded. The frame is ``ONEWAY``
    when ``command.noreply``.
    """
    if command.reply is not None:
        raise LocalProtocolError("a request the codec answered cannot be sent upstream",
                                 protocol=PROTOCOL)
    raw = _single(encode_command(command))
    stream_type = StreamType.ONEWAY if command.noreply else StreamType.REQUEST
    body = command.value if command.value is not None else b""
    return Frame(
        stream_type, request_id, EMPTY_HEADERS, body, 0, 0, False, True, None, PROTOCOL,
        command, raw,
    )


def make_get(request_id: int, name: str, keys: list[bytes], exptime: int = 0) -> Frame:
    """A retrieval request (``get``, ``gets``, ``gat`` or ``gats``) for ``keys``: what a
    proxy sends each shard when it splits a multi-key get."""
    if name not in ("get", "gets", "gat", "gats"):
        raise LocalProtocolError(f"{name!r} is not a retrieval command", protocol=PROTOCOL)
    return make_request(request_id, MemcacheCommand(name, list(keys), exptime=exptime))

