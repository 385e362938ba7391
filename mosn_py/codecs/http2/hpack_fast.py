"""HPACK (RFC 7541) as python-hyper ``hpack`` does it, minus its per-field overhead.

``ProxyH2Connection`` swaps h2's ``Encoder``/``Decoder`` for the subclasses here. They
produce *the same octets and the same header lists* as hpack 4.2 (checked against it: the
dynamic-table choices, Huffman coding, error types and messages are hpack's), but hpack
spends most of an HTTP/2 proxy's header time on bookkeeping around that:

- ``HeaderTable.search`` walks the whole dynamic table for every field sent (a proxy that
  adds an ``x-request-id`` per request keeps ~50 entries in a 4 KiB table): here two dicts
  index the table by (name, value) and by name, so a search is two lookups;
- Huffman encoding shifts one big integer per octet: here one ``str.join`` of per-octet bit
  strings and one ``int(..., 2)``;
- Huffman decoding runs a nibble state machine per octet: decoded strings are cached (field
  values a peer sends as literals -- ``server``, ``content-type`` -- repeat on every
  response);
- every integer, field and eviction goes through ``logging.debug`` (~56 calls per proxied
  request, each a function call even when DEBUG is off): none here;
- decoding copies the rest of the block for every literal field (``memoryview.tobytes``)
  and builds each ``HeaderTuple`` twice through a Python-level ``__new__``: here offsets into
  the block and one C-level ``tuple.__new__``; and a block that does not change the
  dynamic table decodes the same until the table changes (a client repeating its request
  head), or in any state if it does not use the table either (nginx's responses), so its
  result is remembered.

Only the paths h2 uses are overridden (``Encoder.encode`` of an iterable of tuples,
``Decoder.decode(raw=True)``); anything else falls back to hpack.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hpack import Decoder, Encoder, HeaderTuple, NeverIndexedHeaderTuple
from hpack.exceptions import (
    HPACKDecodingError,
    InvalidTableIndex,
    InvalidTableSizeError,
    OversizedHeaderListError,
)
from hpack.hpack import DEFAULT_MAX_HEADER_LIST_SIZE
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

_STATIC = HeaderTable.STATIC_TABLE
_STATIC_LEN = HeaderTable.STATIC_TABLE_LENGTH
_STATIC_MAPPING = HeaderTable.STATIC_TABLE_MAPPING
_DYNAMIC_OFFSET = _STATIC_LEN + 1  # index of the newest dynamic entry (RFC 7541 §2.3.3)
_ENTRY_OVERHEAD = 32  # RFC 7541 §4.1
_INDEX_INCREMENTAL = b"\x40"
_INDEX_NEVER = b"\x10"
_VARINT_MAX_LENGTH = 5  # hpack's bound on an integer's continuation octets

# --- integers (RFC 7541 §5.1) ------------------------------------------------------------------


def encode_integer(integer: int, prefix_bits: int) -> bytearray:
    """hpack's ``encode_integer`` for the non-negative values an encoder produces."""
    max_number = (1 << prefix_bits) - 1
    if integer < max_number:
        return bytearray((integer,))
    elements = [max_number]
    integer -= max_number
    while integer >= 128:
        elements.append((integer & 127) + 128)
        integer >>= 7
    elements.append(integer)
    return bytearray(elements)


def _decode_integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """(value, octets used) of the integer at ``data[pos]``; hpack's errors and bounds."""
    max_number = (1 << prefix_bits) - 1
    try:
        number = data[pos] & max_number
        if number != max_number:
            return number, 1
        index = 1
        shift = 0
        while True:
            next_byte = data[pos + index]
            index += 1
            if next_byte >= 128:
                number += (next_byte - 128) << shift
            else:
                number += next_byte << shift
                return number, index
            shift += 7
            if index > _VARINT_MAX_LENGTH:
                msg = f"Variable integer representation is too long: {data[pos:]!r}"
                raise HPACKDecodingError(msg)
    except IndexError as err:
        msg = f"Unable to decode HPACK integer representation from {data[pos:]!r}"
        raise HPACKDecodingError(msg) from err


# --- Huffman (RFC 7541 §5.2, Appendix B) -------------------------------------------------------

