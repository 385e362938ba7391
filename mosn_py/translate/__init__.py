"""Pure frame -> frame protocol translators (DESIGN.md §3, contract in ``base.py``).

- ``bolt_grpc``: ``BoltToGrpc``, SOFARPC protobuf clients -> gRPC servers (``bolt->grpc``)
- ``grpc_bolt``: ``GrpcToBolt``, gRPC clients -> SOFARPC servers (``grpc->bolt``)
- ``http_bolt``: ``HttpToBolt`` (``http1->bolt``; ``Http2ToBolt``, ``AnyHttpToBolt`` for
  ``http2->bolt`` and ``http->bolt``) and ``BoltToHttp`` (``bolt->http1``; ``BoltToHttp2``
  for ``bolt->http2``)

Sans-IO like the codecs: nothing here imports asyncio, sockets or the layers above.
Importing registers nothing; ``register_translators`` does, and only
``mosn_py.extensions.register_builtin`` calls it. The mappings are tabled in each module's
docstring and in docs/translation.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mosn_py.translate.base import TranslationError, Translator, registry_name
from mosn_py.translate.bolt_grpc import BoltToGrpc
from mosn_py.translate.grpc_bolt import GrpcToBolt
from mosn_py.translate.http_bolt import (
    AnyHttpToBolt,
    BoltToHttp,
    BoltToHttp2,
    Http2ToBolt,
    HttpToBolt,
)

if TYPE_CHECKING:
    from mosn_py.registry import Registries

__all__ = [
    "BUILTIN_TRANSLATORS",
    "AnyHttpToBolt",
    "BoltToGrpc",
    "BoltToHttp",
    "BoltToHttp2",
    "GrpcToBolt",
    "Http2ToBolt",
    "HttpToBolt",
    "TranslationError",
    "Translator",
    "register_translators",
    "registry_name",
]

# Each class serves exactly the pair its ``downstream``/``upstream`` class variables name.
BUILTIN_TRANSLATORS: tuple[type[Translator], ...] = (
    BoltToGrpc,
    GrpcToBolt,
    HttpToBolt,
    Http2ToBolt,
    AnyHttpToBolt,
    BoltToHttp,
    BoltToHttp2,
)


def register_translators(reg: Registries) -> None:
    """Register every built-in translator under ``"<downstream>-><upstream>"``:
    bolt->grpc, grpc->bolt, http1->bolt, http2->bolt, http->bolt, bolt->http1, bolt->http2.

    Raises ``ConfigError`` (the registry's double registration) when called twice.
    """
    for cls in BUILTIN_TRANSLATORS:
        reg.translators.register(registry_name(cls.downstream, cls.upstream), cls)
