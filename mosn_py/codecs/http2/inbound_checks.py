"""h2's checks on a received header block, in one pass (RFC 9113 §8.2, §8.3).

h2 4.4.1 validates every received block through a chain of generators
(``normalize_inbound_headers`` then ``validate_headers`` in ``h2/utilities.py``): each field
goes through seven of them, and that chain costs more than decoding the block. The
``validate_inbound`` below does the same checks on the same fields in the same order --
the generators are lazy, so h2 runs every check on one field before the next, and its
end-of-block checks after the last field -- and raises the same ``ProtocolError``s::

    normalize   cookie fields joined into one, moved last, never indexed (§8.2.3)
    per field   illegal characters (§8.2.1), empty name, TE other than "trailers"
                (§8.2.2), connection-specific fields (§8.2.2), pseudo-headers: no
                duplicate, none after a regular field, only known ones (§8.3);
                requests: at most one Host, no empty :path (§8.3.1)
    at the end  the pseudo-headers this kind of block needs (h2's own function), then
                requests: :authority or Host, and equal if both (§8.3.1)

Characters are checked with one regex per name and value; only a failing field is walked
octet by octet, to name the first bad octet exactly as h2 does. The checks are a pure
function of the block and the flags, and peers repeat blocks (h2load's requests, nginx's
responses within a second), so a block without cookies that passed is remembered
(``_PASSED``, bounded) and passes again at the cost of one dict lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from h2.exceptions import ProtocolError
from h2.utilities import (
    CONNECTION_HEADERS,
    HeaderValidationFlags,
)
from hpack.struct import Header, NeverIndexedHeaderTuple

from mosn_py.codecs.http2.wire import check_block_end

_ALLOWED_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path", b":status",
                             b":protocol"))
_BAD_NAME = re.compile(rb"[\x00-\x20A-Z\x7f-\xff]")
_BAD_VALUE = re.compile(rb"[\x00\n\r]")
_COLON = 0x3A
_SP_HTAB = (0x20, 0x09)


def _illegal_name(name: bytes) -> ProtocolError:
    for c in name:
        if 0x41 <= c <= 0x5A:
            return ProtocolError(f"Received uppercase header name {name!r}.")
        if c <= 0x20 or c >= 0x7F:
            return ProtocolError(f"Illegal character '{chr(c)}' in header name: {name!r}")
    raise AssertionError("no illegal character")  # pragma: no cover


_PASSED: dict[tuple[tuple[Header, ...], HeaderValidationFlags], bool] = {}
_PASSED_MAX = 512  # remembered blocks (cleared when full) ...
_PASSED_MAX_SIZE = 4096  # ... of at most this many octets of names and values


def validate_inbound(headers: Iterable[Header], flags: HeaderValidationFlags) -> list[Header]:
    """``list(validate_headers(normalize_inbound_headers(headers, flags), flags))``."""
    fields = headers if isinstance(headers, list) else list(headers)
    key = (tuple(fields), flags)
    if key in _PASSED:
        return fields  # (no cookie field: nothing to normalise)
    cookies = [h[1] for h in fields if h[0] == b"cookie"]
    if cookies:
        fields = [h for h in fields if h[0] != b"cookie"]
        fields.append(NeverIndexedHeaderTuple(b"cookie", b"; ".join(cookies)))
    size = _check(fields, flags)
    if not cookies and size <= _PASSED_MAX_SIZE:
        if len(_PASSED) >= _PASSED_MAX:
            _PASSED.clear()
        _PASSED[key] = True
    return fields


def _check(fields: list[Header], flags: HeaderValidationFlags) -> int:
    """Raise h2's ``ProtocolError`` for the first violation; else the octets checked."""
    size = 0
    request = not (flags.is_response_header or flags.is_trailer)
    seen_pseudo: set[bytes] = set()
    seen_regular = False
    method: bytes | None = None
    authority: bytes | None = None
    host: bytes | None = None
    bad_name = _BAD_NAME.search
    bad_value = _BAD_VALUE.search
    for header in fields:
        name = header[0]
        value = header[1]
        size += len(name) + len(value)
        # _reject_illegal_characters
        if bad_name(name) is not None:
            raise _illegal_name(name)
        if name.find(b":", 1) != -1:
            raise ProtocolError(f"Illegal character ':' in header name: {name!r}")
        if value:
            m = bad_value(value)
            if m is not None:
                raise ProtocolError(
                    f"Illegal character '{chr(value[m.start()])}' in header value: {value!r}"
                )
            if value[0] in _SP_HTAB or value[-1] in _SP_HTAB:
                raise ProtocolError(f"Received header value surrounded by whitespace {value!r}")
        # _reject_empty_header_names
        if not name:
            raise ProtocolError("Received header name with zero length.")
        # _reject_te
        if name == b"te" and value.lower() != b"trailers":
            raise ProtocolError(f"Invalid value for TE header: {value!r}")
        # _reject_connection_header
        if name in CONNECTION_HEADERS:
            raise ProtocolError(f"Connection-specific header field present: {name!r}.")
        # _reject_pseudo_header_fields
        if name[0] == _COLON:
            if name in seen_pseudo:
                raise ProtocolError(f"Received duplicate pseudo-header field {name!r}")
            seen_pseudo.add(name)
            if seen_regular:
                raise ProtocolError(f"Received pseudo-header field out of sequence: {name!r}")
            if name not in _ALLOWED_PSEUDO:
                raise ProtocolError(f"Received custom pseudo-header field {name!r}")
            if name == b":method":
                method = value
        else:
            seen_regular = True
        if request:
            # _check_host_authority_header, _check_path_header
            if name == b":authority":
                authority = value
            elif name == b"host":
                if host is not None:
                    raise ProtocolError("Request header block has multiple Host headers.")
                host = value
            if name == b":path" and not value:
                raise ProtocolError("An empty :path header is forbidden")
    check_block_end(seen_pseudo, method, flags, request, authority, host)
    return size
