"""Typed registries of extensions, by name (after Envoy's ``registry.h``).

One ``Registry`` per kind. Built-ins are registered in exactly one place,
``mosn_py.extensions.register_builtin``; third-party code arrives through the
``mosn_py.extensions`` entry-point group (``load_entry_points``). Importing a module never
registers anything.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from mosn_py.errors import ConfigError, UnknownExtensionError

if TYPE_CHECKING:
    from mosn_py.filters.chain import StreamFilterFactory

T = TypeVar("T")


class Registry(Generic[T]):
    __slots__ = ("kind", "_items")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ConfigError(f"double registration of {self.kind} {name!r}")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownExtensionError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._items, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(sorted(self._items)) or "none"
        return f"unknown {self.kind} {name!r}{hint}; registered: {known}"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def as_dict(self) -> dict[str, T]:
        """A snapshot of name -> item (e.g. for config validation)."""
        return dict(self._items)

    @contextlib.contextmanager
    def override(self, name: str, item: T) -> Iterator[None]:
        """Swap ``name`` for ``item`` inside a ``with`` block (tests; Envoy's
        replaceFactoryForTest)."""
        missing = object()
        old = self._items.get(name, missing)
        self._items[name] = item
        try:
            yield
        finally:
            if old is missing:
                del self._items[name]
            else:
                self._items[name] = old  # type: ignore[assignment]


class Registries:
    """Every registry the proxy consults, built once per process."""

    def __init__(self) -> None:
        self.codecs: Registry[type] = Registry("codec")
        self.stream_filters: Registry[type[StreamFilterFactory]] = Registry("stream filter")
        self.network_filters: Registry[type] = Registry("network filter")
        self.translators: Registry[type] = Registry("translator")
        self.lb_policies: Registry[type] = Registry("load balancer")
        self.cluster_types: Registry[type] = Registry("cluster type")
