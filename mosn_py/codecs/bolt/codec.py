"""``BoltCodec``: the sans-IO Bolt v1/v2 codec (wire layouts in ``wire.py``).

One codec per connection and role (``mosn_py.codecs.base``)::

    Role.SERVER (downstream)  decodes requests: type 1 REQUEST / 2 ONEWAY,
                                                cmdcode 1 RPC / 0 heartbeat
                              encodes responses (type 0)
    Role.CLIENT (upstream)    decodes responses: type 0, cmdcode 2 RPC / 0 heartbeat ack
                              encodes requests

Receive state machine (``CodecState``)::

    OPEN --frame--> OPEN
    OPEN --EOF at a frame boundary--> CLOSED   (next_event() keeps returning CLOSED)
    OPEN --bad bytes / truncated at EOF--> ERROR  (next_event() keeps raising)

Sending does not depend on the receive state: after a ``RemoteProtocolError`` the proxy may
still ``send(codec.error_reply())`` before it closes.

Decoding a pass-through request costs one fixed-header unpack, one ``bytes`` copy of the
frame out of the receive buffer (``Frame.raw``), the header-map decode and one ``Frame``.
``Frame.body`` is a read-only ``memoryview`` into ``raw`` (no second copy); ``bytes(body)``
when you need ``bytes``. ``send()`` of a frame that still has ``raw`` forwards those bytes,
patching only the 4 requestId bytes (and the CRC32 of a v2 CRC frame).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from mosn_py.codecs.base import (
    NEED_DATA,
    CodecLimits,
    CodecState,
    ConnectionEvent,
    Frame,
    MatchResult,
    PoolMode,
    Role,
    StreamType,
)
from mosn_py.codecs.bolt.headers import BoltHeaders, encode_header_map, validate_header_block
from mosn_py.codecs.bolt.matcher import match as _match
from mosn_py.codecs.bolt.wire import (
    CMD_HEARTBEAT,
    CMD_RPC_REQUEST,
    CMD_RPC_RESPONSE,
    CODEC_PROTOBUF,
    CRC_LEN,
    LAYOUTS,
    MAX_CONTENT_LEN,
    MAX_REQUEST_ID,
    MAX_SHORT_LEN,
    PROTO_V1,
    PROTO_V2,
    REQUEST_ID_OFFSET,
    REQUEST_KINDS,
    RESPONSE_KINDS,
    SOFA_REQUEST_CLASS,
    SOFA_RESPONSE_CLASS,
    TYPE_BY_STREAM,
    TYPE_OFFSET,
    TYPE_REQUEST,
    TYPE_RESPONSE,
    U32,
    V1_REQUEST,
    V1_RESPONSE,
    V2_REQUEST,
    V2_RESPONSE,
    BoltExtra,
    RespStatus,
    crc_present,
    frame_crc,
    resp_status_for,
)
from mosn_py.errors import LocalProtocolError, ProxyStatus, RemoteProtocolError

_EMPTY: Mapping[str, str] = MappingProxyType({})

# Frames (or bodies) above this are sent as several buffers so the body is never copied.
ZERO_COPY_THRESHOLD = 64 * 1024
# Compact the receive buffer when at least this much consumed prefix has piled up (and it
# is at least half the buffer): amortised O(1) per byte, never ``buf = buf[n:]`` per frame.
_COMPACT_MIN = 64 * 1024
_V2_SWITCH_OFFSET = 11
_V2_VER1_OFFSET = 1
_MIN_FRAME = 20  # the smallest fixed header (v1 response)
_pack_u32_into = U32.pack_into
_unpack_u32 = U32.unpack_from
_PROTOCOL = "bolt"
_DEFAULT_LIMITS = CodecLimits()


def local_reply_for_id(
    request_id: int,
    status: ProxyStatus,
    message: str = "",
    *,
    like: BoltExtra | None = None,
) -> Frame:
    """A local-reply response when only the request id (and maybe its ``BoltExtra``) is known.

    ``like`` supplies proto/ver1/switch/codec/ver2 to mirror; without it: v1, protobuf.
    """
    if like is None:
        like = BoltExtra()
    extra = BoltExtra(
        like.proto,
        like.ver1,
        TYPE_RESPONSE,
        CMD_RPC_RESPONSE,
        like.ver2,
        like.codec,
        like.switch,
        SOFA_RESPONSE_CLASS,
    )
    return Frame(
        StreamType.RESPONSE,
        request_id,
        {},
        message.encode("utf-8"),
        int(resp_status_for(status)),
        0,
        False,
        protocol=_PROTOCOL,
        extra=extra,
    )


_OPEN = CodecState.OPEN
_CLOSED = CodecState.CLOSED
_ERROR = CodecState.ERROR


class BoltCodec:
    """Bolt v1/v2 codec for one connection. See the module docstring for roles and states."""

    protocol: ClassVar[str] = _PROTOCOL
    pool_mode: ClassVar[PoolMode] = PoolMode.MULTIPLEX

    __slots__ = (
        "_buf",
        "_eof",
        "_error",
        "_error_hint",
        "_kinds",
        "_layouts",
        "_pos",
        "_sends_responses",
        "_state",
        "_want",
        "limits",
        "role",
    )

    def __init__(self, role: Role, *, limits: CodecLimits = _DEFAULT_LIMITS) -> None:
        self.role = role
        self.limits = limits
        self._buf = bytearray()
        self._pos = 0  # read offset into _buf
        self._eof = False
        self._state = _OPEN
        self._want = 0  # bytes the frame at _pos needs in total (0: not known yet)
        server = role is Role.SERVER
        self._kinds = REQUEST_KINDS if server else RESPONSE_KINDS
        types = {k[0] for k in self._kinds}
        self._layouts = {k: v for k, v in LAYOUTS.items() if k[1] in types}
        self._sends_responses = server
        self._error: RemoteProtocolError | None = None
        # (request_id, BoltExtra) of a request that failed to decode after its fixed header
        # was read: what error_reply() answers.
        self._error_hint: tuple[int, BoltExtra] | None = None

    # --- receiving ---------------------------------------------------------------------------

    @property
    def state(self) -> CodecState:
        return self._state

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of ``data``; ``b""`` means EOF.

        Data after EOF raises ``RuntimeError`` (a caller bug). In the ERROR state data is
        dropped: nothing more will be decoded.
        """
        if self._state is not _OPEN:
            if self._state is _ERROR or not data:
                return
            raise RuntimeError("receive_data() after EOF")
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("receive_data() after EOF")
        buf = self._buf
        pos = self._pos
        if pos >= _COMPACT_MIN and pos * 2 >= len(buf):
            del buf[:pos]
            self._pos = 0
        buf += data

    def next_event(self) -> Frame | Literal[ConnectionEvent.CLOSED] | Any:
        """The next complete frame, ``ConnectionEvent.CLOSED`` or ``NEED_DATA``.

        Returns ``CLOSED`` for EOF at a frame boundary (and for every later call). Raises
        ``RemoteProtocolError`` (``status_hint=CODEC_ERROR``, ``wire_code=CODEC_EXCEPTION``,
        ``request_id`` when the fixed header was readable) on bad bytes or a frame truncated
        by EOF; the state is then ERROR and every later call raises again.
        """
        if self._state is not _OPEN:
            if self._state is _CLOSED:
                return ConnectionEvent.CLOSED
            assert self._error is not None
            err = self._error
            raise RemoteProtocolError(
                f"codec is in ERROR state: {err}",
                protocol=_PROTOCOL,
                status_hint=err.status_hint,
                wire_code=err.wire_code,
                request_id=err.request_id,
            )
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < self._want and not self._eof:  # still waiting for a known frame's body
            return NEED_DATA
        if avail == 0:
            if self._eof:
                self._state = _CLOSED
                return ConnectionEvent.CLOSED
            return NEED_DATA

        # proto, then the type byte picks the fixed header (bolt.md §8)
        proto = buf[pos]
        if proto == PROTO_V1:
            type_at = 1
        elif proto == PROTO_V2:
            type_at = 2
        else:
            raise self._fail(f"unknown proto byte 0x{proto:02x} (bolt.md §5.1)")
        if avail <= type_at:
            return self._need(avail)
        typ = buf[pos + type_at]
        layout = self._layouts.get((proto, typ))
        if layout is None:
            raise self._fail(self._type_error(typ))
        size = layout.size
        if avail < size:
            return self._need(avail)

        if proto == PROTO_V1:
            _, _, cmdcode, ver2, rid, codec, ts, clen, hlen, blen = layout.struct.unpack_from(
                buf, pos
            )
            ver1 = 1
            switch = 0
            crc = 0
        else:
            (_, ver1, _, cmdcode, ver2, rid, codec, switch, ts, clen, hlen, blen) = (
                layout.struct.unpack_from(buf, pos)
            )
            crc = CRC_LEN if crc_present(proto, ver1, switch) else 0
        kind = self._kinds.get((typ, cmdcode))
        if kind is None:
            raise self._fail(
                f"cmdcode {cmdcode} not valid for type {typ} (bolt.md §5.3)", rid, buf, pos
            )
        if clen > MAX_SHORT_LEN or hlen > MAX_SHORT_LEN:
            raise self._fail(
                f"classLen {clen} / headerLen {hlen} above 32767 (bolt.md §8)", rid, buf, pos
            )
        if hlen > self.limits.max_header_size:
            raise self._fail(
                f"headerLen {hlen} exceeds the limit {self.limits.max_header_size}", rid, buf, pos
            )
        if blen < 0:
            raise self._fail(f"negative contentLen {blen}", rid, buf, pos)
        total = size + clen + hlen + blen + crc
        if total > self.limits.max_frame_size:
            raise self._fail(
                f"frame of {total} bytes exceeds the limit {self.limits.max_frame_size}",
                rid,
                buf,
                pos,
            )
        if avail < total:
            self._want = total
            return self._need(avail, rid, buf, pos)

        # one copy of the frame out of the receive buffer
        end = pos + total
        if end == len(buf):
            raw = bytes(buf) if pos == 0 else bytes(memoryview(buf)[pos:end])
            buf.clear()
            self._pos = 0
        else:
            raw = bytes(memoryview(buf)[pos:end])
            self._pos = end
        self._want = 0

        hstart = size + clen
        bstart = hstart + hlen
        bend = bstart + blen
        if crc:
            (sent,) = U32.unpack_from(raw, bend)
            if frame_crc(memoryview(raw)[:bend]) != sent:
                raise self._fail(
                    f"CRC32 mismatch: frame says 0x{sent:08x} (bolt.md §7)", rid, raw, 0
                )
        if hlen:
            try:
                validate_header_block(raw, hstart, bstart)
            except LocalProtocolError as exc:
                raise self._fail(str(exc), rid, raw, 0) from None
            headers: Mapping[str, str] = BoltHeaders(raw, hstart, bstart)
        else:
            headers = _EMPTY
        stream_type, heartbeat = kind
        extra = BoltExtra(proto, ver1, typ, cmdcode, ver2, codec, switch, raw[size:hstart])
        if typ == TYPE_RESPONSE:
            status, timeout = ts, 0
        else:
            status, timeout = 0, ts
        return Frame(
            stream_type,
            rid,
            headers,
            memoryview(raw)[bstart:bend] if blen else b"",
            status,
            timeout,
            heartbeat,
            True,
            None,
            _PROTOCOL,
            extra,
            raw,
        )

    def _need(
        self,
        avail: int,
        request_id: int | None = None,
        src: bytes | bytearray | None = None,
        at: int = 0,
    ) -> Any:
        if self._eof:
            raise self._fail(
                f"connection closed inside a frame ({avail} bytes buffered)", request_id, src, at
            )
        return NEED_DATA

    def _type_error(self, typ: int) -> str:
        if typ in (0, 1, 2):
            got = "response" if typ == TYPE_RESPONSE else "request"
            return f"{self.role.value} role received a {got} frame (type {typ})"
        return f"unknown type byte 0x{typ:02x} (bolt.md §5.2)"

    def _fail(
        self,
        msg: str,
        request_id: int | None = None,
        src: bytes | bytearray | None = None,
        at: int = 0,
    ) -> RemoteProtocolError:
        """Enter ERROR; ``src[at:]`` is the bad frame's readable fixed header, if any."""
        self._error_hint = None
        if request_id is not None and src is not None:
            self._error_hint = _request_hint(src, at)
        self._state = _ERROR
        self._buf = bytearray()  # nothing more will be decoded: drop the buffer
        self._pos = 0
        self._want = 0
        err = RemoteProtocolError(
            msg,
            protocol=_PROTOCOL,
            status_hint=ProxyStatus.CODEC_ERROR,
            wire_code=int(RespStatus.CODEC_EXCEPTION),
            request_id=request_id,
        )
        self._error = err
        return err

    def error_reply(self, message: str | None = None) -> Frame | None:
        """After a ``RemoteProtocolError``: a CODEC_EXCEPTION response to the bad request.

        Returns ``None`` unless the codec is in ERROR and the failed frame was a two-way
        request whose fixed header was readable. The reply mirrors the request's proto, ver1,
        switch and codec; its content is ``message`` (default: the error text).
        """
        if self._state is not _ERROR or self._error_hint is None:
            return None
        rid, like = self._error_hint
        text = str(self._error) if message is None else message
        return local_reply_for_id(rid, ProxyStatus.CODEC_ERROR, text, like=like)

    # --- sending -----------------------------------------------------------------------------

    def send(
        self, frame: Frame, request_id: int | None = None
    ) -> list[bytes | bytearray | memoryview]:
        """Wire buffers for ``frame`` (for ``transport.writelines()``).

        A frame with ``raw`` is forwarded as is, with only the requestId (and a v2 CRC)
        patched when ``frame.request_id`` differs. Otherwise it is encoded from its fields and
        ``extra`` (a ``BoltExtra``; without one: v1, protobuf, SofaRequest/SofaResponse).
        Bodies above ``ZERO_COPY_THRESHOLD`` are returned as a separate, uncopied buffer.
        Raises ``LocalProtocolError`` for the wrong direction (SERVER sends responses, CLIENT
        requests), an id outside u32 or a field that does not fit the wire.
        """
        is_response = frame.stream_type is StreamType.RESPONSE
        if is_response is not self._sends_responses:
            want = "responses" if self._sends_responses else "requests"
            raise LocalProtocolError(
                f"{self.role.value} role sends {want}, not {frame.stream_type.name}",
                protocol=_PROTOCOL,
            )
        rid = frame.request_id if request_id is None else request_id
        if not 0 <= rid <= MAX_REQUEST_ID:
            raise LocalProtocolError(f"request id {rid} does not fit u32", protocol=_PROTOCOL)
        if frame.raw is not None:
            return patch_raw(frame.raw, rid)
        if rid != frame.request_id:
            frame = frame.evolve(request_id=rid)
        return encode_frame(frame)

    # --- local replies and heartbeats --------------------------------------------------------

    def local_reply(self, request: Frame, status: ProxyStatus, message: str = "") -> Frame:
        """A response answering ``request`` with ``status`` mapped to respStatus.

        Same proto/ver1/switch/codec as the request, cmdcode RPC_RESPONSE, class
        SofaResponse, empty header map, content = ``message`` in UTF-8 (``raw`` is None).
        Raises ``LocalProtocolError`` if ``request`` is a response.
        """
        if request.stream_type is StreamType.RESPONSE:
            raise LocalProtocolError("local_reply() needs a request", protocol=_PROTOCOL)
        like = request.extra if isinstance(request.extra, BoltExtra) else None
        return local_reply_for_id(request.request_id, status, message, like=like)

    local_reply_for_id = staticmethod(local_reply_for_id)

    def heartbeat(self, request_id: int) -> Frame:
        """A v1 heartbeat request as anthunder sends it: codec 11, timeout 0 (bolt.md §3)."""
        extra = BoltExtra(PROTO_V1, 1, TYPE_REQUEST, CMD_HEARTBEAT, 1, CODEC_PROTOBUF, 0, b"")
        return Frame(
            StreamType.REQUEST, request_id, {}, b"", 0, 0, True, protocol=_PROTOCOL, extra=extra
        )

    def heartbeat_reply(self, request: Frame) -> Frame:
        """The ack for heartbeat ``request``: status 0, same id, proto/ver1/switch/codec echoed.

        Raises ``LocalProtocolError`` if ``request`` is not a heartbeat request.
        """
        if not request.is_heartbeat or request.stream_type is not StreamType.REQUEST:
            raise LocalProtocolError(
                "heartbeat_reply() needs a heartbeat request", protocol=_PROTOCOL
            )
        like = request.extra if isinstance(request.extra, BoltExtra) else BoltExtra()
        extra = BoltExtra(
            like.proto,
            like.ver1,
            TYPE_RESPONSE,
            CMD_HEARTBEAT,
            like.ver2,
            like.codec,
            like.switch,
            b"",
        )
        return Frame(
            StreamType.RESPONSE,
            request.request_id,
            {},
            b"",
            0,
            0,
            True,
            protocol=_PROTOCOL,
            extra=extra,
        )

    @classmethod
    def match(cls, prefix: bytes | bytearray | memoryview) -> MatchResult:
        """Protocol sniffing: see ``matcher.match``."""
        return _match(prefix)


