"""Event loop selection: uvloop by default, the stdlib asyncio loop on request."""

from __future__ import annotations

import asyncio

LOOPS = ("uvloop", "asyncio")


def new_event_loop(kind: str = "uvloop") -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if kind == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"unknown loop {kind!r}; expected one of {', '.join(LOOPS)}")
