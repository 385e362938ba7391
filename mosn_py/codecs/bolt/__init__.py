"""Bolt (SOFARPC) v1/v2 codec, after MOSN ``pkg/protocol/xprotocol/bolt``.

- ``wire``: constants, fixed-header layouts, respStatus table, ProxyStatus mapping, ``BoltExtra``
- ``headers``: the SOFARPC header map
- ``codec``: ``BoltCodec`` (decode, encode, local replies, heartbeats)
- ``matcher``: protocol sniffing

Sans-IO: nothing here imports asyncio, uvloop, socket or selectors.
"""

from __future__ import annotations

from mosn_py.codecs.base import CodecState
from mosn_py.codecs.bolt.codec import (
    ZERO_COPY_THRESHOLD,
    BoltCodec,
    encode_frame,
    local_reply_for_id,
    patch_raw,
)
from mosn_py.codecs.bolt.headers import decode_header_map, encode_header_map
from mosn_py.codecs.bolt.matcher import match
from mosn_py.codecs.bolt.wire import (
    CMD_HEARTBEAT,
    CMD_RPC_REQUEST,
    CMD_RPC_RESPONSE,
    CODEC_HESSIAN2,
    CODEC_PROTOBUF,
    PROTO_V1,
    PROTO_V2,
    RESP_STATUS_BY_PROXY_STATUS,
    SOFA_REQUEST_CLASS,
    SOFA_RESPONSE_CLASS,
    TYPE_ONEWAY,
    TYPE_REQUEST,
    TYPE_RESPONSE,
    BoltExtra,
    RespStatus,
    crc_present,
    resp_status_for,
)

__all__ = [
    "CMD_HEARTBEAT",
    "CMD_RPC_REQUEST",
    "CMD_RPC_RESPONSE",
    "CODEC_HESSIAN2",
    "CODEC_PROTOBUF",
    "PROTO_V1",
    "PROTO_V2",
    "RESP_STATUS_BY_PROXY_STATUS",
    "SOFA_REQUEST_CLASS",
    "SOFA_RESPONSE_CLASS",
    "TYPE_ONEWAY",
    "TYPE_REQUEST",
    "TYPE_RESPONSE",
    "ZERO_COPY_THRESHOLD",
    "BoltCodec",
    "BoltExtra",
    "CodecState",
    "RespStatus",
    "crc_present",
    "decode_header_map",
    "encode_frame",
    "encode_header_map",
    "local_reply_for_id",
    "match",
    "patch_raw",
    "resp_status_for",
]
