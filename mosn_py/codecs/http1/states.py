"""The HTTP/1.1 codec's two state machines, as tables (STYLE 2.8, after h11 ``_state.py``).

Receive side (``RxState``, ``decoder.py``); one edge per line, RFC 9112 sections::

    HEAD --head, no body (§6.3)------------------------> HEAD | DONE (closing message, §9.6)
    HEAD --Content-Length (§6.3 rule 6)--> BODY --------> HEAD | DONE
    HEAD --chunked (§7.1)--> CHUNK_SIZE <--> CHUNK_DATA
                             CHUNK_SIZE --last-chunk--> TRAILERS (§7.1.2) --> HEAD | DONE
    HEAD --response read until close (§6.3 rule 8)----> UNTIL_CLOSE --EOF--> CLOSED
    HEAD --101 / 2xx to CONNECT (CLIENT)---------------> TUNNEL --EOF--> CLOSED
    HEAD --Upgrade / CONNECT request (SERVER)--> [RAW_BODY] --> HOLD
    HOLD --the encoder sent 101 / 2xx------------------> TUNNEL
    HOLD --the encoder sent another final response----> HEAD | DONE (held bytes: HTTP again)
    any  --the encoder sent a closing response or a reset--> DONE (SERVER: input ignored)
    any  --bad octets----------------------------------> ERROR (for good)
    any  --EOF------------------------------------------> CLOSED (HOLD: once decided)
    (the exact edges, state by state, are ``RX_EDGES`` below)

Send side (``TxState``, ``encoder.py``)::

    IDLE --head, no body / whole message---------------> IDLE | DONE (close)
    IDLE --streamed head--> LENGTH | CHUNKED | NO_BODY --end_stream--> IDLE | DONE
    IDLE --streamed head to an HTTP/1.0 client--> UNTIL_CLOSE --end_stream--> DONE
    IDLE --Upgrade/CONNECT request (CLIENT)--> [LENGTH] --> UPGRADE_PENDING
    UPGRADE_PENDING --101 / 2xx received--> TUNNEL;  --another final response--> IDLE | DONE
    IDLE --101 / 2xx to CONNECT (SERVER)---------------> TUNNEL --end_stream--> DONE
    any  --ResetFrame, or a response before its request was whole--> DONE
    (the exact edges are ``TX_EDGES`` below)

``RX_EDGES`` and ``TX_EDGES`` list the same edges as data; a test replays every golden vector
and fuzz case and checks that each state change the codec makes is one of them.
"""

from __future__ import annotations

import enum


class RxState(enum.Enum):
    HEAD = "head"  # between messages or inside a head
    BODY = "body"  # Content-Length body, through llhttp
    CHUNK_SIZE = "chunk_size"
    CHUNK_DATA = "chunk_data"  # chunk data and its CRLF, through llhttp
    TRAILERS = "trailers"
    RAW_BODY = "raw_body"  # Content-Length body of an Upgrade request (llhttp stopped)
    UNTIL_CLOSE = "until_close"  # response body delimited by EOF
    HOLD = "hold"  # SERVER: Upgrade/CONNECT request waiting for its response
    TUNNEL = "tunnel"  # not HTTP any more: every octet is a DataFrame
    DONE = "done"  # no further message will be read: input is discarded
    CLOSED = "closed"
    ERROR = "error"


class TxState(enum.Enum):
    IDLE = "idle"  # ready for the next head
    LENGTH = "length"  # Content-Length body in progress
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until_close"  # body delimited by closing the connection
    NO_BODY = "no_body"  # a body-less message was sent with end_stream=False
    UPGRADE_PENDING = "upgrade_pending"  # CLIENT: Upgrade/CONNECT sent, response not in yet
    TUNNEL = "tunnel"
    DONE = "done"  # the connection closes: nothing more may be sent


class Framing(enum.Enum):
    """What follows a decoded head on the wire (RFC 9112 §6.3)."""

    NONE = "none"  # no body: the message is complete
    LENGTH = "length"  # Content-Length octets
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until_close"  # response body delimited by EOF
    INTERIM = "interim"  # CLIENT: a 1xx; the final response follows
    TUNNEL = "tunnel"  # CLIENT: 101 or 2xx to CONNECT; every later octet is tunnel data
    HOLD = "hold"  # SERVER: Upgrade/CONNECT request ([Content-Length body], then wait)


_R = RxState
_T = TxState

RX_EDGES: dict[RxState, frozenset[RxState]] = {
    s: frozenset(t)
    for s, t in {
        _R.HEAD: (
            *(_R.BODY, _R.CHUNK_SIZE, _R.UNTIL_CLOSE, _R.TUNNEL, _R.RAW_BODY, _R.HOLD),
            *(_R.DONE, _R.CLOSED, _R.ERROR),
        ),
        _R.BODY: (_R.HEAD, _R.DONE, _R.CLOSED),  # llhttp never fails inside a CL body
        _R.CHUNK_SIZE: (_R.CHUNK_DATA, _R.TRAILERS, _R.DONE, _R.CLOSED, _R.ERROR),
        # (the chunk's CRLF is fed in CHUNK_SIZE already: llhttp cannot fail in CHUNK_DATA)
        _R.CHUNK_DATA: (_R.CHUNK_SIZE, _R.DONE, _R.CLOSED),
        _R.TRAILERS: (_R.HEAD, _R.DONE, _R.CLOSED, _R.ERROR),
        _R.RAW_BODY: (_R.HOLD, _R.DONE, _R.CLOSED),
        _R.UNTIL_CLOSE: (_R.CLOSED, _R.ERROR),  # CLIENT only: max_body_size, EOF
        _R.HOLD: (_R.TUNNEL, _R.HEAD, _R.DONE),  # EOF waits for the decision
        _R.TUNNEL: (_R.CLOSED, _R.DONE),  # DONE: a ResetFrame was sent
        _R.DONE: (_R.CLOSED,),
        _R.CLOSED: (),
        _R.ERROR: (),
    }.items()
}

TX_EDGES: dict[TxState, frozenset[TxState]] = {
    s: frozenset(t)
    for s, t in {
        _T.IDLE: (
            *(_T.LENGTH, _T.CHUNKED, _T.UNTIL_CLOSE, _T.NO_BODY),
            *(_T.UPGRADE_PENDING, _T.TUNNEL, _T.DONE),
        ),
        _T.LENGTH: (_T.IDLE, _T.DONE, _T.UPGRADE_PENDING),
        _T.CHUNKED: (_T.IDLE, _T.DONE),
        _T.UNTIL_CLOSE: (_T.DONE,),
        _T.NO_BODY: (_T.IDLE, _T.DONE),
        _T.UPGRADE_PENDING: (_T.TUNNEL, _T.IDLE, _T.DONE),
        _T.TUNNEL: (_T.DONE,),
        _T.DONE: (),
    }.items()
}
