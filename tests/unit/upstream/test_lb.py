from __future__ import annotations

import collections

import pytest

from mosn_py.config.model import Address
from mosn_py.upstream.host import Host
from mosn_py.upstream.lb import LeastRequest, Random, RoundRobin


def hosts(*weights: int) -> list[Host]:
    return [Host(Address("127.0.0.1", 1000 + i), w) for i, w in enumerate(weights)]


def test_round_robin_smooth_weights() -> None:
    hs = hosts(5, 1, 1)
    lb = RoundRobin(hs)
    picks = [lb.choose() for _ in range(70)]
    counts = collections.Counter(picks)
    assert counts == {hs[0]: 50, hs[1]: 10, hs[2]: 10}
    # Smooth: never the heavy host more than 4 times in a row within a period
    # (5,1,1 -> a a b a c a a).
    run = longest = 0
    prev = None
    for h in picks:
        run = run + 1 if h is prev else 1
        prev = h
        longest = max(longest, run)
    assert longest <= 4


def test_round_robin_equal_weights_cycles() -> None:
    hs = hosts(1, 1, 1)
    lb = RoundRobin(hs)
    picks = [lb.choose() for _ in range(9)]
    assert collections.Counter(picks) == {h: 3 for h in hs}


def test_exclude_skips_tried_hosts() -> None:
    hs = hosts(1, 1)
    for cls in (RoundRobin, Random, LeastRequest):
        lb = cls(hs)
        for _ in range(20):
            assert lb.choose({hs[0]}) is hs[1]
        assert lb.choose(set(hs)) is None


def test_empty_cluster_has_no_host() -> None:
    for cls in (RoundRobin, Random, LeastRequest):
        assert cls([]).choose() is None


def test_random_respects_weights() -> None:
    hs = hosts(9, 1)
    lb = Random(hs)
    counts = collections.Counter(lb.choose() for _ in range(5000))
    assert 0.85 < counts[hs[0]] / 5000 < 0.95


@pytest.mark.parametrize("active", [(0, 10), (10, 0)])
def test_least_request_prefers_idle_host(active: tuple[int, int]) -> None:
    hs = hosts(1, 1)
    hs[0].rq_active, hs[1].rq_active = active
    idle = hs[0] if active[0] == 0 else hs[1]
    lb = LeastRequest(hs)
    picks = collections.Counter(lb.choose() for _ in range(1000))
    # Power of two choices: the busy host only wins when both draws pick it (~25%).
    assert picks[idle] > 650
