"""Bolt v1 frame templates and header layouts shared by the benchmark tools.

The templates are the bytes recorded between a real anthunder AioClient and a real
anthunder AioListener (fixture ``anthunder_aio__hello`` in the shared Bolt fixtures,
see ``reference/bolt.md`` section 2). They are embedded here so ``bench/`` runs
without the fixtures directory; ``load_hex_file()`` accepts any other capture.

Request (v1, 22-byte fixed header)::

    0 proto | 1 type | 2-3 cmdcode | 4 ver2 | 5-8 requestId | 9 codec | 10-13 timeout
    14-15 classLen | 16-17 headerLen | 18-21 contentLen | class | header | content

Response (v1, 20-byte fixed header)::

    0 proto | 1 type | 2-3 cmdcode | 4 ver2 | 5-8 requestId | 9 codec | 10-11 respStatus
    12-13 classLen | 14-15 headerLen | 16-19 contentLen | class | header | content
"""

from __future__ import annotations

import struct

# anthunder_aio__hello.request.hex (428 bytes, requestId 0x1b908b6a)
HELLO_REQUEST_HEX = (
    "01010001011b908b6a0b00000bb8002c015500000015636f6d2e616c697061792e736f66612e727063"
    "2e636f72652e726571756573742e536f66615265717565737400000018736f66615f686561645f7461"
    "726765745f736572766963650000003b636f6d2e616c697061792e7270632e636f6d6d6f6e2e736572"
    "766963652e6661636164652e70622e53616d706c655365727669636550623a312e3000000015736f66"
    "615f686561645f6d6574686f645f6e616d650000000568656c6c6f00000014736f66615f686561645f"
    "7461726765745f6170700000000000000007736572766963650000003b636f6d2e616c697061792e72"
    "70632e636f6d6d6f6e2e736572766963652e6661636164652e70622e53616d706c6553657276696365"
    "50623a312e3000000003756964000000000000001d7270635f74726163655f636f6e746578742e736f"
    "6661547261636549640000001e37663030303030313137393534373835383131313431303031313835"
    "39310000001b7270635f74726163655f636f6e746578742e736f6661527063496400000001310a0b61"
    "6e7468756e6465722d3110011a0401020304"
)

# anthunder_aio__hello.response.hex (93 bytes, respStatus 0, no header map)
HELLO_RESPONSE_HEX = (
    "01000002011b908b6a0b0000002e00000000001b636f6d2e616c697061792e736f66612e7270632e63"
    "6f72652e726573706f6e73652e536f6661526573706f6e73650a1168656c6c6f20616e7468756e6465"
    "722d3110011a0401020304"
)

PROTO_V1 = 0x01
TYPE_RESPONSE = 0x00
TYPE_REQUEST = 0x01
TYPE_ONEWAY = 0x02
CMD_HEARTBEAT = 0x0000
CMD_REQUEST = 0x0001
CMD_RESPONSE = 0x0002

REQUEST_HEADER_LEN = 22
RESPONSE_HEADER_LEN = 20
REQUEST_ID_OFFSET = 5  # bytes 5..8 in both v1 request and response

# Full fixed headers (for validation / tools that want every field).
REQUEST_HEADER = struct.Struct(">BBHBiBiHHI")   # proto type cmd ver2 id codec timeout cl hl ctl
RESPONSE_HEADER = struct.Struct(">BBHBiBHHHI")  # proto type cmd ver2 id codec status cl hl ctl

# Hot-path views: skip what the benchmark does not need.
# response: requestId, respStatus, classLen, headerLen, contentLen
RESPONSE_HOT = struct.Struct(">5xi1xHHHI")
# request: cmdcode, requestId, classLen, headerLen, contentLen (type is read as a byte)
REQUEST_HOT = struct.Struct(">2xH1xi5xHHI")
REQUEST_ID = struct.Struct(">i")


def load_hex_file(path: str) -> bytes:
    """Read a one-line lowercase hex capture (fixture format) into bytes."""
    with open(path, encoding="ascii") as f:
        return bytes.fromhex("".join(f.read().split()))


def check_request(frame: bytes) -> None:
    """Raise ValueError unless ``frame`` is exactly one Bolt v1 request."""
    if len(frame) < REQUEST_HEADER_LEN:
        raise ValueError(f"request template too short ({len(frame)} bytes)")
    proto, typ, _cmd, _v, _rid, _codec, _to, cl, hl, ctl = REQUEST_HEADER.unpack_from(frame)
    if proto != PROTO_V1 or typ not in (TYPE_REQUEST, TYPE_ONEWAY):
        raise ValueError(f"not a Bolt v1 request (proto={proto}, type={typ})")
    if typ == TYPE_ONEWAY:
        raise ValueError("oneway requests get no response; use a type-1 request template")
    want = REQUEST_HEADER_LEN + cl + hl + ctl
    if want != len(frame):
        raise ValueError(f"request template is {len(frame)} bytes, header says {want}")


def check_response(frame: bytes) -> None:
    """Raise ValueError unless ``frame`` is exactly one Bolt v1 response."""
    if len(frame) < RESPONSE_HEADER_LEN:
        raise ValueError(f"response template too short ({len(frame)} bytes)")
    proto, typ, _cmd, _v, _rid, _codec, _st, cl, hl, ctl = RESPONSE_HEADER.unpack_from(frame)
    if proto != PROTO_V1 or typ != TYPE_RESPONSE:
        raise ValueError(f"not a Bolt v1 response (proto={proto}, type={typ})")
    want = RESPONSE_HEADER_LEN + cl + hl + ctl
    if want != len(frame):
        raise ValueError(f"response template is {len(frame)} bytes, header says {want}")


def split_at_request_id(frame: bytes) -> tuple[bytes, bytes]:
    """Return (bytes before the request id, bytes after it) for id patching by join."""
    return frame[:REQUEST_ID_OFFSET], frame[REQUEST_ID_OFFSET + 4:]


def heartbeat_ack(request_id: int, codec: int = 0x0B) -> bytes:
    """20-byte heartbeat ack (cmdcode 0, status 0, no class/header/content)."""
    return RESPONSE_HEADER.pack(PROTO_V1, TYPE_RESPONSE, CMD_HEARTBEAT, 1, request_id,
                                codec, 0, 0, 0, 0)


HELLO_REQUEST = bytes.fromhex(HELLO_REQUEST_HEX)
HELLO_RESPONSE = bytes.fromhex(HELLO_RESPONSE_HEX)
check_request(HELLO_REQUEST)
check_response(HELLO_RESPONSE)
