"""The translator contract (DESIGN.md §3): pure frame -> frame modules, one per
(downstream protocol, upstream protocol) pair, registered as ``"<down>-><up>"``
(``"bolt->grpc"``) in ``Registries.translators``.

A translator class is built once per route rule, from the rule's ``translate`` options
(``from_options``, which validates them and raises ``ConfigError`` lines), and its methods
are called per request; it keeps no per-request state::

    t = BoltToGrpc.from_options({"services": {...}, "methods": {...}})
    up_req = t.request(frame)                  # -> Frame for the upstream codec
    down_resp = t.response(whole, frame)       # whole upstream response -> downstream Frame

``request(frame)`` gets the downstream request as one frame. For a streaming downstream
protocol (HTTP/1.1, HTTP/2, gRPC) the engine first collects the body into ``frame.body``
(and trailers into ``frame.trailers``), bounded by the cluster's ``max_frame_size``, so a
translator always sees whole messages. It returns the request for the upstream codec: for a
streaming upstream a head ``Frame`` with ``body`` (and ``trailers``) and ``end_stream=True``
(the HTTP/2 and HTTP/1.1 codecs send that as one message); for a single-frame upstream
(Bolt) a complete frame. ``request_id`` is not the translator's business (the pool assigns
one). A request that cannot be translated raises ``TranslationError(status, message)``:
the engine answers it with the downstream codec's local reply for ``status``.

``response(whole, request)`` gets the upstream response as one frame (a streaming upstream's
head, its body concatenated in ``body`` and its trailers in ``trailers``) and the original
downstream request; it returns the response for the downstream codec, with the request's
``request_id``. Streaming downstream protocols take a head ``Frame`` with ``body`` and
``trailers`` and ``end_stream=True``.

Errors the proxy itself raises (no healthy upstream, timeout, reset) never reach a
translator: the downstream codec answers them in its own terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from mosn_py.codecs.base import Frame
from mosn_py.errors import ProxyError, ProxyStatus


class TranslationError(ProxyError):
    """This request cannot be translated; answer it locally with ``status``."""

    def __init__(self, status: ProxyStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Translator(Protocol):
    downstream: ClassVar[str]
    upstream: ClassVar[str]

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> Translator: ...

    def request(self, frame: Frame) -> Frame: ...

    def response(self, whole: Frame, request: Frame) -> Frame: ...


def registry_name(downstream: str, upstream: str) -> str:
    return f"{downstream}->{upstream}"
