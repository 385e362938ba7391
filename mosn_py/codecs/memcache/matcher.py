"""Protocol sniffing: does a connection start with a memcached text command?

Conservative: ``MATCH`` only for a command word this codec serves, in lower case (memcached
command names are case-sensitive, protocol.txt §Commands), at the very start, followed by
a space, ``\\r\\n`` or ``\\n``. ``GET / HTTP/1.1`` (upper case), TLS, RESP arrays (``*``),
Bolt and memcached's binary protocol (``0x80``) never match. ``NEED_MORE`` while the prefix
can still become such a word.

Note: a Redis *inline* command such as ``get k\\r\\n`` is also a memcached command; a
listener that sniffs both must try Redis' RESP form first and leave inline text to us.
"""

from __future__ import annotations

from mosn_py.codecs.base import MatchResult
from mosn_py.codecs.memcache.wire import COMMANDS

_WORDS = tuple(sorted(name.encode() for name in COMMANDS))
_LONGEST = max(len(w) for w in _WORDS)
_SEPARATORS = (b" ", b"\r\n", b"\n")


def match(prefix: bytes | bytearray | memoryview) -> MatchResult:
    """Is ``prefix`` (the first octets a client sent) the start of a memcached command?

    Never raises.
    """
    head = bytes(prefix[: _LONGEST + 2])
    if not head:
        return MatchResult.NEED_MORE
    more = False
    for word in _WORDS:
        n = len(word)
        if len(head) <= n:
            if word.startswith(head):
                more = True
            continue
        if not head.startswith(word):
            continue
        rest = head[n:]
        for sep in _SEPARATORS:
            if rest.startswith(sep):
                return MatchResult.MATCH
            if sep.startswith(rest):
                more = True
    return MatchResult.NEED_MORE if more else MatchResult.NO_MATCH
