"""Redis values in Python: commands, reply values, and their encoding and decoding.

Decoded replies are what hiredis gives (``value_of``)::

    +OK / $5 hello / (big / =txt:..   bytes (verbatim: the text without its ``txt:`` format;
                                      big number: its digits)
    :42                               int
    $-1  *-1  _                       None
    *n  ~n                            list (RESP3 sets too)
    %n                                dict (``Map`` when a key is unhashable, e.g. an array)
    ,3.14                             float
    #t / #f                           bool
    -ERR x / !len ERR x               RedisError("ERR x")
    >n                                hiredis.PushNotification (a list)
    |n ... value                      the value; attributes are dropped (the raw bytes keep them)

``encode_reply`` goes the other way for local and merged replies. Explicit wrapper types
pick the wire type (``SimpleString`` -> ``+``, ``RedisError`` -> ``-``, ``Map`` -> ``%``,
``PushNotification`` -> ``>``); plain Python types take the form a RESP2 client understands
unless ``resp3=True`` (then ``None`` -> ``_``, ``bool`` -> ``#``, ``float`` -> ``,``,
``dict`` -> ``%``, ``set`` -> ``~``), which is what redis-server does per protocol version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import hiredis

from mosn_py.codecs.redis.wire import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
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
from mosn_py.errors import LocalProtocolError, RemoteProtocolError

PushNotification = hiredis.PushNotification


class RedisError(Exception):
    """An error reply as a value: ``RedisError("ERR no such key")``.

    ``message`` is the whole error line, error code first (``ERR``, ``WRONGTYPE``,
    ``MOVED`` ...), as redis-server writes it after ``-``. hiredis builds these for error
    replies it decodes (also inside arrays); they compare equal by message.
    """

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RedisError) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)

    def __repr__(self) -> str:
        return f"RedisError({self.message!r})"


class SimpleString(str):
    """A status reply (``+OK``): ``SimpleString("OK")``. No CR or LF allowed."""

    __slots__ = ()


class Map:
    """A RESP3 map from ordered ``(key, value)`` pairs; keys need not be hashable.

    Always encoded as ``%`` (send it to RESP3 clients only). A plain ``dict`` works too and
    follows the ``resp3`` flag of ``encode_reply``.
    """

    __slots__ = ("items",)

    def __init__(self, items: Iterable[tuple[Any, Any]] | Mapping[Any, Any] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self.items: list[tuple[Any, Any]] = [(k, v) for k, v in pairs]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Map) and other.items == self.items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Map({self.items!r})"


class RedisCommand:
    """A decoded (or to-be-encoded) command: ``args[0]`` is the name as sent.

    ``name`` is the lower-cased command name (ASCII lower-casing, as redis-server compares
    names), computed on first use. ``args`` is a list of ``bytes``; treat it as read-only
    once the command is in a frame (build a new ``RedisCommand`` to change it).
    """

    __slots__ = ("args", "_name")

    def __init__(self, args: list[bytes]) -> None:
        self.args = args
        self._name: str | None = None

    @property
    def name(self) -> str:
        name = self._name
        if name is None:
            name = self._name = self.args[0].lower().decode("latin-1") if self.args else ""
        return name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RedisCommand) and other.args == self.args

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RedisCommand({self.args!r})"


# --- commands --------------------------------------------------------------------------------

# (Any: the stub types the argument as a 1-tuple.)
_pack_command: Any = hiredis.pack_command


def encode_command(args: Sequence[bytes | bytearray | memoryview | str | int | float]) -> bytes:
    """``args`` as a multibulk request (``*N`` of bulk strings).

    ``str`` is UTF-8; ``int`` and ``float`` their decimal text (as redis-py writes them).
    Raises ``LocalProtocolError`` for an empty command (redis-server would skip ``*0`` and
    never reply, which would shift every later reply onto the wrong request) or an argument
    of another type.
    """
    if not args:
        raise LocalProtocolError("a command needs at least its name", protocol=PROTOCOL)
    try:
        # hiredis packs a tuple of bytes/str/int/float in C (twice as fast as the loop).
        out: bytes = _pack_command(args if isinstance(args, tuple) else tuple(args))
        return out
    except TypeError:
        pass
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes | bytearray | memoryview):
            b = bytes(a)
        elif isinstance(a, str):
            b = a.encode("utf-8")
        elif isinstance(a, int):  # bool included: redis-py sends True as 1
            b = b"%d" % a
        elif isinstance(a, float):
            b = repr(a).encode("ascii")
        else:
            raise LocalProtocolError(
                f"a command argument must be bytes, str, int or float, not {type(a).__name__}",
                protocol=PROTOCOL,
            )
        parts += (b"$%d\r\n" % len(b), b, b"\r\n")
    return b"".join(parts)


# --- replies: encoding -----------------------------------------------------------------------


def encode_reply(value: Any, *, resp3: bool = False) -> bytes:
    """The wire form of a reply ``value`` (table in the module docstring).

    Raises ``LocalProtocolError`` for a type with no RESP form, a ``SimpleString`` with CR
    or LF, or nesting deeper than ``MAX_DEPTH`` (a self-containing list, for instance). An
    error message's CR/LF become spaces (redis-server does the same).
    """
    out: list[bytes] = []
    _encode(value, out, resp3, 0)
    return out[0] if len(out) == 1 else b"".join(out)


def sanitize_error(text: str) -> str:
    """An error line without CR/LF (they would end the line early)."""
    if "\r" in text or "\n" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text


def _bulk(b: bytes | bytearray | memoryview, out: list[bytes]) -> None:
    out += (b"$%d\r\n" % len(b), bytes(b), b"\r\n")


def _encode(value: Any, out: list[bytes], resp3: bool, depth: int) -> None:
    # Order matters: bool before int, SimpleString before str, PushNotification before list.
    cls = value.__class__
    if cls is bytes or cls is bytearray or cls is memoryview:
        _bulk(value, out)
    elif value is None:
        out.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif cls is bool:
        out.append((b"#t\r\n" if value else b"#f\r\n") if resp3 else b":%d\r\n" % value)
    elif cls is int:
        if INT64_MIN <= value <= INT64_MAX:
            out.append(b":%d\r\n" % value)
        elif resp3:
            out.append(b"(%d\r\n" % value)
        else:
            _bulk(b"%d" % value, out)
    elif isinstance(value, SimpleString):
        text = value.encode("utf-8")
        if b"\r" in text or b"\n" in text:
            raise LocalProtocolError(
                "a simple string cannot contain CR or LF", protocol=PROTOCOL
            )
        out += (b"+", text, b"\r\n")
    elif isinstance(value, str):
        _bulk(value.encode("utf-8"), out)
    elif isinstance(value, RedisError):
        out += (b"-", sanitize_error(value.message).encode("utf-8", "replace"), b"\r\n")
    elif isinstance(value, float):
        text = _double(value)
        if resp3:
            out += (b",", text, b"\r\n")
        else:
            _bulk(text, out)
    elif isinstance(value, int):  # an int subclass (IntEnum ...): its plain value
        _encode(int(value), out, resp3, depth)
    else:
        if depth >= MAX_DEPTH:
            raise LocalProtocolError(
                f"reply nested deeper than {MAX_DEPTH} levels", protocol=PROTOCOL
            )
        depth += 1
        if isinstance(value, PushNotification):
            out.append(b">%d\r\n" % len(value))
            for v in value:
                _encode(v, out, resp3, depth)
        elif isinstance(value, list | tuple):
            out.append(b"*%d\r\n" % len(value))
            for v in value:
                _encode(v, out, resp3, depth)
        elif isinstance(value, Map | dict):
            pairs = value.items if isinstance(value, Map) else value.items()
            if isinstance(value, Map) or resp3:
                out.append(b"%%%d\r\n" % len(pairs))
            else:
                out.append(b"*%d\r\n" % (2 * len(pairs)))
            for k, v in pairs:
                _encode(k, out, resp3, depth)
                _encode(v, out, resp3, depth)
        elif isinstance(value, set | frozenset):
            out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(value))
            for v in value:
                _encode(v, out, resp3, depth)
        elif isinstance(value, bytes | bytearray | memoryview):
            _bulk(value, out)
        else:
            raise LocalProtocolError(
                f"no RESP encoding for {type(value).__name__}", protocol=PROTOCOL
            )


def _double(value: float) -> bytes:
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    return repr(value).encode("ascii")


# --- replies: decoding -----------------------------------------------------------------------

_Reader = hiredis.Reader
_HiredisError = hiredis.HiredisError


class ReplyParser:
    """Values of replies already framed by ``ReplyReader`` (whose checks keep hiredis from
    pre-allocating a list for a forged count; ``parse_reply`` is the entry point for
    arbitrary bytes). One per connection: it keeps one hiredis reader. Table in the module
    docstring.

    hiredis does the work. ``simple=False`` (the framer saw an attribute or a blob error,
    which hiredis frames differently from RESP3) or any hiredis failure falls back to a
    pure-Python reader that follows the spec.
    """

    __slots__ = ("_reader",)

    def __init__(self) -> None:
        self._reader = _Reader(replyError=RedisError)

    def parse(self, raw: bytes, simple: bool = True) -> Any:
        """The value of ``raw``. Raises ``RemoteProtocolError`` when a leaf is malformed
        (``:x``, ``,abc``, ``#y``...)."""
        if simple:
            reader = self._reader
            try:
                reader.feed(raw)
                value = reader.gets()
                if value is not False and not reader.has_data():
                    return value
            except (_HiredisError, TypeError, ValueError):
                pass  # e.g. a map keyed by arrays (TypeError: unhashable), a bad double
            self._reader = _Reader(replyError=RedisError)  # its state is unknown now
        return spec_value(raw)


def value_of(raw: bytes, *, simple: bool = True) -> Any:
    """``ReplyParser().parse(raw, simple)``: for a one-off value."""
    return ReplyParser().parse(raw, simple)


def spec_value(raw: bytes) -> Any:
    """The value of ``raw`` by the pure-Python reader (no hiredis). Raises
    ``RemoteProtocolError`` if ``raw`` is not exactly one well-formed value."""
    try:
        value, end = _read(raw, 0, 0)
    except (ValueError, IndexError) as exc:
        raise RemoteProtocolError(
            f"Protocol error: malformed reply value ({exc})", protocol=PROTOCOL
        ) from None
    if end != len(raw):
        raise RemoteProtocolError(
            "Protocol error: trailing bytes after a reply value", protocol=PROTOCOL
        )
    return value


def _line(raw: bytes, pos: int) -> tuple[bytes, int]:
    nl = raw.index(b"\r\n", pos)
    return raw[pos:nl], nl + 2


_LINE_VALUES = frozenset((T_SIMPLE, T_BIGNUM))
_LENGTH_TYPES = frozenset((T_BULK, T_BLOB_ERROR, T_VERBATIM))
_PAIR_TYPES = frozenset((T_MAP, T_ATTRIBUTE))


def _read(raw: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """One value at ``raw[pos]`` -> (value, end). Attributes are skipped (RESP3: a client
    may ignore them). Raises ``ValueError``/``IndexError`` on malformed input."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deep")
    t = raw[pos]
    line, pos = _line(raw, pos + 1)
    if t in _LINE_VALUES:
        return line, pos
    if t == T_ERROR:
        return RedisError(line.decode("utf-8", "replace")), pos
    if t == T_INTEGER:
        return canonical_length(line), pos
    if t in _LENGTH_TYPES:
        n = canonical_length(line)
        if n < 0:
            if n == -1 and t == T_BULK:
                return None, pos
            raise ValueError("negative length")
        data = raw[pos : pos + n]
        if len(data) != n or raw[pos + n : pos + n + 2] != b"\r\n":
            raise ValueError("bad bulk payload")
        pos += n + 2
        if t == T_BULK:
            return data, pos
        if t == T_BLOB_ERROR:
            return RedisError(data.decode("utf-8", "replace")), pos
        if n < 4 or data[3] != 0x3A:
            raise ValueError("verbatim string without its format")
        return data[4:], pos
    if t == T_NULL:
        if line:
            raise ValueError("bad null")
        return None, pos
    if t == T_BOOLEAN:
        if line == b"t":
            return True, pos
        if line == b"f":
            return False, pos
        raise ValueError("bad boolean")
    if t == T_DOUBLE:
        return float(line), pos
    if t in _AGGREGATES:
        n = canonical_length(line)
        if n < 0:
            if n == -1 and t == T_ARRAY:
                return None, pos
            raise ValueError("negative count")
        if t in _PAIR_TYPES:
            items: list[Any] = []
            for _ in range(2 * n):
                v, pos = _read(raw, pos, depth + 1)
                items.append(v)
            if t == T_ATTRIBUTE:
                return _read(raw, pos, depth)  # the annotated value
            pairs = list(zip(items[::2], items[1::2], strict=True))
            try:
                return dict(pairs), pos
            except TypeError:  # unhashable keys
                return Map(pairs), pos
        out: list[Any] = PushNotification() if t == T_PUSH else []
        for _ in range(n):
            v, pos = _read(raw, pos, depth + 1)
            out.append(v)
        return out, pos
    raise ValueError(f"unknown type byte {t:#04x}")


_AGGREGATES = frozenset((T_ARRAY, T_MAP, T_SET, T_ATTRIBUTE, T_PUSH))
