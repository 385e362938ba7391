"""Error collection and shape checks shared by the config loader and its cross checks.

``_Errors`` gathers ``path: problem`` lines (and remembers which paths went bad, so later
checks can skip them); ``_mapping``/``_list``/``_field`` check a YAML node's shape and
convert a value, reporting instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mosn_py.config.model import (
    RETRY_ON,
    AdminConfig,
    ClusterConfig,
    DemoUpstream,
    ListenerConfig,
    LogConfig,
    RetryPolicy,
    RouteConfig,
    XdsConfig,
)
from mosn_py.config.values import (
    describe,
    int_at_least,
    one_of,
    parse_bool,
    parse_regex,
    parse_string,
    suggest,
)

T = TypeVar("T")

_SIMPLE_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

# ----------------------------------------------------------------------------- error plumbing


class _Errors:
    """The error lines collected so far, and the set of paths already known to be bad."""

    __slots__ = ("_bad", "lines")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._bad: set[str] = set()

    def add(self, path: str, problem: str) -> None:
        line = f"{path}: {problem}"
        if line not in self.lines:
            self.lines.append(line)
        self._bad.add(path)

    def has_under(self, path: str) -> bool:
        """Whether ``path`` or anything inside it was reported bad."""
        return any(b == path or b.startswith((path + ".", path + "[")) for b in self._bad)

    def is_bad(self, path: str) -> bool:
        """Whether ``path`` or one of its ancestors was reported bad."""
        while path:
            if path in self._bad:
                return True
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                return False
            path = path[:cut]
        return False


def _join(path: str, key: str) -> str:
    if not _SIMPLE_KEY_RE.fullmatch(key):
        return f"{path}[{key!r}]"
    return f"{path}.{key}" if path else key


def _unknown_name(kind: str, name: str, defined: Collection[str]) -> str:
    hint = suggest(name, defined)
    if hint:
        return f"no {kind} named {describe(name)}{hint}"
    if not defined:
        return f"no {kind} named {describe(name)}; none is defined"
    return f"no {kind} named {describe(name)}; defined: {', '.join(defined)}"


# ---------------------------------------------------------------------------- shape checkers
# Scalar converters (values.py) take a YAML value and return the model value or raise
# ValueError with a message (no path); ``_field`` adds the path.


def _mapping(
    errs: _Errors,
    path: str,
    value: object,
    known: Collection[str] | None,
    required: Iterable[str] = (),
) -> dict[str, Any] | None:
    """``value`` as a dict with string keys, unknown keys reported (unless known is None)."""
    if not isinstance(value, dict):
        errs.add(path, f"expected a mapping, got {describe(value)}")
        return None
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key is True and known is not None and "on" in known:
            key = "on"  # YAML 1.1 reads a bare `on:` key as the boolean true
        if not isinstance(key, str):
            errs.add(path or "top level", f"key {describe(key)} is not a string")
        elif known is not None and key not in known:
            hint = suggest(key, known)
            problem = f"unknown key{hint}" if hint else f"unknown key; expected {', '.join(known)}"
            errs.add(_join(path, key), problem)
        else:
            out[key] = item
    for key in required:
        if key not in out:
            errs.add(_join(path, key), "missing required key")
    return out


def _list(errs: _Errors, path: str, value: object) -> list[Any]:
    """``value`` as a list; ``null`` is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        errs.add(path, f"expected a list, got {describe(value)}")
        return []
    return value


def _field(
    errs: _Errors,
    d: dict[str, Any],
    path: str,
    key: str,
    convert: Callable[[object], T],
    default: T,
) -> T:
    """``convert(d[key])``, or ``default`` when the key is absent or its value is bad."""
    if key not in d:
        return default
    try:
        return convert(d[key])
    except ValueError as exc:
        errs.add(_join(path, key), str(exc))
        return default


# ----------------------------------------------------------------- pieces every rule kind uses
_MATCH_KEYS = ("exact", "regex", "present")


