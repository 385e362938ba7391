"""Redis commands through the cache proxy (``cache_proxy.py``): the command table
(``router/redis_commands.py``) decides; this module answers locally, refuses, routes by key
or splits and merges.

Local answers: ``PING [msg]``, ``ECHO``, ``QUIT``, ``SELECT 0`` (other databases are
refused: a proxy over shards serves database 0 only), ``AUTH [user] password`` against the
listener's ``password``, ``HELLO [2|3] [AUTH user pass] [SETNAME name]``, ``COMMAND``
(``COUNT``, ``DOCS``/``INFO``: empty), ``CLIENT SETNAME/GETNAME/SETINFO/ID``, ``RESET``.

RESP3: after ``HELLO 3`` the client's commands go on upstream connections that said
``HELLO 3`` themselves (a pool per shard and protocol version), so RESP3 replies pass
through unchanged; RESP2 clients never share those connections.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any

from mosn_py import __version__
from mosn_py.codecs.base import Frame
from mosn_py.codecs.redis import (
    Map,
    RedisError,
    SimpleString,
    command_frame,
    error_frame,
    reply_frame,
)
from mosn_py.errors import ProxyStatus
from mosn_py.filters.network.cache_proxy import Adapter, CacheProxyConnection, CacheRequest
from mosn_py.observability.log import log_event
from mosn_py.router.redis_commands import Kind, lookup

if TYPE_CHECKING:
    from mosn_py.config.model import ClusterConfig, RouteRule
    from mosn_py.upstream.cluster import Cluster
    from mosn_py.upstream.host import Host

log = logging.getLogger("mosn_py.proxy")
_client_ids = itertools.count(1)


class _SetupCallbacks:
    """Replies to the commands a new upstream connection sends first: logged if refused."""

    __slots__ = ("cluster",)

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    def on_upstream_response(self, frame: Frame) -> None:
        if frame.status:  # an error reply (wrong password, HELLO refused)
            log_event(log, logging.WARNING, "upstream connection setup refused",
                      cluster=self.cluster, reply=str(frame.extra))

    def on_upstream_reset(self, reason: Any) -> None:
        pass

    def on_upstream_data(self, df: Any) -> None:
        pass

    def on_upstream_trailers(self, tf: Any) -> None:
        pass


def redis_connection_setup(config: ClusterConfig, variant: str) -> list[tuple[Frame, Any]]:
    """What every new upstream connection of a redis cluster sends first: ``AUTH`` with the
    cluster's password, or ``HELLO 3 [AUTH default password]`` for RESP3 connections."""
    pw = config.password.encode() if config.password else None
    if variant == "resp3":
        args = [b"HELLO", b"3", *([b"AUTH", b"default", pw] if pw else [])]
    elif pw:
        args = [b"AUTH", pw]
    else:
        return []
    return [(command_frame(args), _SetupCallbacks(config.name))]


