from __future__ import annotations

import asyncio

from mosn_py.server.timers import TimerWheel


class Obj:
    def __init__(self, name: str, fired: list[tuple[str, float]], loop: asyncio.AbstractEventLoop):
        self.name, self.fired, self.loop = name, fired, loop

    def on_deadline(self) -> None:
        self.fired.append((self.name, self.loop.time()))


def test_fires_in_order_never_early_and_cancel_works() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        wheel = TimerWheel(loop, resolution=0.01)
        fired: list[tuple[str, float]] = []
        start = loop.time()
        objs = {n: Obj(n, fired, loop) for n in ("a", "b", "c", "d")}
        tokens = {
            "c": wheel.schedule(objs["c"], 0.15),
            "a": wheel.schedule(objs["a"], 0.05),
            "b": wheel.schedule(objs["b"], 0.10),
            "d": wheel.schedule(objs["d"], 0.12),
        }
        wheel.cancel(objs["d"], tokens["d"])
        assert len(wheel) == 3
        await asyncio.sleep(0.3)
        assert [n for n, _ in fired] == ["a", "b", "c"]
        for (_n, t), delay in zip(fired, (0.05, 0.10, 0.15), strict=True):
            assert t - start >= delay - 1e-3  # never early
        assert len(wheel) == 0
        # An earlier deadline scheduled after a later one re-arms the loop timer.
        fired.clear()
        wheel.schedule(objs["a"], 0.2)
        wheel.schedule(objs["b"], 0.02)
        await asyncio.sleep(0.05)
        assert [n for n, _ in fired] == ["b"]
        wheel.close()

    asyncio.run(main())
