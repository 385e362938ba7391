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

Decoded frames carry a ``BoltHeaders``: the block's *structure* is validated when the frame
is decoded (``validate_header_block``: lengths, bounds, nulls), but strings are only decoded
when someone reads them. A proxy routing on one key never decodes the others, and a frame
forwarded untouched never decodes any (the header map was the largest single cost of a
pass-through request). Lazy decoding is lenient about UTF-8, as Java's ``new String(bytes,
UTF_8)`` is: malformed sequences become U+FFFD instead of failing the frame.

``decode_header_map``/``validate_header_block`` raise ``LocalProtocolError``; the codec
re-raises as ``RemoteProtocolError`` at ``next_event()`` (STYLE 2.6).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping

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


def validate_header_block(buf: bytes, start: int, end: int) -> None:
    """Check the block's framing (lengths, bounds, nulls) without decoding a string.

    Raises ``LocalProtocolError`` naming the problem, like ``decode_header_map``.
    """
    pos = start
    try:
        while pos < end:
            (klen,) = _unpack_i32(buf, pos)
            kend = pos + 4 + (klen if klen > 0 else 0)
            (vlen,) = _unpack_i32(buf, kend)
            vend = kend + 4 + (vlen if vlen > 0 else 0)
            if klen < _NULL or vlen < _NULL or vend > end:
                break
            pos = vend
        else:
            return
    except struct.error:
        pass
    _decode_careful(buf, start, end)  # raises with the precise message
    raise LocalProtocolError("header map: malformed", protocol="bolt")  # pragma: no cover


class BoltHeaders(Mapping[str, str]):
    """The header map of a decoded frame, decoded on first use (see the module docstring).

    ``get()`` of a single key walks the block comparing raw key bytes and decodes only the
    value it returns; iterating, ``len()`` or ``==`` decode the whole map once. The block's
    structure was validated by the codec, so no access raises.
    """

    __slots__ = ("_buf", "_start", "_end", "_map")

    def __init__(self, buf: bytes, start: int, end: int) -> None:
        self._buf = buf
        self._start = start
        self._end = end
        self._map: dict[str, str] | None = None

    def _decoded(self) -> dict[str, str]:
        m = self._map
        if m is None:
            m = self._map = _decode_lenient(self._buf, self._start, self._end)
        return m

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        m = self._map
        if m is not None:
            return m.get(key, default)
        kb = key.encode("utf-8")
        n = len(kb)
        buf = self._buf
        pos = self._start
        end = self._end
        found = default
        while pos < end:
            (klen,) = _unpack_i32(buf, pos)
            kstart = pos + 4
            kend = kstart + (klen if klen > 0 else 0)
            (vlen,) = _unpack_i32(buf, kend)
            vstart = kend + 4
            pos = vstart + (vlen if vlen > 0 else 0)
            if klen == n and vlen >= 0 and buf[kstart:kend] == kb:
                found = buf[vstart:pos].decode("utf-8", "replace")  # the last one wins
        return found

    def __getitem__(self, key: str) -> str:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __repr__(self) -> str:
        return f"BoltHeaders({self._decoded()!r})"


def _decode_lenient(buf: bytes, start: int, end: int) -> dict[str, str]:
    """Decode a validated block: nulls dropped, malformed UTF-8 replaced (never raises)."""
    headers: dict[str, str] = {}
    pos = start
    while pos < end:
        (klen,) = _unpack_i32(buf, pos)
        kstart = pos + 4
        kend = kstart + (klen if klen > 0 else 0)
        (vlen,) = _unpack_i32(buf, kend)
        vstart = kend + 4
        pos = vstart + (vlen if vlen > 0 else 0)
        if klen >= 0 and vlen >= 0:
            headers[buf[kstart:kend].decode("utf-8", "replace")] = buf[vstart:pos].decode(
                "utf-8", "replace"
            )
    return headers
