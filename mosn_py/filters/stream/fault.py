"""``fault``: inject delays and aborts (Envoy's fault filter, MOSN's ``fault`` stream filter).

Options::

    filters:
      - name: fault
        config:
          delay: {duration: 200ms, percentage: 50}     # hold the request, then continue
          abort: {status: no_healthy_upstream, percentage: 10, message: "injected"}

``status`` is a ProxyStatus name (``timeout``, ``no_healthy_upstream``, ``upstream_overflow``,
``route_not_found`` ...), answered in the listener's protocol (Bolt: 7, 6, 4, 6 ...).
A delayed request that is also aborted is aborted after the delay.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from mosn_py.codecs.base import Frame
from mosn_py.errors import ConfigError, ProxyStatus
from mosn_py.filters.chain import HeadersStatus, Phase, StreamFilter


@dataclass(frozen=True, slots=True)
class FaultConfig:
    delay: float | None = None
    delay_percentage: float = 100.0
    abort: ProxyStatus | None = None
    abort_percentage: float = 100.0
    abort_message: str = "fault filter abort"


def _percentage(v: Any, path: str, errors: list[str]) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
        errors.append(f"{path}: expected a number from 0 to 100, got {v!r}")
        return 0.0
    return float(v)


def parse_fault_config(options: dict[str, Any]) -> FaultConfig:
    from mosn_py.config.values import parse_duration

    errors: list[str] = []
    unknown = set(options) - {"delay", "abort"}
    errors += [f"{k}: unknown key; expected delay, abort" for k in sorted(unknown)]
    delay = None
    delay_pct = abort_pct = 100.0
    abort = None
    message = "fault filter abort"
    d = options.get("delay")
    if d is not None:
        if not isinstance(d, dict):
            errors.append("delay: expected a mapping {duration, percentage}")
        else:
            errors += [
                f"delay.{k}: unknown key" for k in sorted(set(d) - {"duration", "percentage"})
            ]
            try:
                delay = parse_duration(d.get("duration"))
            except (ValueError, TypeError) as e:
                errors.append(f"delay.duration: {e}")
            delay_pct = _percentage(d.get("percentage", 100), "delay.percentage", errors)
    a = options.get("abort")
    if a is not None:
        if not isinstance(a, dict):
            errors.append("abort: expected a mapping {status, percentage, message}")
        else:
            errors += [
                f"abort.{k}: unknown key"
                for k in sorted(set(a) - {"status", "percentage", "message"})
            ]
            names = [s.value for s in ProxyStatus if s is not ProxyStatus.OK]
            st = a.get("status")
            if st not in names:
                errors.append(f"abort.status: {st!r} is not one of {', '.join(names)}")
            else:
                abort = ProxyStatus(st)
            abort_pct = _percentage(a.get("percentage", 100), "abort.percentage", errors)
            message = str(a.get("message", message))
    if errors:
        raise ConfigError(errors)
    return FaultConfig(delay, delay_pct, abort, abort_pct, message)


class FaultFilter(StreamFilter):
    __slots__ = ("config", "_timer")
    phase = Phase.BEFORE_ROUTE

    def __init__(self, config: FaultConfig) -> None:
        super().__init__()
        self.config = config
        self._timer: Any = None

    def decode_headers(self, frame: Frame, end_stream: bool) -> HeadersStatus:
        cfg = self.config
        if cfg.delay is not None and _hit(cfg.delay_percentage):
            self._timer = self.callbacks.loop.call_later(cfg.delay, self._after_delay)
            return HeadersStatus.STOP_ITERATION
        return self._maybe_abort()

    def _after_delay(self) -> None:
        self._timer = None
        self._maybe_abort()
        self.callbacks.continue_decoding()  # continues, or only flushes the abort reply

    def _maybe_abort(self) -> HeadersStatus:
        cfg = self.config
        if cfg.abort is not None and _hit(cfg.abort_percentage):
            self.callbacks.send_local_reply(cfg.abort, cfg.abort_message)
            return HeadersStatus.STOP_ITERATION
        return HeadersStatus.CONTINUE

    def on_destroy(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _hit(percentage: float) -> bool:
    return percentage >= 100 or random.random() * 100 < percentage


class FaultFilterFactory:
    name: ClassVar[str] = "fault"
    phase: ClassVar[Phase] = Phase.BEFORE_ROUTE

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> Callable[[], StreamFilter]:
        config = parse_fault_config(options)
        return lambda: FaultFilter(config)
