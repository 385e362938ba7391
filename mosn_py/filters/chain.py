"""The stream-filter contract (after Envoy's ``envoy/http/filter.h``, MOSN's phases), and the
machinery that runs request and response bodies through the filters (``BodyFlow``).

A stream filter sees one request/response exchange. Its methods are plain ``def`` and must
return quickly; a filter that has to wait (a timer, an external call) returns a STOP status,
does its waiting through ``callbacks.spawn(coro)`` or ``callbacks.loop``, and later calls
``callbacks.continue_decoding()`` (or ``continue_encoding()``).

Request path (decode), in order of the filter list, grouped by ``phase``::

    BEFORE_ROUTE filters -> route match -> AFTER_ROUTE filters -> host choice
        -> AFTER_CHOOSE_HOST filters -> upstream

Response path (encode): every filter's ``encode_*`` in *reverse* list order, then the
downstream codec. Local replies (from a filter or from the proxy) take the encode path too.

Frames and hooks
----------------
Single-frame protocols (Bolt now; Redis, memcached later) carry a whole request or response in
one frame: filters get ``decode_headers(frame, end_stream=True)`` and
``encode_headers(frame, end_stream=True)`` and nothing else. Streaming protocols (HTTP/1.1,
HTTP/2, gRPC) send a head, body chunks, maybe trailers: the head goes to ``*_headers`` with
``end_stream`` False when a body follows, each chunk to ``*_data(data, end_stream)``, the
trailers to ``*_trailers(trailers)``. A local reply is one whole frame (its body inside): only
``encode_headers`` sees it.

A body hook is called only on filters whose class overrides it (``body_hooks``, looked up
once per class). When no filter of a stream overrides the hooks of a direction, its chunks
move exactly as without filters (except while a filter holds that direction's head). A
filter that overrides any body hook is given its own callbacks object, a ``FilterHandle``
(through ``set_callbacks``), as soon as the stream turns out to carry a body: before its
first hook on a request with a body, else before ``encode_headers`` of a response with one.
Through it the stream knows which filter continues, injects or replaces data. Do not hold on
to an earlier ``callbacks``.

Order. Chunks and trailers go through the filters in the order the head did (decode: phase,
then list order; encode: reverse list order) and never overtake the head: they reach the
filters the head has passed, plus the filter holding the head with ``STOP_ITERATION`` if it
overrides the hook (Envoy's rule). What cannot go on waits, kept by the stream, until the head
moves on; then it goes on in arrival order (head, data, trailers); chunks that waited together
go on as one.

Statuses
--------
``HeadersStatus``
  - ``CONTINUE``: pass the head to the next filter.
  - ``STOP_ITERATION``: do not call later filters now. The head waits until this filter calls
    ``continue_decoding()``/``continue_encoding()``. This filter still gets the body chunks
    and trailers if it overrides those hooks, and CONTINUE from such a hook counts as
    ``continue_*()`` (the head goes on, then the chunk, Envoy's rule); a filter without them is
    not asked. What waits is kept by the stream up to the buffer limit (below); beyond it a
    request is answered 413 (counted as ``ProxyStatus.CODEC_ERROR``, which is what a gRPC
    call is told), a response 500 (``INTERNAL_ERROR``), or reset once its head went out.
  - ``STOP_ALL_BUFFER``: like STOP_ITERATION, but this filter does not see the body or
    trailers either until it continues; then it gets what waited (the data as one chunk)
    before later filters do.
  - ``STOP_ALL_WATERMARK``: like STOP_ALL_BUFFER, but at the limit the stream stops reading
    the source (backpressure: decode, the client connection; encode, the upstream connection,
    HTTP/1.1 only) instead of failing.
``DataStatus`` (from ``decode_data``/``encode_data``)
  - ``CONTINUE``: pass the chunk (as replaced, see below) to the next filter.
  - ``STOP_BUFFER``: the stream keeps a copy of the chunk; the filter keeps nothing. With the
    next chunk, the filter is offered what was kept and the new chunk as ONE chunk (a
    memoryview), so it sees a growing prefix of the body until it returns CONTINUE, which
    passes the whole on. If trailers come instead, ``*_trailers`` is its end signal: CONTINUE
    there sends the kept data, then the trailers. ``continue_*()`` sends the kept data to the
    next filter (without offering it to this one again). After a chunk with ``end_stream``
    nothing more comes: the filter must call ``continue_*()`` (or inject, or reply).
  - ``STOP_WATERMARK``: as STOP_BUFFER, with backpressure instead of failure at the limit.
  - ``STOP_NO_BUFFER``: the filter took the chunk; nothing is kept or passed on. It sends
    data on with ``inject_*_data()``. If the chunk ended the stream the end is kept:
    ``continue_*()`` sends it on (an empty chunk with ``end_stream``) unless the filter has
    injected ``end_stream=True`` itself.
``TrailersStatus``: ``CONTINUE``; ``STOP_ITERATION`` holds the trailers (and anything kept for
  this filter) until it calls ``continue_*()``.

After ``send_local_reply()`` a filter must return ``STOP_ITERATION`` (from a body hook, any
status): the reply is on its way, the request side is over. What filters kept and the rest
of the request body are dropped, and the upstream request, if any, is cancelled.

Buffer limit
------------
Everything the stream keeps for one direction counts against one limit: the listener's codec
``max_body_size`` when set, else its ``max_frame_size`` (16 MiB by default), else
``DEFAULT_BUFFER_LIMIT``. Beyond it the buffer statuses fail as said above. The watermark
statuses pause the source instead, and resume it once the kept data is back to half the
limit; past twice the limit (bytes already read when the pause began, or an HTTP/2 upstream,
which cannot be paused alone) they fail too. So memory per stream stays bounded, which is
why HTTP/2 DATA can still be acknowledged (the peer's window reopened) as it is received,
kept or not, as without filters: a peer can make the stream keep at most the limit, and
pausing the connection stops it at the TCP level.

Continuing, replacing, injecting
--------------------------------
``continue_*()`` from filter F: if F holds the head, the head goes on (it may stop at a later
filter), then what waited behind it; then what the stream kept for F (STOP_BUFFER or
STOP_WATERMARK data, held trailers, a kept end) goes to the filter after F. A filter without
body hooks only ever holds a head: its ``continue_*()`` (the stream's own) resumes the head.

``replace_decoded_data(data)`` (``replace_encoded_data``): during this filter's data hook, the
chunk passed on (or kept) is ``data`` instead; outside it (e.g. before ``continue_*()``), it
replaces what the stream keeps for this filter, if anything.

``inject_decoded_data(data, end_stream)`` (``inject_encoded_data``): send ``data`` to the
filters after this one, now. If the head has not passed this filter yet, the data waits just
after it and goes on right behind the head, before anything kept for this filter. With
``end_stream`` what the stream still keeps for this filter is dropped.

The stream may keep objects passed to ``replace_*``/``inject_*``: do not change them later.
Data handed to a hook may be a view of a buffer that is reused: copy what you keep.

Tunnels and retries
-------------------
After a 101 (or a 2xx to CONNECT) the exchange is a tunnel: its bytes are not an HTTP body and
bypass the body hooks (a response head still held by a filter still holds them back). Only
body-less requests are retried: the head as the filters left it.

Factories
---------
A filter is registered by name with a factory class: ``name`` (ClassVar), ``phase``, and
``from_config(options: dict) -> factory`` which validates its options once (raising
``ConfigError`` with a message) and returns a zero-argument callable creating one filter per
stream (Envoy's ``FilterFactoryCb``): config is parsed once, never per request.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mosn_py.codecs.base import Frame, HeaderList
from mosn_py.errors import ProxyStatus

if TYPE_CHECKING:
    import asyncio

    from mosn_py.router.routes import CompiledRule
    from mosn_py.upstream.cluster import Cluster

Body = bytes | memoryview
"""A body chunk as filters see it."""

DEFAULT_BUFFER_LIMIT = 16 << 20
"""Bytes a stream keeps per direction for its filters when the listener sets no limit."""


class HeadersStatus(enum.Enum):
    CONTINUE = "continue"
    STOP_ITERATION = "stop_iteration"
    STOP_ALL_BUFFER = "stop_all_buffer"
    STOP_ALL_WATERMARK = "stop_all_watermark"


class DataStatus(enum.Enum):
    CONTINUE = "continue"
    STOP_BUFFER = "stop_buffer"
    STOP_WATERMARK = "stop_watermark"
    STOP_NO_BUFFER = "stop_no_buffer"


class TrailersStatus(enum.Enum):
    CONTINUE = "continue"
    STOP_ITERATION = "stop_iteration"


class Phase(enum.IntEnum):
    BEFORE_ROUTE = 0
    AFTER_ROUTE = 1
    AFTER_CHOOSE_HOST = 2


class FilterCallbacks(Protocol):
    """What a filter may ask of its stream."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def request(self) -> Frame: ...

    @property
    def response(self) -> Frame | None: ...

    @property
    def route(self) -> CompiledRule | None: ...

    @property
    def stream_info(self) -> dict[str, Any]: ...

    def continue_decoding(self) -> None: ...

    def continue_encoding(self) -> None: ...

    def send_local_reply(self, status: ProxyStatus, message: str = "") -> None: ...

    def replace_request(self, frame: Frame) -> None: ...

    def replace_response(self, frame: Frame) -> None: ...

    def cluster(self, name: str) -> Cluster | None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...

    def inject_decoded_data(self, data: Body, end_stream: bool = False) -> None: ...

    def inject_encoded_data(self, data: Body, end_stream: bool = False) -> None: ...

    def replace_decoded_data(self, data: Body) -> None: ...

    def replace_encoded_data(self, data: Body) -> None: ...


