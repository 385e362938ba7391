"""HTTP/2 wire facts the codec needs around h2: the preface, settings, header conversion.

The framing itself (RFC 9113 §4, §6) and HPACK (RFC 7541) are python-hyper's ``h2`` /
``hpack`` / ``hyperframe``: this package never parses or serialises a frame by hand. What is
here is the thin layer h2 leaves to its user.

Connection start (RFC 9113 §3.4, h2c "prior knowledge", §3.3)::

    client                                            server
      | PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n  (24 octets)      |
      | SETTINGS ------------------------------------> |
      | <------------------------------------ SETTINGS | (first frame the server sends)
      | SETTINGS(ACK) <-------------> SETTINGS(ACK)    | (§6.5.3, answered by h2)
      | HEADERS / DATA ...  (may precede the ACKs)     |

Frame header (RFC 9113 §4.1), for reading test vectors::

    +-----------------------------------------------+
    |                 Length (24)                   |
    +---------------+---------------+---------------+
    |   Type (8)    |   Flags (8)   |
    +-+-------------+---------------+-------------------------------+
    |R|                 Stream Identifier (31)                      |
    +=+=============================================================+
    |                   Frame Payload (0...)                      ...
    +---------------------------------------------------------------+

Settings we advertise (RFC 9113 §6.5.2), each overridable through ``settings=``:

- ``MAX_CONCURRENT_STREAMS`` 100: beyond it the server refuses a stream with RST_STREAM
  REFUSED_STREAM (§5.1.2 allows a stream error; h2 itself would kill the connection).
- ``MAX_HEADER_LIST_SIZE`` = ``CodecLimits.max_header_size`` (advisory, §6.5.2/§10.5.1):
  a head above it gets 431 (server) or a reset (client); HPACK decoding is cut off with a
  connection error at ``HARD_HEADER_FACTOR`` times that size (the CVE-2016-6581 "HPACK bomb"
  bound, RFC 7541 §7.3).
- ``ENABLE_PUSH`` 0: a proxy has no use for server push (§8.4).
- ``INITIAL_WINDOW_SIZE`` 65535 (may be raised, never lowered: a smaller value would race
  DATA the peer sends before it sees our SETTINGS, §6.9.2), ``MAX_FRAME_SIZE`` 16384.

Header conversion: h2 runs with ``header_encoding=None`` so names and values stay ``bytes``;
at the edge they become the ``str`` ``HeaderList`` through latin-1, which maps every octet
to one code point and back (RFC 9110 §5.5 obs-text survives).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError as H2ProtocolError
from h2.settings import SettingCodes
from h2.utilities import (
    CONNECTION_HEADERS as _H2_CONNECTION_HEADERS,
)
from h2.utilities import (
    HeaderValidationFlags,
    _check_pseudo_header_field_acceptability,
)
from hpack.struct import Header, HeaderTuple, NeverIndexedHeaderTuple

from mosn_py.codecs.base import HeaderList, MatchResult

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The client connection preface (RFC 9113 §3.4)."""

PROTOCOL = "http2"
DEFAULT_MAX_CONCURRENT_STREAMS = 100
DEFAULT_WINDOW = 65535  # RFC 9113 §6.9.2: every window starts here
MAX_WINDOW = 2**31 - 1  # §6.9.1
CONNECTION_WINDOW = 1 << 20
"""Receive window of the whole connection, opened with a WINDOW_UPDATE on stream 0 at start.

The connection window is handed back as soon as DATA is decoded (the codec's buffering is
bounded by the *stream* windows), so it only has to be large enough not to throttle many
streams at once; per-stream windows carry the end-to-end backpressure (see ``codec.py``)."""

HARD_HEADER_FACTOR = 2
"""HPACK decoding aborts (connection error ENHANCE_YOUR_CALM) above this many times the
advertised SETTINGS_MAX_HEADER_LIST_SIZE; between 1x and this, the stream alone is refused."""

HEADER_ENTRY_OVERHEAD = 32  # RFC 9113 §6.5.2 / RFC 7541 §4.1: 32 octets per field

# RFC 9113 §8.2.2: connection-specific fields are never sent on HTTP/2. h2 strips the first
# five itself; ``te`` is allowed only as "te: trailers", anything else is dropped here.
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)

