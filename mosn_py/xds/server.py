"""The control plane: an xDS v3 ADS server, State of the World (``mosn-py control-plane``).

Vocabulary:

- a **profile** is one resources file; each client is served the profile its node picks
  (``Profiles``: by node id, else by node cluster, else the default file);
- a **snapshot** (``snapshot.py``) is one consistent, versioned set of resources of a profile,
  held by ``SnapshotCache``; a changed file gives a new snapshot (``FileSource``) and every
  stream of that profile is woken to push what changed for it;
- a **stream** is one ``StreamAggregatedResources`` call. ``SotwStream`` is its state machine,
  with no I/O: requests and snapshots in, ``DiscoveryResponse`` messages out, so every rule
  below is tested without a network. ``AdsServicer`` is the grpc.aio glue around it.

The rules each stream keeps (reference/xds.md is the authority; section numbers cite it):

- per type URL: the subscribed names (wildcard, §1.6), the nonce last sent, the version the
  client last ACKed, the last NACK, and what the client was last sent (name -> digest);
- a NACK is a request with ``error_detail`` (§1.4.4, §5 #2): it is logged and not answered;
  the same config is never sent again in reply (§5 #3), only a new version is (or what the
  request newly names, as for any subscription change);
- a request whose nonce is not the latest sent for its type is stale and ignored, with its
  subscription (§1.4.8, §5 #4); SotW requests carry the whole name set, so the ACK that
  follows brings the change again and it is honoured then (envoy issue #10363);
- a response goes out only when something this client subscribes to changed, or it asked
  for something it was not sent yet (§1.4.7, §5 #6); LDS/CDS responses carry the whole
  requested set (§1.7), RDS/EDS responses every requested resource that exists; names that
  do not exist yet are remembered and sent when they appear (§5 #9);
- on a snapshot change types go out make-before-break (§1.5, §5 #11): CDS, EDS, LDS, RDS,
  and a type whose only change is removals after all the others; after a CDS change the EDS
  of the changed clusters is sent again even if unchanged (Envoy warming, §5 #10).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from mosn_py import __version__
from mosn_py.errors import ConfigError
from mosn_py.observability.log import log_event
from mosn_py.xds import resources as rt
from mosn_py.xds.snapshot import Profiles, Resources, Snapshot, SnapshotCache, TypeResources

log = logging.getLogger("mosn_py.xds.server")

CONTROL_PLANE_ID = f"mosn-py/{__version__}"


# --- one stream: the SotW state machine ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Nack:
    version: str  # the version the client still runs ('' if it never accepted one)
    nonce: str  # the nonce of the response it rejected
    code: int
    message: str


class _Watch:
    """One type URL's state on one stream."""

    __slots__ = (
        "type_url",
        "full_state",
        "requested",
        "names",
        "wildcard",
        "explicit",
        "nonce",
        "acked",
        "nack",
        "sent",
    )

    def __init__(self, type_url: str) -> None:
        self.type_url = type_url
        self.full_state = type_url in rt.FULL_STATE_TYPES
        self.requested = False  # the client asked for this type on this stream
        self.names: frozenset[str] = frozenset()
        self.wildcard = False
        self.explicit = False  # a non-empty name list was seen: legacy wildcard is over
        self.nonce = ""  # of the last response sent for this type
        self.acked = ""  # the version the client last ACKed
        self.nack: Nack | None = None
        self.sent: dict[str, bytes] = {}  # what the client was sent: name -> digest

    def subscribe(self, names: Sequence[str]) -> None:
        """Take a request's ``resource_names`` (the whole set, SotW). §1.6: only LDS and
        CDS have wildcard; an empty list is wildcard until the stream first names
        something for that type, and nothing after; ``"*"`` is explicit wildcard."""
        if self.full_state:
            if not names and not self.explicit:
                self.wildcard, self.names = True, frozenset()
            else:
                self.explicit = True
                self.wildcard = "*" in names
                self.names = frozenset(n for n in names if n != "*")
        else:
            self.names = frozenset(names)
        # A name dropped and asked for again must be sent again (§1.6, last point).
        self.sent = {n: d for n, d in self.sent.items() if self.covers(n)}

    def covers(self, name: str) -> bool:
        return self.wildcard or name in self.names

    def wanted(self, tr: TypeResources) -> list[str]:
        """The subscribed names that exist, in snapshot order."""
        if self.wildcard:
            return list(tr.names)
        return [n for n in tr.names if n in self.names]