class StreamFilter:
    """Base class: every hook continues; override what you need."""

    __slots__ = ("callbacks",)
    phase: ClassVar[Phase] = Phase.BEFORE_ROUTE

    def __init__(self) -> None:
        self.callbacks: FilterCallbacks

    def set_callbacks(self, callbacks: FilterCallbacks) -> None:
        self.callbacks = callbacks

    def decode_headers(self, frame: Frame, end_stream: bool) -> HeadersStatus:
        return HeadersStatus.CONTINUE

    def decode_data(self, data: Body, end_stream: bool) -> DataStatus:
        return DataStatus.CONTINUE

    def decode_trailers(self, trailers: Mapping[str, str]) -> TrailersStatus:
        return TrailersStatus.CONTINUE

    def encode_headers(self, frame: Frame, end_stream: bool) -> HeadersStatus:
        return HeadersStatus.CONTINUE

    def encode_data(self, data: Body, end_stream: bool) -> DataStatus:
        return DataStatus.CONTINUE

    def encode_trailers(self, trailers: Mapping[str, str]) -> TrailersStatus:
        return TrailersStatus.CONTINUE

    def on_destroy(self) -> None:
        """The stream ended (answered, reset or its connection closed): drop timers/tasks."""


class StreamFilterFactory(Protocol):
    name: ClassVar[str]
    phase: ClassVar[Phase]

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> Callable[[], StreamFilter]: ...


