"""The state tables in ``states.py`` are the truth: replay the golden vectors, fuzzed
variants and every scenario of the other test modules with codecs that record each state
change, and check that every change is an edge of ``RX_EDGES`` / ``TX_EDGES`` (after h2's
sweep over its transition table)."""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from mosn_py.codecs.http1 import RX_EDGES, TX_EDGES, RxState, TxState
from mosn_py.codecs.http1 import codec as codec_module
from mosn_py.codecs.http1.decoder import Decoder
from mosn_py.codecs.http1.encoder import Encoder
from mosn_py.codecs.http1.framer import Framer
from mosn_py.errors import ProtocolError, RemoteProtocolError

from . import test_decode, test_encode, test_errors, test_local_reply, test_matcher, test_tunnel
from .vectors import VECTORS, bytewise, feed

SEEN: set[tuple[Any, Any]] = set()
# the slot descriptors the recording subclasses wrap
_RX_SLOT: Any = Framer.__dict__["state"]
_TX_SLOT: Any = Encoder.__dict__["state"]


class RecordingDecoder(Decoder):
    @property
    def state(self) -> RxState:
        state: RxState = _RX_SLOT.__get__(self)
        return state

    @state.setter
    def state(self, new: RxState) -> None:
        try:
            old = _RX_SLOT.__get__(self)
        except AttributeError:
            old = None
        if old is not None and old is not new:
            SEEN.add((old, new))
        _RX_SLOT.__set__(self, new)


class RecordingEncoder(Encoder):
    @property
    def state(self) -> TxState:
        state: TxState = _TX_SLOT.__get__(self)
        return state

    @state.setter
    def state(self, new: TxState) -> None:
        try:
            old = _TX_SLOT.__get__(self)
        except AttributeError:
            old = None
        if old is not None and old is not new:
            SEEN.add((old, new))
        _TX_SLOT.__set__(self, new)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[tuple[Any, Any]]]:
    monkeypatch.setattr(codec_module, "Decoder", RecordingDecoder)
    monkeypatch.setattr(codec_module, "Encoder", RecordingEncoder)
    SEEN.clear()
    yield SEEN


def scenarios(*modules: ModuleType) -> Iterator[Callable[[], None]]:
    """Every test function of ``modules``, once per ``parametrize`` case."""
    for module in modules:
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_"):
                continue
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
            if not marks:
                if not inspect.signature(fn).parameters:
                    yield fn
                continue
            (mark,) = marks  # the suites use one parametrize per test
            names = mark.args[0]
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
            for case in mark.args[1]:
                values = case if len(names) > 1 else (case,)
                yield functools.partial(fn, **dict(zip(names, values, strict=True)))


def test_every_state_change_is_a_table_edge(recording: set[tuple[Any, Any]]) -> None:
    for v in VECTORS:
        assert feed(v, [v.wire]) == v.expected
        assert feed(v, bytewise(v.wire)) == v.expected
    rng = random.Random(9112)
    for _ in range(3000):  # mutated vectors, as the property test does, seeded
        v = rng.choice(VECTORS)
        wire = bytearray(v.wire)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(wire))
            wire[i : i + rng.randint(0, 2)] = rng.choice([b"\r\n", b" ", b"0", b"", b"\n", b"x"])
        try:
            feed(v, [bytes(wire[: len(wire) // 2]), bytes(wire[len(wire) // 2 :])])
        except (ProtocolError, RemoteProtocolError, AssertionError):
            pass
    for fn in scenarios(
        test_decode, test_encode, test_errors, test_local_reply, test_matcher, test_tunnel
    ):
        fn()
    assert recording, "nothing was recorded: is the monkeypatch effective?"
    rx = {(a, b) for a, b in recording if isinstance(a, RxState)}
    tx = {(a, b) for a, b in recording if isinstance(a, TxState)}
    assert {e for e in rx if e[1] not in RX_EDGES[e[0]]} == set()
    assert {e for e in tx if e[1] not in TX_EDGES[e[0]]} == set()
    # and the tables hold no edge these scenarios never take (a dead row hides a mistake)
    tabled_rx = {(a, b) for a, bs in RX_EDGES.items() for b in bs}
    tabled_tx = {(a, b) for a, bs in TX_EDGES.items() for b in bs}
    assert sorted(map(str, tabled_rx - rx)) == []
    assert sorted(map(str, tabled_tx - tx)) == []
