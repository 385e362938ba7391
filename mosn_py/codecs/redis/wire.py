"""RESP on the wire: type bytes, bounds and the canonical-number check.

RESP2 and RESP3 (https://redis.io/docs/latest/develop/reference/protocol-spec/). Every value
starts with one type byte; lines end with CRLF; a length-prefixed payload is followed by
CRLF::

    simple string   +<text>CRLF                        +OK\\r\\n
    simple error    -<CODE> <text>CRLF                 -ERR unknown command 'x'\\r\\n
    integer         :[-]<digits>CRLF                   :1000\\r\\n
    bulk string     $<len>CRLF<len octets>CRLF         $5\\r\\nhello\\r\\n
    null bulk       $-1CRLF                 (RESP2)
    array           *<n>CRLF<n values>                 *2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n
    null array      *-1CRLF                 (RESP2)
    --- RESP3 only (after HELLO 3) ---------------------------------------------------------
    null            _CRLF
    boolean         #tCRLF | #fCRLF
    double          ,<float>CRLF                       ,3.14\\r\\n   ,inf\\r\\n   ,nan\\r\\n
    big number      (<digits>CRLF                      (3492890328409238509324850943850943\\r\\n
    blob error      !<len>CRLF<len octets>CRLF         !21\\r\\nSYNTAX invalid syntax\\r\\n
    verbatim        =<len>CRLF<fmt:3>:<text>CRLF       =15\\r\\ntxt:Some string\\r\\n
    map             %<n>CRLF<2n values: key, value ...>
    set             ~<n>CRLF<n values>
    attribute       |<n>CRLF<2n values><the value it annotates>
    push            ><n>CRLF<n values>                 out of band (pub/sub, tracking)

Requests (client to server) are an array of bulk strings ("multibulk"), or an *inline
command*: one line of words separated by spaces, as redis-server accepts from telnet::

    *3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n        SET k v\\r\\n  (inline)

Lengths and counts are written in canonical decimal: no sign but ``-`` (and only in ``-1``
for the RESP2 nulls), no leading zero, no blank; redis-server's ``string2ll`` and hiredis
reject anything else, and so do we (``canonical_length``).
"""

from __future__ import annotations

PROTOCOL = "redis"

CRLF = b"\r\n"

# Type bytes (ints: ``buf[i]`` of a bytes-like is an int).
T_SIMPLE = 0x2B  # +
T_ERROR = 0x2D  # -
T_INTEGER = 0x3A  # :
T_BULK = 0x24  # $
T_ARRAY = 0x2A  # *
T_NULL = 0x5F  # _
T_BOOLEAN = 0x23  # #
T_DOUBLE = 0x2C  # ,
T_BIGNUM = 0x28  # (
T_BLOB_ERROR = 0x21  # !
T_VERBATIM = 0x3D  # =
T_MAP = 0x25  # %
T_SET = 0x7E  # ~
T_ATTRIBUTE = 0x7C  # |
T_PUSH = 0x3E  # >

CR = 0x0D
LF = 0x0A

# redis-server's PROTO_INLINE_MAX_SIZE: the longest inline command line it buffers.
INLINE_MAX_SIZE = 64 * 1024

# A length/count line: type byte, at most 20 characters ("-9223372036854775808"), CRLF.
# A longer line cannot be a valid number, so it is rejected as soon as that many octets
# are buffered without a CRLF (never "buffer until the frame limit").
HEADER_MAX = 1 + 20 + 2

# Deepest nesting of aggregates accepted in a reply (requests are flat). Redis itself
# nests a handful of levels (e.g. EVAL returning tables of tables); hiredis stops at 7.
MAX_DEPTH = 32

# Smallest wire size of one element, used to reject a count before reading its elements:
# a request argument is at least ``$0\r\n\r\n``; a reply element at least ``_\r\n``.
MIN_ARG_SIZE = 6
MIN_ELEMENT_SIZE = 3

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# Digits of 0..9999, for the inlined fast path of ``canonical_length`` in the decoders.
NDIGITS = [len(str(i)) for i in range(10000)]


def canonical_length(line: bytes | bytearray) -> int:
    """The integer written in ``line`` (the octets between type byte and CRLF).

    Raises ``ValueError`` unless ``line`` is canonical decimal (``-?[1-9][0-9]*`` or ``0``)
    within int64: ``int()`` alone would accept ``+1``, `` 1``, ``1_0`` and ``01``.
    """
    n = int(line)
    if 0 <= n < 10000:
        if len(line) != NDIGITS[n]:
            raise ValueError(line)
        return n
    if len(line) != len(str(n)) or not INT64_MIN <= n <= INT64_MAX:
        raise ValueError(line)
    return n