_HUFFMAN_BITS = [
    format(code, f"0{length}b")
    for code, length in zip(REQUEST_CODES, REQUEST_CODES_LENGTH, strict=True)
][:256]


def huffman_encode(data: bytes) -> bytes:
    """The Huffman code of ``data``, padded with 1 bits to an octet (hpack's output)."""
    if not data:
        return b""
    bits = "".join([_HUFFMAN_BITS[b] for b in data])
    pad = -len(bits) % 8
    return ((int(bits, 2) << pad) | ((1 << pad) - 1)).to_bytes((len(bits) + pad) >> 3, "big")


_DECODED: dict[bytes, bytes] = {}
_DECODED_MAX = 4096  # cached strings (cleared when full)
_DECODED_MAX_LEN = 128  # longer literals are decoded every time


def huffman_decode(data: bytes) -> bytes:
    """hpack's ``decode_huffman``, with the results of short strings cached."""
    out = _DECODED.get(data)
    if out is None:
        out = decode_huffman(data)  # raises HPACKDecodingError: never cached
        if len(data) <= _DECODED_MAX_LEN:
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
            _DECODED[data] = out
    return out


# --- the dynamic table, indexed ----------------------------------------------------------------


class IndexedHeaderTable(HeaderTable):
    """hpack's ``HeaderTable`` with the dynamic entries also indexed by (name, value) and by
    name, each to its newest entry: ``search`` gives hpack's answer in two lookups.

    Entries are numbered as they are added (``_seq``); the newest has index
    ``_DYNAMIC_OFFSET`` and an entry numbered ``s`` has ``_DYNAMIC_OFFSET + _seq - s``.
    Eviction always takes the oldest entry, so when the newest entry for a key is evicted no
    other entry for it is left.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seq = 0
        self._exact: dict[tuple[bytes, bytes], int] = {}
        self._names: dict[bytes, int] = {}

    def add(self, name: bytes, value: bytes) -> None:
        size = _ENTRY_OVERHEAD + len(name) + len(value)
        if size > self._maxsize:
            self._clear()
            return
        seq = self._seq = self._seq + 1
        self.dynamic_entries.appendleft((name, value))
        self._exact[(name, value)] = seq
        self._names[name] = seq
        self._current_size += size
        if self._current_size > self._maxsize:
            self._shrink()

    def _clear(self) -> None:
        self.dynamic_entries.clear()
        self._current_size = 0
        self._exact.clear()
        self._names.clear()

    def _shrink(self) -> None:
        cursize = self._current_size
        entries = self.dynamic_entries
        exact = self._exact
        names = self._names
        while cursize > self._maxsize:
            oldest = self._seq - len(entries) + 1
            name, value = entries.pop()
            cursize -= _ENTRY_OVERHEAD + len(name) + len(value)
            key = (name, value)
            if exact.get(key) == oldest:
                del exact[key]
            if names.get(name) == oldest:
                del names[name]
        self._current_size = cursize

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        newmax = int(newmax)
        oldmax = self._maxsize
        self._maxsize = newmax
        self.resized = newmax != oldmax
        if newmax <= 0:
            self._clear()
        elif oldmax > newmax:
            self._shrink()

    def search(self, name: bytes, value: bytes) -> tuple[int, bytes, bytes | None] | None:
        partial: tuple[int, bytes, bytes | None] | None = None
        static = _STATIC_MAPPING.get(name)
        if static:
            index = static[1].get(value)
            if index is not None:
                return index, name, value
            partial = (static[0], name, None)
        seq = self._exact.get((name, value))
        if seq is not None:
            return _DYNAMIC_OFFSET + self._seq - seq, name, value
        if partial is None:
            seq = self._names.get(name)
            if seq is not None:
                return _DYNAMIC_OFFSET + self._seq - seq, name, None
        return partial


class FastEncoder(Encoder):
    """hpack's ``Encoder``, same output (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.header_table = IndexedHeaderTable()

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        if isinstance(headers, dict):
            return super().encode(headers, huffman)
        table = self.header_table
        block: list[bytes] = []
        if table.resized:
            block.append(self._encode_table_size_change())
            table.resized = False
        add = self.add
        for header in headers:
            if isinstance(header, HeaderTuple):
                sensitive = not header.indexable
            elif len(header) > 2:
                sensitive = header[2]
            else:
                sensitive = False
            name = header[0]
            value = header[1]
            if type(name) is not bytes:
                name = _to_bytes(name)
            if type(value) is not bytes:
                value = _to_bytes(value)
            block.append(add((name, value), sensitive, huffman))
        return b"".join(block)

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        name, value = to_add
        indexbit = _INDEX_NEVER if sensitive else _INDEX_INCREMENTAL
        table = self.header_table
        match = table.search(name, value)
        if match is None:
            encoded = self._encode_literal(name, value, indexbit, huffman)
            if not sensitive:
                table.add(name, value)
            return encoded
        index, name, perfect = match
        if perfect is not None:
            if index < 127:
                return bytes((0x80 | index,))
            field = encode_integer(index, 7)
            field[0] |= 0x80
            return bytes(field)
        encoded = self._encode_indexed_literal(index, value, indexbit, huffman)
        if not sensitive:
            table.add(name, value)
        return encoded

    def _encode_literal(
        self, name: bytes, value: bytes, indexbit: bytes, huffman: bool = False
    ) -> bytes:
        if huffman:
            name = huffman_encode(name)
            value = huffman_encode(value)
        name_len = encode_integer(len(name), 7)
        value_len = encode_integer(len(value), 7)
        if huffman:
            name_len[0] |= 0x80
            value_len[0] |= 0x80
        return b"".join([indexbit, name_len, name, value_len, value])

    def _encode_indexed_literal(
        self, index: int, value: bytes, indexbit: bytes, huffman: bool = False
    ) -> bytes:
        prefix = encode_integer(index, 6 if indexbit == _INDEX_INCREMENTAL else 4)
        prefix[0] |= indexbit[0]
        if huffman:
            value = huffman_encode(value)
        value_len = encode_integer(len(value), 7)
        if huffman:
            value_len[0] |= 0x80
        return b"".join([prefix, value_len, value])


