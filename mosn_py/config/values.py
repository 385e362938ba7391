"""Parsers for the scalar value syntaxes of the config file: durations, sizes, addresses.

Each parser takes whatever YAML produced and returns the model's unit, or raises
``ValueError`` with a short message that names the offending value (never a path: the
loader prefixes the path, ``listeners[0].address: 'abc' is not host:port``).

- durations -> float seconds: ``250ms``, ``3s``, ``1.5s``, ``2m``, ``1h``, ``100us``, Go-style
  compounds such as ``1m30s``; a YAML number is seconds.
- sizes -> int bytes: ``512B``, ``64KiB``, ``16MiB``, ``1GiB`` (binary), ``10KB``, ``10MB``
  (decimal); a YAML integer is bytes.
- addresses -> ``Address``: ``host:port`` or ``[v6]:port``; the port is required (0 = any).

Below those, the small converters the loader composes (strings, booleans, bounded integers,
enums with did-you-mean, readable files, regexes), under the same contract.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import stat
from collections.abc import Callable, Collection, Iterable
from fractions import Fraction

from mosn_py.config.model import Address

__all__ = [
    "describe",
    "int_at_least",
    "one_of",
    "parse_address",
    "parse_bool",
    "parse_duration",
    "parse_name",
    "parse_optional_duration",
    "parse_positive_duration",
    "parse_positive_size",
    "parse_readable_file",
    "parse_regex",
    "parse_size",
    "parse_string",
    "parse_workers",
    "suggest",
    "unknown_value",
]


def describe(value: object) -> str:
    """A short, YAML-flavoured rendering of ``value`` for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:56] + "...'"
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 30 else text[:26] + "..."
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


# Longer value strings are garbage; refusing them early also keeps Fraction() and int() away
# from Python's digit-count limit for str -> int conversion.
_MAX_TEXT = 64


def _number(value: object) -> float | int | None:
    """``value`` if it is a real YAML number (bools are not numbers here), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


# ---------------------------------------------------------------------------------- durations

_DURATION_UNITS: dict[str, Fraction] = {
    "ns": Fraction(1, 1_000_000_000),
    "us": Fraction(1, 1_000_000),
    "µs": Fraction(1, 1_000_000),  # U+00B5, as Go writes it
    "μs": Fraction(1, 1_000_000),  # U+03BC, as people type it
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_DURATION_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
_DURATION_RE = re.compile(rf"(?:{_DURATION_PART})+")
_DURATION_PART_RE = re.compile(_DURATION_PART)
_PLAIN_NUMBER_RE = re.compile(r"[+-]?(\d+(?:\.\d*)?|\.\d+)")
_DURATION_HINT = "use e.g. 250ms, 3s, 1.5s, 2m, 1h"
# Event loops turn timeouts into integer milliseconds; keep every duration far inside that.
MAX_DURATION = 100 * 365 * 86400.0


def parse_duration(value: object) -> float:
    """Seconds from ``250ms``, ``3s``, ``1m30s``, ... or a plain YAML number of seconds.

    Raises ``ValueError`` for negatives, NaN/infinity, unitless strings and anything else.
    """
    num = _number(value)
    if num is not None:
        try:
            seconds = float(num)
        except OverflowError:
            raise ValueError(f"duration {describe(value)} is too large") from None
        if math.isnan(seconds):
            raise ValueError(f"duration {describe(value)} is not a number")
        if seconds < 0:
            raise ValueError(f"negative duration {describe(value)}")
        return _bounded(seconds, value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 3s or 250ms, got {describe(value)}")
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"negative duration {describe(value)}")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"{describe(value)} is not a duration (too long)")
    if _PLAIN_NUMBER_RE.fullmatch(text):
        # A quoted number is ambiguous (Go reads nanoseconds nowhere, Envoy wants "3s"):
        # insist on a unit rather than guess.
        raise ValueError(f"duration {describe(value)} has no unit ({_DURATION_HINT})")
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(f"{describe(value)} is not a duration ({_DURATION_HINT})")
    total = Fraction(0)
    for num_text, unit in _DURATION_PART_RE.findall(text):
        total += Fraction(num_text) * _DURATION_UNITS[unit]
    try:
        seconds = float(total)
    except OverflowError:
        raise ValueError(f"duration {describe(value)} is too large") from None
    return _bounded(seconds, value)


def _bounded(seconds: float, value: object) -> float:
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError(f"duration {describe(value)} is too large (at most 100 years)")
    return seconds


# -------------------------------------------------------------------------------------- sizes

_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)")
_SIZE_HINT = "use e.g. 512B, 64KiB, 16MiB, 1GiB, 10MB"


def parse_size(value: object) -> int:
    """Bytes from ``16MiB``, ``64KiB``, ``10MB``, ``512B``, a digit string, or a YAML integer.

    Units are case-insensitive; ``KiB``/``MiB``/``GiB``/``TiB`` are powers of 1024,
    ``KB``/``MB``/``GB``/``TB`` powers of 1000. Raises ``ValueError`` for negatives,
    fractions of a byte, unknown units and anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 16MiB or 1024, got {describe(value)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative size {describe(value)}")
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value >= 0 and value.is_integer():
            return int(value)
        raise ValueError(f"size {describe(value)} is not a whole number of bytes")
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as 16MiB or 1024, got {describe(value)}")
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"negative size {describe(value)}")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"{describe(value)} is not a size (too long)")
    m = _SIZE_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"{describe(value)} is not a size ({_SIZE_HINT})")
    number, unit = m.groups()
    factor = _SIZE_UNITS.get(unit.lower() if unit else "b")
    if factor is None:
        raise ValueError(f"{describe(value)} has an unknown size unit {unit!r} ({_SIZE_HINT})")
    size = Fraction(number) * factor
    if size.denominator != 1:
        raise ValueError(f"size {describe(value)} is not a whole number of bytes")
    return int(size)


