"""memcached clients, Redis servers: every memcached text command as one Redis round trip.

A ``memcache`` listener whose route rule names a ``redis`` cluster hands each command to
``MemcacheToRedis.handle`` (``filters/network/memcache_adapter.py``); the cache proxy has
already answered ``version``, ``verbosity``, ``quit`` and every malformed request. A command
goes to the shard that owns its key (ketama over the cluster's endpoints, as for Redis
clients) as one Redis command: ``MGET`` for ``get``, else a Lua script (``EVAL``), atomic
whatever it reads and writes. A retrieval of keys on several shards sends one command per
shard and merges the hits in the order of the keys asked for.

Data layout (on the shard that owns ``k``)::

    k                a plain Redis string: the value, byte for byte (GET k -> the value)
    "\\x00mc:" + k    the companion, a string "<flags> <cas> <fp>", only while needed:
                       flags  the item's flags (u32)
                       cas    the cas unique handed out by gets/gats; 0: none yet
                       fp     "<length>:<sha1 hex>" of the value it describes (a value over
                              256 bytes: sha1 of its first and last 128 bytes)
    "\\x00mc-cas"     the shard's cas counter

``set k 0 0 5`` + ``hello`` leaves just ``k = "hello"``: a Redis client reads it, and a value
a Redis client writes is an item with flags 0. The companion exists only for flags other
than 0 or once a cas unique was handed out; it has the item's TTL. memcached keys cannot
contain control characters, so a companion never collides with an item.

A companion counts only while its ``fp`` matches the value, so a Redis client overwriting
``k`` (another length, or other first/last 128 bytes) makes the item's flags 0 and its next
cas new without knowing about companions; one that keeps the length and both ends of a
value over 256 bytes must delete the companion too. An orphan companion (``k`` deleted by a
Redis client) is ignored, and replaced at the next write through the proxy.

Commands (``e``, an exptime: 0 never expires; 1..2592000 seconds from now; larger: a unix
time, in the past = expired at once; negative = expired at once; only its low 32 bits count,
as in memcached. Redis ``EX`` / ``EXAT`` / ``DEL``, the companion the same)::

    get <k>+            MGET k c ... per shard; the fp is checked here
    gets/gat/gats       script: GET k and c; a cas unique (INCR of the counter) for an item
                        without one; gat/gats expire k and c as e says
    set/add/replace     SET k v [EX|EXAT] (add/replace: after TYPE k); c rewritten (deleted
                        for flags 0, so no cas survives)
    cas                 as set when c's cas is the token and c's fp the value's, else EXISTS
                        (NOT_FOUND without k)
    append/prepend      APPEND / SET ... KEEPTTL; flags kept, cas dropped; NOT_STORED past
                        the listener's largest value, as memcached
    incr/decr           u64 decimal arithmetic in Lua on the value parsed as memcached's
                        strtoull; incr wraps at 2**64, decr stops at 0; SET ... KEEPTTL of
                        plain decimal digits; flags kept, cas dropped
    delete / touch      DEL k c / EXPIRE, EXPIREAT or PERSIST of k and c (the cas stays)
    flush_all           FLUSHDB on every shard; a delay is refused (SERVER_ERROR)

A key holding another Redis type (a hash, a list ...) is no item: retrievals miss it, ``add``
answers NOT_STORED, commands that need an item answer NOT_STORED / NOT_FOUND and leave it
alone; ``set`` overwrites it, as ``SET`` does.

Cas uniques come from the per-shard counter. When it is missing (first use, FLUSHDB,
eviction) it restarts at the shard's clock in microseconds, above every cas handed out
before, so an old token never matches a new item.

Errors: a Redis error reply -> ``SERVER_ERROR <its text>``; a shard down, a reset, a timeout
-> the cache proxy's ``SERVER_ERROR upstream ...``; a non-numeric value under incr/decr ->
``CLIENT_ERROR cannot increment or decrement non-numeric value``. ``noreply`` commands are
sent and their replies dropped. Needs Redis >= 6.2 (``EXAT``, ``KEEPTTL``).

Scripts go as ``EVAL`` with their text (0.1 to 2.3 KB): redis-server keeps each compiled
script under its SHA1, so ``EVAL`` costs the text on the wire and one SHA1 over it. Measured
(docs/translation.md): the same proxy CPU as ``EVALSHA``, 20-30% more Redis CPU per command
through the proxy; in exchange no NOSCRIPT ever (a restart, a failover, ``SCRIPT
FLUSH``), which ``noreply`` commands could not even report.

The module never imports the filter layer (``tests/unit/test_layering.py``): it drives the
connection it is given through the methods named in ``CacheConnection``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mosn_py.codecs.base import Frame, StreamType
from mosn_py.codecs.memcache import (
    MemcacheItem,
    client_error,
    number_reply,
    server_error,
    status_reply,
    value_reply,
)
from mosn_py.codecs.redis import RedisError, command_frame
from mosn_py.errors import ConfigError, LocalProtocolError

if TYPE_CHECKING:
    from mosn_py.config.model import RouteRule

COMPANION_PREFIX = b"\x00mc:"
CAS_COUNTER = b"\x00mc-cas"  # no ":" after "mc": never the companion of an item
RELATIVE_MAX = 2592000  # memcached REALTIME_MAXDELTA: 30 days; larger exptimes are unix times
NON_NUMERIC = "cannot increment or decrement non-numeric value"


def int32(n: int) -> int:
    """``n`` as memcached keeps it after ``safe_strtol`` into an ``int32_t``: wrapped."""
    return ((n + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def expiry(exptime: int) -> tuple[bytes, bytes]:
    """A memcached exptime as ``(mode, n)`` for the scripts: ``n`` never expires, ``d``
    expired already, ``EX`` seconds from now, ``EXAT`` a unix time (in the past: Redis
    deletes the key at once).

    memcached stores exptimes in 32 bits (``safe_strtol``): larger values wrap, as there.
    """
    e = int32(exptime)
    if e == 0:
        return b"n", b"0"
    if e < 0:
        return b"d", b"0"
    return (b"EX" if e <= RELATIVE_MAX else b"EXAT"), b"%d" % e


# --- Lua -------------------------------------------------------------------------------------
# Redis runs Lua 5.1: numbers are doubles (exact below 2**53), so u64 values stay decimal
# strings. redis.call() raises on an error reply (the script fails with it: SERVER_ERROR);
# redis.pcall('GET') is used where another type must read as a miss.

_FP = """
local function fp(v)
  local n = #v
  if n > 256 then v = string.sub(v, 1, 128) .. string.sub(v, -128) end
  return n .. ':' .. redis.sha1hex(v)
