"""Protocol sniffing: does a connection start with a Redis command?

A listener sees what the *client* sends first, so only requests match, and conservatively:

- multibulk (what every client library sends): ``*`` then a count ``[1-9][0-9]{0,9}``, CRLF,
  and the ``$`` of the first argument -- ``MATCH`` after ``*<n>\\r\\n$``;
- inline (telnet, ``nc``): a first word that is a Redis command *and* neither an HTTP
  method nor a memcached text command (``get``/``set``/``incr``... are both Redis and
  memcached, so they never match here: a memcached matcher may claim them), followed by a
  blank or the line end -- e.g. ``PING\\r\\n``, ``info server\\r\\n``, ``AUTH pw\\r\\n``.

``NEED_MORE`` while the bytes so far still fit one of these forms; ``NO_MATCH`` as soon as
one byte rules them out (TLS ``0x16``, Bolt ``0x01``, ``GET / HTTP/1.1``, ``get k``).
"""

from __future__ import annotations

from mosn_py.codecs.base import MatchResult

# Redis commands a client plausibly sends first over telnet, minus anything memcached's
# text protocol or HTTP also uses as a first word.
INLINE_FIRST_WORDS = frozenset((
    b"ping", b"auth", b"hello", b"select", b"info", b"echo", b"client", b"command", b"exists",
    b"del", b"unlink", b"mget", b"mset", b"msetnx", b"keys", b"scan", b"type", b"ttl", b"pttl",
    b"expire", b"pexpire", b"persist", b"rename", b"dbsize", b"flushdb", b"flushall", b"hget",
    b"hset", b"hdel", b"hgetall", b"hmget", b"hmset", b"hincrby", b"hkeys", b"hvals", b"hlen",
    b"hexists", b"lpush", b"rpush", b"lpop", b"rpop", b"lrange", b"llen", b"lindex", b"lset",
    b"sadd", b"srem", b"smembers", b"sismember", b"scard", b"zadd", b"zrem", b"zrange",
    b"zrangebyscore", b"zscore", b"zcard", b"incrby", b"decrby", b"incrbyfloat", b"setex",
    b"psetex", b"setnx", b"getset", b"getdel", b"getex", b"strlen", b"subscribe", b"psubscribe",
    b"publish", b"monitor", b"multi", b"exec", b"discard", b"eval", b"evalsha", b"config",
    b"slowlog", b"memory", b"object", b"dump", b"restore", b"xadd", b"xrange", b"xlen",
))
_MAX_WORD = max(len(w) for w in INLINE_FIRST_WORDS)
_PREFIXES = frozenset(w[:i] for w in INLINE_FIRST_WORDS for i in range(1, len(w) + 1))
_WORD_END = frozenset(b" \t\r\n")
_DIGITS = frozenset(b"0123456789")
_MAX_COUNT_DIGITS = 10


def match(prefix: bytes | bytearray | memoryview) -> MatchResult:
    """Is ``prefix`` the start of a Redis command? Never raises."""
    data = bytes(prefix[: _MAX_WORD + 1 + _MAX_COUNT_DIGITS + 3])
    if not data:
        return MatchResult.NEED_MORE
    if data[0] == 0x2A:  # '*'
        return _match_multibulk(data)
    return _match_inline(data)


def _match_multibulk(data: bytes) -> MatchResult:
    i = 1
    n = len(data)
    while i < n and data[i] in _DIGITS:
        i += 1
    digits = data[1:i]
    # A leading zero (a count of 0 included) or an absurd count is no command to sniff.
    if digits[:1] == b"0" or len(digits) > _MAX_COUNT_DIGITS:
        return MatchResult.NO_MATCH
    if i == n:
        return MatchResult.NEED_MORE
    if not digits:
        return MatchResult.NO_MATCH
    rest = data[i : i + 3]
    if not b"\r\n$".startswith(rest):
        return MatchResult.NO_MATCH
    return MatchResult.MATCH if len(rest) == 3 else MatchResult.NEED_MORE


def _match_inline(data: bytes) -> MatchResult:
    n = len(data)
    i = 0
    while i < n and data[i] not in _WORD_END:
        i += 1
    word = data[:i].lower()
    if i == n:  # no end of word yet
        return MatchResult.NEED_MORE if word in _PREFIXES else MatchResult.NO_MATCH
    return MatchResult.MATCH if word in INLINE_FIRST_WORDS else MatchResult.NO_MATCH