def _matchers(
    errs: _Errors,
    path: str,
    raw: object,
    kind: str = "header",
    normalize: Callable[[str], str] | None = None,
) -> list[tuple[str, str | None, str | None]]:
    """``{name: VALUE | {exact: V} | {regex: R} | {present: true}}`` as (name, exact, regex).

    ``kind`` names what is matched in messages ("header", "query parameter"); ``normalize``
    (if given) checks and rewrites each name, raising ValueError with the problem.
    """
    if raw is None:
        return []
    d = _mapping(errs, path, raw, None)
    if d is None:
        return []
    out: list[tuple[str, str | None, str | None]] = []
    for name, spec in d.items():
        p = _join(path, name)
        if not name:
            errs.add(p, f"{kind} name must not be empty")
            continue
        if normalize is not None:
            try:
                name = normalize(name)
            except ValueError as exc:
                errs.add(p, str(exc))
                continue
        if isinstance(spec, str):
            out.append((name, spec, None))
        elif isinstance(spec, dict):
            m = _mapping(errs, p, spec, _MATCH_KEYS)
            if m is None:
                continue
            given = [k for k in _MATCH_KEYS if k in m]
            if len(given) != 1:
                if len(given) > 1 or len(m) == len(spec):  # else: already an unknown key
                    errs.add(p, f"give exactly one of exact, regex, present (got {len(given)})")
                continue
            if "exact" in m:
                out.append((name, _field(errs, m, p, "exact", parse_string, ""), None))
            elif "regex" in m:
                out.append((name, None, _field(errs, m, p, "regex", parse_regex, "")))
            elif _field(errs, m, p, "present", parse_bool, True) is False:
                errs.add(_join(p, "present"), "only 'present: true' is supported")
            else:
                out.append((name, None, None))
        else:
            errs.add(
                p, f"expected a string or a mapping of exact/regex/present, got {describe(spec)}"
            )
    return out


def _retry_on(errs: _Errors, path: str, raw: object) -> tuple[str, ...] | None:
    if not isinstance(raw, list):
        errs.add(path, f"expected a list of {', '.join(RETRY_ON)}, got {describe(raw)}")
        return None
    if not raw:
        errs.add(path, f"must not be empty; expected some of {', '.join(RETRY_ON)}")
        return None
    out: list[str] = []
    check = one_of(RETRY_ON)
    for i, item in enumerate(raw):
        try:
            reason = check(item)
        except ValueError as exc:
            errs.add(f"{path}[{i}]", str(exc))
            continue
        if reason not in out:
            out.append(reason)
    return tuple(out)


def _retry(errs: _Errors, path: str, raw: object) -> RetryPolicy | None:
    if raw is None:
        return None
    d = _mapping(errs, path, raw, ("attempts", "on"))
    if d is None:
        return None
    defaults = RetryPolicy()
    on = _retry_on(errs, _join(path, "on"), d["on"]) if "on" in d else None
    return RetryPolicy(
        attempts=_field(errs, d, path, "attempts", int_at_least(0), defaults.attempts),
        on=on or defaults.on,
    )


@dataclass(slots=True)
class _Parsed:
    """What pass 2 built, each object with its path, for the cross checks of pass 3."""

    admin: AdminConfig | None = None
    workers: int = 1
    drain_timeout: float = 10.0
    log: LogConfig = field(default_factory=LogConfig)
    demos: list[tuple[str, DemoUpstream]] = field(default_factory=list)
    listeners: list[tuple[str, ListenerConfig]] = field(default_factory=list)
    # (path, route, paths of route.rules in order)
    routes: list[tuple[str, RouteConfig, tuple[str, ...]]] = field(default_factory=list)
    clusters: list[tuple[str, ClusterConfig]] = field(default_factory=list)
    # route path -> "rules" | "virtual_hosts", for route configs that gave exactly one of them
    route_kinds: dict[str, str] = field(default_factory=dict)
    # route path -> (path of a cluster name, the name) for each cluster its virtual hosts name
    http_clusters: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    xds: XdsConfig | None = None


def translate_options(errs: _Errors, path: str, raw: object) -> tuple[tuple[str, object], ...]:
    """A rule's ``translate`` mapping (checked later by the translator the rule needs)."""
    if raw is None:
        return ()
    d = _mapping(errs, path, raw, None)
    return tuple(d.items()) if d else ()