class SotwStream:
    """The per-stream state machine (no I/O). ``on_request`` and ``on_snapshot`` return the
    responses to send, in order; the caller writes them and nothing else."""

    def __init__(self, stream_id: int, node: Any, snapshot: Snapshot | None) -> None:
        self.stream_id = stream_id
        self.node = node  # only the first request is sure to carry it (§5 #13)
        self.snapshot = snapshot
        self._watches: dict[str, _Watch] = {}
        self._nonces = itertools.count(1)
        self.stale = 0  # requests dropped for a stale nonce
        self.nacks = 0

    def watch(self, type_url: str) -> _Watch:
        w = self._watches.get(type_url)
        if w is None:
            w = self._watches[type_url] = _Watch(type_url)
        return w

    def on_request(self, req: Any) -> list[Any]:
        """A ``DiscoveryRequest`` from the client. Returns the responses it calls for."""
        w = self.watch(req.type_url)
        short = rt.SHORT_NAMES.get(req.type_url, req.type_url)
        if w.nonce and req.response_nonce != w.nonce:
            # §1.4.8: a newer response crossed this request; drop it, subscription and all.
            # The client ACKs that response with its full name set, so a change carried
            # here is compared again then (envoy #10363); nothing is recorded from it.
            self.stale += 1
            log_event(
                log,
                logging.DEBUG,
                "xds stale nonce",
                stream=self.stream_id,
                node=self.node.id,
                type=short,
                nonce=req.response_nonce,
                latest=w.nonce,
            )
            return []
        first = not w.requested
        w.requested = True
        nack = req.HasField("error_detail")
        if nack:
            self._on_nack(w, req)
        elif w.nonce:
            w.acked, w.nack = req.version_info, None
        w.subscribe(req.resource_names)
        tr = self.snapshot.get(req.type_url) if self.snapshot is not None else None
        if tr is None:
            return []  # a type we do not serve, or nothing loaded yet
        wanted = w.wanted(tr)
        if first and not nack:
            # Wildcard gets an answer even when empty (Envoy waits for its first CDS/LDS);
            # names that do not exist yet are remembered until they do (§5 #9). We do not
            # skip the resend on a reconnect with the current version (§1.4.5): versions
            # restart with this process, so an equal string does not prove equal content.
            return [self._respond(w, tr, wanted)] if (w.wildcard or wanted) else []
        # Answer only for names the client was not sent yet. That holds for a NACK too:
        # a NACK alone is never answered (§5 #3), but one that also names something new
        # gets it (with the rest of the set); it cannot loop, each answer needs a new name.
        if any(n not in w.sent for n in wanted):
            return [self._respond(w, tr, wanted)]  # asked for something it was not sent
        return []  # an ACK, or an unsubscription: nothing to say (§1.4.7)

    def on_snapshot(self, snapshot: Snapshot) -> list[Any]:
        """A new snapshot of this stream's profile: the responses that bring the client's
        subscriptions up to date, make before break (§1.5, §5 #10-11)."""
        self.snapshot = snapshot
        additions: list[tuple[_Watch, TypeResources, list[str]]] = []
        removals: list[tuple[_Watch, TypeResources, list[str]]] = []
        resend_eds: set[str] = set()
        for type_url in snapshot.type_urls():  # PUSH_ORDER first: CDS, EDS, LDS, RDS
            w = self._watches.get(type_url)
            tr = snapshot.get(type_url)
            if w is None or not w.requested or tr is None:
                continue
            wanted = w.wanted(tr)
            changed = [n for n in wanted if w.sent.get(n) != tr.digests[n]]
            if type_url == rt.CLUSTER:
                resend_eds = {snapshot.eds_names[c] for c in changed if c in snapshot.eds_names}
            elif type_url == rt.ENDPOINT and not changed:
                # Envoy: a changed Cluster stays warming until it gets its EDS, changed or
                # not (§1.5 "Warming", §5 #10).
                changed = [n for n in wanted if n in resend_eds]
            if changed:
                additions.append((w, tr, wanted))
            elif w.full_state and any(n not in tr for n in w.sent):
                # Only deletions (SotW LDS/CDS delete by omission, §1.7): after the rest.
                removals.append((w, tr, wanted))
            # RDS/EDS cannot delete by omission (§5 #8): a vanished one needs no response.
        return [self._respond(w, tr, wanted) for w, tr, wanted in additions + removals]

    def _on_nack(self, w: _Watch, req: Any) -> None:
        """§1.4.4, §5 #2-3: ``error_detail`` makes a request a NACK, whatever its version.
        The client keeps its last good config; sending the same resources again would
        loop, so the next change of that type is what it gets. Logged once per rejected
        response (a client may repeat it on later requests of that type)."""
        repeated = w.nack is not None and w.nack.nonce == req.response_nonce
        detail = req.error_detail
        w.nack = Nack(req.version_info, req.response_nonce, detail.code, detail.message)
        if repeated:
            return
        self.nacks += 1
        log_event(
            log,
            logging.WARNING,
            "xds nack",
            stream=self.stream_id,
            node=self.node.id,
            type=rt.SHORT_NAMES.get(req.type_url, req.type_url),
            version=req.version_info,
            nonce=req.response_nonce,
            code=detail.code,
            message=detail.message,
        )

    def _respond(self, w: _Watch, tr: TypeResources, names: list[str]) -> Any:
        nonce = str(next(self._nonces))
        resp = discovery_pb2.DiscoveryResponse(
            version_info=tr.version,
            type_url=tr.type_url,
            nonce=nonce,
            control_plane=base_pb2.ControlPlane(identifier=CONTROL_PLANE_ID),
        )
        resp.resources.extend(tr.packed[n] for n in names)
        w.nonce = nonce
        if w.full_state:
            w.sent = {n: tr.digests[n] for n in names}
        else:
            w.sent.update((n, tr.digests[n]) for n in names)
        log_event(
            log,
            logging.DEBUG,
            "xds response",
            stream=self.stream_id,
            node=self.node.id,
            type=rt.SHORT_NAMES.get(tr.type_url, tr.type_url),
            version=tr.version,
            nonce=nonce,
            resources=len(names),
        )
        return resp

    def state(self, type_url: str) -> dict[str, Any]:
        """The bookkeeping of one type (tests, debugging)."""
        w = self.watch(type_url)
        return {
            "names": sorted(w.names),
            "wildcard": w.wildcard,
            "nonce": w.nonce,
            "acked": w.acked,
            "nack": w.nack,
            "sent": sorted(w.sent),
        }