# --- body hooks -----------------------------------------------------------------------------

DECODE_DATA, DECODE_TRAILERS, ENCODE_DATA, ENCODE_TRAILERS = 1, 2, 4, 8
DECODE_HOOKS = DECODE_DATA | DECODE_TRAILERS
ENCODE_HOOKS = ENCODE_DATA | ENCODE_TRAILERS
_HOOK_BITS = (
    ("decode_data", DECODE_DATA),
    ("decode_trailers", DECODE_TRAILERS),
    ("encode_data", ENCODE_DATA),
    ("encode_trailers", ENCODE_TRAILERS),
)
_hooks_by_class: dict[type, int] = {}


def body_hooks(cls: type) -> int:
    """The body hooks ``cls`` overrides (``DECODE_DATA | ...``), computed once per class."""
    mask = _hooks_by_class.get(cls)
    if mask is None:
        mask = 0
        for name, bit in _HOOK_BITS:
            impl = getattr(cls, name, None)
            if impl is not None and impl is not getattr(StreamFilter, name):
                mask |= bit
        _hooks_by_class[cls] = mask
    return mask


class BodyEngine(Protocol):
    """What a stream offers its ``BodyFlow``s and ``FilterHandle``s (``l7_proxy.Stream``)."""

    @property
    def done(self) -> bool: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def request(self) -> Frame: ...

    @property
    def response(self) -> Frame | None: ...

    @property
    def route(self) -> CompiledRule | None: ...

    @property
    def stream_info(self) -> dict[str, Any]: ...

    def send_local_reply(self, status: ProxyStatus, message: str = "") -> None: ...

    def replace_request(self, frame: Frame) -> None: ...

    def replace_response(self, frame: Frame) -> None: ...

    def cluster(self, name: str) -> Cluster | None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...

    # From a FilterHandle (``index``: the filter's place in the listener's list).
    def continue_at(self, decode: bool, index: int) -> None: ...

    def inject_at(self, decode: bool, index: int, data: Body, end_stream: bool) -> None: ...

    def replace_data_at(self, decode: bool, index: int, data: Body) -> None: ...

    # From a BodyFlow (``pos``: a place in that flow's order).
    def body_out(self, decode: bool, data: Body, end_stream: bool) -> None:
        """Data that passed every filter: to the upstream (decode) or the client (encode)."""

    def body_trailers_out(self, decode: bool, trailers: HeaderList) -> None: ...

    def body_continue(self, decode: bool, pos: int) -> None:
        """The filter holding the head let a chunk or trailers through: ``continue_*()``."""

    def body_overflow(self, decode: bool) -> None:
        """Over the buffer limit: answer (413 / 500) or reset; the flow is dropped."""

    def body_pause(self, decode: bool, paused: bool) -> None:
        """Stop (resume) reading the source of this direction."""