def _to_bytes(value: Any) -> bytes:
    if type(value) is not str:
        value = str(value)
    encoded: bytes = value.encode("utf-8")
    return encoded


_new_tuple = tuple.__new__


class VersionedHeaderTable(HeaderTable):
    """hpack's ``HeaderTable`` (for a decoder) that counts its changes in ``version``."""

    def __init__(self) -> None:
        super().__init__()
        self.version = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.version += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.version += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


# A block that only reads the dynamic table (indexed fields, literals without indexing)
# decodes the same as long as the table has not changed: a peer repeating its request
# head (h2load, a gRPC client) sends the same all-indexed block every time. Each decoder
# remembers such blocks with the table version they were decoded at (bounded).
_MEMO_MAX = 8  # per decoder (connection): a client repeats a few heads
_MEMO_MAX_LEN = 512
# Blocks that use neither the dynamic table nor change it (static indices and literals
# without indexing only: what nginx sends for its responses) decode the same whatever the
# decoder's state: their fields and inflated size are remembered by all decoders (bounded).
_STATIC_BLOCKS: dict[bytes, tuple[tuple[HeaderTuple, ...], int]] = {}
_STATIC_BLOCKS_MAX = 1024


class FastDecoder(Decoder):
    """hpack's ``Decoder``, same header lists and errors (see the module docstring)."""

    def __init__(self, max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE) -> None:
        super().__init__(max_header_list_size)
        self._table = VersionedHeaderTable()
        self.header_table = self._table
        self.max_allowed_table_size = self.header_table.maxsize
        self._memo: dict[bytes, tuple[int, tuple[HeaderTuple, ...], int]] = {}

    def decode(self, data: bytes, raw: bool = False) -> Iterable[HeaderTuple]:
        if not raw:
            return super().decode(data, raw)
        if type(data) is not bytes:
            data = bytes(data)
        known = _STATIC_BLOCKS.get(data)
        if known is None:
            memo = self._memo.get(data)
            if memo is not None and memo[0] == self._table.version:
                known = memo[1], memo[2]
        if known is not None:
            fields, size = known
            limit = self.max_header_list_size
            if size > limit:
                msg = f"A header list larger than {limit} has been received"
                raise OversizedHeaderListError(msg)
            if self.header_table.maxsize > self.max_allowed_table_size:
                msg = "Encoder did not shrink table size to within the max"
                raise InvalidTableSizeError(msg)
            return list(fields)
        static_only = True
        reads_only = True  # no literal with indexing, no size update
        headers: list[HeaderTuple] = []
        table = self.header_table
        entries = table.dynamic_entries
        limit = self.max_header_list_size
        data_len = len(data)
        inflated = 0
        pos = 0
        while pos < data_len:
            current = data[pos]
            header: HeaderTuple
            if current & 0x80:  # indexed field (§6.1)
                if current != 0xFF:
                    index = current & 0x7F
                    pos += 1
                else:
                    index, used = _decode_integer(data, pos, 7)
                    pos += used
                i = index - 1
                if 0 <= i < _STATIC_LEN:
                    n, v = _STATIC[i]
                elif _STATIC_LEN <= i < _STATIC_LEN + len(entries):
                    n, v = entries[i - _STATIC_LEN]
                    static_only = False
                else:
                    raise InvalidTableIndex(f"Invalid table index {index}")
                header = _new_tuple(HeaderTuple, (n, v))
            elif current & 0x40:  # literal with incremental indexing (§6.2.1)
                header, pos, _ = self._literal(data, pos, 0x3F, 6, HeaderTuple)
                table.add(header[0], header[1])
                static_only = reads_only = False
            elif current & 0x20:  # dynamic table size update (§6.3)
                static_only = reads_only = False
                if headers:
                    msg = "Table size update not at the start of the block"
                    raise HPACKDecodingError(msg)
                new_size, used = _decode_integer(data, pos, 5)
                if new_size > self.max_allowed_table_size:
                    msg = "Encoder exceeded max allowable table size"
                    raise InvalidTableSizeError(msg)
                self.header_table_size = new_size
                pos += used
                continue
            else:  # literal without indexing / never indexed (§6.2.2, §6.2.3)
                cls = NeverIndexedHeaderTuple if current & 0x10 else HeaderTuple
                header, pos, dynamic_name = self._literal(data, pos, 0x0F, 4, cls)
                if dynamic_name:
                    static_only = False
            headers.append(header)
            inflated += _ENTRY_OVERHEAD + len(header[0]) + len(header[1])
            if inflated > limit:
                msg = f"A header list larger than {limit} has been received"
                raise OversizedHeaderListError(msg)
        if table.maxsize > self.max_allowed_table_size:
            msg = "Encoder did not shrink table size to within the max"
            raise InvalidTableSizeError(msg)
        if reads_only and data_len <= _MEMO_MAX_LEN:
            if static_only:
                if len(_STATIC_BLOCKS) >= _STATIC_BLOCKS_MAX:
                    _STATIC_BLOCKS.clear()
                _STATIC_BLOCKS[data] = (tuple(headers), inflated)
            else:
                memo_table = self._memo
                if len(memo_table) >= _MEMO_MAX:
                    memo_table.clear()
                memo_table[data] = (self._table.version, tuple(headers), inflated)
        return headers

    def _literal(
        self, data: bytes, pos: int, mask: int, prefix: int, cls: type[HeaderTuple]
    ) -> tuple[HeaderTuple, int, bool]:
        """The literal field at ``pos`` (hpack's ``_decode_literal``), where the next one
        starts, and whether its name came from the dynamic table."""
        dynamic_name = False
        if data[pos] & mask:  # indexed name
            index, used = _decode_integer(data, pos, prefix)
            name = self.header_table.get_by_index(index)[0]
            dynamic_name = index > _STATIC_LEN
            pos += used
        else:
            pos += 1
            length, used = _decode_integer(data, pos, 7)
            start = pos + used
            name = data[start : start + length]
            if len(name) != length:
                msg = "Truncated header block"
                raise HPACKDecodingError(msg)
            if data[pos] & 0x80:
                name = huffman_decode(name)
            pos = start + length
        length, used = _decode_integer(data, pos, 7)
        start = pos + used
        value = data[start : start + length]
        if len(value) != length:
            msg = "Truncated header block"
            raise HPACKDecodingError(msg)
        if data[pos] & 0x80:
            value = huffman_decode(value)
        return _new_tuple(cls, (name, value)), start + length, dynamic_name
