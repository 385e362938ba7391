"""Live updates (``Runtime.apply``) in one process against real sockets: new routes apply to
the next request on a kept connection, a replaced listener keeps its address without
refusing a connection, removed endpoints get no new requests while their requests in flight
finish, unrelated updates disturb nothing, and a bad snapshot changes nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from mosn_py.cli import translator_pairs
from mosn_py.config.loader import parse_config
from mosn_py.config.model import Config
from mosn_py.errors import ConfigError
from mosn_py.extensions import default_registries
from mosn_py.server.loop import new_event_loop
from mosn_py.server.runtime import Runtime


@pytest.fixture(params=["uvloop", "asyncio"])
def run(request: pytest.FixtureRequest) -> Iterator[Callable[[Awaitable[Any]], Any]]:
    loop = new_event_loop(str(request.param))

    def go(coro: Awaitable[Any]) -> Any:
        return loop.run_until_complete(asyncio.wait_for(coro, 30))

    yield go
    loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backend:
    """A tiny HTTP/1.1 server answering every request with its name; a request for /slow
    is answered after ``slow`` seconds."""

    def __init__(self, name: str, slow: float = 0.5) -> None:
        self.name = name
        self.slow = slow
        self.hits = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> Backend:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                self.hits += 1
                if head.split(b" ")[1] == b"/slow":
                    await asyncio.sleep(self.slow)
                body = self.name.encode()
                w.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.r: asyncio.StreamReader
        self.w: asyncio.StreamWriter

    async def connect(self) -> Client:
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def get(self, path: str = "/") -> str:
        self.w.write(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        head = await self.r.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        return (await self.r.readexactly(length)).decode()

    def close(self) -> None:
        self.w.close()


def config(listeners: list[dict[str, Any]], routes: list[dict[str, Any]],
           clusters: list[dict[str, Any]], **extra: Any) -> Config:
    reg = default_registries()
    return parse_config(
        {"listeners": listeners, "routes": routes, "clusters": clusters, "drain_timeout": "3s",
         **extra},
        known_filters=reg.stream_filters.as_dict(), translations=translator_pairs(reg),
    )


def http_listener(port: int, **kw: Any) -> dict[str, Any]:
    return {"name": "web", "address": f"127.0.0.1:{port}", "protocol": "http1",
            "route": "r", **kw}


def http_route(cluster: str) -> dict[str, Any]:
    return {"name": "r", "virtual_hosts": [
        {"name": "all", "domains": ["*"], "rules": [{"match": {"prefix": "/"},
                                                      "cluster": cluster}]}]}


def cluster(name: str, *backends: Backend, **kw: Any) -> dict[str, Any]:
    return {"name": name, "protocol": "http1", "endpoints": [b.address for b in backends], **kw}


async def started(cfg: Config) -> Runtime:
    rt = Runtime(cfg, default_registries(), asyncio.get_running_loop())
    await rt.start()
    return rt


def test_new_route_applies_to_the_next_request_on_a_kept_connection(run: Any) -> None:
    async def main() -> None:
        a, b = await Backend("a").start(), await Backend("b").start()
        port = free_port()
        clusters = [cluster("ca", a), cluster("cb", b)]
        rt = await started(config([http_listener(port)], [http_route("ca")], clusters))
        c = await Client(port).connect()
        assert await c.get() == "a"
        slow = asyncio.ensure_future(c.get("/slow"))  # in flight across the update
        await asyncio.sleep(0.1)
        stats = await rt.apply(config([http_listener(port)], [http_route("cb")], clusters))
        assert stats["route_tables_swapped"] == 1 and stats["listeners_replaced"] == 0
        assert await slow == "a"  # finished on the rule it matched
        assert await c.get() == "b"  # same connection, new route
        c.close()
        await rt.shutdown()
        a.close()
        b.close()

    run(main())


def test_replaced_listener_keeps_its_address_and_refuses_nothing(run: Any) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        port = free_port()
        clusters = [cluster("ca", a)]
        rt = await started(config([http_listener(port)], [http_route("ca")], clusters))
        old = await Client(port).connect()
        assert await old.get() == "a"
        slow = asyncio.ensure_future(old.get("/slow"))
        await asyncio.sleep(0.1)
        failures = 0
        stop = asyncio.Event()

        async def dial() -> int:
            n = 0
            while not stop.is_set():
                try:
                    c = await Client(port).connect()
                    assert await c.get() == "a"
                    c.close()
                    n += 1
                except OSError:
                    nonlocal failures
                    failures += 1
            return n

        dialer = asyncio.ensure_future(dial())
        await asyncio.sleep(0.1)
        new = config([http_listener(port, max_header_count=50)], [http_route("ca")], clusters)
        stats = await rt.apply(new)
        assert stats["listeners_replaced"] == 1
        await asyncio.sleep(0.2)
        stop.set()
        assert await dialer > 0
        assert failures == 0
        assert await slow == "a"  # the old listener's request finished...
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await old.get()  # ...and then its connection was drained
        assert rt.listeners[0].config.max_header_count == 50
        await rt.shutdown()
        a.close()

    run(main())


def test_removed_endpoint_gets_no_new_requests_and_finishes_its_own(run: Any) -> None:
    async def main() -> None:
        a, b = await Backend("a").start(), await Backend("b").start()
        port = free_port()
        rt = await started(config([http_listener(port)], [http_route("c")],
                                  [cluster("c", a, b)]))
        clients = [await Client(port).connect() for _ in range(4)]
        seen = {await c.get() for c in clients}
        assert seen == {"a", "b"}
        slow = [asyncio.ensure_future(c.get("/slow")) for c in clients]
        await asyncio.sleep(0.1)
        stats = await rt.apply(config([http_listener(port)], [http_route("c")],
                                      [cluster("c", a)]))
        assert stats["clusters_updated"] == 1 and stats["clusters_added"] == 0
        assert sorted(await asyncio.gather(*slow)) == ["a", "a", "b", "b"]
        b_hits = b.hits
        for _ in range(10):
            assert await clients[0].get() == "a"
        assert b.hits == b_hits
        for c in clients:
            c.close()
        await rt.shutdown()
        a.close()
        b.close()

    run(main())


def test_unrelated_update_keeps_tcp_sessions_and_listeners(run: Any) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        port, tport = free_port(), free_port()
        tcp = {"name": "raw", "address": f"127.0.0.1:{tport}", "cluster": "craw"}
        clusters = [cluster("ca", a), {"name": "craw", "endpoints": [a.address]}]
        rt = await started(config([http_listener(port), tcp], [http_route("ca")], clusters))
        session = await Client(tport).connect()
        assert await session.get() == "a"
        first = rt.listeners
        stats = await rt.apply(config([http_listener(port), tcp], [http_route("ca")],
                                      [*clusters, cluster("extra", a)]))
        assert stats["clusters_added"] == 1
        assert [id(x) for x in rt.listeners] == [id(x) for x in first]
        assert await session.get() == "a"  # the relayed session is untouched
        session.close()
        await rt.shutdown()
        a.close()

    run(main())


def test_listeners_added_and_removed(run: Any) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        p1, p2 = free_port(), free_port()
        clusters = [cluster("ca", a)]
        rt = await started(config([http_listener(p1)], [http_route("ca")], clusters))
        second = {**http_listener(p2), "name": "web2"}
        stats = await rt.apply(config([second], [http_route("ca")], clusters))
        assert stats["listeners_added"] == 1 and stats["listeners_removed"] == 1
        c = await Client(p2).connect()
        assert await c.get() == "a"
        await asyncio.sleep(0.1)
        with pytest.raises(OSError):
            await Client(p1).connect()
        c.close()
        await rt.shutdown()
        a.close()

    run(main())


def test_a_bad_snapshot_changes_nothing(run: Any) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        port = free_port()
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            busy_port = busy.getsockname()[1]
            clusters = [cluster("ca", a)]
            rt = await started(config([http_listener(port)], [http_route("ca")], clusters))
            before = (rt.config, list(rt.listeners), list(rt.clusters))
            bad = config(
                [http_listener(port), {**http_listener(busy_port), "name": "web2"}],
                [http_route("cb")], [*clusters, cluster("cb", a)],
            )
            with pytest.raises(ConfigError, match="cannot bind"):
                await rt.apply(bad)
            assert (rt.config, list(rt.listeners), list(rt.clusters)) == before
        c = await Client(port).connect()
        assert await c.get() == "a"
        c.close()
        await rt.shutdown()
        a.close()

    run(main())
