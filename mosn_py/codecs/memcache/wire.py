"""memcached text protocol: wire facts, the typed ``extra`` objects, numbers, encoders.

Facts come from memcached's ``doc/protocol.txt`` (cited as "protocol.txt §Section") and,
where the document is silent, from memcached's own parser (``proto_text.c``, 1.6.18 and
1.6.40+); every such choice is checked against a real server in the tests::

    request   <command> <arg> ... [noreply]\\r\\n          (a bare \\n ends a line too)
              [<data block of exactly <bytes> octets>\\r\\n]  (storage commands only)

    reply     VALUE <key> <flags> <bytes> [<cas unique>]\\r\\n<data block>\\r\\n ... END\\r\\n
              STORED | NOT_STORED | EXISTS | NOT_FOUND | DELETED | TOUCHED | OK\\r\\n
              <decimal u64>\\r\\n | VERSION <text>\\r\\n
              ERROR\\r\\n | CLIENT_ERROR <text>\\r\\n | SERVER_ERROR <text>\\r\\n  (any command)

Tokens are separated by one or more spaces (only 0x20: memcached's tokenizer splits on
nothing else). Keys are at most 250 octets (protocol.txt §Keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from mosn_py.errors import LocalProtocolError

PROTOCOL = "memcache"
CRLF = b"\r\n"
KEY_MAX_LENGTH = 250  # protocol.txt §Keys; memcached KEY_MAX_LENGTH
MAX_LINE = 2048  # memcached closes a connection with 2048 octets and no line end
DEFAULT_MAX_VALUE = 1 << 20  # memcached's default item size maximum (-I 1m)
DEFAULT_MAX_KEYS = 4096  # keys in one retrieval command (memcached: unbounded)
MAX_VLEN = (1 << 31) - 3  # memcached: vlen < 0 || vlen > INT_MAX - 2 -> bad format
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
# Values above this go out as their own buffer (never copied into a joined frame).
ZERO_COPY_THRESHOLD = 64 * 1024

# Octets a key may not contain: control characters, space and DEL (protocol.txt §Keys).
KEY_FORBIDDEN = bytes(range(0x21)) + b"\x7f"

# --- command names and reply kinds ---------------------------------------------------------

RETRIEVAL = frozenset({"get", "gets", "gat", "gats"})
TOUCHING = frozenset({"gat", "gats"})
STORAGE = frozenset({"set", "add", "replace", "append", "prepend", "cas"})
COMMANDS = frozenset(
    RETRIEVAL
    | STORAGE
    | {"delete", "incr", "decr", "touch", "version", "flush_all", "verbosity", "quit"}
)

# One-word replies (protocol.txt §Storage commands, §Deletion, §Touch, §Other commands).
END = "END"
STORED = "STORED"
NOT_STORED = "NOT_STORED"
EXISTS = "EXISTS"
NOT_FOUND = "NOT_FOUND"
DELETED = "DELETED"
TOUCHED = "TOUCHED"
OK = "OK"
ERROR = "ERROR"
CLIENT_ERROR = "CLIENT_ERROR"
SERVER_ERROR = "SERVER_ERROR"
VERSION = "VERSION"
NUMBER = "NUMBER"  # not a wire word: the status of an incr/decr value reply
WORDS = frozenset({END, STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, TOUCHED, OK, ERROR})
ERRORS = frozenset({ERROR, CLIENT_ERROR, SERVER_ERROR})

# What a server may answer to each command, besides the three error replies
# (``END`` stands for a whole retrieval reply: items then END).
EXPECTED: dict[str, frozenset[str]] = {
    **{name: frozenset({END}) for name in RETRIEVAL},
    **{name: frozenset({STORED, NOT_STORED, EXISTS, NOT_FOUND}) for name in STORAGE},
    "delete": frozenset({DELETED, NOT_FOUND}),
    "incr": frozenset({NUMBER, NOT_FOUND}),
    "decr": frozenset({NUMBER, NOT_FOUND}),
    "touch": frozenset({TOUCHED, NOT_FOUND}),
    "flush_all": frozenset({OK}),
    "verbosity": frozenset({OK}),
    "version": frozenset({VERSION}),
}

# The error texts memcached 1.6 sends (proto_text.c), reused verbatim.
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
BAD_DELETE = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
BAD_DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
BAD_EXPTIME = b"CLIENT_ERROR invalid exptime argument\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
TOO_MANY_KEYS = b"SERVER_ERROR too many keys\r\n"  # ours: memcached has no key bound
ERROR_LINE = b"ERROR\r\n"
END_LINE = b"END\r\n"


# --- typed extras ---------------------------------------------------------------------------


class MemcacheItem(NamedTuple):
    """One item of a retrieval reply; a plain ``(key, flags, value, cas)`` tuple works too."""

    key: bytes
    flags: int
    value: bytes | memoryview
    cas: int | None = None


ItemLike = tuple[bytes, int, bytes | memoryview, int | None]


@dataclass(slots=True, eq=True)
class MemcacheCommand:
    """``Frame.extra`` of a request (both roles).

    ``name`` is the command word (``""`` for an unknown or empty command line). ``exptime``
    holds the exptime of storage, touch and gat/gats commands and the delay of
    ``flush_all``; ``delta`` the amount of incr/decr and the level of ``verbosity``;
    ``value`` the data block of a storage command (a read-only view into ``Frame.raw``).

    ``reply`` is set when the codec has already answered the request itself (a malformed
    line, an unknown command, a key or value over the limits): it holds the complete reply
    the client must get, and the request must not be forwarded. See the package docstring.
    """

    name: str
    keys: list[bytes]
    flags: int = 0
    exptime: int = 0
    cas: int | None = None
    delta: int | None = None
    noreply: bool = False
    value: bytes | memoryview | None = None
    reply: bytes | None = None


@dataclass(slots=True, eq=True)
class MemcacheReply:
    """``Frame.extra`` of a response (both roles).

    ``status`` is the reply's first word (``END`` for a retrieval reply, whose items are in
    ``items``), or ``NUMBER`` for an incr/decr result held in ``number``. ``message`` is the
    text after ``VERSION``, ``CLIENT_ERROR`` or ``SERVER_ERROR``.
    """

    status: str
    items: list[MemcacheItem]
    number: int | None = None
    message: str = ""

    @property
    def is_error(self) -> bool:
        return self.status in ERRORS


# --- numbers --------------------------------------------------------------------------------
# memcached parses numbers with strtoul/strtol (util.c safe_strto*). We accept the forms those
# accept in practice -- decimal digits with an optional sign -- and reject out-of-range values
# rather than truncating them as a 64-bit strtoul silently does for 32-bit fields.


def parse_uint(tok: bytes, limit: int) -> int | None:
    """``[+]digits`` no greater than ``limit``, else None."""
    if tok.isdigit():
        v = int(tok)
    elif tok[:1] == b"+" and tok[1:].isdigit():
        v = int(tok[1:])
    else:
        return None
    return v if v <= limit else None


def parse_int(tok: bytes) -> int | None:
    """``[+-]digits`` within int64 (strtol on LP64), else None."""
    if tok.isdigit() or (tok[:1] in (b"+", b"-") and tok[1:].isdigit()):
        v = int(tok)
    else:
        return None
    return v if I64_MIN <= v <= I64_MAX else None


def valid_key(key: bytes) -> bool:
    """At most 250 octets, no control characters, spaces or DEL (protocol.txt §Keys)."""
    n = len(key)
    return 0 < n <= KEY_MAX_LENGTH and len(key.translate(None, KEY_FORBIDDEN)) == n


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or not valid_key(key):
        raise LocalProtocolError(f"invalid memcached key {key!r}", protocol=PROTOCOL)
    return key


def _check_range(name: str, value: int | None, low: int, high: int) -> int:
    if not isinstance(value, int) or not low <= value <= high:
        raise LocalProtocolError(f"{name}={value!r} out of range", protocol=PROTOCOL)
    return value


def one_line(message: str) -> str:
    """``message`` fit for a reply line: CR and LF become spaces, at most 1024 characters."""
    return message.replace("\r", " ").replace("\n", " ")[:1024]


def _text(message: str) -> bytes:
    return one_line(message).encode("utf-8", "replace")


# --- encoders -------------------------------------------------------------------------------

Buffers = list[bytes | bytearray | memoryview]


def _as_buffer(value: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    """``value`` as a flat octet buffer whose ``len()`` is its size."""
    if isinstance(value, memoryview):
        if not value.c_contiguous:
            return value.tobytes()
        if value.ndim != 1 or value.format != "B":
            return value.cast("B")
        return value
    if not isinstance(value, (bytes, bytearray)):
        raise LocalProtocolError(
            f"value must be bytes-like, not {type(value).__name__}", protocol=PROTOCOL
        )
    return value


def encode_command(cmd: MemcacheCommand) -> Buffers:
    """Wire buffers for ``cmd`` (a request). Raises ``LocalProtocolError`` if it is invalid.

    Values above ``ZERO_COPY_THRESHOLD`` are returned as their own, uncopied buffer.
    """
    name = cmd.name
    suffix = b" noreply\r\n" if cmd.noreply else CRLF
    if name in RETRIEVAL:
        if not cmd.keys:
            raise LocalProtocolError(f"{name} needs at least one key", protocol=PROTOCOL)
        keys = b" ".join(_check_key(k) for k in cmd.keys)
        if name in TOUCHING:
            exptime = _check_range("exptime", cmd.exptime, I64_MIN, I64_MAX)
            return [b"%s %d %s\r\n" % (name.encode(), exptime, keys)]
        return [b"%s %s\r\n" % (name.encode(), keys)]
    if name in STORAGE:
        key = _check_key(cmd.keys[0] if len(cmd.keys) == 1 else b"")
        if cmd.value is None:
            raise LocalProtocolError(f"{name} needs a value", protocol=PROTOCOL)
        value = _as_buffer(cmd.value)
        n = len(value)
        _check_range("value length", n, 0, MAX_VLEN)
        flags = _check_range("flags", cmd.flags, 0, U32_MAX)
        exptime = _check_range("exptime", cmd.exptime, I64_MIN, I64_MAX)
        head = b"%s %s %d %d %d" % (name.encode(), key, flags, exptime, n)
        if name == "cas":
            head += b" %d" % _check_range("cas", cmd.cas, 0, U64_MAX)
        head += suffix
        if n > ZERO_COPY_THRESHOLD:
            return [head, value, CRLF]
        return [b"".join((head, value, CRLF))]
    if name in ("incr", "decr"):
        key = _check_key(cmd.keys[0] if len(cmd.keys) == 1 else b"")
        delta = _check_range("delta", cmd.delta, 0, U64_MAX)
        return [b"%s %s %d%s" % (name.encode(), key, delta, suffix)]
    if name == "delete":
        key = _check_key(cmd.keys[0] if len(cmd.keys) == 1 else b"")
        return [b"delete %s%s" % (key, suffix)]
    if name == "touch":
        key = _check_key(cmd.keys[0] if len(cmd.keys) == 1 else b"")
        exptime = _check_range("exptime", cmd.exptime, I64_MIN, I64_MAX)
        return [b"touch %s %d%s" % (key, exptime, suffix)]
    if name == "flush_all":
        delay = _check_range("exptime", cmd.exptime, I64_MIN, I64_MAX)
        return [(b"flush_all %d" % delay if delay else b"flush_all") + suffix]
    if name == "verbosity":
        level = _check_range("delta", cmd.delta, 0, U32_MAX)
        return [b"verbosity %d%s" % (level, suffix)]
    if name in ("version", "quit"):
        return [name.encode() + CRLF]
    raise LocalProtocolError(f"cannot encode command {name!r}", protocol=PROTOCOL)


def encode_items(items: Iterable[ItemLike]) -> Buffers:
    """``VALUE`` blocks for ``items`` followed by ``END`` (small values joined into one)."""
    out: Buffers = []
    parts: list[bytes | bytearray | memoryview] = []
    for key, flags, item_value, cas in items:
        _check_key(key)
        _check_range("flags", flags, 0, U32_MAX)
        value = _as_buffer(item_value)
        n = len(value)
        if cas is None:
            parts.append(b"VALUE %s %d %d\r\n" % (key, flags, n))
        else:
            cas = _check_range("cas", cas, 0, U64_MAX)
            parts.append(b"VALUE %s %d %d %d\r\n" % (key, flags, n, cas))
        if n > ZERO_COPY_THRESHOLD:
            out.append(b"".join(parts))
            out.append(value)
            parts = [CRLF]
        else:
            parts.append(value)
            parts.append(CRLF)
    parts.append(END_LINE)
    out.append(b"".join(parts))
    return out


def encode_reply(reply: MemcacheReply) -> Buffers:
    """Wire buffers for ``reply``. Raises ``LocalProtocolError`` if it cannot be sent."""
    status = reply.status
    if status == END:
        return encode_items(reply.items)
    if status in WORDS:
        return [status.encode() + CRLF]
    if status == NUMBER:
        return [b"%d\r\n" % _check_range("number", reply.number, 0, U64_MAX)]
    if status in (CLIENT_ERROR, SERVER_ERROR, VERSION):
        return [b"%s %s\r\n" % (status.encode(), _text(reply.message))]
    raise LocalProtocolError(f"cannot encode reply status {status!r}", protocol=PROTOCOL)
