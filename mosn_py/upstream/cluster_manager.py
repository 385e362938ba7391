"""All clusters of one config snapshot, resolved by name on every use (Envoy's
``getThreadLocalCluster``): nobody holds a Cluster across an update."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

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
    ) -> None:
        self._clusters: dict[str, Cluster] = {}
        for cfg in configs:
            codec = (
                registries.codecs.get(cfg.protocol) if cfg.protocol in registries.codecs else None
            )
            self._clusters[cfg.name] = Cluster(
                cfg,
                registries.lb_policies.get(cfg.lb),
                codec_factory=codec,
                loop=loop,
                batcher=batcher,
            )

    def get(self, name: str) -> Cluster | None:
        return self._clusters.get(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._clusters.values())

    def close(self) -> None:
        for c in self._clusters.values():
            c.close()
