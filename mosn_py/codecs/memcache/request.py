"""Parsing one request line (SERVER role): ``parse_command(line) -> (command, vlen)``.

The line arrives without its line end. The result tells the reader what follows it:

    (cmd,  -1)              a whole request (``cmd.reply`` set: answered by the codec)
    (cmd,  QUIT)            ``quit``: nothing after it is read
    (cmd,  vlen >= 0)       a storage request: a data block of vlen octets + CRLF follows
                            (``cmd.reply`` set: answered, the data block is swallowed)
    (None, -1)              nothing to emit: an error suppressed by ``noreply``
    (None, vlen >= 0)       the same, and the data block is swallowed

Fatal input (an HTTP request) raises ``LocalProtocolError``; the codec converts it.

What memcached answers, and therefore what we answer (proto_text.c ``process_command_ascii``;
checked against a real server in the tests):

- a token count a command cannot have -> ``ERROR`` (even with ``noreply``);
- ``noreply`` is the last token; once seen, every later error of that command is suppressed
  (memcached ``set_noreply_maybe`` + ``out_string``);
- a key over 250 octets -> ``CLIENT_ERROR bad command line format``. We also reject keys
  with control characters (protocol.txt §Keys forbids them; memcached does not check);
- bad numbers -> ``CLIENT_ERROR bad command line format``, or ``invalid exptime argument`` /
  ``invalid numeric delta argument`` where memcached says so;
- a value over the limit -> ``SERVER_ERROR object too large for cache``;
- once ``<bytes>`` of a storage command parsed, the data block is swallowed after any error
  (memcached >= 1.6.40; older servers parse it as a command, which lets a value run as a
  command: we do not reproduce that).
"""

from __future__ import annotations

from collections.abc import Callable

from mosn_py.codecs.memcache.wire import (
    BAD_DELETE,
    BAD_DELTA,
    BAD_EXPTIME,
    BAD_FORMAT,
    END_LINE,
    ERROR_LINE,
    I64_MAX,
    KEY_FORBIDDEN,
    KEY_MAX_LENGTH,
    MAX_VLEN,
    PROTOCOL,
    TOO_LARGE,
    TOO_MANY_KEYS,
    U32_MAX,
    U64_MAX,
    MemcacheCommand,
    parse_int,
    parse_uint,
    valid_key,
)
from mosn_py.errors import LocalProtocolError

Parsed = tuple[MemcacheCommand | None, int]
QUIT = -2  # the vlen of "quit": the connection ends here
_Handler = Callable[[str, list[bytes], int, int, int], Parsed]


def _answer(name: str, reply: bytes, noreply: bool = False, vlen: int = -1,
            keys: list[bytes] | None = None) -> Parsed:
    """A request the codec answers itself (or, with ``noreply``, silently drops)."""
    if noreply:
        return None, vlen
    return MemcacheCommand(name, keys if keys is not None else [], reply=reply), vlen