def _request_hint(src: bytes | bytearray, at: int) -> tuple[int, BoltExtra] | None:
    """(request id, BoltExtra) of the two-way request whose fixed header is at ``src[at:]``."""
    proto = src[at]
    layout = LAYOUTS.get((proto, src[at + TYPE_OFFSET[proto]]))
    if layout is None or layout.type != TYPE_REQUEST:
        return None
    fields = layout.struct.unpack_from(src, at)
    if proto == PROTO_V1:
        _, typ, cmdcode, ver2, rid, codec = fields[:6]
        ver1, switch = 1, 0
    else:
        _, ver1, typ, cmdcode, ver2, rid, codec, switch = fields[:8]
    return rid, BoltExtra(proto, ver1, typ, cmdcode, ver2, codec, switch, b"")


# --- encoding --------------------------------------------------------------------------------


def patch_raw(raw: bytes | memoryview, request_id: int) -> list[bytes | bytearray | memoryview]:
    """``raw`` (a whole Bolt frame) under ``request_id``: only the id and the CRC change."""
    n = len(raw)
    if n <= ZERO_COPY_THRESHOLD and raw[0] == PROTO_V1 and n >= _MIN_FRAME:
        # The hot path (every pass-through v1 request and response): one copy, 4 bytes
        # patched. The fresh bytearray goes to the transport as is.
        if _unpack_u32(raw, 5)[0] == request_id:
            return [raw]
        out = bytearray(raw)
        _pack_u32_into(out, 5, request_id)
        return [out]
    proto = raw[0]
    off = REQUEST_ID_OFFSET.get(proto)
    if off is None or n < _MIN_FRAME:
        raise LocalProtocolError("Frame.raw is not a Bolt frame", protocol=_PROTOCOL)
    if U32.unpack_from(raw, off)[0] == request_id:
        return [raw]
    has_crc = crc_present(proto, raw[_V2_VER1_OFFSET], raw[_V2_SWITCH_OFFSET])
    if n <= ZERO_COPY_THRESHOLD:
        out = bytearray(raw)
        U32.pack_into(out, off, request_id)
        if has_crc:
            U32.pack_into(out, n - CRC_LEN, frame_crc(memoryview(out)[: n - CRC_LEN]))
        return [bytes(out)]
    head = bytes(raw[:off]) + U32.pack(request_id)
    view = memoryview(raw)
    if not has_crc:
        return [head, view[off + 4 :]]
    rest = view[off + 4 : n - CRC_LEN]
    return [head, rest, U32.pack(frame_crc(rest, frame_crc(head)))]


