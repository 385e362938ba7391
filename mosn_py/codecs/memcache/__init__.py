"""memcached text protocol codec (protocol.txt), sans-IO, for a twemproxy-style proxy in front
of sharded memcached servers and for the memcached -> Redis translator.

- ``wire``: wire facts, ``MemcacheCommand`` / ``MemcacheReply`` / ``MemcacheItem``, encoders
- ``request``: one request line -> a command, with memcached's own error replies
- ``server``: ``RequestReader`` (bytes -> request frames); ``order``: the reorder buffer
- ``client``: ``ReplyReader`` (bytes -> response frames, framed by a FIFO of commands sent)
- ``replies``: reply builders, ``make_request`` / ``make_get``
- ``codec``: ``MemcacheCodec``; ``matcher``: protocol sniffing

Contract
--------
``MemcacheCodec(role, *, limits=CodecLimits(), max_value_size=None, max_line=2048,
max_keys=4096)``; ``protocol = "memcache"``, ``pool_mode = PoolMode.PIPELINE``;
``MemcacheCodec.match(prefix)`` sniffs a lower-case command word followed by a space or a
line end.

Commands: ``set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply]`` and
``cas ... <bytes> <cas unique> [noreply]`` with their data block; ``get/gets <key>+``,
``gat/gats <exptime> <key>+``; ``delete <key> [0] [noreply]``; ``incr/decr <key> <value>
[noreply]``; ``touch <key> <exptime> [noreply]``; ``flush_all [delay] [noreply]``;
``verbosity <level> [noreply]``; ``version``; ``quit``. Anything else (``stats``, the meta
commands ``mg/ms/md/ma/mn/me``, admin commands) is answered ``ERROR``, as a memcached
without them would: meta commands have quiet modes whose replies cannot be matched by
position, which a proxy would have to handle specially.

SERVER role (downstream)
~~~~~~~~~~~~~~~~~~~~~~~~
``next_event()`` returns one request ``Frame`` per command: ``protocol="memcache"``,
``request_id`` 1, 2, 3 ... per connection, ``stream_type`` ``REQUEST`` or ``ONEWAY`` (a
``noreply`` command: no response slot), ``raw`` = the exact command line and data block,
``extra`` = ``MemcacheCommand(name, keys, flags, exptime, cas, delta, noreply, value,
reply)``, ``body`` = the value of a storage command (a view into ``raw``). ``quit`` gives
``ConnectionEvent.CLOSED``: stop reading, send the responses still owed, then close.

``send(response, request_id=None)`` returns the buffers to write. Responses may be sent in
any order (shards answer when they answer); a bounded reorder buffer releases every
response that became sendable, in request order (none, one or several per call). With
``limits.max_pending_frames`` responses owed the codec stops decoding (``paused``) until
``send()`` releases some: call ``next_event()`` again after sending.

Responses are frames with ``extra = MemcacheReply(status, items, number, message)`` and
``raw`` = their bytes; a reply passed through from a server is sent as its ``raw`` bytes.
Builders: ``value_reply(rid, [(key, flags, value, cas|None), ...])``,
``status_reply(rid, "STORED"|"NOT_STORED"|"EXISTS"|"NOT_FOUND"|"DELETED"|"TOUCHED"|"OK")``,
``number_reply(rid, n)``, ``version_reply(rid, text)``, ``client_error(rid, msg)``,
``server_error(rid, msg)``, ``error(rid)`` (``ERROR``), and
``local_reply(request, status, message)`` -> ``SERVER_ERROR <message>``.

Errors: per request or fatal
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
*Per request* (the connection goes on, exactly as memcached answers; checked against a
real memcached in the tests): an unknown command or a wrong token count (``ERROR``), a key
over 250 octets or with control characters, a bad number (``CLIENT_ERROR ...``), a value
over ``max_value_size`` (``SERVER_ERROR object too large for cache``, its data block
swallowed, never parsed as commands), a data block not ended by CRLF (``CLIENT_ERROR bad
data chunk``), more than ``max_keys`` keys (``SERVER_ERROR too many keys``). These come
out of ``next_event()`` as ordinary request frames whose ``extra.reply`` holds the reply
the client must get: the proxy must not forward them, and sends ``codec.reply_for(frame)``
(a response frame; the reorder buffer keeps it in place). Under ``noreply`` memcached
suppresses these errors, and so does the codec: no frame at all.

*Fatal* (``next_event()`` raises ``RemoteProtocolError``, status hint ``CODEC_ERROR``; the
proxy answers what is in flight and closes): a line longer than ``max_line`` without being a
retrieval command (those may be ``limits.max_header_size`` long), an HTTP request line,
input cut by EOF. After a line too long, ``error_reply()`` (a frame) or
``error_reply_for(exc)`` (bytes) gives a last ``CLIENT_ERROR line too long``.

CLIENT role (upstream)
~~~~~~~~~~~~~~~~~~~~~~
``send(request, request_id)`` returns the request's ``raw`` bytes (or its
``MemcacheCommand`` encoded, e.g. ``make_get(rid, "get", keys)`` for one shard's part of a
split multi-get) and records ``(request_id, command)`` in a FIFO unless ``noreply``.
``next_event()`` frames replies by the FIFO head's command and returns response frames with
that ``request_id``, ``raw`` = the exact reply bytes and ``extra = MemcacheReply``: for
retrievals ``status="END"`` and ``items`` (``MemcacheItem(key, flags, value, cas)``, values
viewing ``raw``), else the status word (``STORED``, ``NUMBER`` with ``number`` ...).
``ERROR`` / ``CLIENT_ERROR`` / ``SERVER_ERROR`` answer any command. A reply that fits no
outstanding request is fatal.

Sans-IO: nothing here imports asyncio, uvloop, socket or selectors.
"""

from __future__ import annotations

from mosn_py.codecs.base import CodecState
from mosn_py.codecs.memcache.codec import MemcacheCodec
from mosn_py.codecs.memcache.matcher import match
from mosn_py.codecs.memcache.order import ResponseOrder
from mosn_py.codecs.memcache.replies import (
    DEFAULT_MESSAGES,
    client_error,
    error,
    local_reply_for_id,
    make_get,
    make_request,
    number_reply,
    reply_frame,
    server_error,
    status_reply,
    value_reply,
    version_reply,
)
from mosn_py.codecs.memcache.request import parse_command
from mosn_py.codecs.memcache.wire import (
    COMMANDS,
    DEFAULT_MAX_KEYS,
    DEFAULT_MAX_VALUE,
    KEY_MAX_LENGTH,
    MAX_LINE,
    RETRIEVAL,
    STORAGE,
    ZERO_COPY_THRESHOLD,
    MemcacheCommand,
    MemcacheItem,
    MemcacheReply,
    encode_command,
    encode_reply,
    valid_key,
)

__all__ = [
    "COMMANDS",
    "DEFAULT_MAX_KEYS",
    "DEFAULT_MAX_VALUE",
    "DEFAULT_MESSAGES",
    "KEY_MAX_LENGTH",
    "MAX_LINE",
    "RETRIEVAL",
    "STORAGE",
    "ZERO_COPY_THRESHOLD",
    "CodecState",
    "MemcacheCodec",
    "MemcacheCommand",
    "MemcacheItem",
    "MemcacheReply",
    "ResponseOrder",
    "client_error",
    "encode_command",
    "encode_reply",
    "error",
    "local_reply_for_id",
    "make_get",
    "make_request",
    "match",
    "number_reply",
    "parse_command",
    "reply_frame",
    "server_error",
    "status_reply",
    "valid_key",
    "value_reply",
    "version_reply",
]