# What h2 validates an outbound block against (the stream's role and the block's kind).
REQUEST_HEAD = HeaderValidationFlags(
    is_client=True, is_trailer=False, is_response_header=False, is_push_promise=False
)
RESPONSE_HEAD = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=True, is_push_promise=False
)
CLIENT_TRAILERS = HeaderValidationFlags(
    is_client=True, is_trailer=True, is_response_header=False, is_push_promise=False
)
SERVER_TRAILERS = HeaderValidationFlags(
    is_client=False, is_trailer=True, is_response_header=False, is_push_promise=False
)

# RFC 9113 §8.2.1: field names are lower-case tokens (a pseudo-header's leading colon
# aside); values never hold NUL, CR or LF. h2 checks these on receipt only.
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9a-z]")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
# h2's sets (h2/utilities.py, 4.4.1)
_SECURE = frozenset((b"authorization", b"proxy-authorization"))
_ALLOWED_PSEUDO = frozenset(
    (b":method", b":scheme", b":authority", b":path", b":status", b":protocol")
)
_COLON = 0x3A

FEED_CHUNK = 64 * 1024
"""Bytes handed to h2 per decoding step: bounds the events one ``next_event`` pull can queue."""


def match(prefix: bytes | bytearray | memoryview) -> MatchResult:
    """Sniff the client preface: NEED_MORE while ``prefix`` is a proper prefix of it
    (including ``b""``), MATCH once all 24 octets are there, NO_MATCH otherwise."""
    n = len(prefix)
    head = bytes(prefix[: len(PREFACE)])
    if head != PREFACE[: len(head)]:
        return MatchResult.NO_MATCH
    return MatchResult.MATCH if n >= len(PREFACE) else MatchResult.NEED_MORE


def error_code(code: int) -> ErrorCodes | int:
    """``code`` as an ``ErrorCodes`` member when it is one (§7: unknown codes are legal)."""
    try:
        return ErrorCodes(code)
    except ValueError:
        return code


def local_settings(
    max_header_size: int, overrides: Mapping[int, int] | None
) -> dict[SettingCodes | int, int]:
    """The SETTINGS we advertise: the defaults above, then ``overrides`` (codes as ints or
    ``SettingCodes``). Raises ``ValueError`` for a value we cannot honour from the first byte
    (a window below 65535, a header table below 4096, push enabled, or one h2 rejects)."""
    values: dict[SettingCodes | int, int] = {
        SettingCodes.HEADER_TABLE_SIZE: 4096,
        SettingCodes.ENABLE_PUSH: 0,
        SettingCodes.MAX_CONCURRENT_STREAMS: DEFAULT_MAX_CONCURRENT_STREAMS,
        SettingCodes.INITIAL_WINDOW_SIZE: DEFAULT_WINDOW,
        SettingCodes.MAX_FRAME_SIZE: 16384,
        SettingCodes.MAX_HEADER_LIST_SIZE: max_header_size,
    }
    for key, value in (overrides or {}).items():
        try:
            code: SettingCodes | int = SettingCodes(int(key))
        except ValueError:
            code = int(key)  # §6.5.2: unknown settings are legal (and ignored by the peer)
        values[code] = int(value)
    window = values[SettingCodes.INITIAL_WINDOW_SIZE]
    if not DEFAULT_WINDOW <= window <= MAX_WINDOW:
        raise ValueError(f"INITIAL_WINDOW_SIZE {window} outside {DEFAULT_WINDOW}..{MAX_WINDOW}")
    if values[SettingCodes.HEADER_TABLE_SIZE] < 4096:
        raise ValueError("HEADER_TABLE_SIZE below 4096 would race the peer's first HEADERS")
    if values[SettingCodes.ENABLE_PUSH] != 0:
        raise ValueError("ENABLE_PUSH must be 0: the codec does not accept server push")
    if values[SettingCodes.MAX_HEADER_LIST_SIZE] <= 0:
        raise ValueError("MAX_HEADER_LIST_SIZE must be positive")
    return values


def header_list_size(headers: Iterable[tuple[bytes, bytes]]) -> tuple[int, int]:
    """(size per RFC 9113 §6.5.2, field count) of a decoded header block."""
    size = 0
    count = 0
    for name, value in headers:
        size += len(name) + len(value) + HEADER_ENTRY_OVERHEAD
        count += 1
    return size, count


