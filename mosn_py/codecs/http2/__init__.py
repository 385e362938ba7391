"""HTTP/2 (RFC 9113) codec over python-hyper h2, and gRPC's local-reply terms.

Modules: ``wire`` (preface, settings, header conversion), ``connection`` (the h2 subclass:
refused streams, graceful GOAWAY, split flow-control acks), ``streams`` (per-stream state,
pending DATA scheduler), ``codec`` (``Http2Codec``), ``replies`` (HTTP local replies),
``grpc`` (gRPC status mapping, Trailers-Only replies, grpc-message / grpc-timeout).
"""

from __future__ import annotations

from mosn_py.codecs.base import CodecState
from mosn_py.codecs.http2.codec import Http2Codec
from mosn_py.codecs.http2.grpc import (
    GRPC_STATUS,
    GrpcStatus,
    decode_grpc_message,
    encode_grpc_message,
    grpc_status_for,
    grpc_status_from_http,
    is_grpc,
    parse_grpc_timeout,
    trailers_only,
)
from mosn_py.codecs.http2.replies import HTTP_STATUS, http_local_reply, local_reply
from mosn_py.codecs.http2.wire import PREFACE, match

__all__ = [
    "GRPC_STATUS",
    "HTTP_STATUS",
    "PREFACE",
    "CodecState",
    "GrpcStatus",
    "Http2Codec",
    "decode_grpc_message",
    "encode_grpc_message",
    "grpc_status_for",
    "grpc_status_from_http",
    "http_local_reply",
    "is_grpc",
    "local_reply",
    "match",
    "parse_grpc_timeout",
    "trailers_only",
]
