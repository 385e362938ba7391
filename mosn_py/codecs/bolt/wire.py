"""Bolt (SOFARPC) wire constants and layouts. Authority: ``shared/reference/bolt.md``.

All integers are big-endian. Bolt v1 (proto 0x01), bolt.md §1-§2::

    Request: 22-byte fixed header
     0       1       2       4       5               9       10              14
    +-------+-------+-------+-------+---------------+-------+---------------+
    | proto | type  |cmdcode| ver2  |   requestId   | codec |    timeout    |
    |  0x01 | 1 / 2 |  (2)  |  0x01 |      (4)      |  (1)  |   (4, int32)  |
    +-------+-------+-------+-------+---------------+-------+---------------+
     14      16      18              22
    +-------+-------+---------------+-----------+--------+---------+
    |classLn|headLen|  contentLen   | className | header | content |
    |  (2)  |  (2)  |   (4, int32)  |           |        |         |
    +-------+-------+---------------+-----------+--------+---------+

    Response: 20-byte fixed header; type 0, and respStatus(2) where the request has timeout(4)
     0       1       2       4       5               9       10      12      14      16      20
    +-------+-------+-------+-------+---------------+-------+-------+-------+-------+-------+
    | proto | type  |cmdcode| ver2  |   requestId   | codec |status |classLn|headLen|contLen|
    +-------+-------+-------+-------+---------------+-------+-------+-------+-------+-------+

Bolt v2 (proto 0x02), bolt.md §7: ``ver1(1)`` after proto and ``switch(1)`` after codec::

    request  (24): proto ver1 type cmdcode(2) ver2 requestId(4) codec switch timeout(4)
                   classLen(2) headerLen(2) contentLen(4)
    response (22): proto ver1 type cmdcode(2) ver2 requestId(4) codec switch respStatus(2)
                   classLen(2) headerLen(2) contentLen(4)
    then className, header, content, then CRC32(4) when the CRC is on (``crc_present``)

The header block is the SOFARPC "SimpleMapSerializer" map (``headers.py``, bolt.md §4).
The frame is complete when ``fixed + classLen + headerLen + contentLen (+4 CRC)`` bytes
arrived (bolt.md §8).
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from mosn_py.codecs.base import StreamType
from mosn_py.errors import ProxyStatus

# --- value tables (bolt.md §5) ---------------------------------------------------------------

PROTO_V1: Final = 0x01
PROTO_V2: Final = 0x02

TYPE_RESPONSE: Final = 0x00
TYPE_REQUEST: Final = 0x01
TYPE_ONEWAY: Final = 0x02

CMD_HEARTBEAT: Final = 0  # request: heartbeat, response: heartbeat ack
CMD_RPC_REQUEST: Final = 1
CMD_RPC_RESPONSE: Final = 2

CODEC_HESSIAN2: Final = 1
CODEC_JAVA: Final = 2
CODEC_HESSIAN_LEGACY: Final = 4
CODEC_PROTOBUF: Final = 11
CODEC_JSON: Final = 12

CRC_SWITCH_BIT: Final = 0x01  # switch bit 0 (Java ProtocolSwitch.CRC_SWITCH_INDEX)

SOFA_REQUEST_CLASS: Final = b"com.alipay.sofa.rpc.core.request.SofaRequest"
SOFA_RESPONSE_CLASS: Final = b"com.alipay.sofa.rpc.core.response.SofaResponse"

# classLen/headerLen are read as *signed* int16 by Java and sofa-bolt-node (bolt.md §8).
MAX_SHORT_LEN: Final = 0x7FFF
MAX_CONTENT_LEN: Final = 0x7FFFFFFF
MAX_REQUEST_ID: Final = 0xFFFFFFFF
CRC_LEN: Final = 4


class RespStatus(enum.IntEnum):
    """Java ``ResponseStatus`` (bolt.md §5.5). Note 0x10..0x12 are hex: no 0x0a..0x0f."""

    SUCCESS = 0x0000
    ERROR = 0x0001
    SERVER_EXCEPTION = 0x0002
    UNKNOWN = 0x0003
    SERVER_THREADPOOL_BUSY = 0x0004
    ERROR_COMM = 0x0005
    NO_PROCESSOR = 0x0006
    TIMEOUT = 0x0007
    CLIENT_SEND_ERROR = 0x0008
    CODEC_EXCEPTION = 0x0009
    CONNECTION_CLOSED = 0x0010
    SERVER_SERIAL_EXCEPTION = 0x0011
    SERVER_DESERIAL_EXCEPTION = 0x0012


# ProxyStatus -> respStatus, as MOSN's bolt ``Mapping`` does it. A status missing from the
# table (a ProxyStatus added later) answers ERROR: see ``resp_status_for``.
RESP_STATUS_BY_PROXY_STATUS: Final = MappingProxyType(
    {
        ProxyStatus.OK: RespStatus.SUCCESS,
        ProxyStatus.ROUTE_NOT_FOUND: RespStatus.NO_PROCESSOR,
        ProxyStatus.NO_HEALTHY_UPSTREAM: RespStatus.NO_PROCESSOR,
        ProxyStatus.UPSTREAM_CONNECT_FAILED: RespStatus.NO_PROCESSOR,
        ProxyStatus.UPSTREAM_RESET: RespStatus.NO_PROCESSOR,
        ProxyStatus.UPSTREAM_OVERFLOW: RespStatus.SERVER_THREADPOOL_BUSY,
        ProxyStatus.DRAINING: RespStatus.SERVER_THREADPOOL_BUSY,
        ProxyStatus.TIMEOUT: RespStatus.TIMEOUT,
        ProxyStatus.CODEC_ERROR: RespStatus.CODEC_EXCEPTION,
        ProxyStatus.INTERNAL_ERROR: RespStatus.ERROR,
    }
)


def resp_status_for(status: ProxyStatus) -> RespStatus:
    """The respStatus a local reply carries for ``status`` (unknown statuses: ERROR)."""
    return RESP_STATUS_BY_PROXY_STATUS.get(status, RespStatus.ERROR)


def crc_present(proto: int, ver1: int, switch: int) -> bool:
    """Does a frame with this ``proto``/``ver1``/``switch`` carry a CRC32 trailer?

    Java sofa-bolt (the reference implementation; ``RpcCommandEncoderV2`` /
    ``RpcCommandDecoderV2``) writes and reads the CRC only when ``ver1 == 2`` *and* switch
    bit 0 is set. Its ``RpcRemoting`` turns the CRC switch on by default while ``ver1`` stays 1,
    so a default Java v2 client sends ``ver1=1, switch=1`` and no trailer: framing on the
    switch alone (as sofa-bolt-node does) would misread it. For ``ver1 == 2`` (the captured
    sofa-bolt-node v2 traffic) both rules agree (bolt.md §7).
    """
    return proto == PROTO_V2 and ver1 == 2 and bool(switch & CRC_SWITCH_BIT)


def frame_crc(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """CRC32 (zlib/IEEE) as carried in the trailer, unsigned (Java writes it as int32)."""
    return zlib.crc32(data, start) & 0xFFFFFFFF


# --- the frame's protocol-specific fields ----------------------------------------------------


@dataclass(slots=True)
class BoltExtra:
    """Everything in a Bolt frame that ``Frame`` has no neutral field for.

    Decoded frames carry one; ``send()`` reads it to re-encode a frame exactly. ``type`` and
    ``cmdcode`` are informative: the encoder derives both from ``Frame.stream_type`` and
    ``Frame.is_heartbeat``. ``ver1`` and ``switch`` exist on the wire only in v2; decoded v1
    frames report the defaults (1, 0). Treat as immutable (not ``frozen`` for the same reason
    ``Frame`` is not: construction cost on the hot path).
    """

    proto: int = PROTO_V1
    ver1: int = 1
    type: int = TYPE_REQUEST
    cmdcode: int = CMD_RPC_REQUEST
    ver2: int = 1
    codec: int = CODEC_PROTOBUF
    switch: int = 0
    class_name: bytes = b""

    @property
    def has_crc(self) -> bool:
        return crc_present(self.proto, self.ver1, self.switch)


# --- fixed-header layouts --------------------------------------------------------------------

V1_REQUEST: Final = struct.Struct(">BBHBIBiHHi")  # 22: ... timeout(i) classLen headerLen contentLen
V1_RESPONSE: Final = struct.Struct(">BBHBIBHHHi")  # 20: ... respStatus(H) ...
V2_REQUEST: Final = struct.Struct(">BBBHBIBBiHHi")  # 24
V2_RESPONSE: Final = struct.Struct(">BBBHBIBBHHHi")  # 22
U32: Final = struct.Struct(">I")
I32: Final = struct.Struct(">i")

# Offset of the 4 requestId bytes (bolt.md §1, §7): what a pass-through patch rewrites.
REQUEST_ID_OFFSET: Final = {PROTO_V1: 5, PROTO_V2: 6}
# Offset of the type byte, which decides the layout (bolt.md §8).
TYPE_OFFSET: Final = {PROTO_V1: 1, PROTO_V2: 2}


@dataclass(slots=True, frozen=True)
class Layout:
    """One fixed header: which struct, how long, and what its frames are."""

    proto: int
    type: int
    struct: struct.Struct
    size: int


LAYOUTS: Final = MappingProxyType(
    {
        (PROTO_V1, TYPE_REQUEST): Layout(PROTO_V1, TYPE_REQUEST, V1_REQUEST, 22),
        (PROTO_V1, TYPE_ONEWAY): Layout(PROTO_V1, TYPE_ONEWAY, V1_REQUEST, 22),
        (PROTO_V1, TYPE_RESPONSE): Layout(PROTO_V1, TYPE_RESPONSE, V1_RESPONSE, 20),
        (PROTO_V2, TYPE_REQUEST): Layout(PROTO_V2, TYPE_REQUEST, V2_REQUEST, 24),
        (PROTO_V2, TYPE_ONEWAY): Layout(PROTO_V2, TYPE_ONEWAY, V2_REQUEST, 24),
        (PROTO_V2, TYPE_RESPONSE): Layout(PROTO_V2, TYPE_RESPONSE, V2_RESPONSE, 22),
    }
)
assert all(lay.struct.size == lay.size for lay in LAYOUTS.values())

# (type, cmdcode) -> (stream type, is_heartbeat): what each role may receive (bolt.md §3, §5).
# A heartbeat is always type REQUEST in every implementation; a oneway heartbeat is refused.
REQUEST_KINDS: Final = MappingProxyType(
    {
        (TYPE_REQUEST, CMD_RPC_REQUEST): (StreamType.REQUEST, False),
        (TYPE_REQUEST, CMD_HEARTBEAT): (StreamType.REQUEST, True),
        (TYPE_ONEWAY, CMD_RPC_REQUEST): (StreamType.ONEWAY, False),
    }
)
RESPONSE_KINDS: Final = MappingProxyType(
    {
        (TYPE_RESPONSE, CMD_RPC_RESPONSE): (StreamType.RESPONSE, False),
        (TYPE_RESPONSE, CMD_HEARTBEAT): (StreamType.RESPONSE, True),
    }
)

# StreamType -> type byte, for the encoder.
TYPE_BY_STREAM: Final = MappingProxyType(
    {
        StreamType.REQUEST: TYPE_REQUEST,
        StreamType.ONEWAY: TYPE_ONEWAY,
        StreamType.RESPONSE: TYPE_RESPONSE,
    }
)
