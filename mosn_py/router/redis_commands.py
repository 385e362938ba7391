"""What the Redis proxy does with each command: the per-command routing table.

Every command the proxy accepts is listed; anything else is refused with ``-ERR unknown or
unsupported command``, so a new Redis command is never sent to a random shard by accident.

Kinds
  ``KEY``     one key (``args[1]``, or at ``first``): routed to the shard owning it.
  ``KEYS``    several keys that must live on one shard (``RENAME``, ``SINTER``, ``EVAL``...):
              routed there when they do (hash tags make sure of it), else refused with
              ``-CROSSSLOT``.
  ``SPLIT``   multi-key commands split per shard and merged in key order: ``MGET`` (array),
              ``MSET`` (``+OK`` when every shard said OK), ``DEL``/``UNLINK``/``EXISTS``/
              ``TOUCH`` (sum of the integers).
  ``LOCAL``   answered by the proxy: ``PING``, ``ECHO``, ``QUIT``, ``SELECT 0``, ``AUTH``,
              ``HELLO``, ``COMMAND`` (count / docs: minimal), ``CLIENT SETNAME``/``GETNAME``/
              ``SETINFO``, ``RESET``.
  ``REFUSED`` understood but not proxied across shards, with the reason in the error:
              transactions, blocking commands, pub/sub, whole-keyspace commands, server
              administration.

Key positions follow Redis's ``COMMAND INFO`` (first key, last key, step), negative last
= counted from the end.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    KEY = "key"
    KEYS = "keys"
    SPLIT = "split"
    LOCAL = "local"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    kind: Kind
    first: int = 1  # index of the first key in args
    last: int = 1  # index of the last key (negative: from the end; 0 = numkeys form)
    step: int = 1
    min_args: int = 2  # including the command name
    write: bool = False  # changes data (mirrored when a mirror cluster is set)
    reason: str = ""  # REFUSED: why

    def keys(self, args: list[bytes]) -> list[bytes]:
        """The keys in ``args`` (the command's own argument list, args[0] the name)."""
        if self.last == 0:  # EVAL script numkeys key... / ZUNIONSTORE dst numkeys key...
            try:
                n = int(args[self.first])
            except (ValueError, IndexError):
                return []
            start = self.first + 1
            keys = list(args[start : start + n])
            if self.step == -1 and len(args) > 1:  # destination key before numkeys
                keys.insert(0, args[1])
            return keys
        last = self.last if self.last > 0 else len(args) + self.last
        return list(args[self.first : last + 1 : self.step])


_K = CommandSpec(Kind.KEY)
_KW = CommandSpec(Kind.KEY, write=True)
_K0 = CommandSpec(Kind.KEY, min_args=2)


def _refused(reason: str) -> CommandSpec:
    return CommandSpec(Kind.REFUSED, min_args=1, reason=reason)


def _local(min_args: int = 1) -> CommandSpec:
    return CommandSpec(Kind.LOCAL, min_args=min_args)


_READ_KEY = """
get getrange strlen getbit bitcount bitpos substr exists type ttl pttl expiretime
pexpiretime dump object hget hmget hgetall hkeys hvals hlen hexists hstrlen hrandfield hscan
lindex llen lrange lpos scard sismember smismember smembers srandmember sscan zcard zcount
zlexcount zrange zrangebyscore zrangebylex zrevrange zrevrangebyscore zrevrangebylex zrank
zrevrank zscore zmscore zrandmember zscan pfcount geodist geohash geopos georadius_ro
georadiusbymember_ro geosearch xlen xrange xrevrange xpending xinfo getex sort_ro
bitfield_ro lcs hstrlen
"""
_WRITE_KEY = """
set setnx setex psetex append incr decr incrby decrby incrbyfloat getset getdel setrange
setbit expire pexpire expireat pexpireat persist hset hsetnx hmset hdel hincrby
hincrbyfloat lpush rpush lpushx rpushx lpop rpop lset linsert lrem ltrim sadd srem spop zadd
zincrby zrem zremrangebyscore zremrangebyrank zremrangebylex zpopmin zpopmax pfadd geoadd
georadius georadiusbymember xadd xdel xtrim xack xclaim xautoclaim xgroup restore bitfield
sort hexpire hpexpire hpersist
"""
# Several keys that must be on one shard (first, last, step).
_SAME_SHARD: dict[str, tuple[int, int, int, bool]] = {
    "rename": (1, 2, 1, True), "renamenx": (1, 2, 1, True), "copy": (1, 2, 1, True),
    "rpoplpush": (1, 2, 1, True), "lmove": (1, 2, 1, True), "smove": (1, 2, 1, True),
    "sinter": (1, -1, 1, False), "sunion": (1, -1, 1, False), "sdiff": (1, -1, 1, False),
    "sinterstore": (1, -1, 1, True), "sunionstore": (1, -1, 1, True),
    "sdiffstore": (1, -1, 1, True), "pfmerge": (1, -1, 1, True),
    "bitop": (2, -1, 1, True), "msetnx": (1, -1, 2, True),
    "zrangestore": (1, 2, 1, True), "geosearchstore": (1, 2, 1, True),
}
# numkeys forms: (index of numkeys, destination key first?)
_NUMKEYS: dict[str, tuple[int, bool, bool]] = {
    "eval": (2, False, True), "evalsha": (2, False, True), "eval_ro": (2, False, False),
    "evalsha_ro": (2, False, False), "fcall": (2, False, True), "fcall_ro": (2, False, False),
    "zunionstore": (2, True, True), "zinterstore": (2, True, True),
    "zdiffstore": (2, True, True), "zunion": (1, False, False), "zinter": (1, False, False),
    "zdiff": (1, False, False), "sintercard": (1, False, False), "zintercard": (1, False, False),
    "lmpop": (1, False, True), "zmpop": (1, False, True),
}

TABLE: dict[str, CommandSpec] = {}
for _name in _READ_KEY.split():
    TABLE[_name] = _K
for _name in _WRITE_KEY.split():
    TABLE[_name] = _KW
for _name, (_f, _l, _s, _w) in _SAME_SHARD.items():
    TABLE[_name] = CommandSpec(Kind.KEYS, _f, _l, _s, min_args=_f + 1, write=_w)
for _name, (_idx, _dst, _w) in _NUMKEYS.items():
    TABLE[_name] = CommandSpec(
        Kind.KEYS, _idx, 0, -1 if _dst else 1, min_args=_idx + 1, write=_w
    )
TABLE.update(
    mget=CommandSpec(Kind.SPLIT, 1, -1, 1),
    mset=CommandSpec(Kind.SPLIT, 1, -1, 2, min_args=3, write=True),
    delete=CommandSpec(Kind.SPLIT, 1, -1, 1, write=True),
    unlink=CommandSpec(Kind.SPLIT, 1, -1, 1, write=True),
    exists=CommandSpec(Kind.SPLIT, 1, -1, 1),
    touch=CommandSpec(Kind.SPLIT, 1, -1, 1),
    ping=_local(),
    echo=_local(2),
    quit=_local(),
    select=_local(2),
    auth=_local(2),
    hello=_local(),
    command=_local(),
    client=_local(2),
    reset=_local(),
)
TABLE["del"] = TABLE.pop("delete")

_REFUSED: list[tuple[str, str]] = [
    (
        "multi exec discard watch unwatch",
        "transactions are not supported through the proxy (keys may live on different"
        " shards); use a Lua script on keys sharing a hash tag",
    ),
    (
        "blpop brpop brpoplpush blmove blmpop bzpopmin bzpopmax bzmpop xread xreadgroup"
        " wait waitaof",
        "blocking commands are not supported through the proxy (they would hold a shared"
        " upstream connection)",
    ),
    (
        "subscribe psubscribe ssubscribe unsubscribe punsubscribe sunsubscribe publish"
        " spublish pubsub monitor",
        "pub/sub is not supported through the proxy",
    ),
    (
        "keys scan randomkey dbsize flushall flushdb move swapdb",
        "whole-keyspace commands are not supported through the proxy (the keyspace is"
        " split over shards); ask each server directly",
    ),
    (
        "config info debug shutdown save bgsave bgrewriteaof lastsave slaveof replicaof"
        " sync psync cluster script function acl latency memory module slowlog migrate"
        " object failover role time lolwut readonly readwrite asking",
        "server administration is not proxied; connect to a server",
    ),
]
for _names, _reason in _REFUSED:
    for _name in _names.split():
        TABLE.setdefault(_name, _refused(_reason))


def lookup(name: str) -> CommandSpec | None:
    """The spec of a lowercased command name; None = unknown."""
    return TABLE.get(name)