# ---------------------------------------------------------------------------------- addresses

_BRACKETED_RE = re.compile(r"\[([^\[\]]*)\]:([^:]*)")
_LABEL_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_IPV4ISH_RE = re.compile(r"[0-9.]+")


def _port(text: str, value: object) -> int:
    if not text:
        raise ValueError(f"{describe(value)} has no port (write host:port)")
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{describe(value)}: port {text!r} is not a number")
    port = int(text)
    if port > 65535:
        raise ValueError(f"{describe(value)}: port {port} is out of range 0..65535")
    return port


def _hostname_ok(host: str) -> bool:
    if len(host) > 253:
        return False
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    return all(label.isascii() and _LABEL_RE.fullmatch(label) for label in labels)


def parse_address(value: object) -> Address:
    """An ``Address`` from ``host:port`` or ``[v6]:port`` (valid ones are remembered: an
    xDS update re-validates thousands of endpoints that rarely change).

    The host is an IPv4 literal, a bracketed IPv6 literal (stored without brackets, in
    canonical form) or a DNS name (letters, digits, ``-``, ``_``, dot-separated labels).
    The port is required, 0..65535. Raises ``ValueError`` otherwise.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected an address such as 127.0.0.1:8080, got {describe(value)}")
    found = _ADDRESSES.get(value)
    if found is None:
        found = _parse_address(value)
        if len(_ADDRESSES) >= _ADDRESS_CACHE_SIZE:
            _ADDRESSES.clear()
        _ADDRESSES[value] = found
    return found


_ADDRESSES: dict[str, Address] = {}
_ADDRESS_CACHE_SIZE = 100_000


def _parse_address(value: str) -> Address:
    text = value
    if "/" in text:
        raise ValueError(f"{describe(value)} is not host:port (no scheme or path)")
    if text.startswith("["):
        m = _BRACKETED_RE.fullmatch(text)
        if m is None:
            raise ValueError(f"{describe(value)} is not [ipv6]:port")
        host, port_text = m.groups()
        try:
            ip6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{describe(value)}: {host!r} is not an IPv6 address") from None
        return Address(str(ip6), _port(port_text, value))
    if ":" not in text:
        raise ValueError(f"{describe(value)} is not host:port")
    host, _, port_text = text.rpartition(":")
    if ":" in host:
        raise ValueError(f"{describe(value)}: an IPv6 address needs brackets, e.g. [::1]:8080")
    port = _port(port_text, value)
    if not host:
        raise ValueError(f"{describe(value)} has no host (use 0.0.0.0 for every interface)")
    if _IPV4ISH_RE.fullmatch(host):
        try:
            return Address(str(ipaddress.IPv4Address(host)), port)
        except ValueError:
            raise ValueError(f"{describe(value)}: {host!r} is not an IPv4 address") from None
    if not _hostname_ok(host):
        raise ValueError(f"{describe(value)}: {host!r} is not a valid host name")
    return Address(host, port)


# ------------------------------------------------------------------- schema value converters
# The loader's building blocks: each takes a YAML value and returns the model's value or
# raises ValueError. YAML 1.1 booleans (yes/no/on/off) arrive as bools from the parser; a
# bool is never accepted where a number is expected.


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``."""
    pool = [c for c in candidates if isinstance(c, str)]
    by_lower = {c.lower(): c for c in pool}
    best = by_lower.get(word.lower())
    if best is None or best == word:
        close = difflib.get_close_matches(word[:100], pool, n=1, cutoff=0.6)
        best = close[0] if close else None
    return f" (did you mean {best!r}?)" if best is not None and best != word else ""