end
"""

_FPK = """
local function fpk(k)
  local n = redis.call('STRLEN', k)
  local v
  if n > 256 then
    v = redis.call('GETRANGE', k, 0, 127) .. redis.call('GETRANGE', k, -128, -1)
  else
    v = redis.call('GET', k)
  end
  return n .. ':' .. redis.sha1hex(v)
end
"""

_EXPIRE = """
local function expire(k, c, em, en)
  if em == 'n' then
    redis.call('PERSIST', k)
    redis.call('PERSIST', c)
  elseif em == 'd' then
    redis.call('DEL', k, c)
  else
    local cmd = em == 'EX' and 'EXPIRE' or 'EXPIREAT'
    redis.call(cmd, k, en)
    redis.call(cmd, c, en)
  end
end
"""

_NEWCAS = """
local function newcas(ck)
  local n = redis.call('INCR', ck)
  if n == 1 then
    local t = redis.call('TIME')
    n = tonumber(t[1]) * 1000000 + tonumber(t[2])
    redis.call('SET', ck, n)
  end
  return n
end
"""

# KEYS: k1, c1, k2, c2, ..., counter. ARGV: want_cas ("1"/"0"), expiry mode ("" = no touch),
# expiry n. Returns value, flags, cas (nil: none) for each key; nil, nil, nil for a miss.
GET_LUA = (
    _FP
    + _EXPIRE
    + _NEWCAS
    + """