def encode_frame(frame: Frame) -> list[bytes | bytearray | memoryview]:
    """Encode ``frame`` from its fields (``raw`` ignored). No direction check: see ``send``.

    The type byte comes from ``stream_type`` and the cmdcode from ``is_heartbeat`` and the
    direction; proto/ver1/ver2/codec/switch/class name from ``frame.extra`` when it is a
    ``BoltExtra``. Raises ``LocalProtocolError`` when a field does not fit the wire.
    """
    extra = frame.extra
    stream_type = frame.stream_type
    is_response = stream_type is StreamType.RESPONSE
    heartbeat = frame.is_heartbeat
    if heartbeat and stream_type is StreamType.ONEWAY:
        raise LocalProtocolError("a heartbeat is type REQUEST (bolt.md §3)", protocol=_PROTOCOL)
    if isinstance(extra, BoltExtra):
        proto, ver1, ver2, codec, switch = (
            extra.proto,
            extra.ver1,
            extra.ver2,
            extra.codec,
            extra.switch,
        )
        class_name = extra.class_name
    else:
        proto, ver1, ver2, codec, switch = PROTO_V1, 1, 1, CODEC_PROTOBUF, 0
        class_name = (
            b"" if heartbeat else SOFA_RESPONSE_CLASS if is_response else SOFA_REQUEST_CLASS
        )
    typ = TYPE_BY_STREAM[stream_type]
    cmdcode = CMD_HEARTBEAT if heartbeat else CMD_RPC_RESPONSE if is_response else CMD_RPC_REQUEST
    header = encode_header_map(frame.headers)
    body = frame.body
    if isinstance(body, memoryview):
        if not body.c_contiguous:
            body = body.tobytes()
        elif body.ndim != 1 or body.itemsize != 1:
            body = body.cast("B")
    elif not isinstance(body, (bytes, bytearray)):
        raise LocalProtocolError(
            f"body must be bytes-like, not {type(body).__name__}", protocol=_PROTOCOL
        )
    blen = len(body)
    clen = len(class_name)
    if clen > MAX_SHORT_LEN or blen > MAX_CONTENT_LEN:
        raise LocalProtocolError(
            f"classLen {clen} / contentLen {blen} do not fit the wire", protocol=_PROTOCOL
        )
    ts = frame.status if is_response else frame.timeout_ms
    try:
        if proto == PROTO_V1:
            fixed = (V1_RESPONSE if is_response else V1_REQUEST).pack(
                proto, typ, cmdcode, ver2, frame.request_id, codec, ts, clen, len(header), blen
            )
        elif proto == PROTO_V2:
            fixed = (V2_RESPONSE if is_response else V2_REQUEST).pack(
                proto,
                ver1,
                typ,
                cmdcode,
                ver2,
                frame.request_id,
                codec,
                switch,
                ts,
                clen,
                len(header),
                blen,
            )
        else:
            raise LocalProtocolError(f"unknown proto {proto!r}", protocol=_PROTOCOL)
    except struct.error:
        raise LocalProtocolError(
            _range_error(frame, proto, ver1, ver2, codec, switch, is_response), protocol=_PROTOCOL
        ) from None
    with_crc = crc_present(proto, ver1, switch)
    if blen <= ZERO_COPY_THRESHOLD:
        if not with_crc:
            return [b"".join((fixed, class_name, header, body))]
        crc = frame_crc(body, frame_crc(header, frame_crc(class_name, frame_crc(fixed))))
        return [b"".join((fixed, class_name, header, body, U32.pack(crc)))]
    head = b"".join((fixed, class_name, header))
    if not isinstance(body, (bytes, memoryview)):
        body = memoryview(body)
    if not with_crc:
        return [head, body]
    return [head, body, U32.pack(frame_crc(body, frame_crc(head)))]


def _range_error(
    frame: Frame, proto: int, ver1: int, ver2: int, codec: int, switch: int, is_response: bool
) -> str:
    """Name the field that made ``struct.pack`` fail (error path only)."""
    checks: list[tuple[str, Any, int, int]] = [
        ("ver1", ver1, 0, 0xFF),
        ("ver2", ver2, 0, 0xFF),
        ("codec", codec, 0, 0xFF),
        ("switch", switch, 0, 0xFF),
        ("request_id", frame.request_id, 0, MAX_REQUEST_ID),
    ]
    if is_response:
        checks.append(("status", frame.status, 0, 0xFFFF))
    else:
        checks.append(("timeout_ms", frame.timeout_ms, -(2**31), 2**31 - 1))
    for name, value, low, high in checks:
        if not isinstance(value, int) or not low <= value <= high:
            return f"{name}={value!r} does not fit the Bolt wire ({low}..{high})"
    return "a field does not fit the Bolt wire"  # pragma: no cover (every packed field is checked)
