"""Built-in demo upstreams, started by ``demo_upstreams:`` in a config (the bundled default
config uses them so ``mosn-py run`` answers on a bare machine). They are demos, not
production servers: a SOFARPC ``SampleServicePb`` Bolt service and a TCP echo server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from mosn_py.config.model import DemoUpstream


async def start_demo_upstreams(
    configs: Iterable[DemoUpstream], loop: asyncio.AbstractEventLoop
) -> list[Any]:
    from mosn_py.demo.servers import DemoServer

    started: list[Any] = []
    try:
        for cfg in configs:
            started.append(await DemoServer.start(cfg, loop))
    except BaseException:
        for s in started:
            s.close()
        raise
    return started