class RedisAdapter(Adapter):
    __slots__ = ("authed", "protover", "client_name", "client_id")

    def __init__(self, conn: CacheProxyConnection) -> None:
        super().__init__(conn)
        self.authed = conn.ctx.config.password is None
        self.protover = 2
        self.client_name: bytes | None = None
        self.client_id = next(_client_ids)

    # --- replies ------------------------------------------------------------------------------
    def value(self, request: Frame, value: Any) -> None:
        self.conn.respond(
            reply_frame(request.request_id, value, resp3=self.protover == 3)
        )

    def error(self, request: Frame, message: str) -> None:
        self.conn.respond(error_frame(request.request_id, message))

    # --- dispatch ------------------------------------------------------------------------------
    def handle(self, frame: Frame) -> None:
        cmd = frame.extra
        name: str = cmd.name
        args: list[bytes] = cmd.args
        if not self.authed and name not in ("auth", "hello", "quit"):
            self.error(frame, "NOAUTH Authentication required.")
            return
        spec = lookup(name)
        if spec is None:
            shown = " ".join(f"'{_text(a)}'" for a in args[1:4])
            self.error(frame, f"ERR unknown or unsupported command '{_text(args[0])}', with"
                              f" args beginning with: {shown}")
            return
        if len(args) < spec.min_args:
            self.error(frame, f"ERR wrong number of arguments for '{name}' command")
            return
        kind = spec.kind
        if kind is Kind.LOCAL:
            self.local(frame, name, args)
            return
        if kind is Kind.REFUSED:
            self.error(frame, f"ERR '{name}' is not supported by this proxy: {spec.reason}")
            return
        keys = spec.keys(args)
        if not keys:
            self.error(frame, f"ERR wrong number of arguments for '{name}' command")
            return
        rule = self.conn.ctx.route_table.match(name, keys[0])
        if rule is None:
            self.conn.local(frame, ProxyStatus.ROUTE_NOT_FOUND, "no route for this key")
            return
        cluster = self.conn.clusters().get(rule.cluster)
        if cluster is None:
            self.conn.local(frame, ProxyStatus.NO_HEALTHY_UPSTREAM,
                            f"cluster {rule.cluster!r} not found")
            return
        if spec.write and rule.mirror:
            self.mirror(rule, frame, name, args, keys, kind)
        shards = self.conn.shards(cluster)
        req = CacheRequest(self.conn, frame)
        if self.protover == 3:
            req.variant = "resp3"
        if kind is Kind.KEY:
            req.send([(cluster, shards.host(keys[0]), frame)], rule.timeout, None)
            return
        if kind is Kind.KEYS:
            hosts = {id(shards.host(k)): shards.host(k) for k in keys}
            if len(hosts) > 1:
                self.error(frame, f"CROSSSLOT Keys in request don't hash to the same shard"
                                  f" (use a hash tag such as {{user1}}) for '{name}'")
                return
            host = next(iter(hosts.values()))
            req.send([(cluster, host, frame)], rule.timeout, None)
            return
        self.split(req, cluster, rule, frame, name, args)

    # --- multi-key commands ----------------------------------------------------------------------
    def split(self, req: CacheRequest, cluster: Cluster, rule: RouteRule, frame: Frame,
              name: str, args: list[bytes]) -> None:
        shards = self.conn.shards(cluster)
        step = 2 if name == "mset" else 1
        groups: dict[int, tuple[Host, list[int]]] = {}  # host id -> (host, key indexes)
        items = [args[i:i + step] for i in range(1, len(args), step)]
        if step == 2 and len(args) % 2 == 0:
            self.error(frame, "ERR wrong number of arguments for 'mset' command")
            return
        for i, item in enumerate(items):
            host = shards.host(item[0])
            groups.setdefault(id(host), (host, []))[1].append(i)
        if len(groups) == 1:  # one shard: the command as it is
            host = next(iter(groups.values()))[0]
            req.send([(cluster, host, frame)], rule.timeout, None)
            return
        order: list[list[int]] = []
        parts = []
        cmd_name = args[0]
        for host, idxs in groups.values():
            sub = [cmd_name]
            for i in idxs:
                sub.extend(items[i])
            parts.append((cluster, host, command_frame(sub)))
            order.append(idxs)
        rid = frame.request_id

        def merge(replies: list[Frame]) -> Frame:
            values = [r.extra for r in replies]
            for v in values:
                if isinstance(v, RedisError):
                    return reply_frame(rid, v)
            if name == "mget":
                out: list[Any] = [None] * len(items)
                for idxs, v in zip(order, values, strict=True):
                    for i, x in zip(idxs, v, strict=False):
                        out[i] = x
                return reply_frame(rid, out)
            if name == "mset":
                return reply_frame(rid, SimpleString("OK"))
            return reply_frame(rid, sum(int(v) for v in values))

        req.send(parts, rule.timeout, merge)

    def mirror(self, rule: RouteRule, frame: Frame, name: str, args: list[bytes],
               keys: list[bytes], kind: Kind) -> None:
        """Send a write to the mirror cluster too; its replies are dropped."""
        assert rule.mirror is not None
        cluster = self.conn.clusters().get(rule.mirror)
        if cluster is None:
            return
        shards = self.conn.shards(cluster)
        if kind is Kind.SPLIT:
            step = 2 if name == "mset" else 1
            for i in range(1, len(args), step):
                item = args[i:i + step]
                host = shards.host(item[0])
                cluster.pool(host).acquire().send_request(
                    command_frame([args[0], *item]), None)
            return
        cluster.pool(shards.host(keys[0])).acquire().send_request(frame, None)

    # --- local commands -------------------------------------------------------------------------
    def local(self, frame: Frame, name: str, args: list[bytes]) -> None:
        n = len(args)
        if name == "ping":
            if n > 2:
                self.error(frame, "ERR wrong number of arguments for 'ping' command")
            else:
                self.value(frame, args[1] if n == 2 else SimpleString("PONG"))
        elif name == "echo":
            if n != 2:
                self.error(frame, "ERR wrong number of arguments for 'echo' command")
            else:
                self.value(frame, args[1])
        elif name == "quit":
            self.value(frame, SimpleString("OK"))
            self.conn.quit()
        elif name == "select":
            if args[1] == b"0":
                self.value(frame, SimpleString("OK"))
            else:
                self.error(frame, "ERR DB index is out of range (the proxy serves database 0)")
        elif name == "auth":
            self.auth(frame, args[1:])
        elif name == "hello":
            self.hello(frame, args[1:])
        elif name == "command":
            sub = args[1].lower() if n > 1 else b""
            if sub == b"count":
                from mosn_py.router.redis_commands import TABLE

                self.value(frame, len(TABLE))
            else:
                self.value(frame, [])
        elif name == "client":
            self.client(frame, args[1:])
        elif name == "reset":
            self.protover = 2
            self.client_name = None
            self.authed = self.conn.ctx.config.password is None
            self.value(frame, SimpleString("RESET"))

    def auth(self, frame: Frame, creds: list[bytes]) -> None:
        password = self.conn.ctx.config.password
        if password is None:
            self.error(frame, "ERR AUTH <password> called without any password configured for"
                              " the default user. Are you sure your configuration is correct?")
            return
        if len(creds) not in (1, 2):
            self.error(frame, "ERR wrong number of arguments for 'auth' command")
            return
        user = creds[0] if len(creds) == 2 else b"default"
        if user == b"default" and creds[-1] == password.encode():
            self.authed = True
            self.value(frame, SimpleString("OK"))
        else:
            self.error(frame, "WRONGPASS invalid username-password pair or user is disabled.")

    def hello(self, frame: Frame, rest: list[bytes]) -> None:
        proto = self.protover
        if rest:
            try:
                proto = int(rest[0])
            except ValueError:
                self.error(frame, "ERR Protocol version is not an integer or out of range")
                return
            if proto not in (2, 3):
                self.error(frame, "NOPROTO unsupported protocol version")
                return
        i = 1
        while i < len(rest):
            opt = rest[i].lower()
            if opt == b"auth" and i + 2 < len(rest) + 0:
                password = self.conn.ctx.config.password
                user, pw = rest[i + 1], rest[i + 2]
                if password is None or user != b"default" or pw != password.encode():
                    self.error(frame, "WRONGPASS invalid username-password pair or user is"
                                      " disabled.")
                    return
                self.authed = True
                i += 3
            elif opt == b"setname" and i + 1 < len(rest):
                self.client_name = rest[i + 1]
                i += 2
            else:
                self.error(frame, f"ERR Syntax error in HELLO option '{_text(opt)}'")
                return
        if not self.authed:
            self.error(frame, "NOAUTH HELLO must be called with the client already"
                              " authenticated, otherwise the HELLO <proto> AUTH <user> <pass>"
                              " option can be used to authenticate the client and select the"
                              " RESP protocol version at the same time")
            return
        self.protover = proto
        info = [
            (b"server", b"mosn-py"), (b"version", __version__.encode()), (b"proto", proto),
            (b"id", self.client_id), (b"mode", b"proxy"), (b"role", b"master"),
            (b"modules", []),
        ]
        self.value(frame, Map(info) if proto == 3 else [x for kv in info for x in kv])

    def client(self, frame: Frame, rest: list[bytes]) -> None:
        sub = rest[0].lower()
        if sub == b"setname" and len(rest) == 2:
            self.client_name = rest[1] or None
            self.value(frame, SimpleString("OK"))
        elif sub == b"getname":
            self.value(frame, self.client_name)
        elif sub == b"setinfo":
            self.value(frame, SimpleString("OK"))
        elif sub == b"id":
            self.value(frame, self.client_id)
        else:
            self.error(frame, f"ERR 'client {_text(sub)}' is not supported by this proxy")


def _text(b: bytes) -> str:
    """An argument quoted in an error message: printable, at most 64 characters."""
    return b[:64].decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
