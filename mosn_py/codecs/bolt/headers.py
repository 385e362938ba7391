"""The SOFARPC header map ("SimpleMapSerializer"), bolt.md §4.

The header block is a flat run of key/value pairs with no count and no terminator; it ends
at ``headerLen``::

    +-------------+-----------------+---------------+-------------------+---- ...
    | keyLen (i32)| key (UTF-8)     | valueLen (i32)| value (UTF-8)     | keyLen ...
    +-------------+-----------------+---------------+-------------------+---- ...

- a length of ``-1`` is ``null``: Java's encoder never writes null entries and its decoder
  drops them, sofa-bolt-node writes ``-1`` for a null value. We drop the entry, like Java.
- any other negative length, a length running past the block, or a block that ends inside a
  length field is malformed.
- keys and values are UTF-8 (Java ``StringSerializer``); invalid UTF-8 is malformed too.
- order is not significant to receivers (Java decodes into a HashMap), but a ``dict`` keeps
  the wire order so a decoded map re-encodes to the same bytes. A repeated key keeps the last
  value, as a HashMap would.

Both functions raise ``LocalProtocolError``; the codec re-raises decode errors as
``RemoteProtocolError`` at ``next_event()`` (STYLE 2.6).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from mosn_py.codecs.bolt.wire import I32, MAX_SHORT_LEN
from mosn_py.errors import LocalProtocolError

_NULL = -1
_unpack_i32 = I32.unpack_from
_pack_i32 = I32.pack


def decode_header_map(buf: bytes, start: int, end: int) -> dict[str, str]:
    """Decode the header block ``buf[start:end]``.

    Returns a ``dict`` in wire order, null entries dropped. Raises ``LocalProtocolError`` when
    the block is malformed (see the module docstring).
    """
    # Fast path for well-formed blocks without nulls: one combined bounds test per entry.
    # Anything unusual (null, negative or overrunning length, bad UTF-8) starts over on the
    # careful path, which accepts nulls and names the problem.
    headers: dict[str, str] = {}
    pos = start
    try:
        while pos < end:
            (klen,) = _unpack_i32(buf, pos)
            kend = pos + 4 + klen
            (vlen,) = _unpack_i32(buf, kend)
            vend = kend + 4 + vlen
            if klen < 0 or vlen < 0 or vend > end:
                break
            headers[buf[pos + 4 : kend].decode("utf-8")] = buf[kend + 4 : vend].decode("utf-8")
            pos = vend
        else:
            return headers
    except (struct.error, UnicodeDecodeError):
        pass
    return _decode_careful(buf, start, end)


def _decode_careful(buf: bytes, start: int, end: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    pos = start
    try:
        while pos < end:
            if end - pos < 8:  # room for at least a key length and a value length
                raise LocalProtocolError(
                    f"header map: {end - pos} stray bytes at offset {pos - start}",
                    protocol="bolt",
                )
            (klen,) = _unpack_i32(buf, pos)
            pos += 4
            key: str | None = None
            if klen >= 0:
                if klen > end - pos:
                    raise _overrun("key", klen, pos - start, end - pos)
                key = buf[pos : pos + klen].decode("utf-8")
                pos += klen
            elif klen != _NULL:
                raise LocalProtocolError(f"header map: key length {klen}", protocol="bolt")
            if end - pos < 4:
                raise LocalProtocolError(
                    f"header map: value length of key {key!r} missing", protocol="bolt"
                )
            (vlen,) = _unpack_i32(buf, pos)
            pos += 4
            if vlen >= 0:
                if vlen > end - pos:
                    raise _overrun("value", vlen, pos - start, end - pos)
                if key is not None:
                    headers[key] = buf[pos : pos + vlen].decode("utf-8")
                pos += vlen
            elif vlen != _NULL:
                raise LocalProtocolError(f"header map: value length {vlen}", protocol="bolt")
    except UnicodeDecodeError as exc:
        raise LocalProtocolError(f"header map: invalid UTF-8 ({exc})", protocol="bolt") from None
    return headers


def _overrun(what: str, length: int, offset: int, left: int) -> LocalProtocolError:
    return LocalProtocolError(
        f"header map: {what} length {length} at offset {offset} overruns the block "
        f"({left} bytes left)",
        protocol="bolt",
    )


def encode_header_map(headers: Mapping[str, str]) -> bytes:
    """The header block for ``headers``, in iteration order.

    Entries whose value is ``None`` are skipped (Java). Raises ``LocalProtocolError`` for a
    key or value that is not ``str``, or a block longer than 32767 bytes (bolt.md §8).
    """
    if not headers:
        return b""
    parts: list[bytes] = []
    append = parts.append
    for key, value in headers.items():
        if value is None:
            continue
        if not isinstance(key, str) or not isinstance(value, str):
            raise LocalProtocolError(
                f"header map: {key!r}: {value!r} is not str: str", protocol="bolt"
            )
        kb = key.encode("utf-8")
        vb = value.encode("utf-8")
        append(_pack_i32(len(kb)))
        append(kb)
        append(_pack_i32(len(vb)))
        append(vb)
    block = b"".join(parts)
    if len(block) > MAX_SHORT_LEN:
        raise LocalProtocolError(
            f"header map of {len(block)} bytes exceeds headerLen {MAX_SHORT_LEN}",
            protocol="bolt",
        )
    return block
