"""Frames the proxy builds itself: replies from values, error replies, local replies, and
commands it sends upstream on its own (split MGET parts, health checks).

Local replies (``ProxyStatus`` -> one ``-ERR`` line; DESIGN.md §2)::

    ProxyStatus               reply
    OK                        +OK
    ROUTE_NOT_FOUND           -ERR no route[: detail]
    NO_HEALTHY_UPSTREAM       -ERR no healthy upstream[: detail]
    UPSTREAM_CONNECT_FAILED   -ERR upstream connect failed[: detail]
    UPSTREAM_RESET            -ERR upstream connection reset[: detail]
    UPSTREAM_OVERFLOW         -ERR upstream overflow[: detail]
    TIMEOUT                   -ERR upstream timeout[: detail]
    CODEC_ERROR               -ERR Protocol error[: detail]
    DRAINING                  -ERR proxy is draining[: detail]
    INTERNAL_ERROR            -ERR internal proxy error[: detail]

``detail`` is the caller's message; a message that already starts with the label is used
as it is (``"upstream timeout"``, ``"Protocol error: invalid bulk length"``), so the line
always names what happened and never says it twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from mosn_py.codecs.base import Frame, StreamType
from mosn_py.codecs.redis.values import (
    RedisCommand,
    RedisError,
    SimpleString,
    encode_command,
    encode_reply,
    sanitize_error,
)
from mosn_py.codecs.redis.wire import PROTOCOL
from mosn_py.errors import ProxyStatus

EMPTY_HEADERS: Mapping[str, str] = MappingProxyType({})

# Frame.status of a response: 0 for a reply, 1 for an error reply (``-`` or RESP3 ``!``).
STATUS_OK = 0
STATUS_ERROR = 1

STATUS_LABELS: Mapping[ProxyStatus, str] = MappingProxyType({
    ProxyStatus.OK: "OK",
    ProxyStatus.ROUTE_NOT_FOUND: "no route",
    ProxyStatus.NO_HEALTHY_UPSTREAM: "no healthy upstream",
    ProxyStatus.UPSTREAM_CONNECT_FAILED: "upstream connect failed",
    ProxyStatus.UPSTREAM_RESET: "upstream connection reset",
    ProxyStatus.UPSTREAM_OVERFLOW: "upstream overflow",
    ProxyStatus.TIMEOUT: "upstream timeout",
    ProxyStatus.CODEC_ERROR: "Protocol error",
    ProxyStatus.DRAINING: "proxy is draining",
    ProxyStatus.INTERNAL_ERROR: "internal proxy error",
})


def reply_frame(request_id: int, value: Any, *, resp3: bool = False) -> Frame:
    """A response carrying ``value`` (``encode_reply``); ``extra`` is ``value``.

    Raises ``LocalProtocolError`` when ``value`` has no RESP form.
    """
    raw = encode_reply(value, resp3=resp3)
    status = STATUS_ERROR if isinstance(value, RedisError) else STATUS_OK
    return Frame(
        StreamType.RESPONSE, request_id, EMPTY_HEADERS, b"", status,
        protocol=PROTOCOL, extra=value, raw=raw,
    )


def error_frame(request_id: int, text: str) -> Frame:
    """An error reply ``-<text>``: ``text`` is the whole line, error code first
    (``"ERR unknown command"``, ``"NOAUTH Authentication required."``). CR/LF become spaces."""
    text = sanitize_error(text)
    return Frame(
        StreamType.RESPONSE, request_id, EMPTY_HEADERS, b"", STATUS_ERROR,
        protocol=PROTOCOL, extra=RedisError(text), raw=b"-%s\r\n" % text.encode("utf-8"),
    )


def error_reply(request_id: int, message: str) -> Frame:
    """``-ERR <message>`` (the generic error code; ``error_frame`` for another one)."""
    return error_frame(request_id, "ERR " + message)


def local_reply_text(status: ProxyStatus, message: str = "") -> str:
    """The error line (without ``-``) for ``status`` and ``message`` (table above)."""
    label = STATUS_LABELS[status]
    if status is ProxyStatus.OK:
        return label
    if not message or message.lower().startswith(label.lower()):
        return sanitize_error(f"ERR {message or label}")
    return sanitize_error(f"ERR {label}: {message}")


def status_reply(request_id: int, status: ProxyStatus, message: str = "") -> Frame:
    """The local reply for ``status`` to request ``request_id`` (table above)."""
    if status is ProxyStatus.OK:
        return Frame(
            StreamType.RESPONSE, request_id, EMPTY_HEADERS, b"", STATUS_OK,
            protocol=PROTOCOL, extra=SimpleString("OK"), raw=b"+OK\r\n",
        )
    return error_frame(request_id, local_reply_text(status, message))


def command_frame(
    args: Sequence[bytes | bytearray | memoryview | str | int | float], request_id: int = 0
) -> Frame:
    """A request frame for the command ``args`` (for the CLIENT role's ``send``).

    ``extra`` is a ``RedisCommand`` of the arguments as ``bytes``; ``raw`` its multibulk
    encoding. Raises ``LocalProtocolError`` for an empty command or an unsupported type.
    """
    raw = encode_command(args)
    as_bytes = [a if a.__class__ is bytes else _arg_bytes(a) for a in args]
    return Frame(
        StreamType.REQUEST, request_id, EMPTY_HEADERS, b"",
        protocol=PROTOCOL, extra=RedisCommand(as_bytes), raw=raw,
    )


def _arg_bytes(a: Any) -> bytes:
    if isinstance(a, bytes | bytearray | memoryview):
        return bytes(a)
    if isinstance(a, str):
        return a.encode("utf-8")
    if isinstance(a, float):
        return repr(a).encode("ascii")
    return b"%d" % a