# --- grpc.aio glue ---------------------------------------------------------------------------

_EOF = object()  # the client half-closed (or the call ended)
_CLOSE = object()  # the server is stopping
_WAKE = object()  # the stream's profile has a new snapshot


class AdsServicer:
    """``AggregatedDiscoveryService``: SotW ADS streams; delta is refused (UNIMPLEMENTED)."""

    def __init__(self, cache: SnapshotCache, profiles: Profiles) -> None:
        self._cache = cache
        self._profiles = profiles
        self._ids = itertools.count(1)
        self._queues: dict[int, asyncio.Queue[object]] = {}

    @property
    def stream_count(self) -> int:
        return len(self._queues)

    def close_streams(self) -> None:
        """End every stream (each call returns with status OK)."""
        for q in self._queues.values():
            q.put_nowait(_CLOSE)

    async def DeltaAggregatedResources(self, request_iterator: Any, context: Any) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "mosn-py control-plane serves State of the World ADS only "
            "(StreamAggregatedResources); incremental xDS is not implemented",
        )

    async def StreamAggregatedResources(self, request_iterator: Any, context: Any) -> None:
        sid = next(self._ids)
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._queues[sid] = queue
        woken = False

        def wake() -> None:
            nonlocal woken
            if not woken:  # coalesce: the stream reads the latest snapshot when it wakes
                woken = True
                queue.put_nowait(_WAKE)

        async def read() -> None:
            try:
                async for req in request_iterator:
                    queue.put_nowait(req)
            except (grpc.RpcError, asyncio.CancelledError):
                pass
            finally:
                queue.put_nowait(_EOF)

        reader = asyncio.ensure_future(read())
        stream: SotwStream | None = None
        key = ""
        try:
            while True:
                ev = await queue.get()
                if ev is _EOF or ev is _CLOSE:
                    break
                if ev is _WAKE:
                    woken = False
                    snap = self._cache.get(key)
                    if stream is None or snap is None or snap is stream.snapshot:
                        continue
                    out = stream.on_snapshot(snap)
                else:
                    req: Any = ev
                    if not req.type_url:  # go-control-plane does the same
                        await context.abort(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            "type_url is required on an ADS stream",
                        )
                    if stream is None:
                        node = req.node if req.HasField("node") else base_pb2.Node()
                        key = self._profiles.key_for(node)
                        stream = SotwStream(sid, node, self._cache.get(key))
                        self._cache.watch(key, wake)
                        log_event(
                            log,
                            logging.INFO,
                            "xds stream opened",
                            stream=sid,
                            node=node.id,
                            cluster=node.cluster,
                            peer=context.peer(),
                            profile=key,
                        )
                    out = stream.on_request(req)
                for resp in out:
                    await context.write(resp)
        finally:
            reader.cancel()
            self._queues.pop(sid, None)
            if stream is not None:
                self._cache.unwatch(key, wake)
                log_event(
                    log,
                    logging.INFO,
                    "xds stream closed",
                    stream=sid,
                    node=stream.node.id,
                    nacks=stream.nacks,
                    stale=stream.stale,
                )


