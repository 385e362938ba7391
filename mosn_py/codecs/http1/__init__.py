"""HTTP/1.1 codec (RFC 9112), parsing with httptools (llhttp), encoding by hand.

- ``wire``: RFC notes, ``Http1Extra``, the request/response ``Exchange``, status mapping,
  sniffing
- ``states``: the receive and send state machines, as tables
- ``heads``: head semantics both ways (Host, framing, persistence; encoding, validation)
- ``decoder``: bytes -> frames (llhttp fed message boundary by message boundary)
- ``encoder``: frames -> buffers (framing fields owned by the codec)
- ``codec``: ``Http1Codec``

Sans-IO: nothing here imports asyncio, uvloop, socket or selectors.
"""

from __future__ import annotations

from mosn_py.codecs.http1.codec import Http1Codec, reply_frame
from mosn_py.codecs.http1.states import RX_EDGES, TX_EDGES, Framing, RxState, TxState
from mosn_py.codecs.http1.wire import (
    DEFAULT_MESSAGES,
    HTTP_STATUS_BY_PROXY_STATUS,
    Http1Extra,
    http_status_for,
    match,
)

__all__ = [
    "DEFAULT_MESSAGES",
    "HTTP_STATUS_BY_PROXY_STATUS",
    "RX_EDGES",
    "TX_EDGES",
    "Framing",
    "Http1Codec",
    "Http1Extra",
    "RxState",
    "TxState",
    "http_status_for",
    "match",
    "reply_frame",
]