class FilterHandle:
    """The callbacks of one filter with body hooks: the stream's, plus who is calling."""

    __slots__ = ("_engine", "_index")

    def __init__(self, engine: BodyEngine, index: int) -> None:
        self._engine = engine
        self._index = index

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._engine.loop

    @property
    def request(self) -> Frame:
        return self._engine.request

    @property
    def response(self) -> Frame | None:
        return self._engine.response

    @property
    def route(self) -> CompiledRule | None:
        return self._engine.route

    @property
    def stream_info(self) -> dict[str, Any]:
        return self._engine.stream_info

    def continue_decoding(self) -> None:
        self._engine.continue_at(True, self._index)

    def continue_encoding(self) -> None:
        self._engine.continue_at(False, self._index)

    def send_local_reply(self, status: ProxyStatus, message: str = "") -> None:
        self._engine.send_local_reply(status, message)

    def replace_request(self, frame: Frame) -> None:
        self._engine.replace_request(frame)

    def replace_response(self, frame: Frame) -> None:
        self._engine.replace_response(frame)

    def cluster(self, name: str) -> Cluster | None:
        return self._engine.cluster(name)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self._engine.spawn(coro)

    def inject_decoded_data(self, data: Body, end_stream: bool = False) -> None:
        self._engine.inject_at(True, self._index, data, end_stream)

    def inject_encoded_data(self, data: Body, end_stream: bool = False) -> None:
        self._engine.inject_at(False, self._index, data, end_stream)

    def replace_decoded_data(self, data: Body) -> None:
        self._engine.replace_data_at(True, self._index, data)

    def replace_encoded_data(self, data: Body) -> None:
        self._engine.replace_data_at(False, self._index, data)


