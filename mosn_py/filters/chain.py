"""The stream-filter contract (after Envoy's ``envoy/http/filter.h``, MOSN's phases).

A stream filter sees one request/response exchange. Its methods are plain ``def`` and must
return quickly; a filter that has to wait (a timer, an external call) returns a STOP status,
does its waiting through ``callbacks.spawn(coro)`` or ``callbacks.loop``, and later calls
``callbacks.continue_decoding()`` (or ``continue_encoding()``).

Request path (decode), in order of the filter list, grouped by ``phase``::

    BEFORE_ROUTE filters -> route match -> AFTER_ROUTE filters -> host choice
        -> AFTER_CHOOSE_HOST filters -> upstream

Response path (encode): every filter's ``encode_*`` in *reverse* list order, then the
downstream codec. Local replies (from a filter or from the proxy) take the encode path too.

Statuses
--------
``HeadersStatus``
  - ``CONTINUE``: pass the frame to the next filter.
  - ``STOP_ITERATION``: do not call later filters now. The stream resumes only when this
    filter calls ``continue_decoding()``/``continue_encoding()``; until then the frame is
    held by the stream (single-frame protocols such as Bolt carry headers and body in one
    frame, so nothing else arrives for it).
  - ``STOP_ALL_BUFFER``: like STOP_ITERATION, and buffer any following body data; if the
    buffer would exceed the stream's limit the stream is answered with a local reply
    (``CODEC_ERROR`` -> e.g. Bolt 9 / HTTP 413) and reset.
  - ``STOP_ALL_WATERMARK``: like STOP_ALL_BUFFER but, instead of failing at the limit, stop
    reading the connection (backpressure) until the filter continues.
``DataStatus`` (streaming protocols only): ``CONTINUE``; ``STOP_BUFFER`` (keep the data,
  offer the whole buffer to this filter again with the next chunk; limit as above);
  ``STOP_WATERMARK`` (buffer and apply backpressure); ``STOP_NO_BUFFER`` (drop nothing,
  buffer nothing: the filter took the data and will inject what it wants).
``TrailersStatus``: ``CONTINUE`` or ``STOP_ITERATION`` (resume with ``continue_*``).

After ``send_local_reply()`` a filter must return ``STOP_ITERATION``: the request goes no
further and the reply is on its way.

Single-frame protocols (Bolt now; Redis, memcached later) call only ``decode_headers(frame,
end_stream=True)`` and ``encode_headers(frame, end_stream=True)``; the ``*_data`` and
``*_trailers`` hooks are driven by streaming codecs (HTTP/1.1 bodies, HTTP/2, gRPC).

Factories
---------
A filter is registered by name with a factory class: ``name`` (ClassVar), ``phase``, and
``from_config(options: dict) -> factory`` which validates its options once (raising
``ConfigError`` with a message) and returns a zero-argument callable creating one filter per
stream (Envoy's ``FilterFactoryCb``): config is parsed once, never per request.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mosn_py.codecs.base import Frame
from mosn_py.errors import ProxyStatus

if TYPE_CHECKING:
    import asyncio

    from mosn_py.router.routes import CompiledRule
    from mosn_py.upstream.cluster import Cluster


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

    loop: asyncio.AbstractEventLoop
    request: Frame
    response: Frame | None
    route: CompiledRule | None
    stream_info: dict[str, Any]

    def continue_decoding(self) -> None: ...

    def continue_encoding(self) -> None: ...

    def send_local_reply(self, status: ProxyStatus, message: str = "") -> None: ...

    def replace_request(self, frame: Frame) -> None: ...

    def replace_response(self, frame: Frame) -> None: ...

    def cluster(self, name: str) -> Cluster | None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...


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

    def decode_data(self, data: memoryview | bytes, end_stream: bool) -> DataStatus:
        return DataStatus.CONTINUE

    def decode_trailers(self, trailers: Mapping[str, str]) -> TrailersStatus:
        return TrailersStatus.CONTINUE

    def encode_headers(self, frame: Frame, end_stream: bool) -> HeadersStatus:
        return HeadersStatus.CONTINUE

    def encode_data(self, data: memoryview | bytes, end_stream: bool) -> DataStatus:
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
