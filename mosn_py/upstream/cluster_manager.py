"""All clusters of one config snapshot, resolved by name on every use (Envoy's
``getThreadLocalCluster``): nobody holds a Cluster across an update.

``update(configs)`` moves to a new snapshot: an unchanged cluster is kept as it is; one whose
only change is its endpoints keeps its object (hosts that stay keep their connections); any
other change builds a new Cluster, and the old one (like a removed one) is retired: it gets no
new requests and its connections close as their requests finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import replace

from mosn_py.config.model import ClusterConfig
from mosn_py.registry import Registries
from mosn_py.server.connection import WriteBatcher
from mosn_py.upstream.cluster import Cluster


class ClusterManager:
    def __init__(
        self,
        configs: Iterable[ClusterConfig],
        registries: Registries,
        *,
        loop: asyncio.AbstractEventLoop,
        batcher: WriteBatcher,
        drain_timeout: float = 10.0,
    ) -> None:
        self._registries = registries
        self._loop = loop
        self._batcher = batcher
        self.drain_timeout = drain_timeout
        self._clusters: dict[str, Cluster] = {c.name: self._build(c) for c in configs}
        self._retired: list[Cluster] = []

    def _build(self, cfg: ClusterConfig) -> Cluster:
        codecs = self._registries.codecs
        codec = codecs.get(cfg.protocol) if cfg.protocol in codecs else None
        cluster = Cluster(
            cfg,
            self._registries.lb_policies.get(cfg.lb),
            codec_factory=codec,
            loop=self._loop,
            batcher=self._batcher,
        )
        cluster.drain_timeout = self.drain_timeout
        return cluster

    def get(self, name: str) -> Cluster | None:
        return self._clusters.get(name)

    def __iter__(self) -> Iterator[Cluster]:
        return iter(self._clusters.values())

    def __len__(self) -> int:
        return len(self._clusters)

    def update(self, configs: Iterable[ClusterConfig]) -> tuple[int, int, int]:
        """Move to ``configs``; returns (added or replaced, endpoints updated, removed)."""
        new: dict[str, Cluster] = {}
        added = updated = 0
        old = self._clusters
        for cfg in configs:
            cur = old.pop(cfg.name, None)
            if cur is not None and cur.config == cfg:
                new[cfg.name] = cur
            elif cur is not None and replace(cur.config, endpoints=cfg.endpoints) == cfg:
                cur.update_endpoints(cfg)
                new[cfg.name] = cur
                updated += 1
            else:
                if cur is not None:
                    self._retire(cur)
                new[cfg.name] = self._build(cfg)
                added += 1
        removed = len(old)
        for cluster in old.values():
            self._retire(cluster)
        self._clusters = new
        return added, updated, removed

    def _retire(self, cluster: Cluster) -> None:
        cluster.retire(self.drain_timeout)
        self._retired = [c for c in self._retired if c.has_retired_pools()]
        self._retired.append(cluster)

    def close(self) -> None:
        for c in self._clusters.values():
            c.close()
        for c in self._retired:
            c.close()
        self._retired.clear()
