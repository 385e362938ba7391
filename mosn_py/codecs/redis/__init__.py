"""Redis RESP2/RESP3 codec (sans-IO), for a twemproxy-style proxy over sharded redis-servers.

Modules:

- ``wire``: the RESP wire format (diagram), type bytes, bounds
- ``framing``: where each command/reply ends, checked against the limits before hiredis
  sees it (``RequestReader``, ``ReplyReader``, ``parse_reply``)
- ``inline``: inline commands, split as redis-server splits them
- ``values``: ``RedisCommand``, ``RedisError``, ``SimpleString``, ``Map``; ``encode_reply``,
  ``encode_command``
- ``replies``: frames the proxy builds (``reply_frame``, ``error_frame``, ``error_reply``,
  ``status_reply``, ``command_frame``) and the ``ProxyStatus`` -> ``-ERR`` table
- ``codec``: ``RedisCodec``
- ``matcher``: protocol sniffing

The contract
============

``RedisCodec(role, *, limits=CodecLimits(), parse_replies=True)``; ``protocol = "redis"``;
``pool_mode = PoolMode.PIPELINE`` (many commands in flight per connection, replies in
command order).

SERVER role (a Redis client talks to us)
    ``receive_data(data)`` (``b""`` = EOF), then ``next_event()`` gives one request
    ``Frame`` per command: ``stream_type=REQUEST``, ``request_id`` 1, 2, 3 ... per
    connection in arrival order, ``protocol="redis"``, ``raw`` = the command's exact bytes,
    ``extra`` = ``RedisCommand`` (``args: list[bytes]`` with ``args[0]`` the name as sent;
    ``name``: lower-cased ``str``, computed once). Both multibulk (what client libraries
    send) and inline commands (``SET k "a b"\\r\\n``, quotes and escapes as redis-server's
    ``sdssplitargs``) are accepted; a blank inline line, ``*0`` and ``*-1`` are skipped
    without an id, as redis-server skips them. ``ConnectionEvent.CLOSED`` at EOF on a
    command boundary; ``NEED_DATA`` otherwise.

    ``send(reply_frame, request_id=None)`` accepts replies in any order (the shards answer
    when they answer) and returns the bytes of every reply that became sendable, in command
    order: ``[]`` while an earlier one is missing, several buffers once it arrives. A reply
    for an id that is not awaiting one (never decoded, already answered) raises
    ``LocalProtocolError``. The reorder buffer is bounded by ``limits.max_pending_frames``:
    with that many commands awaiting replies, ``next_event()`` returns ``NEED_DATA`` and
    ``paused`` is True although commands are buffered; it decodes again once ``send()``
    has released replies, so **pull again after sending** (nothing is lost or reordered).
    ``pending_replies()`` counts replies still owed (QUIT: close when it is 0).

CLIENT role (we talk to redis-server)
    ``send(command_frame, request_id)`` returns the command's bytes (``raw``, or
    ``extra.args`` encoded as multibulk when ``raw`` is None) and appends ``request_id`` to
    a FIFO. ``next_event()`` gives each reply as ``Frame(RESPONSE)`` with ``request_id`` =
    the FIFO head, ``raw`` = the reply's exact bytes (forward them unchanged), ``status``
    1 for an error reply (``-``/``!``) else 0, and ``extra`` = the parsed value (hiredis;
    table in ``values``), or None with ``parse_replies=False``. Error replies are replies
    (``RedisError`` values), not exceptions.

    Push messages: a RESP3 push (``>``, after ``HELLO 3``: pub/sub messages, client-side
    caching invalidations) is out of band and never consumes a FIFO entry: it comes out as
    ``Frame(ONEWAY, request_id=0)`` with the push in ``raw``/``extra``. A SERVER codec sends
    such a frame at once, between replies. RESP2 has no way to tell a pub/sub message from
    a reply, so the proxy must refuse SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE/MONITOR and
    ``CLIENT REPLY OFF|SKIP`` (their replies do not follow one-per-command); a reply with
    no request pending is a ``RemoteProtocolError``.

RESP3
    After ``HELLO 3`` a server speaks RESP3; the codec needs no mode switch: replies pass
    through as raw bytes and the CLIENT side parses every RESP3 type (map, set, double,
    boolean, null, big number, verbatim, blob error, push, attribute). ``encode_reply``
    takes ``resp3=True`` for values the proxy makes itself (``Map`` is always RESP3).

Replies the proxy makes
    ``reply_frame(request_id, value, *, resp3=False)``, ``encode_reply(value)``;
    ``error_frame(request_id, "CODE message")`` / ``error_reply(request_id, message)``
    (``-ERR message``); ``codec.local_reply(request, status, message)`` maps a
    ``ProxyStatus`` to ``-ERR <what happened>[: message]`` (no route, no healthy upstream,
    timeout, overflow, reset, protocol error ...). ``command_frame(args)`` builds a command
    for upstream (split MGET parts).

Limits and errors
    ``limits.max_frame_size`` bounds one bulk string, one command and one reply;
    ``limits.max_pending_frames`` the replies owed (SERVER) and requests in flight
    (CLIENT). Inline lines are bounded at 64 KiB like redis-server's; reply nesting at
    ``wire.MAX_DEPTH``. Every count and length is checked when its header is read, so
    ``*2147483647`` or ``$1099511627776`` is refused at once, with nothing allocated. Bad
    input raises ``RemoteProtocolError(status_hint=CODEC_ERROR)`` whose message is
    redis-server's (``Protocol error: invalid multibulk length``, ``... invalid bulk
    length``, ``... expected '$', got 'x'``, ``... too big inline request``, ``...
    unbalanced quotes in request``); the codec is then in ERROR. A SERVER then answers
    the bad command after the earlier ones: ``error_reply()`` (a frame to ``send()``) or
    ``error_reply_for(exc)`` (the bytes), i.e. ``-ERR Protocol error: ...``, and the proxy
    closes, as redis-server does. Like redis-server and hiredis the codec does not
    require a bulk string's data to be text, but (stricter than both) it checks the CRLF
    after it, so a framing error is caught where it happens.

Sans-IO: nothing here imports asyncio, uvloop, socket or selectors.
"""

from __future__ import annotations

from mosn_py.codecs.base import CodecState
from mosn_py.codecs.redis.codec import RedisCodec
from mosn_py.codecs.redis.framing import parse_reply
from mosn_py.codecs.redis.inline import split_inline
from mosn_py.codecs.redis.matcher import match
from mosn_py.codecs.redis.replies import (
    STATUS_ERROR,
    STATUS_LABELS,
    STATUS_OK,
    command_frame,
    error_frame,
    error_reply,
    local_reply_text,
    reply_frame,
    status_reply,
)
from mosn_py.codecs.redis.values import (
    Map,
    PushNotification,
    RedisCommand,
    RedisError,
    SimpleString,
    encode_command,
    encode_reply,
)
from mosn_py.codecs.redis.wire import INLINE_MAX_SIZE, MAX_DEPTH, PROTOCOL

__all__ = [
    "INLINE_MAX_SIZE",
    "MAX_DEPTH",
    "PROTOCOL",
    "STATUS_ERROR",
    "STATUS_LABELS",
    "STATUS_OK",
    "CodecState",
    "Map",
    "PushNotification",
    "RedisCodec",
    "RedisCommand",
    "RedisError",
    "SimpleString",
    "command_frame",
    "encode_command",
    "encode_reply",
    "error_frame",
    "error_reply",
    "local_reply_text",
    "match",
    "parse_reply",
    "reply_frame",
    "split_inline",
    "status_reply",
]
