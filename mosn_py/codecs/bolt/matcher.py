"""Protocol sniffing for a listener that serves several protocols (MOSN ``bolt/matcher.go``).

A listener sees what a *client* sends first, so only request frames match::

    v1:  proto=0x01 | type in {1 REQUEST, 2 ONEWAY} | cmdcode in {0 HEARTBEAT, 1 RPC}   (4 bytes)
    v2:  proto=0x02 | ver1 in {1, 2} | type ... | cmdcode ...                          (5 bytes)

A heartbeat (cmdcode 0) is always type REQUEST (bolt.md §3). We answer ``NO_MATCH`` as soon as
one available byte rules Bolt out (``GET ``, TLS ``0x16``, RESP ``*``, memcached ``0x80`` ...),
and ``NEED_MORE`` while every byte so far is plausible.
"""

from __future__ import annotations

from mosn_py.codecs.base import MatchResult
from mosn_py.codecs.bolt.wire import (
    CMD_HEARTBEAT,
    CMD_RPC_REQUEST,
    PROTO_V1,
    PROTO_V2,
    TYPE_ONEWAY,
    TYPE_REQUEST,
)

_REQUEST_TYPES = (TYPE_REQUEST, TYPE_ONEWAY)
_V2_VERSIONS = (1, 2)  # ver1: 1 = v1 semantics, 2 = CRC-capable (bolt.md §7)


def match(prefix: bytes | bytearray | memoryview) -> MatchResult:
    """Is ``prefix`` (the first bytes a client sent) the start of a Bolt request?

    Needs 4 bytes for v1 and 5 for v2 to say ``MATCH``; returns ``NO_MATCH`` earlier when a
    byte is already impossible. Never raises.
    """
    n = len(prefix)
    if n == 0:
        return MatchResult.NEED_MORE
    proto = prefix[0]
    if proto == PROTO_V1:
        type_at = 1
    elif proto == PROTO_V2:
        if n < 2:
            return MatchResult.NEED_MORE
        if prefix[1] not in _V2_VERSIONS:
            return MatchResult.NO_MATCH
        type_at = 2
    else:
        return MatchResult.NO_MATCH
    if n <= type_at:
        return MatchResult.NEED_MORE
    typ = prefix[type_at]
    if typ not in _REQUEST_TYPES:
        return MatchResult.NO_MATCH
    if n <= type_at + 1:
        return MatchResult.NEED_MORE
    if prefix[type_at + 1] != 0:  # cmdcode high byte: 0 and 1 only
        return MatchResult.NO_MATCH
    if n <= type_at + 2:
        return MatchResult.NEED_MORE
    cmdcode = prefix[type_at + 2]
    if cmdcode == CMD_RPC_REQUEST or (cmdcode == CMD_HEARTBEAT and typ == TYPE_REQUEST):
        return MatchResult.MATCH
    return MatchResult.NO_MATCH