def unknown_value(value: str, choices: Collection[str]) -> str:
    return f"unknown value {describe(value)}{suggest(value, choices)}; expected one of " + (
        ", ".join(choices)
    )


def parse_string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {describe(value)}")
    return value


def parse_name(value: object) -> str:
    text = parse_string(value)
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def parse_bool(value: object) -> bool:
    # YAML 1.1 yes/no/on/off were already turned into bools by the parser; a quoted
    # 'yes' is a string, and we will not guess.
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {describe(value)}")
    return value


def int_at_least(minimum: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {describe(value)}")
        if value < minimum:
            raise ValueError(f"must be >= {minimum}, got {value}")
        return value

    return convert


def one_of(choices: Collection[str]) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected one of {', '.join(choices)}, got {describe(value)}")
        if value not in choices:
            raise ValueError(unknown_value(value, choices))
        return value

    return convert


def parse_optional_duration(value: object) -> float | None:
    """A duration where ``0`` or ``null`` means "no limit"."""
    if value is None:
        return None
    seconds = parse_duration(value)
    return seconds or None


def parse_positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, got {describe(value)}")
    return seconds


def parse_positive_size(value: object) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"must be greater than 0, got {describe(value)}")
    return size


def parse_readable_file(value: object) -> str:
    path = parse_name(value)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"cannot read {path!r}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: NUL byte, unencodable name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot read {describe(path)}: {reason.lower()}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"cannot read {path!r}: not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ValueError(f"cannot read {path!r}: {reason}") from None
    return path


def parse_regex(value: object) -> str:
    pattern = parse_string(value)
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"invalid regular expression {describe(pattern)}: {exc}") from None
    return pattern


def parse_workers(value: object) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    if isinstance(value, str):
        raise ValueError(f"expected an integer >= 1 or 'auto', got {describe(value)}")
    return int_at_least(1)(value)


def int_between(low: int, high: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {describe(value)}")
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}, got {value}")
        return value

    return convert


def size_between(low: int, high: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        size = parse_size(value)
        if not low <= size <= high:
            raise ValueError(f"must be from {low} to {high} bytes, got {describe(value)}")
        return size

    return convert