def decode_head(headers: Iterable[tuple[bytes, bytes]]) -> tuple[int, int, list[tuple[str, str]]]:
    """``header_list_size`` and the fields as ``str`` pairs (latin-1), in one pass."""
    size = 0
    fields: list[tuple[str, str]] = []
    for name, value in headers:
        size += len(name) + len(value) + HEADER_ENTRY_OVERHEAD
        fields.append((name.decode("latin-1"), value.decode("latin-1")))
    return size, len(fields), fields


def to_header_list(headers: Iterable[tuple[bytes, bytes]]) -> HeaderList:
    """h2's ``bytes`` pairs as a ``HeaderList`` (latin-1), order and pseudo-headers kept."""
    return HeaderList((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers)


def to_wire(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """A head's fields as the ``bytes`` pairs h2 sends, pseudo-headers first (§8.3).

    ``headers`` is a ``HeaderList`` (every value sent, in order) or any mapping. Names are
    lower-cased (§8.2.1); connection-specific fields and ``te`` other than ``trailers`` are
    dropped (§8.2.2: a proxy translating from HTTP/1.1 must not forward them). Raises
    ``UnicodeEncodeError`` for a character outside latin-1 (the caller maps it).
    """
    pseudo: list[tuple[bytes, bytes]] = []
    regular: list[tuple[bytes, bytes]] = []
    for name, value in items(headers):
        n = name.lower().encode("latin-1")
        v = value.encode("latin-1")
        if n[:1] == b":":
            pseudo.append((n, v))
        elif n in CONNECTION_SPECIFIC or (n == b"te" and v.strip().lower() != b"trailers"):
            continue
        else:
            regular.append((n, v))
    return pseudo + regular if pseudo else regular


def items(headers: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    """Every (name, value) of ``headers``: all values of a ``HeaderList``, else ``.items()``."""
    return headers.items_all() if isinstance(headers, HeaderList) else headers.items()


_PREPARED: dict[tuple[tuple[tuple[str, str], ...], HeaderValidationFlags], tuple[Header, ...]] = {}
_PREPARED_MAX = 512  # remembered response blocks (cleared when full) ...
_PREPARED_MAX_SIZE = 4096  # ... of at most this many characters of names and values


def encode_headers(headers: Mapping[str, str], flags: HeaderValidationFlags) -> list[Header]:
    """``to_wire`` then ``prepare``: a head or trailers as h2 should send them.

    Both are pure functions of the fields and ``flags``, and a proxy sends the same
    response head over and over (an upstream's responses differ in ``date`` once a second),
    so the result for a response or trailer ``HeaderList`` is remembered (bounded).
    Request heads are not: each carries its own ``x-request-id``.
    """
    if flags is REQUEST_HEAD or not isinstance(headers, HeaderList):
        return prepare(to_wire(headers), flags)
    items = headers.items_all()
    key = (items, flags)
    done = _PREPARED.get(key)
    if done is not None:
        return Prepared(done)
    out = prepare(to_wire(headers), flags)
    if sum([len(k) + len(v) for k, v in items]) <= _PREPARED_MAX_SIZE:
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.clear()
        _PREPARED[key] = tuple(out)
    return out


def status_of(headers: Mapping[str, str]) -> int | None:
    """The ``:status`` of a response head as an int, or None when absent or not 3 digits
    (RFC 9113 §8.3.2; RFC 9110 §15: three digits)."""
    value = headers.get(":status")
    if value is None or len(value) != 3 or not value.isdigit() or not value.isascii():
        return None
    return int(value)


class Prepared(list[Header]):
    """A header block ``prepare`` checked: bytes names and values, h2's normalisation done
    (``h2_fast.ProxyStream.send_headers`` sends it without h2's re-encoding copy)."""

    __slots__ = ()


def prepare(pairs: list[tuple[bytes, bytes]], flags: HeaderValidationFlags) -> list[Header]:
    """Run h2's outbound normalisation and validation *before* h2 sees the block.

    h2 validates lazily, while HPACK-encoding, after the stream's state has moved: a bad
    block would leave the encoder's dynamic table ahead of the peer's decoder and the stream
    in a state nothing was sent for. Checking first (and sending the checked list with h2's
    own checks switched off) keeps a refused send side-effect free. Raises ``ValueError``
    (characters, §8.2.1) or h2's ``ProtocolError`` (pseudo-headers, §8.3).

    The result is ``list(validate_outbound_headers(normalize_outbound_headers(pairs,
    flags), flags))`` of h2 4.4.1, computed in one pass instead of a chain of nine
    generators: per field, in h2's order, lower-case and strip, drop connection-specific
    fields, make credentials and short cookies never-indexed (RFC 7541 §7.1.3), reject a TE
    other than "trailers", check pseudo-headers (no duplicate, none after a regular field,
    only known ones) and, for requests, Host and :path; at the end the pseudo-headers the
    block needs, then :authority/Host.
    """
    bodies = [n[1:] if n[:1] == b":" else n for n, _ in pairs]
    if (
        not all(bodies)
        or _BAD_NAME.search(b"a".join(bodies)) is not None
        or _BAD_VALUE.search(b"".join([v for _, v in pairs])) is not None
    ):
        # (one regex over all names and one over all values; field by field for the error)
        for name, value in pairs:
            body = name[1:] if name[:1] == b":" else name
            if not body or _BAD_NAME.search(body):
                raise ValueError(f"invalid field name {name!r} (RFC 9113 §8.2.1)")
            if _BAD_VALUE.search(value):
                raise ValueError(f"NUL, CR or LF in the value of {name!r} (RFC 9113 §8.2.1)")
    request = not (flags.is_response_header or flags.is_trailer)
    out = Prepared()
    seen_pseudo: set[bytes] = set()
    seen_regular = False
    method: bytes | None = None
    authority: bytes | None = None
    host: bytes | None = None
    for header in pairs:
        # normalize_outbound_headers: _lowercase_header_names, _strip_surrounding_whitespace
        # (names need neither: checked above to be lower-case tokens), then
        # _strip_connection_headers, _secure_headers
        name = header[0]
        value = header[1].strip()
        if name in _H2_CONNECTION_HEADERS:
            continue
        if name in _SECURE or (name == b"cookie" and len(value) < 20):
            out.append(NeverIndexedHeaderTuple(name, value))
        elif isinstance(header, HeaderTuple):
            out.append(header.__class__(name, value))
        else:
            out.append((name, value))
        # validate_outbound_headers: _reject_te, (_reject_connection_header: stripped
        # above), _reject_pseudo_header_fields, _check_sent_host_authority_header,
        # _check_path_header
        if name == b"te" and value.lower() != b"trailers":
            raise H2ProtocolError(f"Invalid value for TE header: {value!r}")
        if name[0] == _COLON:
            if name in seen_pseudo:
                raise H2ProtocolError(f"Received duplicate pseudo-header field {name!r}")
            seen_pseudo.add(name)
            if seen_regular:
                raise H2ProtocolError(f"Received pseudo-header field out of sequence: {name!r}")
            if name not in _ALLOWED_PSEUDO:
                raise H2ProtocolError(f"Received custom pseudo-header field {name!r}")
            if name == b":method":
                method = value
        else:
            seen_regular = True
        if request:
            if name == b":authority":
                authority = value
            elif name == b"host":
                if host is not None:
                    raise H2ProtocolError("Request header block has multiple Host headers.")
                host = value
            if name == b":path" and not value:
                raise H2ProtocolError("An empty :path header is forbidden")
    check_block_end(seen_pseudo, method, flags, request, authority, host)
    return out


def check_block_end(
    seen_pseudo: set[bytes], method: bytes | None, flags: HeaderValidationFlags,
    request: bool, authority: bytes | None, host: bytes | None,
) -> None:
    """The checks h2 makes once a header block is read (either direction): the
    pseudo-headers this kind of block needs, and a request's :authority / Host agreement."""
    _check_pseudo_header_field_acceptability(seen_pseudo, method, flags)
    if request:
        if authority is None and host is None:
            raise H2ProtocolError(
                "Request header block does not have an :authority or Host header."
            )
        if authority is not None and host is not None and authority != host:
            raise H2ProtocolError(
                "Request header block has mismatched :authority and "
                f"Host headers: {authority!r} / {host!r}"
            )