class _Kept:
    """What a ``BodyFlow`` keeps at one position: data (one buffer), the end mark, trailers.

    ``seen``: the filter at this position has seen it and stopped it (STOP_BUFFER...); it goes
    on from the *next* position. Unseen: it waits for the head to pass this position (or
    for the filter here, holding the head with STOP_ALL_*), and goes on from *this* one.
    """

    __slots__ = ("data", "end", "trailers", "seen", "watermark")

    def __init__(self, seen: bool, watermark: bool) -> None:
        self.data: bytearray | None = None
        self.end = False
        self.trailers: HeaderList | None = None
        self.seen = seen
        self.watermark = watermark

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else 0


def _extend(buf: bytearray, data: Body | bytearray) -> bytearray:
    try:
        buf += data
    except BufferError:
        # Someone still holds a view of ``buf`` (a filter kept the memoryview it was given):
        # leave that one untouched and grow a copy.
        buf = buf + data
    return buf


def _view(data: Body | bytearray) -> Body:
    return memoryview(data) if type(data) is bytearray else data  # type: ignore[return-value]


class BodyFlow:
    """One direction (decode or encode) of a stream's body through its filters.

    Positions ``0..n-1`` are the filters in this direction's order, ``n`` the way out
    (``engine.body_out``). ``hpos`` is the head's place: every filter before it has passed
    the head; ``hold`` is the status the filter at ``hpos`` stopped it with, or None while
    the head is on its way (or gone: ``hpos == n``). ``kept[k]`` is what waits at position k
    (``_Kept``). A later position always holds older data than an earlier one, so whatever
    is released goes on from the highest position down, keeping arrival order.
    """

    __slots__ = (
        "engine", "decode", "filters", "n", "pos", "data_hooks", "trailer_hooks", "hooked",
        "hpos", "hold", "kept", "buffered", "limit", "paused", "calling", "cur", "out_ended",
        "end_injected", "closed",
    )

    def __init__(
        self,
        engine: BodyEngine,
        decode: bool,
        filters: Sequence[StreamFilter],
        limit: int,
        hooks: bool = True,
    ) -> None:
        n = len(filters)
        if decode:
            order = sorted(range(n), key=lambda i: filters[i].phase)  # stable: list order
        else:
            order = list(range(n - 1, -1, -1))
        self.engine = engine
        self.decode = decode
        self.filters = tuple(filters[i] for i in order)
        self.n = n
        self.pos = [0] * n  # list index -> position
        for p, i in enumerate(order):
            self.pos[i] = p
        self.data_hooks: tuple[bool, ...] = (False,) * n
        self.trailer_hooks: tuple[bool, ...] = (False,) * n
        self.hooked = False
        if hooks:
            data_bit, trailers_bit = (
                (DECODE_DATA, DECODE_TRAILERS) if decode else (ENCODE_DATA, ENCODE_TRAILERS)
            )
            masks = [body_hooks(type(f)) for f in self.filters]
            self.data_hooks = tuple(bool(m & data_bit) for m in masks)
            self.trailer_hooks = tuple(bool(m & trailers_bit) for m in masks)
            self.hooked = any(self.data_hooks) or any(self.trailer_hooks)
        self.hpos = 0
        self.hold: HeadersStatus | None = None
        self.kept: list[_Kept | None] = [None] * (n + 1)
        self.buffered = 0
        self.limit = limit
        self.paused = False
        self.calling = -1  # position whose hook is running (innermost)
        self.cur: Body | None = None  # the chunk of the running data hook (replaceable)
        self.out_ended = False
        self.end_injected = -1  # position of a filter that injected end_stream itself
        self.closed = False

    # --- events from the stream -------------------------------------------------------------
    def data(self, data: Body, end_stream: bool) -> None:
        """A chunk from the source (client or upstream)."""
        self._push(0, data, end_stream)
        self._settle()

    def trailers(self, trailers: HeaderList) -> None:
        self._push_trailers(0, trailers)
        self._settle()

    def head_held(self, index: int, status: HeadersStatus) -> None:
        """The filter at list ``index`` stopped the head with ``status``."""
        self.hpos = self.pos[index]
        self.hold = status
        self._flush_unseen()
        self._settle()

    def head_passed(self) -> None:
        """The head passed every filter and went out: what waited for it follows."""
        self.hpos = self.n
        self.hold = None
        self._flush_unseen()
        self._settle()

    def release(self, pos: int) -> None:
        """After ``continue_*()`` from the filter at ``pos``: what it kept goes on."""
        kept = self.kept[pos]
        if kept is None or not kept.seen or self._stopped():
            return
        self.kept[pos] = None
        self.buffered -= kept.size
        self._forward(pos + 1, kept)
        self._settle()

    def inject(self, pos: int, data: Body, end_stream: bool) -> None:
        if self._stopped():
            return
        if end_stream:
            self.end_injected = pos
            kept = self.kept[pos]
            if kept is not None and kept.seen:
                self.kept[pos] = None
                self.buffered -= kept.size
        self._push(pos + 1, data, end_stream)
        self._settle()

    def replace(self, pos: int, data: Body) -> None:
        if self._stopped():
            return
        if self.calling == pos and self.cur is not None:
            self.cur = data
            return
        kept = self.kept[pos]
        if kept is not None and kept.seen:
            self.buffered -= kept.size
            kept.data = None
            self._keep(kept, data, False)
            self._settle()

    def hooks_off(self) -> None:
        """No more hook calls (a tunnel): only held heads still hold data back."""
        self.data_hooks = self.trailer_hooks = (False,) * self.n
        self.hooked = False

    @property
    def idle(self) -> bool:
        return self.hpos == self.n and not any(self.kept)

    def unpause(self) -> None:
        if self.paused:
            self.paused = False
            self.engine.body_pause(self.decode, False)

    def drop(self) -> None:
        """Forget everything kept; no more hooks or output. Resumes a paused source."""
        self.closed = True
        self.kept = [None] * (self.n + 1)
        self.buffered = 0
        self.unpause()

    # --- iteration ----------------------------------------------------------------------------
    def _stopped(self) -> bool:
        return self.closed or self.engine.done

    def _visible(self, k: int, hooks: tuple[bool, ...]) -> bool:
        """May the filter at position k (< n) be offered body data / trailers now?"""
        hpos = self.hpos
        return k < hpos or (
            k == hpos and self.hold is HeadersStatus.STOP_ITERATION and hooks[k]
        )

    def _push(self, k: int, data: Body | bytearray, end: bool) -> None:
        n = self.n
        kept = self.kept
        hooks = self.data_hooks
        while not self._stopped():
            held = kept[k]
            if held is not None:
                if not held.seen or held.end or held.trailers is not None:
                    self._keep(held, data, end)  # waits behind what is there
                    return
                # Filter k stopped earlier data: offer it that and this chunk as one.
                kept[k] = None
                self.buffered -= held.size
                if held.data is not None:
                    data = _extend(held.data, data)
            if k == n:
                if self.hpos < n:
                    self._keep(self._unseen(n), data, end)
                    return
                if not self.out_ended:
                    self.out_ended = end
                    self.engine.body_out(self.decode, _view(data), end)
                return
            if not self._visible(k, hooks):
                self._keep(self._unseen(k), data, end)
                return
            if not hooks[k]:
                k += 1
                continue
            status, data = self._offer_data(k, data, end)
            if self._stopped():
                return
            if status is DataStatus.CONTINUE:
                if k == self.hpos:
                    # The filter holding the head let data through: it continues as a whole.
                    self._keep(self._seen(k, False), data, end)
                    self.engine.body_continue(self.decode, k)
                    return
                k += 1
                continue
            if status is DataStatus.STOP_NO_BUFFER:
                if end and self.end_injected != k:
                    self._seen(k, False).end = True  # sent on by continue_*()
                return
            self._keep(self._seen(k, status is DataStatus.STOP_WATERMARK), data, end)
            return

    def _offer_data(
        self, k: int, data: Body | bytearray, end: bool
    ) -> tuple[DataStatus, Body | bytearray]:
        f = self.filters[k]
        view = _view(data)
        saved = self.calling, self.cur
        self.calling, self.cur = k, view
        try:
            status = f.decode_data(view, end) if self.decode else f.encode_data(view, end)
            out = self.cur
        finally:
            self.calling, self.cur = saved
        if out is view or out is None:
            return status, data
        return status, out

    def _push_trailers(self, k: int, trailers: HeaderList) -> None:
        n = self.n
        kept = self.kept
        hooks = self.trailer_hooks
        while not self._stopped():
            held = kept[k]
            if held is not None and (not held.seen or held.end or held.trailers is not None):
                if not held.end and held.trailers is None:
                    held.trailers = trailers  # (trailers after an end are dropped)
                return
            if k == n:
                if self.hpos < n:
                    self._unseen(n).trailers = trailers
                elif not self.out_ended:
                    self.out_ended = True
                    self.engine.body_trailers_out(self.decode, trailers)
                return
            if not self._visible(k, hooks):
                if held is None:
                    held = self._unseen(k)
                held.trailers = trailers
                return
            status = TrailersStatus.CONTINUE
            if hooks[k]:
                status = self._offer_trailers(k, trailers)
                if self._stopped():
                    return
                held = kept[k]
            if status is not TrailersStatus.CONTINUE:
                self._seen(k, False).trailers = trailers
                return
            if k == self.hpos:
                self._seen(k, False).trailers = trailers
                self.engine.body_continue(self.decode, k)
                return
            if held is not None:
                # What filter k kept goes on first; the trailers end it.
                kept[k] = None
                self.buffered -= held.size
                if held.data is not None:
                    self._push(k + 1, held.data, False)
            k += 1

    def _offer_trailers(self, k: int, trailers: HeaderList) -> TrailersStatus:
        f = self.filters[k]
        saved = self.calling, self.cur
        self.calling, self.cur = k, None
        try:
            return f.decode_trailers(trailers) if self.decode else f.encode_trailers(trailers)
        finally:
            self.calling, self.cur = saved

    def _forward(self, k: int, held: _Kept) -> None:
        if held.data is not None or held.end:
            self._push(k, held.data if held.data is not None else b"", held.end)
        if held.trailers is not None:
            self._push_trailers(k, held.trailers)

    def _flush_unseen(self) -> None:
        """The head moved: what waited for it goes on (or waits again further on)."""
        kept = self.kept
        for k in range(self.n, -1, -1):
            held = kept[k]
            if held is not None and not held.seen:
                kept[k] = None
                self.buffered -= held.size
                self._forward(k, held)
                if self._stopped():
                    return

    # --- keeping ------------------------------------------------------------------------------
    def _unseen(self, k: int) -> _Kept:
        held = self.kept[k]
        if held is None:
            watermark = self.hold is HeadersStatus.STOP_ALL_WATERMARK
            held = self.kept[k] = _Kept(False, watermark)
        return held

    def _seen(self, k: int, watermark: bool) -> _Kept:
        held = self.kept[k]
        if held is None:
            held = self.kept[k] = _Kept(True, watermark)
        else:
            held.watermark = watermark
        return held

    def _keep(self, held: _Kept, data: Body | bytearray, end: bool) -> None:
        size = len(data)
        if size:
            if held.data is None:
                # Our own buffers are adopted; anything else may be a view of a buffer
                # its owner reuses: copy.
                held.data = data if type(data) is bytearray else bytearray(data)
            else:
                held.data = _extend(held.data, data)
            self.buffered += size
        if end:
            held.end = True
        if self.buffered > self.limit:
            if held.watermark and self.buffered <= 2 * self.limit:
                self.paused = True
                self.engine.body_pause(self.decode, True)  # again on every chunk above
            else:
                self.engine.body_overflow(self.decode)

    def _settle(self) -> None:
        if self.paused and self.buffered <= self.limit // 2 and not self.closed:
            self.unpause()
