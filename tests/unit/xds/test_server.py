"""The ADS server in process: a grpc.aio server on 127.0.0.1:0 and raw
``AggregatedDiscoveryServiceStub`` streams as clients, so every byte of every exchange
(versions, nonces, the order of types) is asserted. Resources are hand-built Envoy protos,
loaded from a small JSON file by a test loader (render.py is exercised by the integration
tests): ``{"listeners": {L: ROUTE}, "routes": {R: [CLUSTER...]}, "clusters": {C: [PORT...]}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from mosn_py.errors import ConfigError
from mosn_py.xds import resources as rt
from mosn_py.xds.server import ControlPlane, SotwStream
from mosn_py.xds.snapshot import Profiles, Snapshot, consistency_errors

pytestmark = pytest.mark.timeout(60)

LDS, RDS, CDS, EDS = rt.LISTENER, rt.ROUTE, rt.CLUSTER, rt.ENDPOINT
SHORT = rt.SHORT_NAMES
WAIT = 10.0  # for something that must arrive
QUIET = 0.4  # for "nothing arrives"


# --- hand-built resources --------------------------------------------------------------------


def _ads() -> Any:
    return config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource())


def listener(name: str, route: str) -> Any:
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=name,
        rds=hcm_pb2.Rds(route_config_name=route, config_source=_ads()),
    )
    router = any_pb2.Any()
    router.Pack(router_pb2.Router())
    hcm.http_filters.add(name="envoy.filters.http.router", typed_config=router)
    packed = any_pb2.Any()
    packed.Pack(hcm)
    return listener_pb2.Listener(
        name=name, api_listener=api_listener_pb2.ApiListener(api_listener=packed)
    )


def route_config(name: str, clusters: list[str]) -> Any:
    vh = route_components_pb2.VirtualHost(name=name, domains=["*"])
    for c in clusters:
        vh.routes.add(
            match=route_components_pb2.RouteMatch(prefix="/" + c),
            route=route_components_pb2.RouteAction(cluster=c),
        )
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=[vh])


def cluster(name: str) -> Any:
    return cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads()),
    )


def cla(name: str, ports: list[int]) -> Any:
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    loc = out.endpoints.add(locality=base_pb2.Locality(region="local"))
    loc.load_balancing_weight.value = 1
    for p in ports:
        sa = address_pb2.SocketAddress(address="127.0.0.1", port_value=p)
        loc.lb_endpoints.add(
            endpoint=endpoint_components_pb2.Endpoint(
                address=address_pb2.Address(socket_address=sa)
            )
        )
    return out


def build(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        LDS: {n: listener(n, r) for n, r in spec.get("listeners", {}).items()},
        RDS: {n: route_config(n, cs) for n, cs in spec.get("routes", {}).items()},
        CDS: {n: cluster(n) for n in spec.get("clusters", {})},
        EDS: {n: cla(n, ps) for n, ps in spec.get("clusters", {}).items()},
    }


def load_json(path: str) -> dict[str, dict[str, Any]]:
    """The test loader: a JSON spec -> resources; {"invalid": "why"} fails like a bad YAML."""
    with open(path) as f:
        spec = json.load(f)
    if "invalid" in spec:
        raise ConfigError(f"clusters[0].endpoints: {spec['invalid']}")
    return build(spec)


BASE: dict[str, Any] = {
    "listeners": {"l1": "r1", "l2": "r2"},
    "routes": {"r1": ["c1"], "r2": ["c2"]},
    "clusters": {"c1": [8001], "c2": [8002]},
}


def variant(**changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if value is None:
            del out[section][name]
        else:
            out[section][name] = value
    return out


# --- harness ---------------------------------------------------------------------------------


class Client:
    """One raw ADS stream; responses are read by a task into a queue (a cancelled read would
    cancel the call)."""

    def __init__(self, channel: Any, node_id: str, node_cluster: str = "") -> None:
        self.node = base_pb2.Node(id=node_id, cluster=node_cluster)
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())
        self.first = True

    async def _read(self) -> None:
        try:
            async for resp in self.call:
                self.queue.put_nowait(resp)
        except grpc.RpcError as e:
            self.queue.put_nowait(e)
        self.queue.put_nowait(None)

    async def send(
        self,
        type_url: str,
        names: list[str] | tuple[str, ...] = (),
        *,
        version: str = "",
        nonce: str = "",
        error: str | None = None,
    ) -> None:
        req = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=list(names),
            version_info=version,
            response_nonce=nonce,
        )
        if self.first:  # the node is only sent on the first request (reference/xds.md §5 #13)
            req.node.CopyFrom(self.node)
            self.first = False
        if error is not None:
            req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.call.write(req)

    async def recv(self, timeout: float = WAIT) -> Any:
        resp = await asyncio.wait_for(self.queue.get(), timeout)
        assert isinstance(resp, discovery_pb2.DiscoveryResponse), resp
        return resp

    async def quiet(self, timeout: float = QUIET) -> None:
        """Assert that nothing arrives within ``timeout``."""
        try:
            resp = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected response: {summary(resp)}")

    async def ack(self, resp: Any, names: list[str] | tuple[str, ...] = ()) -> None:
        await self.send(resp.type_url, names, version=resp.version_info, nonce=resp.nonce)

    async def close(self) -> None:
        self.call.cancel()
        self.reader.cancel()


def names(resp: Any) -> list[str]:
    out = []
    for a in resp.resources:
        if resp.type_url == EDS:
            m: Any = endpoint_pb2.ClusterLoadAssignment()
            a.Unpack(m)
            out.append(m.cluster_name)
        else:
            m = {
                LDS: listener_pb2.Listener,
                RDS: route_pb2.RouteConfiguration,
                CDS: cluster_pb2.Cluster,
            }[resp.type_url]()
            a.Unpack(m)
            out.append(m.name)
    return out


def ports(resp: Any) -> dict[str, list[int]]:
    out = {}
    for a in resp.resources:
        m = endpoint_pb2.ClusterLoadAssignment()
        a.Unpack(m)
        out[m.cluster_name] = [
            e.endpoint.address.socket_address.port_value
            for loc in m.endpoints
            for e in loc.lb_endpoints
        ]
    return out


def summary(resp: Any) -> str:
    if not isinstance(resp, discovery_pb2.DiscoveryResponse):
        return repr(resp)
    return f"{SHORT[resp.type_url]} v{resp.version_info} n{resp.nonce} {names(resp)}"


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.files: dict[str, Path] = {}
        self.cp: ControlPlane | None = None
        self.channel: Any = None
        self.clients: list[Client] = []

    def write(self, name: str, spec: dict[str, Any]) -> str:
        path = self.tmp / f"{name}.json"
        tmp = self.tmp / f"{name}.json.tmp"
        tmp.write_text(json.dumps(spec))
        os.replace(tmp, path)  # a new inode: the watcher sees it on the next poll
        self.files[name] = path
        return str(path)

    async def start(self, profiles: Profiles) -> None:
        self.cp = ControlPlane(profiles, load_json, poll_interval=0.05)
        assert self.cp.load() == {}
        address = await self.cp.start("127.0.0.1:0")
        self.channel = grpc.aio.insecure_channel(address)

    def client(self, node_id: str = "envoy-1", node_cluster: str = "") -> Client:
        c = Client(self.channel, node_id, node_cluster)
        self.clients.append(c)
        return c

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        if self.channel is not None:
            await self.channel.close()
        if self.cp is not None:
            await self.cp.stop(grace=0.1)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """``run(test_coroutine, spec=BASE)``: the coroutine gets an ``Env`` serving ``spec`` as
    the default profile."""

    def go(fn: Callable[[Env], Awaitable[None]], spec: dict[str, Any] | None = None) -> None:
        async def main() -> None:
            env = Env(tmp_path)
            default = env.write("default", spec if spec is not None else BASE)
            try:
                await env.start(Profiles(default, {}, {}))
                await fn(env)
            finally:
                await env.close()

        asyncio.run(main())

    yield go


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """The control plane's log records (whatever the ``mosn_py`` logger's propagation)."""

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            out.append(record)

    out: list[logging.LogRecord] = []
    h = ListHandler(logging.DEBUG)
    logger = logging.getLogger("mosn_py.xds.server")
    old = logger.level
    logger.addHandler(h)
    logger.setLevel(logging.DEBUG)
    yield out
    logger.removeHandler(h)
    logger.setLevel(old)


def fields(rec: logging.LogRecord) -> dict[str, Any]:
    return dict(getattr(rec, "fields", {}))


async def until(cond: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def envoy_like(c: Client) -> dict[str, Any]:
    """Subscribe the way Envoy does (wildcard CDS and LDS, then EDS and RDS by name) and ACK
    everything; returns the last response of each type."""
    last: dict[str, Any] = {}
    await c.send(CDS)
    last[CDS] = await c.recv()
    await c.ack(last[CDS])
    await c.send(EDS, names(last[CDS]))
    last[EDS] = await c.recv()
    await c.ack(last[EDS], names(last[CDS]))
    await c.send(LDS)
    last[LDS] = await c.recv()
    await c.ack(last[LDS])
    await c.send(RDS, ["r1", "r2"])
    last[RDS] = await c.recv()
    await c.ack(last[RDS], ["r1", "r2"])
    await c.quiet()
    return last


# --- the protocol ----------------------------------------------------------------------------


def test_wildcard_lds_cds_then_rds_eds_by_name(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        c = env.client()
        last = await envoy_like(c)
        assert names(last[CDS]) == ["c1", "c2"]
        assert names(last[EDS]) == ["c1", "c2"]
        assert ports(last[EDS]) == {"c1": [8001], "c2": [8002]}
        assert names(last[LDS]) == ["l1", "l2"]
        assert names(last[RDS]) == ["r1", "r2"]
        assert all(r.control_plane.identifier.startswith("mosn-py/") for r in last.values())

    run(t)


def test_ack_cycle_exact_versions_and_nonces(run: Callable[..., None]) -> None:
    """gRPC's order (reference/xds.md §1.4 transcript): LDS, RDS, CDS, EDS by name; the
    first request of each type carries no nonce; nonces count per stream."""

    async def t(env: Env) -> None:
        c = env.client("grpc-1")
        seen = []
        for type_url, name in ((LDS, "l1"), (RDS, "r1"), (CDS, "c1"), (EDS, "c1")):
            await c.send(type_url, [name])
            resp = await c.recv()
            seen.append((SHORT[resp.type_url], resp.version_info, resp.nonce, names(resp)))
            await c.ack(resp, [name])
        assert seen == [
            ("LDS", "1", "1", ["l1"]),
            ("RDS", "1", "2", ["r1"]),
            ("CDS", "1", "3", ["c1"]),
            ("EDS", "1", "4", ["c1"]),
        ]
        await c.quiet()  # no answer to an ACK of unchanged config (§5 #6)
        # A change: EDS version 2 with the next nonce; its ACK is not answered either.
        env.write("default", variant(clusters__c1=[8001, 8003]))
        resp = await c.recv()
        assert (SHORT[resp.type_url], resp.version_info, resp.nonce) == ("EDS", "2", "5")
        assert ports(resp) == {"c1": [8001, 8003]}
        await c.ack(resp, ["c1"])
        await c.quiet()

    run(t)


def test_no_response_to_repeated_acks(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        c = env.client()
        last = await envoy_like(c)
        for _ in range(3):  # the same ACK again: still nothing
            await c.ack(last[CDS])
        await c.quiet()

    run(t)


def test_nack_is_logged_and_not_answered(
    run: Callable[..., None], records: list[logging.LogRecord]
) -> None:
    async def t(env: Env) -> None:
        c = env.client("grpc-nack")
        await c.send(CDS, ["c1"])
        v1 = await c.recv()
        await c.ack(v1, ["c1"])
        await c.send(EDS, ["c1"])
        await c.ack(await c.recv(), ["c1"])
        env.write("default", variant(clusters__c1=[8009]))
        v2 = await c.recv()
        assert (SHORT[v2.type_url], v2.version_info) == ("EDS", "2")
        # NACK: the previous good version, the rejected nonce, error_detail (§1.4.3).
        await c.send(EDS, ["c1"], version="1", nonce=v2.nonce, error="bad endpoint")
        await c.quiet()  # never the same config again (§5 #3)
        nacks = [fields(r) for r in records if r.getMessage() == "xds nack"]
        assert nacks == [
            {
                "stream": nacks[0]["stream"],
                "node": "grpc-nack",
                "type": "EDS",
                "version": "1",
                "nonce": v2.nonce,
                "code": 3,
                "message": "bad endpoint",
            }
        ]
        assert [r.levelno for r in records if r.getMessage() == "xds nack"] == [logging.WARNING]
        # A new version is sent; its ACK clears the NACK.
        env.write("default", variant(clusters__c1=[8010]))
        v3 = await c.recv()
        assert (SHORT[v3.type_url], v3.version_info, ports(v3)) == ("EDS", "3", {"c1": [8010]})
        await c.ack(v3, ["c1"])
        await c.quiet()

    run(t)


def test_nack_repeated_with_a_new_name_is_logged_once_and_sends_the_new_name(
    run: Callable[..., None], records: list[logging.LogRecord]
) -> None:
    """A client may repeat its NACK on later requests of the type (with new names): the
    NACK is logged once, and the newly named resource is sent (with the rest of the set,
    section 1.6); the bare repetition is not answered."""

    async def t(env: Env) -> None:
        c = env.client("grpc-nack2")
        await c.send(EDS, ["c1"])
        v1 = await c.recv()
        await c.send(EDS, ["c1"], version="", nonce=v1.nonce, error="no locality")
        await c.quiet()
        await c.send(EDS, ["c1"], version="", nonce=v1.nonce, error="no locality")
        await c.quiet()
        await c.send(EDS, ["c1", "c2"], version="", nonce=v1.nonce, error="no locality")
        resp = await c.recv()
        assert (resp.version_info, names(resp)) == ("1", ["c1", "c2"])
        await c.ack(resp, ["c1", "c2"])
        await c.quiet()
        nacks = [fields(r) for r in records if r.getMessage() == "xds nack"]
        assert [(n["version"], n["nonce"], n["message"]) for n in nacks] == [
            ("", v1.nonce, "no locality")
        ]

    run(t)


def test_stale_nonce_ignored_but_subscription_change_honoured_on_next_ack(
    run: Callable[..., None],
) -> None:
    async def t(env: Env) -> None:
        c = env.client()
        await c.send(EDS, ["c1"])
        first = await c.recv()
        await c.ack(first, ["c1"])
        env.write("default", variant(clusters__c1=[8005]))
        push = await c.recv()  # nonce 2; nonce 1 is now stale
        assert push.nonce != first.nonce
        # A request that crossed the push: stale nonce, adds c2. Ignored (§1.4.8).
        await c.send(EDS, ["c1", "c2"], version="1", nonce=first.nonce)
        await c.quiet()
        # The ACK of the push carries the new name set: now it is answered (envoy #10363).
        await c.ack(push, ["c1", "c2"])
        resp = await c.recv()
        assert names(resp) == ["c1", "c2"]
        assert resp.version_info == "2"
        await c.ack(resp, ["c1", "c2"])
        await c.quiet()

    run(t)


def test_file_change_pushes_cds_eds_lds_rds_in_that_order(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        c = env.client()
        await envoy_like(c)
        # New cluster c3 used by route r1, c1's endpoints change, a new listener l3.
        env.write(
            "default",
            {
                "listeners": {"l1": "r1", "l2": "r2", "l3": "r1"},
                "routes": {"r1": ["c1", "c3"], "r2": ["c2"]},
                "clusters": {"c1": [8001, 8011], "c2": [8002], "c3": [8003]},
            },
        )
        got = [await c.recv() for _ in range(4)]
        assert [SHORT[r.type_url] for r in got] == ["CDS", "EDS", "LDS", "RDS"]
        assert [r.version_info for r in got] == ["2", "2", "2", "2"]
        cds, eds, lds, rds = got
        assert names(cds) == ["c1", "c2", "c3"]  # SotW CDS: the whole set (section 1.7)
        assert names(lds) == ["l1", "l2", "l3"]
        # RDS/EDS: every requested resource that exists, in one response.
        assert ports(eds) == {"c1": [8001, 8011], "c2": [8002]}
        assert names(rds) == ["r1", "r2"]
        for r in got:
            await c.ack(r, {EDS: ["c1", "c2"], RDS: ["r1", "r2"]}.get(r.type_url, []))
        await c.quiet()
        # Envoy now names the new cluster's endpoints: sent at once.
        await c.send(EDS, ["c1", "c2", "c3"], version=eds.version_info, nonce=eds.nonce)
        resp = await c.recv()
        assert ports(resp) == {"c1": [8001, 8011], "c2": [8002], "c3": [8003]}

    run(t)


def test_removal_goes_last_and_cds_omits_the_cluster(run: Callable[..., None]) -> None:
    """r2 moves to c1 and c2 is deleted: the route change goes first, then CDS without c2
    (make before break, §1.5)."""

    async def t(env: Env) -> None:
        c = env.client()
        await envoy_like(c)
        env.write(
            "default",
            {
                "listeners": {"l1": "r1", "l2": "r2"},
                "routes": {"r1": ["c1"], "r2": ["c1"]},
                "clusters": {"c1": [8001]},
            },
        )
        rds = await c.recv()
        cds = await c.recv()
        assert (SHORT[rds.type_url], SHORT[cds.type_url]) == ("RDS", "CDS")
        assert names(cds) == ["c1"]
        assert cds.version_info == "2"
        await c.ack(rds, ["r1", "r2"])
        await c.ack(cds)
        await c.quiet()  # EDS: cannot delete by omission; nothing to send (§5 #8)

    run(t)


def test_cds_change_resends_unchanged_eds(run: Callable[..., None]) -> None:
    """Envoy keeps a changed cluster warming until it gets its EDS (§5 #10)."""

    async def t(env: Env) -> None:
        c = env.client()
        await envoy_like(c)
        assert env.cp is not None
        base = env.cp.cache.get(str(env.files["default"]))
        assert base is not None
        changed = build(BASE)
        changed[CDS]["c1"].connect_timeout.seconds = 7
        env.cp.cache.update(str(env.files["default"]), changed)
        cds = await c.recv()
        eds = await c.recv()
        assert (SHORT[cds.type_url], cds.version_info) == ("CDS", "2")
        assert (SHORT[eds.type_url], eds.version_info) == ("EDS", "1")  # same version, resent
        assert names(eds) == ["c1", "c2"]
        await c.ack(cds)
        await c.ack(eds, ["c1", "c2"])
        await c.quiet()

    run(t)


def test_named_subscription_gets_only_what_it_names(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        c = env.client("grpc-named")
        await c.send(LDS, ["l2"])
        resp = await c.recv()
        assert names(resp) == ["l2"]
        await c.ack(resp, ["l2"])
        await c.send(CDS, ["c2"])
        resp = await c.recv()
        assert names(resp) == ["c2"]
        await c.ack(resp, ["c2"])
        # A change to a resource it did not name is not its business (§5 #6).
        env.write("default", variant(clusters__c1=[9999], listeners__l1="r2"))
        await c.quiet()
        # Adding a name gets the whole named set (SotW LDS is complete, §1.7).
        await c.ack(resp, ["c1", "c2"])
        resp = await c.recv()
        assert names(resp) == ["c1", "c2"]

    run(t)


def test_name_requested_before_it_exists_is_sent_when_it_appears(
    run: Callable[..., None],
) -> None:
    async def t(env: Env) -> None:
        c = env.client("grpc-early")
        await c.send(EDS, ["c9"])
        await c.quiet()  # nothing to send yet
        await c.send(CDS, ["c9"])
        await c.quiet()
        env.write("default", variant(clusters__c9=[8099]))
        cds = await c.recv()
        eds = await c.recv()
        assert (SHORT[cds.type_url], names(cds)) == ("CDS", ["c9"])
        assert (SHORT[eds.type_url], ports(eds)) == ("EDS", {"c9": [8099]})

    run(t)


def test_two_nodes_get_their_own_snapshots(tmp_path: Path) -> None:
    async def main() -> None:
        env = Env(tmp_path)
        default = env.write("default", BASE)
        special = env.write("special", {"clusters": {"s1": [7001]}})
        team = env.write("team", {"clusters": {"t1": [7101]}})
        try:
            await env.start(Profiles(default, {"node-b": special}, {"team": team}))
            a, b, d = env.client("node-a"), env.client("node-b", "team"), env.client("x", "team")
            for cl in (a, b, d):
                await cl.send(CDS)
            ra, rb, rd = await a.recv(), await b.recv(), await d.recv()
            assert names(ra) == ["c1", "c2"]
            assert names(rb) == ["s1"]  # the node id wins over its cluster
            assert names(rd) == ["t1"]
            for cl, r in ((a, ra), (b, rb), (d, rd)):
                await cl.ack(r)
            # A change to one file reaches only that file's clients.
            env.write("special", {"clusters": {"s1": [7001], "s2": [7002]}})
            rb2 = await b.recv()
            assert (names(rb2), rb2.version_info) == (["s1", "s2"], "2")
            await a.quiet(0.2)
            await d.quiet(0.2)
        finally:
            await env.close()

    asyncio.run(main())


def test_versions_are_per_type(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        assert env.cp is not None
        key = str(env.files["default"])
        c = env.client()
        await envoy_like(c)
        env.write("default", variant(clusters__c2=[8002, 8022]))
        eds = await c.recv()
        assert (SHORT[eds.type_url], eds.version_info, names(eds)) == ("EDS", "2", ["c1", "c2"])
        await c.ack(eds, ["c1", "c2"])
        await c.quiet()
        snap = env.cp.cache.get(key)
        assert snap is not None
        assert snap.versions() == {"CDS": "1", "EDS": "2", "LDS": "1", "RDS": "1"}
        # A later CDS response (a new subscription) still says CDS version 1.
        c2 = env.client("other")
        await c2.send(CDS)
        assert (await c2.recv()).version_info == "1"

    run(t)


def test_invalid_file_change_keeps_the_previous_snapshot(
    run: Callable[..., None], records: list[logging.LogRecord]
) -> None:
    async def t(env: Env) -> None:
        assert env.cp is not None
        key = str(env.files["default"])
        c = env.client()
        await envoy_like(c)
        before = env.cp.cache.get(key)

        def errors() -> list[dict[str, Any]]:
            return [fields(r) for r in records if r.getMessage() == "config error"]

        env.write("default", {"invalid": "'x' is not host:port"})
        bad = {"file": key, "error": "clusters[0].endpoints: 'x' is not host:port"}
        await until(lambda: bad in errors())
        # Inconsistent: a route to a cluster that does not exist.
        env.write("default", variant(routes__r1=["nosuch"]))
        dangling = {"file": key, "error": "route config 'r1': cluster 'nosuch' is not defined"}
        await until(lambda: dangling in errors())
        await c.quiet()
        assert env.cp.cache.get(key) is before
        # A good change afterwards is version 2: rejected files used no version.
        env.write("default", variant(clusters__c1=[8111]))
        eds = await c.recv()
        assert (SHORT[eds.type_url], eds.version_info) == ("EDS", "2")

    run(t)


def test_unchanged_rewrite_pushes_nothing(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        c = env.client()
        await envoy_like(c)
        env.write("default", BASE)  # same content, new inode
        (env.files["default"]).touch()
        await c.quiet(0.5)

    run(t)


def test_delta_is_unimplemented(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(env.channel)
        call = stub.DeltaAggregatedResources()
        try:  # the call may end before the write does: then write() raises
            await call.write(discovery_pb2.DeltaDiscoveryRequest(type_url=CDS))
            await call.read()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass
        assert await call.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "State of the World" in (await call.details() or "")

    run(t)


def test_missing_type_url_is_invalid_argument(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        c = env.client()
        await c.send("")
        err = await asyncio.wait_for(c.queue.get(), WAIT)
        assert isinstance(err, grpc.aio.AioRpcError)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

    run(t)


def test_stop_ends_streams_with_ok(tmp_path: Path) -> None:
    async def main() -> None:
        env = Env(tmp_path)
        default = env.write("default", BASE)
        await env.start(Profiles(default, {}, {}))
        c = env.client()
        await c.send(CDS)
        await c.recv()
        assert env.cp is not None
        await env.cp.stop(grace=1.0)
        end = await asyncio.wait_for(c.queue.get(), WAIT)
        assert end is None  # the stream ended (status OK), not an error
        assert await c.call.code() == grpc.StatusCode.OK
        env.cp = None
        await env.close()

    asyncio.run(main())


def test_many_clients_at_once(run: Callable[..., None]) -> None:
    async def t(env: Env) -> None:
        clients = [env.client(f"n{i}") for i in range(30)]
        for cl in clients:
            await cl.send(CDS)
        first = [await cl.recv() for cl in clients]
        assert {r.nonce for r in first} == {"1"}  # nonces are per stream
        for cl, r in zip(clients, first, strict=True):
            await cl.ack(r)
        env.write("default", variant(clusters__c3=[8003]))
        again = [await cl.recv() for cl in clients]
        assert all(names(r) == ["c1", "c2", "c3"] and r.version_info == "2" for r in again)

    run(t)


# --- the state machine and snapshots without a network ---------------------------------------


def _req(type_url: str, names_: list[str], nonce: str = "", version: str = "") -> Any:
    return discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=names_, response_nonce=nonce, version_info=version
    )


def test_wildcard_rules_of_the_spec_sequence() -> None:
    """xds_protocol.rst's worked sequence (§1.6): [] (= *) -> ["*", "A"] -> ["A"] -> []."""
    snap = Snapshot.build(build(variant(clusters__A=[1])))
    s = SotwStream(1, base_pb2.Node(id="n"), snap)
    out = s.on_request(_req(CDS, []))
    assert names(out[0]) == ["c1", "c2", "A"]
    assert s.state(CDS)["wildcard"] is True
    assert s.on_request(_req(CDS, ["*", "A"], nonce=out[0].nonce)) == []  # nothing new
    assert s.state(CDS)["wildcard"] is True
    assert s.on_request(_req(CDS, ["A"], nonce=out[0].nonce)) == []  # unsubscriptions only
    assert (s.state(CDS)["wildcard"], s.state(CDS)["names"]) == (False, ["A"])
    assert s.on_request(_req(CDS, [], nonce=out[0].nonce)) == []
    assert (s.state(CDS)["wildcard"], s.state(CDS)["names"]) == (False, [])
    # RDS/EDS have no wildcard: an empty list is nothing, "*" is just a name.
    assert s.on_request(_req(EDS, [])) == []
    assert s.on_request(_req(RDS, ["*"])) == []
    # Back to "*": everything is sent again (it was forgotten when unsubscribed).
    out2 = s.on_request(_req(CDS, ["*"], nonce=out[0].nonce))
    assert names(out2[0]) == ["c1", "c2", "A"]


def test_profiles_node_id_wins_over_cluster() -> None:
    p = Profiles("d.yaml", {"n1": "id.yaml"}, {"c1": "cl.yaml"})
    assert p.key_for(base_pb2.Node(id="n1", cluster="c1")) == "id.yaml"
    assert p.key_for(base_pb2.Node(id="n2", cluster="c1")) == "cl.yaml"
    assert p.key_for(base_pb2.Node(id="n2", cluster="c2")) == "d.yaml"
    assert p.key_for(base_pb2.Node()) == "d.yaml"
    assert p.files() == ["d.yaml", "id.yaml", "cl.yaml"]


def test_consistency_errors() -> None:
    res = build(BASE)
    assert list(consistency_errors(res)) == []
    del res[RDS]["r2"]
    del res[EDS]["c1"]
    res[CDS]["c3"] = cluster("other")
    res[CDS]["c4"] = cluster("c4")
    res[CDS]["c4"].eds_cluster_config.service_name = "svc4"
    assert list(consistency_errors(res)) == [
        "CDS resource 'c3': its name is 'other'",
        "listener 'l2': route config 'r2' (RDS) is not defined",
        "cluster 'c1': endpoints 'c1' (EDS ClusterLoadAssignment) are not defined",
        "cluster 'c3': endpoints 'other' (EDS ClusterLoadAssignment) are not defined",
        "cluster 'c4': endpoints 'svc4' (EDS ClusterLoadAssignment) are not defined",
    ]
    with pytest.raises(ConfigError) as info:
        Snapshot.build(res)
    assert len(info.value.errors) == 5


def test_consistency_follows_tcp_proxy_redis_and_inline_routes() -> None:
    from envoy.extensions.filters.network.redis_proxy.v3 import redis_proxy_pb2
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

    res = build({"clusters": {"c1": [1]}})

    def with_filter(name: str, msg: Any) -> Any:
        lst = listener_pb2.Listener(name=name)
        packed = any_pb2.Any()
        packed.Pack(msg)
        lst.filter_chains.add().filters.add(name=name, typed_config=packed)
        return lst

    res[LDS]["tcp"] = with_filter("tcp", tcp_proxy_pb2.TcpProxy(stat_prefix="t", cluster="t1"))
    redis = redis_proxy_pb2.RedisProxy(stat_prefix="r")
    redis.prefix_routes.routes.add(prefix="a", cluster="c1")
    redis.prefix_routes.catch_all_route.cluster = "r9"
    res[LDS]["redis"] = with_filter("redis", redis)
    inline = hcm_pb2.HttpConnectionManager(stat_prefix="h", route_config=route_config("x", ["h1"]))
    res[LDS]["http"] = with_filter("http", inline)
    assert list(consistency_errors(res)) == [
        "listener 'tcp': cluster 't1' is not defined",
        "listener 'redis': cluster 'r9' is not defined",
        "listener 'http': cluster 'h1' is not defined",
    ]


def test_snapshot_versions_ignore_order_and_bump_per_type() -> None:
    a = Snapshot.build(build(BASE))
    assert a.versions() == {"CDS": "1", "EDS": "1", "LDS": "1", "RDS": "1"}
    reordered = build(BASE)
    reordered[CDS] = dict(reversed(list(reordered[CDS].items())))
    b = Snapshot.build(reordered, a)
    assert b.versions() == a.versions()
    c = Snapshot.build(build(variant(listeners__l3="r1")), b)
    assert c.versions() == {"CDS": "1", "EDS": "1", "LDS": "2", "RDS": "1"}
    assert c.eds_names == {"c1": "c1", "c2": "c2"}


def test_shipped_examples_render_to_consistent_snapshots() -> None:
    """render.py and the consistency check agree on every example that loads here (the
    gateway example needs certificates made first)."""
    from mosn_py.xds.cp_cli import make_loader

    root = Path(__file__).resolve().parents[3]
    load = make_loader()
    checked = []
    for path in [*sorted(root.glob("examples/**/*.yaml")), root / "mosn_py/defaults/default.yaml"]:
        try:
            res = load(str(path))
        except ConfigError:
            continue
        assert list(consistency_errors(res)) == [], path
        Snapshot.build(res)
        checked.append(path.name)
    assert {"proxyless-grpc.yaml", "bolt.yaml", "redis.yaml", "tcp.yaml"} <= set(checked)


def test_consistency_follows_our_own_proxy_listeners() -> None:
    """A bolt listener travels as TypedStruct mosn_py.config.v1.Proxy with its route config
    inline: the clusters its rules (and mirrors) name must exist."""
    res = build({"clusters": {"c1": [1]}})
    proxy = {
        "protocol": "bolt",
        "route": {"name": "r", "rules": [{"cluster": "c1"}, {"cluster": "gone", "mirror": "m"}]},
    }
    lst = listener_pb2.Listener(name="bolt_in")
    lst.filter_chains.add().filters.add(
        name="mosn_py.proxy", typed_config=rt.typed_struct(rt.MOSN_PROXY, proxy)
    )
    res[LDS]["bolt_in"] = lst
    assert list(consistency_errors(res)) == [
        "listener 'bolt_in': cluster 'gone' is not defined",
        "listener 'bolt_in': cluster 'm' is not defined",
    ]
