"""The proxy's ADS client against a scripted in-process ADS server: the exact requests it
sends (node, versions, nonces, subscriptions, NACK error_detail), warming, removal, and
resubscription after the stream breaks (reference/xds.md §1.4-1.7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2

from mosn_py.config.model import Address, Config, XdsConfig
from mosn_py.xds import resources as R
from mosn_py.xds.assemble import Assembler
from mosn_py.xds.client import XdsClient

ADS = config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource())


def packed(*msgs: Any) -> list[any_pb2.Any]:
    out = []
    for m in msgs:
        a = any_pb2.Any()
        a.Pack(m)
        out.append(a)
    return out


def eds_cluster(name: str, lb: int = cluster_pb2.Cluster.ROUND_ROBIN) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=ADS),
        lb_policy=lb,
    )


def cla(name: str, *ports: int) -> endpoint_pb2.ClusterLoadAssignment:
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(
                lb_endpoints=[
                    endpoint_components_pb2.LbEndpoint(
                        endpoint=endpoint_components_pb2.Endpoint(
                            address=address_pb2.Address(
                                socket_address=address_pb2.SocketAddress(
                                    address="127.0.0.1", port_value=p
                                )
                            )
                        )
                    )
                    for p in ports
                ]
            )
        ],
    )


def http_listener(name: str, port: int, route: str) -> listener_pb2.Listener:
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=name,
        codec_type=hcm_pb2.HttpConnectionManager.HTTP1,
        rds=hcm_pb2.Rds(config_source=ADS, route_config_name=route),
        http_filters=[
            hcm_pb2.HttpFilter(
                name="envoy.filters.http.router", typed_config=packed(router_pb2.Router())[0]
            )
        ],
    )
    return listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
        ),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[
                    listener_components_pb2.Filter(
                        name="envoy.filters.network.http_connection_manager",
                        typed_config=packed(hcm)[0],
                    )
                ]
            )
        ],
    )


def route_config(name: str, cluster: str) -> route_pb2.RouteConfiguration:
    return route_pb2.RouteConfiguration(
        name=name,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name="all",
                domains=["*"],
                routes=[
                    route_components_pb2.Route(
                        match=route_components_pb2.RouteMatch(prefix="/"),
                        route=route_components_pb2.RouteAction(cluster=cluster),
                    )
                ],
            )
        ],
    )


class FakeAds(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    """Records every request; sends what the test queues; ``hang_up()`` ends the stream."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
        self.outbox: asyncio.Queue[discovery_pb2.DiscoveryResponse | None] = asyncio.Queue()
        self.streams = 0
        self.server: Any = None
        self.port = 0

    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest], context: Any
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        self.streams += 1

        async def pump() -> None:
            async for req in request_iterator:
                await self.requests.put(req)

        reader = asyncio.ensure_future(pump())
        try:
            while True:
                resp = await self.outbox.get()
                if resp is None:
                    return
                yield resp
        finally:
            reader.cancel()

    async def start(self) -> FakeAds:
        self.server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return self

    def send(self, type_url: str, version: str, nonce: str, *msgs: Any) -> None:
        self.outbox.put_nowait(
            discovery_pb2.DiscoveryResponse(
                type_url=type_url, version_info=version, nonce=nonce, resources=packed(*msgs)
            )
        )

    def hang_up(self) -> None:
        self.outbox.put_nowait(None)

    async def next(self, timeout: float = 5.0) -> discovery_pb2.DiscoveryRequest:
        return await asyncio.wait_for(self.requests.get(), timeout)

    async def nothing(self, wait: float = 0.3) -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(self.requests.get(), wait)

    async def stop(self) -> None:
        await self.server.stop(None)


