"""Load balancers: pick a host for a request.

Every policy implements ``choose(exclude=None) -> Host | None``. ``exclude`` holds hosts a
retry already tried (connect failure): they are skipped while any other host is left.

- ``round_robin``: smooth weighted round robin (nginx's algorithm): with weights 5,1,1 the
  order is a a b a c a a, never five a's in a row.
- ``random``: weighted random.
- ``least_request``: Envoy's power of two choices: two random hosts, the one with fewer
  requests in flight per unit of weight wins.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from itertools import accumulate

from mosn_py.upstream.host import Host


class LoadBalancer:
    name = ""

    def __init__(self, hosts: Sequence[Host]) -> None:
        self.hosts = tuple(hosts)

    def choose(self, exclude: Collection[Host] | None = None) -> Host | None:
        raise NotImplementedError

    def _fallback(self, exclude: Collection[Host]) -> Host | None:
        for h in self.hosts:
            if h not in exclude:
                return h
        return None


class RoundRobin(LoadBalancer):
    name = "round_robin"
    _MAX_SCHEDULE = 4096

    def __init__(self, hosts: Sequence[Host]) -> None:
        super().__init__(hosts)
        self._schedule = _smooth_wrr(self.hosts, self._MAX_SCHEDULE)
        self._i = random.randrange(len(self._schedule)) if self._schedule else 0

    def choose(self, exclude: Collection[Host] | None = None) -> Host | None:
        sched = self._schedule
        if not sched:
            return None
        i = self._i
        self._i = (i + 1) % len(sched)
        h = sched[i]
        if exclude and h in exclude:
            return self._fallback(exclude)
        return h


def _smooth_wrr(hosts: Sequence[Host], limit: int) -> tuple[Host, ...]:
    """One full period of nginx's smooth weighted round robin (capped at ``limit`` picks)."""
    if not hosts:
        return ()
    total = sum(h.weight for h in hosts)
    current = [0] * len(hosts)
    out: list[Host] = []
    for _ in range(min(total, limit)):
        best = 0
        for i, h in enumerate(hosts):
            current[i] += h.weight
            if current[i] > current[best]:
                best = i
        current[best] -= total
        out.append(hosts[best])
    return tuple(out)


class Random(LoadBalancer):
    name = "random"

    def __init__(self, hosts: Sequence[Host]) -> None:
        super().__init__(hosts)
        self._cum = list(accumulate(h.weight for h in self.hosts))

    def choose(self, exclude: Collection[Host] | None = None) -> Host | None:
        if not self.hosts:
            return None
        h = random.choices(self.hosts, cum_weights=self._cum)[0]
        if exclude and h in exclude:
            return self._fallback(exclude)
        return h


class LeastRequest(LoadBalancer):
    name = "least_request"

    def choose(self, exclude: Collection[Host] | None = None) -> Host | None:
        hosts = self.hosts
        if exclude:
            hosts = tuple(h for h in hosts if h not in exclude)
        n = len(hosts)
        if n == 0:
            return None
        if n == 1:
            return hosts[0]
        a = hosts[random.randrange(n)]
        b = hosts[random.randrange(n)]
        # Compare active/weight without division: a.active * b.weight vs b.active * a.weight.
        return a if a.rq_active * b.weight <= b.rq_active * a.weight else b


BUILTIN_LBS: tuple[type[LoadBalancer], ...] = (RoundRobin, Random, LeastRequest)