# --- files -----------------------------------------------------------------------------------

Loader = Callable[[str], Resources]

# A file modified this recently may be rewritten within the same mtime tick, keeping size
# and mtime: its content is hashed on every poll until it is older (git's "racy clean").
_RACY_NS = 2_000_000_000


class FileSource:
    """One resources file: ``loader(path)`` gives its resources (``render(load_config())``);
    ``check()`` reloads it when its mtime, size or content changed and publishes the new
    snapshot, or logs why not and keeps the previous one."""

    def __init__(self, path: str, cache: SnapshotCache, loader: Loader) -> None:
        self.path = path
        self._cache = cache
        self._loader = loader
        self._stat: tuple[int, int, int] | None = None
        self._digest = b""  # of the content last tried, good or bad
        self._unreadable = False

    def load(self) -> Snapshot:
        """The first load (synchronous). Raises ``ConfigError`` (nothing published)."""
        try:
            data, stat = self._read()
        except OSError as e:  # the wording of load_config's
            reason = "no such file" if isinstance(e, FileNotFoundError) else e.strerror or str(e)
            raise ConfigError(f"{self.path}: cannot read config: {reason.lower()}") from None
        self._stat, self._digest = stat, _digest(data)
        return self._cache.update(self.path, self._loader(self.path))

    async def check(self) -> bool:
        """Reload if the file changed. True if a new snapshot was published."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            if not self._unreadable:
                self._unreadable = True
                log_event(
                    log,
                    logging.ERROR,
                    "config unreadable; keeping the last snapshot",
                    file=self.path,
                    error=e.strerror or str(e),
                )
            return False
        self._unreadable = False
        stat = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stat == self._stat and time.time_ns() - st.st_mtime_ns > _RACY_NS:
            return False
        try:
            data, stat = self._read()
        except OSError:
            return False  # vanished between stat and open: the next poll says so
        self._stat = stat
        digest = _digest(data)
        if digest == self._digest:
            return False  # touched, not changed
        self._digest = digest
        previous = self._cache.get(self.path)
        try:
            snap = await asyncio.to_thread(self._build, previous)
        except ConfigError as e:
            for line in e.errors:
                log_event(log, logging.ERROR, "config error", file=self.path, error=line)
            log_event(
                log,
                logging.ERROR,
                "config rejected; keeping the last snapshot",
                file=self.path,
                errors=len(e.errors),
                versions=previous.versions() if previous else {},
            )
            return False
        if self._cache.get(self.path) is not previous:
            return False  # replaced meanwhile (not by us: one source per file)
        self._cache.set(self.path, snap)
        log_event(
            log,
            logging.INFO,
            "snapshot published",
            file=self.path,
            versions=snap.versions(),
            resources=snap.counts(),
        )
        return True

    def _build(self, previous: Snapshot | None) -> Snapshot:
        return Snapshot.build(self._loader(self.path), previous)

    def _read(self) -> tuple[bytes, tuple[int, int, int]]:
        with open(self.path, "rb") as f:
            st = os.fstat(f.fileno())
            return f.read(), (st.st_mtime_ns, st.st_size, st.st_ino)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


async def watch_files(sources: Iterable[FileSource], interval: float) -> None:
    """Poll every source every ``interval`` seconds until cancelled."""
    sources = list(sources)
    while True:
        await asyncio.sleep(interval)
        for s in sources:
            try:
                await s.check()
            except Exception:  # a bug in one reload must not stop the watching
                log.exception("reload failed", extra={"fields": {"file": s.path}})


class ControlPlane:
    """The gRPC server, the cache, the file sources and their watcher, as one object."""

    def __init__(self, profiles: Profiles, loader: Loader, *, poll_interval: float = 0.2) -> None:
        self.profiles = profiles
        self.cache = SnapshotCache()
        self.sources = [FileSource(k, self.cache, loader) for k in profiles.files()]
        self.servicer = AdsServicer(self.cache, profiles)
        self.poll_interval = poll_interval
        self._server: Any = None
        self._watcher: asyncio.Task[None] | None = None

    def load(self) -> dict[str, ConfigError]:
        """Load every file once. Returns the files that failed (none: all published)."""
        failed: dict[str, ConfigError] = {}
        for s in self.sources:
            try:
                s.load()
            except ConfigError as e:
                failed[s.path] = e
        return failed

    async def start(self, listen: str) -> str:
        """Serve on ``listen`` (host:port, port 0 = any); returns the bound host:port."""
        # grpc turns SO_REUSEPORT on by default: a second control plane on the same port
        # would bind too and share the clients. Refuse instead.
        options = [("grpc.max_send_message_length", -1), ("grpc.so_reuseport", 0)]
        server = grpc.aio.server(options=options)
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self.servicer, server)
        host = listen.rpartition(":")[0]
        port = server.add_insecure_port(listen)
        await server.start()
        self._server = server
        self._watcher = asyncio.ensure_future(watch_files(self.sources, self.poll_interval))
        return f"{host}:{port}"

    async def stop(self, grace: float = 1.0) -> None:
        """Stop watching, end every stream, stop the server."""
        if self._watcher is not None:
            self._watcher.cancel()
            try:
                await self._watcher
            except asyncio.CancelledError:
                pass
        self.servicer.close_streams()
        if self._server is not None:
            await self._server.stop(grace)