def _retrieval(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    # get|gets <key>*, gat|gats <exptime> <key>* (protocol.txt §Retrieval, §Get And Touch)
    if n < 2:
        return _answer(name, ERROR_LINE)
    if n == 2 and name[1] == "e":  # get/gets <one key>: the hot path
        key = parts[1]
        if len(key) <= KEY_MAX_LENGTH and len(key.translate(None, KEY_FORBIDDEN)) == len(key):
            return MemcacheCommand(name, [key]), -1
        return _answer(name, BAD_FORMAT, keys=[key])
    exptime = 0
    if name[1] == "a":  # gat, gats
        value = parse_int(parts[1])
        if value is None:
            return _answer(name, BAD_EXPTIME)
        exptime = value
        keys = parts[2:]
        if not keys:  # memcached answers a bare "gat <exptime>" with an empty reply
            return MemcacheCommand(name, [], exptime=exptime, reply=END_LINE), -1
    else:
        keys = parts[1:]
    if len(keys) > max_keys:
        return _answer(name, TOO_MANY_KEYS, keys=keys)
    for key in keys:
        if not valid_key(key):
            return _answer(name, BAD_FORMAT, keys=keys)
    return MemcacheCommand(name, keys, exptime=exptime), -1


def _storage(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    # <cmd> <key> <flags> <exptime> <bytes> [noreply]; cas ... <bytes> <cas unique> [noreply]
    is_cas = name == "cas"
    want = 6 if is_cas else 5
    if n != want and n != want + 1:
        return _answer(name, ERROR_LINE)  # no length we can trust: nothing is swallowed
    noreply = parts[-1] == b"noreply"
    key = parts[1]
    keys = [key]
    tok_flags, tok_exptime, tok_vlen = parts[2], parts[3], parts[4]
    flags: int | None
    exptime: int | None
    vlen: int | None
    if tok_flags.isdigit() and tok_exptime.isdigit() and tok_vlen.isdigit():  # the common case
        flags, exptime, vlen = int(tok_flags), int(tok_exptime), int(tok_vlen)
        if flags > U32_MAX:
            flags = None
        if exptime > I64_MAX:
            exptime = None
        if vlen > MAX_VLEN:
            vlen = None
    else:
        flags = parse_uint(tok_flags, U32_MAX)
        exptime = parse_int(tok_exptime)
        vlen = parse_uint(tok_vlen, MAX_VLEN)
    swallow = -1 if vlen is None else vlen
    if (
        flags is None
        or exptime is None
        or vlen is None
        or len(key) > KEY_MAX_LENGTH
        or len(key.translate(None, KEY_FORBIDDEN)) != len(key)
    ):
        return _answer(name, BAD_FORMAT, noreply, swallow, keys)
    cas = None
    if is_cas:
        cas = parse_uint(parts[5], U64_MAX)
        if cas is None:
            return _answer(name, BAD_FORMAT, noreply, swallow, keys)
    if vlen > max_value:
        return _answer(name, TOO_LARGE, noreply, swallow, keys)
    return MemcacheCommand(name, keys, flags, exptime, cas, None, noreply), vlen


def _delete(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    # delete <key> [noreply]; the legacy "delete <key> 0 [noreply]" is accepted too
    if n < 2 or n > 4:
        return _answer(name, ERROR_LINE)
    noreply = False
    if n > 2:
        hold_is_zero = parts[2] == b"0"
        noreply = parts[-1] == b"noreply"
        if not ((n == 3 and (hold_is_zero or noreply)) or (n == 4 and hold_is_zero and noreply)):
            return _answer(name, BAD_DELETE, noreply, keys=[parts[1]])
    key = parts[1]
    if not valid_key(key):
        return _answer(name, BAD_FORMAT, noreply, keys=[key])
    return MemcacheCommand(name, [key], noreply=noreply), -1


def _arithmetic(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    # incr|decr <key> <value> [noreply] (protocol.txt §Increment/Decrement)
    if n != 3 and n != 4:
        return _answer(name, ERROR_LINE)
    noreply = parts[-1] == b"noreply"
    key = parts[1]
    if not valid_key(key):
        return _answer(name, BAD_FORMAT, noreply, keys=[key])
    delta = parse_uint(parts[2], U64_MAX)
    if delta is None:
        return _answer(name, BAD_DELTA, noreply, keys=[key])
    return MemcacheCommand(name, [key], delta=delta, noreply=noreply), -1


def _touch(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    # touch <key> <exptime> [noreply] (protocol.txt §Touch)
    if n != 3 and n != 4:
        return _answer(name, ERROR_LINE)
    noreply = parts[-1] == b"noreply"
    key = parts[1]
    if not valid_key(key):
        return _answer(name, BAD_FORMAT, noreply, keys=[key])
    exptime = parse_int(parts[2])
    if exptime is None:
        return _answer(name, BAD_EXPTIME, noreply, keys=[key])
    return MemcacheCommand(name, [key], exptime=exptime, noreply=noreply), -1


def _flush_all(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    # flush_all [delay] [noreply] (protocol.txt §Other commands)
    if n > 3:
        return _answer(name, ERROR_LINE)
    noreply = parts[-1] == b"noreply"
    delay = 0
    if n != (2 if noreply else 1):
        value = parse_int(parts[1])
        if value is None:
            return _answer(name, BAD_EXPTIME, noreply)
        delay = value
    return MemcacheCommand(name, [], exptime=delay, noreply=noreply), -1


def _verbosity(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    # verbosity <level> [noreply]
    if n != 2 and n != 3:
        return _answer(name, ERROR_LINE)
    noreply = parts[-1] == b"noreply"
    level = parse_uint(parts[1], U32_MAX)
    if level is None:
        return _answer(name, BAD_FORMAT, noreply)
    return MemcacheCommand(name, [], delta=level, noreply=noreply), -1


def _version(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    # version: arguments are ignored, as memcached does
    return MemcacheCommand(name, []), -1


def _quit(name: str, parts: list[bytes], n: int, max_keys: int, max_value: int) -> Parsed:
    return MemcacheCommand(name, []), QUIT


HANDLERS: dict[bytes, tuple[str, _Handler]] = {
    b"get": ("get", _retrieval),
    b"gets": ("gets", _retrieval),
    b"gat": ("gat", _retrieval),
    b"gats": ("gats", _retrieval),
    b"set": ("set", _storage),
    b"add": ("add", _storage),
    b"replace": ("replace", _storage),
    b"append": ("append", _storage),
    b"prepend": ("prepend", _storage),
    b"cas": ("cas", _storage),
    b"delete": ("delete", _delete),
    b"incr": ("incr", _arithmetic),
    b"decr": ("decr", _arithmetic),
    b"touch": ("touch", _touch),
    b"flush_all": ("flush_all", _flush_all),
    b"verbosity": ("verbosity", _verbosity),
    b"version": ("version", _version),
    b"quit": ("quit", _quit),
}

# memcached dispatches on the first letter; an unknown word starting with one of these
# (or a two-letter "m?" meta word) gets ERROR even when it looks like HTTP.
_DISPATCHED_LETTERS = b"gsacidt"


def parse_command(line: bytes, max_keys: int, max_value: int) -> Parsed:
    """Parse one request ``line`` (without its line end). See the module docstring."""
    parts = line.split(b" ")
    if b"" in parts:
        parts = [p for p in parts if p]
        if not parts:
            return _answer("", ERROR_LINE)
    word = parts[0]
    entry = HANDLERS.get(word)
    if entry is not None:
        name, handler = entry
        return handler(name, parts, len(parts), max_keys, max_value)
    # Unknown (including stats, meta commands and other admin commands we do not proxy).
    if (
        len(word) >= 2
        and parts[-1][:5] == b"HTTP/"
        and word[:1] not in _DISPATCHED_LETTERS
        and not (len(word) == 2 and word[:1] == b"m")
    ):
        # memcached drops the connection without a word (proto_text.c)
        raise LocalProtocolError("an HTTP request on a memcached connection", protocol=PROTOCOL)
    return _answer("", ERROR_LINE)