local want_cas, em, en = ARGV[1] == '1', ARGV[2], ARGV[3]
local ck = KEYS[#KEYS]
local out, n = {}, 0
for i = 1, #KEYS - 1, 2 do
  local k, c = KEYS[i], KEYS[i + 1]
  local v = redis.pcall('GET', k)
  if type(v) == 'string' then
    local flags, cas, vfp = '0', '0', nil
    local mf, mc, mp = string.match(redis.call('GET', c) or '', '^(%d+) (%d+) (%S+)$')
    if mp then
      vfp = fp(v)
      if mp == vfp then flags, cas = mf, mc end
    end
    if want_cas and cas == '0' then
      cas = string.format('%d', newcas(ck))
      local meta = flags .. ' ' .. cas .. ' ' .. (vfp or fp(v))
      if flags ~= '0' then
        redis.call('SET', c, meta, 'KEEPTTL')
      else
        redis.call('SET', c, meta)
        local ttl = redis.call('PTTL', k)
        if ttl > 0 then redis.call('PEXPIRE', c, ttl) end
      end
    end
    if em ~= '' then expire(k, c, em, en) end
    out[n + 1], out[n + 2], out[n + 3] = v, flags, cas ~= '0' and cas
  else
    out[n + 1], out[n + 2], out[n + 3] = false, false, false
  end
  n = n + 3
end
return out
"""
)

# KEYS: k, c. ARGV: set|add|replace|cas, value, flags, expiry mode, expiry n, cas token.
STORE_LUA = (
    _FP
    + _FPK
    + """
local k, c = KEYS[1], KEYS[2]
local cmd, v, flags, em, en = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if cmd ~= 'set' then
  local t = redis.call('TYPE', k)['ok']
  if cmd == 'add' then
    if t ~= 'none' then return 'NOT_STORED' end
  elseif t ~= 'string' then
    if cmd == 'cas' then return 'NOT_FOUND' end
    return 'NOT_STORED'
  elseif cmd == 'cas' then
    local mc, mp = string.match(redis.call('GET', c) or '', '^%d+ (%d+) (%S+)$')
    if mc == nil or mc == '0' or mc ~= ARGV[6] or mp ~= fpk(k) then return 'EXISTS' end
  end
end
if em == 'd' then
  redis.call('DEL', k, c)
  return 'STORED'
end
if em == 'n' then redis.call('SET', k, v) else redis.call('SET', k, v, em, en) end
if flags == '0' then
  redis.call('DEL', c)
elseif em == 'n' then
  redis.call('SET', c, flags .. ' 0 ' .. fp(v))
else
  redis.call('SET', c, flags .. ' 0 ' .. fp(v), em, en)
end
return 'STORED'
"""
)

# KEYS: k, c. ARGV: append|prepend, data, the largest value allowed.
APPEND_LUA = (
    _FPK
    + """
local k, c, cmd, data = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('TYPE', k)['ok'] ~= 'string' then return 'NOT_STORED' end
if redis.call('STRLEN', k) + #data > tonumber(ARGV[3]) then return 'NOT_STORED' end
local mf, mp = string.match(redis.call('GET', c) or '', '^(%d+) %d+ (%S+)$')
local keep = mf and mf ~= '0' and mp == fpk(k)
if cmd == 'append' then
  redis.call('APPEND', k, data)
else
  redis.call('SET', k, data .. redis.call('GET', k), 'KEEPTTL')
end
if keep then
  redis.call('SET', c, mf .. ' 0 ' .. fpk(k), 'KEEPTTL')
else
  redis.call('DEL', c)
end
return 'STORED'
"""
)

# KEYS: k, c. ARGV: incr|decr, delta (decimal u64). Returns the new value as decimal digits,
# NOT_FOUND or NON_NUMERIC.
INCR_LUA = (
    _FP
    + """
local U64MAX = '18446744073709551615'
local MOD = '18446744073709551616'
local I64MAX = '9223372036854775807'
local function strip(s)
  s = string.gsub(s, '^0+', '')
  if s == '' then return '0' end
  return s
end
local function cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function add(a, b)
  local r, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local d = carry
    if i > 0 then d = d + string.byte(a, i) - 48 end
    if j > 0 then d = d + string.byte(b, j) - 48 end
    if d >= 10 then d, carry = d - 10, 1 else carry = 0 end
    r[#r + 1] = d
    i, j = i - 1, j - 1
  end
  return strip(string.reverse(table.concat(r)))
end
local function sub(a, b)
  local r, borrow, i, j = {}, 0, #a, #b
  while i > 0 do
    local d = string.byte(a, i) - 48 - borrow
    if j > 0 then d = d - (string.byte(b, j) - 48) end
    if d < 0 then d, borrow = d + 10, 1 else borrow = 0 end
    r[#r + 1] = d
    i, j = i - 1, j - 1
  end
  return strip(string.reverse(table.concat(r)))
end
local function parse(v)
  local sign, digits, rest = string.match(v, '^%s*([+-]?)(%d+)(.*)$')
  if not digits or (rest ~= '' and not string.find(rest, '^%s')) then return nil end
  digits = strip(digits)
  if cmp(digits, U64MAX) > 0 then return nil end
  if sign == '-' and digits ~= '0' then
    digits = sub(MOD, digits)
    if cmp(digits, I64MAX) > 0 then return nil end
  end
  return digits
end
local k, c = KEYS[1], KEYS[2]
if redis.call('TYPE', k)['ok'] ~= 'string' then return 'NOT_FOUND' end
local v = redis.call('GET', k)
local n = parse(v)
if not n then return 'NON_NUMERIC' end
local r
if ARGV[1] == 'incr' then
  r = add(n, ARGV[2])
  if cmp(r, U64MAX) > 0 then r = sub(r, MOD) end
elseif cmp(n, ARGV[2]) <= 0 then
  r = '0'
else
  r = sub(n, ARGV[2])
end
local mf, mp = string.match(redis.call('GET', c) or '', '^(%d+) %d+ (%S+)$')
local keep = mf and mf ~= '0' and mp == fp(v)
redis.call('SET', k, r, 'KEEPTTL')
if keep then
  redis.call('SET', c, mf .. ' 0 ' .. fp(r), 'KEEPTTL')
else
  redis.call('DEL', c)
end
return r
"""
)

# KEYS: k, c.
DELETE_LUA = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return 'NOT_FOUND' end
redis.call('DEL', KEYS[1], KEYS[2])
return 'DELETED'
"""

# KEYS: k, c. ARGV: expiry mode, expiry n.
TOUCH_LUA = (
    _EXPIRE
    + """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return 'NOT_FOUND' end
expire(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 'TOUCHED'
"""
)

SCRIPTS: dict[str, bytes] = {
    "get": GET_LUA.encode(),
    "store": STORE_LUA.encode(),
    "append": APPEND_LUA.encode(),
    "incr": INCR_LUA.encode(),
    "delete": DELETE_LUA.encode(),
    "touch": TOUCH_LUA.encode(),
}


def script_frame(script: str, keys: Sequence[bytes], args: Sequence[bytes]) -> Frame:
    """``EVAL <script> <n> <keys> <args>`` as a request frame for the Redis codec."""
    return command_frame((b"EVAL", SCRIPTS[script], len(keys), *keys, *args))


# --- requests: memcached command -> Redis command (pure) -------------------------------------


def get_request(keys: Sequence[bytes], want_cas: bool, exptime: int | None) -> Frame:
    """One shard's part of a retrieval: ``MGET k1 c1 k2 c2 ...`` for get (no write, no Lua),
    the get script for gets (which may hand out cas uniques) and gat/gats (``exptime``)."""
    script_keys: list[bytes] = []
    for k in keys:
        script_keys += (k, COMPANION_PREFIX + k)
    if not want_cas and exptime is None:
        return command_frame((b"MGET", *script_keys))
    script_keys.append(CAS_COUNTER)
    mode, n = (b"", b"") if exptime is None else expiry(exptime)
    return script_frame("get", script_keys, (b"1" if want_cas else b"0", mode, n))


def write_request(cmd: Any, max_value: int) -> Frame:
    """The script for a storage command, delete, incr/decr or touch (``cmd`` is the
    ``MemcacheCommand``)."""
    name: str = cmd.name
    if len(cmd.keys) != 1:
        raise LocalProtocolError(
            f"memcached {name!r} with {len(cmd.keys)} keys", protocol="memcache"
        )
    k: bytes = cmd.keys[0]
    keys = (k, COMPANION_PREFIX + k)
    if name in ("set", "add", "replace", "cas"):
        mode, n = expiry(cmd.exptime)
        token = b"%d" % cmd.cas if cmd.cas is not None else b""
        return script_frame(
            "store", keys, (name.encode(), bytes(cmd.value), b"%d" % cmd.flags, mode, n, token)
        )
    if name in ("append", "prepend"):
        return script_frame("append", keys, (name.encode(), bytes(cmd.value), b"%d" % max_value))
    if name in ("incr", "decr"):
        return script_frame("incr", keys, (name.encode(), b"%d" % cmd.delta))
    if name == "delete":
        return script_frame("delete", keys, ())
    if name == "touch":
        return script_frame("touch", keys, expiry(cmd.exptime))
    raise LocalProtocolError(
        f"memcached command {name!r} has no Redis translation", protocol="memcache"
    )


# --- replies: Redis reply -> memcached reply (pure) ------------------------------------------

_WORDS = {
    b"STORED": "STORED",
    b"NOT_STORED": "NOT_STORED",
    b"EXISTS": "EXISTS",
    b"NOT_FOUND": "NOT_FOUND",
    b"DELETED": "DELETED",
    b"TOUCHED": "TOUCHED",
}


def error_reply(request_id: int, reply: Frame) -> Frame | None:
    """``SERVER_ERROR <text>`` for a Redis error reply, else None."""
    value = reply.extra
    if reply.status or isinstance(value, RedisError):
        text = value.message if isinstance(value, RedisError) else "error reply from Redis"
        return server_error(request_id, text)
    return None


def write_reply(request_id: int, reply: Frame) -> Frame:
    """The memcached reply for a write script's reply."""
    bad = error_reply(request_id, reply)
    if bad is not None:
        return bad
    value = reply.extra
    word = _WORDS.get(value) if isinstance(value, bytes) else None
    if word is not None:
        return status_reply(request_id, word)
    if value == b"NON_NUMERIC":
        return client_error(request_id, NON_NUMERIC)
    if isinstance(value, bytes) and value.isdigit():
        return number_reply(request_id, int(value))
    return server_error(request_id, f"unexpected reply from Redis: {value!r:.60}")


def fingerprint(value: bytes) -> bytes:
    """The ``fp`` of a companion for ``value``: what the scripts' ``fp()`` computes."""
    n = len(value)
    sample = value if n <= 256 else value[:128] + value[-128:]
    return b"%d:%s" % (n, hashlib.sha1(sample).hexdigest().encode())


def _flags(text: bytes) -> int:
    """Flags from a companion; 0 unless a decimal u32 (a companion edited by hand)."""
    return int(text) if text.isdigit() and len(text) <= 10 and int(text) <= 0xFFFFFFFF else 0


def get_items(
    keys: Sequence[bytes], reply: Frame, want_cas: bool, scripted: bool
) -> list[MemcacheItem | None]:
    """The item (or None: a miss) of each of ``keys`` in one shard's reply to
    ``get_request``: MGET's values and companions, or the script's value, flags and cas
    triples (``scripted``). Raises ``ValueError`` for a reply of another shape."""
    value = reply.extra
    out: list[MemcacheItem | None] = []
    if scripted:
        if not isinstance(value, list) or len(value) != 3 * len(keys):
            raise ValueError(f"unexpected reply from Redis: {value!r:.60}")
        for i, k in enumerate(keys):
            v, flags, cas = value[3 * i : 3 * i + 3]
            out.append(
                None
                if v is None
                else MemcacheItem(k, _flags(flags), v, int(cas) if want_cas else None)
            )
        return out
    if not isinstance(value, list) or len(value) != 2 * len(keys):
        raise ValueError(f"unexpected reply from Redis: {value!r:.60}")
    for i, k in enumerate(keys):
        v, meta = value[2 * i], value[2 * i + 1]
        if v is None:
            out.append(None)
            continue
        flags = 0
        if meta is not None:  # "<flags> <cas> <fp>": counts while fp matches the value
            parts = meta.split(b" ")
            if len(parts) == 3 and parts[2] == fingerprint(v):
                flags = _flags(parts[0])
        out.append(MemcacheItem(k, flags, v, None))
    return out


# --- the driver ------------------------------------------------------------------------------


class CacheRequestLike(Protocol):
    def send(
        self,
        parts: Sequence[tuple[Any, Any, Frame]],
        timeout: float | None,
        merge: Callable[[list[Frame]], Frame] | None,
    ) -> None: ...


class CacheConnection(Protocol):
    """What this module uses of ``filters.network.cache_proxy.CacheProxyConnection``."""

    codec: Any

    def clusters(self) -> Any: ...

    def shards(self, cluster: Any) -> Any: ...

    def new_request(self, request: Frame) -> CacheRequestLike: ...

    def respond(self, reply: Frame) -> None: ...


class MemcacheToRedis:
    """The memcached commands of one client connection, sent to a Redis cluster.

    Registered as the ``memcache->redis`` translator so that the config accepts a memcache
    listener routing to a redis cluster; the cache proxy builds one per connection (it
    needs the connection, not a frame-to-frame ``request``/``response`` pair).
    """

    __slots__ = ("conn",)

    downstream: ClassVar[str] = "memcache"
    upstream: ClassVar[str] = "redis"

    def __init__(self, conn: CacheConnection) -> None:
        self.conn = conn

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> type[MemcacheToRedis]:
        """The translator takes no options: raises ``ConfigError`` naming any given."""
        if options:
            raise ConfigError(
                [
                    f"unknown option {name!r}: the memcache->redis translator takes none"
                    for name in options
                ]
            )
        return cls

    def handle(self, frame: Frame, rule: RouteRule, cluster: Any) -> None:
        """Send ``frame`` (a memcached request the codec accepted, routed to ``cluster``)
        and answer it when Redis has; nothing is answered for a ``noreply`` command."""
        cmd = frame.extra
        name: str = cmd.name
        if name in ("get", "gets", "gat", "gats"):
            self.retrieve(frame, cmd, rule, cluster)
            return
        if name == "flush_all":
            self.flush_all(frame, cmd.exptime, rule, cluster)
            return
        try:
            redis_frame = write_request(cmd, self.conn.codec.max_value_size)
        except LocalProtocolError as e:
            if frame.stream_type is not StreamType.ONEWAY:
                self.conn.respond(server_error(frame.request_id, str(e)))
            return
        key: bytes = cmd.keys[0]
        if rule.mirror:
            mirror = self.conn.clusters().get(rule.mirror)
            if mirror is not None:
                host = self.conn.shards(mirror).host(key)
                mirror.pool(host).acquire().send_request(redis_frame, None)
        host = self.conn.shards(cluster).host(key)
        if frame.stream_type is StreamType.ONEWAY:
            cluster.pool(host).acquire().send_request(redis_frame, None)
            return
        rid = frame.request_id
        self.conn.new_request(frame).send(
            [(cluster, host, redis_frame)],
            rule.timeout,
            lambda replies: write_reply(rid, replies[0]),
        )

    def retrieve(self, frame: Frame, cmd: Any, rule: RouteRule, cluster: Any) -> None:
        """get/gets/gat/gats: one MGET or script per shard, hits merged in the order asked."""
        name: str = cmd.name
        keys: list[bytes] = cmd.keys
        want_cas = name in ("gets", "gats")
        exptime = cmd.exptime if name in ("gat", "gats") else None
        scripted = want_cas or exptime is not None
        if exptime is not None and rule.mirror:  # gat/gats change expiry: a write
            mirror = self.conn.clusters().get(rule.mirror)
            if mirror is not None:
                mshards = self.conn.shards(mirror)
                for k in keys:
                    mirror.pool(mshards.host(k)).acquire().send_request(
                        get_request([k], False, exptime), None
                    )
        shards = self.conn.shards(cluster)
        order: list[tuple[Any, list[int]]]  # (shard, positions of its keys)
        if len(keys) == 1:
            order = [(shards.host(keys[0]), [0])]
        else:
            groups: dict[int, tuple[Any, list[int]]] = {}
            for i, k in enumerate(keys):
                h = shards.host(k)
                groups.setdefault(id(h), (h, []))[1].append(i)
            order = list(groups.values())
        parts = [
            (cluster, h, get_request([keys[i] for i in pos], want_cas, exptime)) for h, pos in order
        ]
        rid = frame.request_id

        def merge(replies: list[Frame]) -> Frame:
            found: list[MemcacheItem | None] = [None] * len(keys)
            for (_, pos), reply in zip(order, replies, strict=True):
                bad = error_reply(rid, reply)
                if bad is not None:
                    return bad
                try:
                    items = get_items([keys[i] for i in pos], reply, want_cas, scripted)
                except (ValueError, TypeError) as e:
                    return server_error(rid, str(e))
                for i, item in zip(pos, items, strict=True):
                    found[i] = item
            return value_reply(rid, [item for item in found if item is not None])

        self.conn.new_request(frame).send(parts, rule.timeout, merge)

    def flush_all(self, frame: Frame, delay: int, rule: RouteRule, cluster: Any) -> None:
        """FLUSHDB on every shard; ``OK`` when every one said OK."""
        oneway = frame.stream_type is StreamType.ONEWAY
        rid = frame.request_id
        if int32(delay) > 0:
            # memcached invalidates, at that time, every item stored before it: Redis has no
            # delayed flush, and a timer in the proxy would not survive a restart.
            if not oneway:
                self.conn.respond(
                    server_error(
                        rid, "flush_all with a delay is not supported by the Redis translation"
                    )
                )
            return
        hosts = list(cluster.hosts)
        if oneway:
            for h in hosts:
                cluster.pool(h).acquire().send_request(command_frame((b"FLUSHDB",)), None)
            return

        def merge(replies: list[Frame]) -> Frame:
            for reply in replies:
                bad = error_reply(rid, reply)
                if bad is not None:
                    return bad
            return status_reply(rid, "OK")

        self.conn.new_request(frame).send(
            [(cluster, h, command_frame((b"FLUSHDB",))) for h in hosts], rule.timeout, merge
        )
