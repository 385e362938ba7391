"""Passive health: consecutive connect failures eject a host for a growing time; all
ejected = panic mode (use them all)."""

from __future__ import annotations

import asyncio

from mosn_py.config.model import Address, ClusterConfig, Endpoint, OutlierDetection
from mosn_py.server.connection import WriteBatcher
from mosn_py.upstream.cluster import Cluster
from mosn_py.upstream.lb import RoundRobin


def make(loop: asyncio.AbstractEventLoop, n: int = 2, **od: float) -> Cluster:
    cfg = ClusterConfig(
        "c", endpoints=tuple(Endpoint(Address("127.0.0.1", 1000 + i)) for i in range(n)),
        outlier_detection=OutlierDetection(**od),  # type: ignore[arg-type]
    )
    return Cluster(cfg, RoundRobin, loop=loop, batcher=WriteBatcher())


def test_ejection_after_consecutive_failures_then_return() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        c = make(loop, consecutive_connect_failures=3, ejection_time=0.1)
        a, b = c.hosts
        c.report_connect_failure(a)
        c.report_connect_failure(a)
        c.report_connect_success(a)  # a success breaks the run
        c.report_connect_failure(a)
        c.report_connect_failure(a)
        assert not a.ejected
        c.report_connect_failure(a)
        assert a.ejected and a.ejections == 1
        assert {c.lb.choose() for _ in range(10)} == {b}
        await asyncio.sleep(0.15)
        assert not a.ejected and {c.lb.choose() for _ in range(10)} == {a, b}
        # A second ejection lasts twice as long.
        for _ in range(3):
            c.report_connect_failure(a)
        assert a.ejected and a.ejections == 2
        await asyncio.sleep(0.15)
        assert a.ejected
        await asyncio.sleep(0.1)
        assert not a.ejected
        c.close()

    asyncio.run(main())


def test_all_ejected_is_panic_mode_and_zero_disables() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        c = make(loop, consecutive_connect_failures=1, ejection_time=10)
        for h in c.hosts:
            c.report_connect_failure(h)
        assert all(h.ejected for h in c.hosts)
        assert {c.lb.choose() for _ in range(10)} == set(c.hosts)
        c.close()
        off = make(loop, consecutive_connect_failures=0)
        for _ in range(100):
            off.report_connect_failure(off.hosts[0])
        assert not off.hosts[0].ejected
        off.close()

    asyncio.run(main())