class Harness:
    def __init__(self, ads: FakeAds) -> None:
        self.applied: list[Config] = []
        xcfg = XdsConfig(
            Address("127.0.0.1", ads.port), "node-1", "demo", initial_backoff=0.05, max_backoff=0.2
        )
        self.client = XdsClient(xcfg, Assembler({}), self.apply, asyncio.get_running_loop())
        self.task = asyncio.ensure_future(self.client.run())

    async def apply(self, config: Config) -> dict[str, int]:
        self.applied.append(config)
        return {}

    @property
    def config(self) -> Config:
        return self.applied[-1]

    async def close(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def handshake(ads: FakeAds) -> Harness:
    """CDS + EDS + LDS + RDS, each ACKed; returns the harness with all of it applied."""
    h = Harness(ads)
    first, second = await ads.next(), await ads.next()
    assert [first.type_url, second.type_url] == [R.CLUSTER, R.LISTENER]
    assert first.node.id == "node-1" and first.node.cluster == "demo"
    assert not second.HasField("node")  # only the first request of a stream carries it
    for req in (first, second):
        assert (req.version_info, req.response_nonce, list(req.resource_names)) == ("", "", [])
    ads.send(R.CLUSTER, "1", "n1", eds_cluster("backend"))
    ack, sub = await ads.next(), await ads.next()
    assert (ack.type_url, ack.version_info, ack.response_nonce) == (R.CLUSTER, "1", "n1")
    assert not ack.HasField("error_detail")
    assert (sub.type_url, list(sub.resource_names), sub.response_nonce) == (
        R.ENDPOINT,
        ["backend"],
        "",
    )
    assert h.config.clusters == ()  # warming: no endpoints yet
    assert h.client.warming == ["cluster 'backend': waiting for ClusterLoadAssignment 'backend'"]
    ads.send(R.ENDPOINT, "1", "n2", cla("backend", 9001, 9002))
    ack = await ads.next()
    assert (ack.type_url, ack.version_info, ack.response_nonce) == (R.ENDPOINT, "1", "n2")
    (c,) = h.config.clusters
    assert [str(e.address) for e in c.endpoints] == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert c.protocol == "tcp"  # nothing references it yet
    ads.send(R.LISTENER, "1", "n3", http_listener("web", 18080, "r1"))
    ack, sub = await ads.next(), await ads.next()
    assert (ack.type_url, ack.version_info, ack.response_nonce) == (R.LISTENER, "1", "n3")
    assert (sub.type_url, list(sub.resource_names)) == (R.ROUTE, ["r1"])
    assert h.config.listeners == ()  # warming: no routes yet
    ads.send(R.ROUTE, "1", "n4", route_config("r1", "backend"))
    ack = await ads.next()
    assert (ack.type_url, ack.version_info, ack.response_nonce) == (R.ROUTE, "1", "n4")
    (listener,) = h.config.listeners
    assert (listener.name, listener.protocol, listener.route) == ("web", "http1", "r1")
    assert h.config.clusters[0].protocol == "http1"  # an HTTP route uses it
    assert h.client.synced.is_set() and h.client.warming == []
    return h


def test_handshake_acks_every_type_and_warms() -> None:
    async def main() -> None:
        ads = await FakeAds().start()
        h = await handshake(ads)
        view = h.client.view()
        assert {k: v["version"] for k, v in view["types"].items()} == {
            "CDS": "1",
            "EDS": "1",
            "LDS": "1",
            "RDS": "1",
        }
        await ads.nothing()  # no request without a response to answer
        await h.close()
        await ads.stop()

    run(main())


def test_bad_resource_is_nacked_and_the_last_good_config_stays() -> None:
    async def main() -> None:
        ads = await FakeAds().start()
        h = await handshake(ads)
        good, applied = h.config, len(h.applied)
        ads.send(R.CLUSTER, "2", "n5", eds_cluster("backend", cluster_pb2.Cluster.MAGLEV))
        nack = await ads.next()
        assert (nack.type_url, nack.version_info, nack.response_nonce) == (R.CLUSTER, "1", "n5")
        assert nack.HasField("error_detail")
        assert "Cluster 'backend'" in nack.error_detail.message
        assert "MAGLEV" in nack.error_detail.message
        assert len(h.applied) == applied and h.config is good
        last = h.client.view()["types"]["CDS"]["last_nack"]
        assert last["version"] == "2" and "MAGLEV" in last["message"]
        # a later good version is ACKed again
        ads.send(R.CLUSTER, "3", "n6", eds_cluster("backend"), eds_cluster("other"))
        ack = await ads.next()
        assert (ack.version_info, ack.response_nonce) == ("3", "n6")
        assert not ack.HasField("error_detail")
        sub = await ads.next()
        assert (sub.type_url, list(sub.resource_names)) == (R.ENDPOINT, ["backend", "other"])
        assert sub.response_nonce == "n2" and sub.version_info == "1"
        await h.close()
        await ads.stop()

    run(main())


def test_snapshot_errors_are_nacked_naming_the_resource() -> None:
    async def main() -> None:
        ads = await FakeAds().start()
        h = await handshake(ads)
        # two listeners on one address: each converts, the snapshot does not validate
        ads.send(
            R.LISTENER,
            "2",
            "n5",
            http_listener("web", 18080, "r1"),
            http_listener("web2", 18080, "r1"),
        )
        nack = await ads.next()
        assert nack.HasField("error_detail") and nack.version_info == "1"
        assert "Listener 'web2'" in nack.error_detail.message
        assert [x.name for x in h.config.listeners] == ["web"]
        # duplicate names in one response (reference/xds.md §1.7)
        ads.send(
            R.LISTENER,
            "3",
            "n6",
            http_listener("web", 18080, "r1"),
            http_listener("web", 18081, "r1"),
        )
        nack = await ads.next()
        assert nack.HasField("error_detail") and "web" in nack.error_detail.message
        await h.close()
        await ads.stop()

    run(main())


def test_removal_drops_the_resource_and_its_subscription() -> None:
    async def main() -> None:
        ads = await FakeAds().start()
        h = await handshake(ads)
        ads.send(R.LISTENER, "2", "n5")  # SotW LDS: empty = every listener removed
        ack, sub = await ads.next(), await ads.next()
        assert (ack.type_url, ack.version_info) == (R.LISTENER, "2")
        assert (sub.type_url, list(sub.resource_names)) == (R.ROUTE, [])
        assert h.config.listeners == () and h.config.routes == ()
        ads.send(R.CLUSTER, "2", "n6")
        ack, sub = await ads.next(), await ads.next()
        assert (sub.type_url, list(sub.resource_names)) == (R.ENDPOINT, [])
        assert h.config.clusters == ()
        await h.close()
        await ads.stop()

    run(main())


def test_stream_break_keeps_config_and_resubscribes_with_versions() -> None:
    async def main() -> None:
        ads = await FakeAds().start()
        h = await handshake(ads)
        applied = len(h.applied)
        ads.hang_up()
        reqs = [await ads.next() for _ in range(4)]
        assert ads.streams == 2
        assert reqs[0].node.id == "node-1"
        got = {r.type_url: (r.version_info, r.response_nonce, list(r.resource_names)) for r in reqs}
        assert got == {
            R.CLUSTER: ("1", "", []),
            R.LISTENER: ("1", "", []),
            R.ENDPOINT: ("1", "", ["backend"]),
            R.ROUTE: ("1", "", ["r1"]),
        }
        assert len(h.applied) == applied  # nothing re-applied, nothing lost
        assert [x.name for x in h.config.listeners] == ["web"]
        await h.close()
        await ads.stop()

    run(main())


def test_control_plane_down_then_up() -> None:
    async def main() -> None:
        ads = await FakeAds().start()
        port = ads.port
        h = await handshake(ads)
        await ads.stop()
        await asyncio.sleep(0.5)  # several failed reconnects (backoff 0.05..0.2 s)
        assert not h.client.connected
        assert [x.name for x in h.config.listeners] == ["web"]
        again = FakeAds()
        again.server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(again, again.server)
        again.port = again.server.add_insecure_port(f"127.0.0.1:{port}")
        await again.server.start()
        reqs = [await again.next(10) for _ in range(4)]
        assert {r.type_url for r in reqs} == set(R.PUSH_ORDER)
        assert all(r.version_info == "1" for r in reqs)
        await h.close()
        await again.stop()

    run(main())
