"""The proxy's xDS client: one ADS stream (State of the World) to the control plane.

    client = XdsClient(config.xds, assembler, runtime.apply, loop)
    task = loop.create_task(client.run())     # until cancelled
    await client.synced.wait()                # first LDS and CDS applied (or refused)

Per type URL (reference/xds.md §1.4): the version last applied, the nonce last received, the
names subscribed, the last NACK. Every response is ACKed or NACKed: it is decoded
(``convert.decode``), the new state assembled into a whole snapshot and validated by the
config loader, then applied to the runtime; a failure at any step is a NACK whose
``error_detail`` names the resource and the problem, and the last good config stays live (the
whole response is refused: nothing of it is applied).

LDS and CDS are wildcard subscriptions (as Envoy's); RDS and EDS subscribe by name to what the
listeners and clusters reference, and a name no longer referenced is dropped with its
resource (SotW deletes those only through their parent, §1.7). Listener/Cluster responses
hold the whole set: a missing one is removed. Warming: see ``assemble.py``.

A broken stream is reopened with exponential backoff and full jitter; the new stream sends
each type's last applied version and its subscriptions again, and the config stays live
meanwhile (the proxy keeps serving what it has when the control plane is down).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from mosn_py import __version__
from mosn_py.config.model import Config, XdsConfig
from mosn_py.errors import ConfigError
from mosn_py.observability.log import log_event
from mosn_py.xds import resources as R
from mosn_py.xds.assemble import Assembler
from mosn_py.xds.convert import ConversionError, decode

log = logging.getLogger("mosn_py.xds")

INVALID_ARGUMENT = 3  # google.rpc.Code
# A SotW response holds a whole type (every cluster, every endpoint): gRPC's default 4 MiB
# receive limit is about 15,000 clusters. Raise it; what arrives is validated anyway.
MAX_RESPONSE_BYTES = 256 << 20
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)]


@dataclass
class TypeState:
    type_url: str
    version: str = ""  # of the last applied response
    nonce: str = ""  # of the last response received on the current stream
    names: frozenset[str] = frozenset()  # RDS/EDS subscriptions; LDS/CDS are wildcard
    resources: dict[str, Any] = field(default_factory=dict)  # name -> decoded part
    last_nack: dict[str, Any] | None = None
    last_update: float | None = None  # wall time of the last applied response
    last_apply_ms: float | None = None  # decode + validate + apply of that response
    accepted: int = 0
    rejected: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "nonce": self.nonce,
            "resources": sorted(self.resources),
            "subscribed": "*" if self.type_url in R.FULL_STATE_TYPES else sorted(self.names),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "last_update": self.last_update,
            "last_apply_ms": self.last_apply_ms,
            "last_nack": self.last_nack,
        }


class XdsClient:
    def __init__(
        self,
        config: XdsConfig,
        assembler: Assembler,
        apply: Callable[[Config], Awaitable[dict[str, int]]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.config = config
        self.assembler = assembler
        self._apply = apply
        self._loop = loop
        self.types = {t: TypeState(t) for t in R.PUSH_ORDER}
        self.synced = asyncio.Event()  # first LDS and CDS answered
        self.connected = False
        self.streams = 0  # streams opened so far
        self.warming: list[str] = []
        self._queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] | None = None
        self._node_pending = True  # the node goes in the first request of each stream

    # --- the stream -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Keep one ADS stream open until cancelled."""
        backoff = self.config.initial_backoff
        target = str(self.config.address)
        while True:
            got_response = False
            channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
            try:
                try:
                    await asyncio.wait_for(channel.channel_ready(), self.config.connect_timeout)
                except TimeoutError:
                    log_event(log, logging.WARNING, "xds server unreachable", server=target,
                              timeout=self.config.connect_timeout)
                    raise _Retry from None
                stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
                queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
                self._queue = queue
                call = stub.StreamAggregatedResources(self._requests(queue))
                self.streams += 1
                self._node_pending = True
                for t in self.types.values():
                    t.nonce = ""  # nonces are per stream (§1.4.6)
                for type_url in (R.CLUSTER, R.LISTENER, R.ENDPOINT, R.ROUTE):
                    t = self.types[type_url]
                    if type_url in R.FULL_STATE_TYPES or t.names:
                        self._send(t)
                async for response in call:
                    if not got_response:
                        got_response = True
                        self.connected = True
                        backoff = self.config.initial_backoff
                        log_event(log, logging.INFO, "xds stream up", server=target,
                                  stream=self.streams)
                    await self._on_response(response)
                log_event(log, logging.WARNING, "xds stream closed by the server", server=target)
            except asyncio.CancelledError:
                raise
            except _Retry:
                pass
            except grpc.aio.AioRpcError as e:
                log_event(log, logging.WARNING, "xds stream failed", server=target,
                          code=e.code().name, details=e.details() or "")
            except Exception as e:  # a bug must not end the client: log and reconnect
                log.exception("xds client error: %s", e)
            finally:
                self.connected = False
                if self._queue is not None:
                    self._queue.put_nowait(None)  # ends the request iterator
                self._queue = None
                await channel.close(grace=None)
            delay = random.uniform(0, backoff)  # full jitter
            backoff = min(backoff * 2, self.config.max_backoff)
            await asyncio.sleep(delay)

    async def _requests(
        self, queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None]
    ) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while True:
            req = await queue.get()
            if req is None:
                return
            yield req

    def _node(self) -> base_pb2.Node:
        return base_pb2.Node(
            id=self.config.node_id,
            cluster=self.config.node_cluster,
            user_agent_name="mosn-py",
            user_agent_version=__version__,
        )

    def _send(self, t: TypeState, *, error: str | None = None) -> None:
        if self._queue is None:
            return
        req = discovery_pb2.DiscoveryRequest(
            version_info=t.version,
            type_url=t.type_url,
            response_nonce=t.nonce,
            resource_names=[] if t.type_url in R.FULL_STATE_TYPES else sorted(t.names),
        )
        if self._node_pending:
            self._node_pending = False
            req.node.CopyFrom(self._node())
        if error is not None:
            req.error_detail.CopyFrom(status_pb2.Status(code=INVALID_ARGUMENT, message=error))
        self._queue.put_nowait(req)

    # --- responses ------------------------------------------------------------------------------
    async def _on_response(self, resp: discovery_pb2.DiscoveryResponse) -> None:
        t = self.types.get(resp.type_url)
        if t is None:
            # Not a type we subscribed to: NACK it without touching anything (§1.4).
            log_event(log, logging.WARNING, "xds response of an unknown type",
                      type_url=resp.type_url)
            self._send(TypeState(resp.type_url, nonce=resp.nonce),
                       error=f"mosn-py does not subscribe to {resp.type_url}")
            return
        t.nonce = resp.nonce
        started = time.perf_counter()
        try:
            decoded = decode(resp.type_url, resp.resources)
            new_resources = (
                decoded if resp.type_url in R.FULL_STATE_TYPES
                else {**t.resources, **decoded}  # RDS/EDS: no deletion by omission
            )
            stats = await self._rebuild({resp.type_url: new_resources})
        except (ConversionError, ConfigError) as e:
            message = _one_line(e)
            t.rejected += 1
            t.last_nack = {
                "version": resp.version_info,
                "nonce": resp.nonce,
                "message": message,
                "time": time.time(),
            }
            log_event(log, logging.WARNING, "xds NACK", type=R.SHORT_NAMES[t.type_url],
                      version=resp.version_info, nonce=resp.nonce, error=message)
            self._send(t, error=message)
            self._check_synced()
            return
        t.version = resp.version_info
        t.accepted += 1
        t.last_update = time.time()
        t.last_apply_ms = round((time.perf_counter() - started) * 1000, 1)
        log_event(log, logging.INFO, "xds ACK", type=R.SHORT_NAMES[t.type_url],
                  version=t.version, resources=len(t.resources), took_ms=t.last_apply_ms,
                  **{k: v for k, v in stats.items() if v})
        self._send(t)
        self._resubscribe()
        self._check_synced()

    async def _rebuild(self, replace: dict[str, dict[str, Any]]) -> dict[str, int]:
        """Assemble a snapshot from the current state with ``replace`` swapped in, apply it,
        and only then keep the new state. Raises ConfigError (nothing changed then)."""
        state = {url: replace.get(url, t.resources) for url, t in self.types.items()}
        # RDS/EDS resources nobody references any more are dropped (their parent let go).
        for url, wanted in _referenced(state).items():
            state[url] = {k: v for k, v in state[url].items() if k in wanted}
        assembly = self.assembler.build(
            state[R.LISTENER], state[R.ROUTE], state[R.CLUSTER], state[R.ENDPOINT]
        )
        stats = await self._apply(assembly.config)
        self.assembler.commit(assembly)
        self.warming = assembly.warming
        for url, t in self.types.items():
            t.resources = state[url]
        return stats

    def _resubscribe(self) -> None:
        """Subscribe RDS/EDS to exactly the names the listeners and clusters reference."""
        wanted = _referenced({url: t.resources for url, t in self.types.items()})
        for url, names in wanted.items():
            t = self.types[url]
            if names != t.names:
                t.names = names
                self._send(t)

    def _check_synced(self) -> None:
        if self.synced.is_set():
            return
        lds, cds = self.types[R.LISTENER], self.types[R.CLUSTER]
        answered = all(t.accepted or t.rejected for t in (lds, cds))
        if answered and not self.warming:
            self.synced.set()

    def view(self) -> dict[str, Any]:
        """For the admin ``/config_dump``."""
        return {
            "server": str(self.config.address),
            "node": {"id": self.config.node_id, "cluster": self.config.node_cluster},
            "connected": self.connected,
            "streams_opened": self.streams,
            "warming": list(self.warming),
            "types": {R.SHORT_NAMES[url]: t.view() for url, t in self.types.items()},
        }


def _referenced(state: dict[str, dict[str, Any]]) -> dict[str, frozenset[str]]:
    """The RouteConfiguration names the listeners of ``state`` reference and the
    ClusterLoadAssignment names its clusters reference."""
    return {
        R.ROUTE: frozenset(p.rds for p in state[R.LISTENER].values() if p.rds),
        R.ENDPOINT: frozenset(p.eds for p in state[R.CLUSTER].values() if p.eds),
    }


class _Retry(Exception):
    """Reconnect after the backoff (the reason was logged)."""


def _one_line(e: Exception) -> str:
    if isinstance(e, ConfigError):
        return "; ".join(e.errors)
    return str(e)
