"""Transparent-interception rules for a sidecar, in the manner of istio-iptables.

Pure: every function returns text or argv lists and touches nothing. ``iptables_cli`` reads
the current state (``iptables-save``, ``ip rule show``), asks these functions what to run
and runs it. docs/sidecar.md explains each rule; the short form::

    outbound  app --OUTPUT(nat)--> MOSN_PY_OUTPUT --> MOSN_PY_REDIRECT    --> :15001
    inbound   peer --PREROUTING(nat)--> MOSN_PY_INBOUND --> MOSN_PY_IN_REDIRECT --> :15006
      tproxy  peer --PREROUTING(mangle)--> MOSN_PY_INBOUND --> MOSN_PY_TPROXY (new)
                                                          \\-> MOSN_PY_DIVERT (established)
              + ip rule fwmark MARK lookup TABLE; ip route local default dev lo table TABLE

Only chains named ``MOSN_PY_*`` are created, and each built-in chain gets one jump to ours,
so ``clean`` can remove exactly what ``apply`` made and nothing else.

Idempotence: ``apply`` is one ``iptables-restore --noflush`` transaction per family that
declares our chains (a declaration flushes an existing chain), deletes the jumps to our
chains found in ``iptables-save`` output, removes chains of ours it no longer wants, then
appends the rules and the jumps. Running it twice leaves one copy of everything.

Rules are written the way ``iptables-save`` prints them (``-p tcp -m tcp --dport``, marks in
hex, the TPROXY and CONNMARK defaults spelled out), so what ``--dry-run`` shows is what
``iptables-save`` shows afterwards, line for line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network

PREFIX = "MOSN_PY_"
INBOUND = "MOSN_PY_INBOUND"
IN_REDIRECT = "MOSN_PY_IN_REDIRECT"
OUTPUT = "MOSN_PY_OUTPUT"
REDIRECT = "MOSN_PY_REDIRECT"
DIVERT = "MOSN_PY_DIVERT"
TPROXY = "MOSN_PY_TPROXY"

# TPROXY mode marks the proxy's own connections to its pod's address (over lo) with this,
# so MOSN_PY_INBOUND (mangle) lets them through to the inbound port. Istio uses 1338 too.
OUTBOUND_MARK = 1338
# The inbound side of the proxy connects to the application from this source when it must
# keep the original destination address (a passthrough to POD_IP:PORT); such connections are
# never intercepted again. Istio's convention (its inbound passthrough binds 127.0.0.6).
PASSTHROUGH_SOURCE = {4: "127.0.0.6/32", 6: "::6/128"}
LOOPBACK = {4: "127.0.0.1/32", 6: "::1/128"}
ANY_ADDRESS = {4: "0.0.0.0", 6: "::"}
DEFAULT_ROUTE = {4: "0.0.0.0/0", 6: "::/0"}
RESERVED_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
BACKENDS = ("auto", "nft", "legacy")
MODES = ("redirect", "tproxy")

Network = IPv4Network | IPv6Network


class OptionError(ValueError):
    """An option value that cannot be used; the message names the option."""


@dataclass(frozen=True, slots=True)
class Options:
    """What to intercept. ``None`` for a port or CIDR selection means ``*`` (everything);
    an empty tuple means nothing."""

    proxy_uids: tuple[int, ...] = (1337,)
    proxy_gids: tuple[int, ...] = (1337,)
    outbound_port: int = 15001
    inbound_port: int = 15006
    inbound_ports: tuple[int, ...] | None = None
    exclude_inbound_ports: tuple[int, ...] = ()
    outbound_cidrs: tuple[Network, ...] | None = None
    exclude_outbound_cidrs: tuple[Network, ...] = ()
    exclude_outbound_ports: tuple[int, ...] = ()
    inbound_mode: str = "redirect"
    tproxy_mark: int = 1337
    tproxy_table: int = 133
    ipv6: bool = False

    @property
    def families(self) -> tuple[int, ...]:
        return (4, 6) if self.ipv6 else (4,)

    @property
    def captures_inbound(self) -> bool:
        return self.inbound_ports != ()

    @property
    def tproxy(self) -> bool:
        """TPROXY is in use: mode tproxy and some inbound port captured."""
        return self.inbound_mode == "tproxy" and self.captures_inbound


@dataclass(frozen=True, slots=True)
class Table:
    """Our part of one table: chains to (re)create, their rules, the built-in chains' jumps.
    Rules and jumps are ``-A ...`` lines as ``iptables-save`` prints them."""

    name: str
    chains: tuple[str, ...]
    rules: tuple[str, ...]
    hooks: tuple[str, ...]


@dataclass(slots=True)
class Installed:
    """What of ours one table holds now, read from ``iptables-save``: our chains, and the
    rules of other chains that jump to one of ours (``-A ...`` lines, verbatim)."""

    chains: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)


# -- option parsing -------------------------------------------------------------------------


def _items(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _number(text: str, flag: str, lo: int, hi: int, what: str) -> int:
    s = text.strip()
    value = int(s, 16) if s.lower().startswith("0x") and len(s) > 2 else None
    if value is None:
        if not s.isdigit():
            raise OptionError(f"{flag}: {text!r} is not {what}")
        value = int(s)
    if not lo <= value <= hi:
        raise OptionError(f"{flag}: {text!r} is not {what}")
    return value


def parse_port(text: str, flag: str) -> int:
    return _number(text, flag, 1, 65535, "a port (1-65535)")


def parse_ports(text: str, flag: str, *, star: bool = False) -> tuple[int, ...] | None:
    """``"80,443"`` -> (80, 443); ``"*"`` -> None where ``star`` allows it; ``""`` -> ()."""
    if text.strip() == "*":
        if not star:
            raise OptionError(f"{flag}: '*' is not allowed here")
        return None
    out: list[int] = []
    for item in _items(text):
        port = parse_port(item, flag)
        if port not in out:
            out.append(port)
    return tuple(out)


def parse_ids(text: str, flag: str) -> tuple[int, ...]:
    """A user or group id list (numeric: the rules must not depend on /etc/passwd)."""
    items = _items(text)
    if not items:
        raise OptionError(f"{flag}: give at least one numeric id")
    out: list[int] = []
    for item in items:
        n = _number(item, flag, 0, 2**32 - 2, "a numeric id")
        if n not in out:
            out.append(n)
    return tuple(out)


def parse_cidrs(text: str, flag: str, *, star: bool = False) -> tuple[Network, ...] | None:
    """``"10.0.0.0/8,fd00::/8"`` -> networks (host bits are cleared, a bare address is a
    /32 or /128); ``"*"`` -> None where ``star`` allows it; ``""`` -> ()."""
    if text.strip() == "*":
        if not star:
            raise OptionError(f"{flag}: '*' is not allowed here")
        return None
    out: list[Network] = []
    for item in _items(text):
        try:
            net = ip_network(item, strict=False)
        except ValueError:
            raise OptionError(f"{flag}: {item!r} is not an IP address or CIDR") from None
        if net not in out:
            out.append(net)
    return tuple(out)


def make_options(
    *,
    proxy_uid: str = "1337",
    proxy_gid: str | None = None,
    outbound_port: str = "15001",
    inbound_port: str = "15006",
    inbound_ports: str = "*",
    exclude_inbound_ports: str = "",
    outbound_cidrs: str = "*",
    exclude_outbound_cidrs: str = "",
    exclude_outbound_ports: str = "",
    inbound_mode: str = "redirect",
    tproxy_mark: str = "1337",
    tproxy_table: str = "133",
    ipv6: bool = False,
) -> Options:
    """Options from command-line strings. Raises ``OptionError`` naming the first bad
    option."""
    uids = parse_ids(proxy_uid, "--proxy-uid")
    gids = parse_ids(proxy_gid, "--proxy-gid") if proxy_gid is not None else uids
    out_port = parse_port(outbound_port, "--outbound-port")
    in_port = parse_port(inbound_port, "--inbound-port")
    if out_port == in_port:
        raise OptionError(f"--inbound-port: {in_port} is also the --outbound-port")
    in_ports = parse_ports(inbound_ports, "--inbound-ports", star=True)
    ex_in = parse_ports(exclude_inbound_ports, "--exclude-inbound-ports") or ()
    if in_ports is not None:
        for p in in_ports:
            if p in (out_port, in_port):
                raise OptionError(
                    f"--inbound-ports: {p} is the proxy's own port (captured, it would loop)")
            if p in ex_in:
                raise OptionError(f"--inbound-ports: {p} is also in --exclude-inbound-ports")
    if inbound_mode not in MODES:
        raise OptionError(f"--inbound-mode: {inbound_mode!r} is not redirect or tproxy")
    out_cidrs = parse_cidrs(outbound_cidrs, "--outbound-cidrs", star=True)
    ex_cidrs = parse_cidrs(exclude_outbound_cidrs, "--exclude-outbound-cidrs") or ()
    if not ipv6:
        for flag, nets in (("--outbound-cidrs", out_cidrs or ()),
                           ("--exclude-outbound-cidrs", ex_cidrs)):
            for n in nets:
                if n.version == 6:
                    raise OptionError(f"{flag}: {n} is IPv6; add --ipv6 to intercept IPv6")
    ex_out = parse_ports(exclude_outbound_ports, "--exclude-outbound-ports") or ()
    mark = _number(tproxy_mark, "--tproxy-mark", 1, 2**32 - 1, "a mark (1-4294967295)")
    if mark == OUTBOUND_MARK:
        raise OptionError(
            f"--tproxy-mark: {OUTBOUND_MARK} marks the proxy's connections to its own pod; "
            "choose another mark")
    table = _number(tproxy_table, "--tproxy-table", 1, 2**32 - 1,
                    "a routing table number (1-4294967295)")
    if table in RESERVED_TABLES:
        raise OptionError(
            f"--tproxy-table: {table} is the kernel's {RESERVED_TABLES[table]!r} table")
    return Options(
        proxy_uids=uids, proxy_gids=gids, outbound_port=out_port, inbound_port=in_port,
        inbound_ports=in_ports, exclude_inbound_ports=ex_in, outbound_cidrs=out_cidrs,
        exclude_outbound_cidrs=ex_cidrs, exclude_outbound_ports=ex_out,
        inbound_mode=inbound_mode, tproxy_mark=mark, tproxy_table=table, ipv6=ipv6,
    )


# -- rules ----------------------------------------------------------------------------------


def _dport(port: int) -> str:
    return f"-p tcp -m tcp --dport {port}"


def _owners(opts: Options) -> list[str]:
    """``--uid-owner U`` / ``--gid-owner G`` for every proxy id, uids first."""
    return ([f"--uid-owner {u}" for u in opts.proxy_uids]
            + [f"--gid-owner {g}" for g in opts.proxy_gids])


def _returned_inbound_ports(opts: Options) -> list[int]:
    """Ports never captured inbound: the proxy's own, then the excluded ones."""
    out: list[int] = []
    for p in (opts.outbound_port, opts.inbound_port, *opts.exclude_inbound_ports):
        if p not in out:
            out.append(p)
    return out


def nat_table(opts: Options, family: int) -> Table:
    """Outbound capture (both modes) and REDIRECT inbound capture. Rule order matters:
    the first RETURN or jump that matches decides."""
    lo = LOOPBACK[family]
    rules = [
        f"-A {IN_REDIRECT} -p tcp -j REDIRECT --to-ports {opts.inbound_port}",
        f"-A {REDIRECT} -p tcp -j REDIRECT --to-ports {opts.outbound_port}",
    ]
    chains = [IN_REDIRECT, OUTPUT, REDIRECT]
    hooks = []
    if opts.inbound_mode == "redirect" and opts.captures_inbound:
        chains.insert(0, INBOUND)
        if opts.inbound_ports is None:
            rules += [f"-A {INBOUND} {_dport(p)} -j RETURN" for p in _returned_inbound_ports(opts)]
            rules.append(f"-A {INBOUND} -p tcp -j {IN_REDIRECT}")
        else:
            rules += [f"-A {INBOUND} {_dport(p)} -j {IN_REDIRECT}" for p in opts.inbound_ports]
        hooks.append(f"-A PREROUTING -p tcp -j {INBOUND}")

    # Outbound. Excluded ports first: they win over everything below.
    rules += [f"-A {OUTPUT} {_dport(p)} -j RETURN" for p in opts.exclude_outbound_ports]
    # The proxy's inbound passthrough to POD_IP:PORT, from 127.0.0.6: deliver it.
    rules.append(f"-A {OUTPUT} -s {PASSTHROUGH_SOURCE[family]} -o lo -j RETURN")
    loopback_captured = any(n.is_loopback for n in opts.outbound_cidrs or ())
    for owner in _owners(opts):
        neg = owner.replace("--", "! --", 1)
        if opts.captures_inbound:
            # The proxy calling its own pod's address (its outbound side picked this pod as
            # the endpoint): goes through the inbound side, like a call from another pod.
            rules.append(f"-A {OUTPUT} ! -d {lo} -o lo -p tcp -m owner {owner} -j {IN_REDIRECT}")
        if not loopback_captured:
            # The application calling itself (localhost or its own pod address): direct.
            rules.append(f"-A {OUTPUT} -o lo -m owner {neg} -j RETURN")
        # The proxy's own connections to other hosts: never back into the proxy.
        rules.append(f"-A {OUTPUT} -m owner {owner} -j RETURN")
    rules.append(f"-A {OUTPUT} -d {lo} -j RETURN")
    rules += [f"-A {OUTPUT} -d {n} -j RETURN"
              for n in opts.exclude_outbound_cidrs if n.version == family]
    if opts.outbound_cidrs is None:
        rules.append(f"-A {OUTPUT} -j {REDIRECT}")
    else:
        rules += [f"-A {OUTPUT} -d {n} -j {REDIRECT}"
                  for n in opts.outbound_cidrs if n.version == family]
    hooks.append(f"-A OUTPUT -p tcp -j {OUTPUT}")
    return Table("nat", tuple(chains), tuple(rules), tuple(hooks))


def mangle_table(opts: Options, family: int) -> Table | None:
    """TPROXY inbound (None unless ``opts.tproxy``). New connections to a captured port are
    handed to the socket on the inbound port without NAT; packets of established ones get
    the mark, which the policy routing rule sends to the local table."""
    if not opts.tproxy:
        return None
    lo = LOOPBACK[family]
    mark = f"{opts.tproxy_mark:#x}"
    out_mark = f"{OUTBOUND_MARK:#x}"
    full = "0xffffffff"
    rules = [
        f"-A {DIVERT} -j MARK --set-xmark {mark}/{full}",
        f"-A {DIVERT} -j ACCEPT",
        f"-A {TPROXY} ! -d {lo} -p tcp -j TPROXY --on-port {opts.inbound_port} "
        f"--on-ip {ANY_ADDRESS[family]} --tproxy-mark {mark}/{full}",
        # Packets already marked: remember the mark on the connection, do not capture again.
        f"-A {INBOUND} -p tcp -m mark --mark {mark} -j CONNMARK --save-mark "
        f"--nfmask {full} --ctmask {full}",
        f"-A {INBOUND} -p tcp -m mark --mark {mark} -j RETURN",
        f"-A {INBOUND} -s {PASSTHROUGH_SOURCE[family]} -i lo -p tcp -j RETURN",
        # Over lo, only the proxy's calls to its own pod (marked below) are captured.
        f"-A {INBOUND} -i lo -p tcp -m mark ! --mark {out_mark} -j RETURN",
    ]
    if opts.inbound_ports is None:
        rules += [f"-A {INBOUND} {_dport(p)} -j RETURN" for p in _returned_inbound_ports(opts)]
        rules += [
            f"-A {INBOUND} -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j {DIVERT}",
            f"-A {INBOUND} -p tcp -j {TPROXY}",
        ]
    else:
        for p in opts.inbound_ports:
            rules += [
                f"-A {INBOUND} {_dport(p)} -m conntrack --ctstate RELATED,ESTABLISHED "
                f"-j {DIVERT}",
                f"-A {INBOUND} {_dport(p)} -j {TPROXY}",
            ]
    rules.append(f"-A {OUTPUT} -o lo -p tcp -m mark --mark {mark} -j RETURN")
    rules += [f"-A {OUTPUT} ! -d {lo} -o lo -p tcp -m owner {owner} "
              f"-j MARK --set-xmark {out_mark}/{full}" for owner in _owners(opts)]
    # Replies of the application on a TPROXY'd connection carry the mark: routed locally.
    rules.append(f"-A {OUTPUT} -p tcp -m connmark --mark {mark} -j CONNMARK --restore-mark "
                 f"--nfmask {full} --ctmask {full}")
    hooks = (f"-A PREROUTING -p tcp -j {INBOUND}", f"-A OUTPUT -p tcp -j {OUTPUT}")
    return Table("mangle", (DIVERT, INBOUND, OUTPUT, TPROXY), tuple(rules), hooks)


def tables(opts: Options, family: int) -> tuple[Table, ...]:
    """Our tables for one family (4 or 6), nat first."""
    mangle = mangle_table(opts, family)
    return (nat_table(opts, family),) + ((mangle,) if mangle else ())


# -- reading iptables-save and writing iptables-restore input -------------------------------


def _target(line: str) -> str | None:
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    for i, w in enumerate(words[:-1]):
        if w in ("-j", "--jump", "-g", "--goto"):
            return words[i + 1]
    return None


def parse_save(text: str) -> dict[str, Installed]:
    """Our chains, and the jumps into them from other chains, per table, from
    ``iptables-save`` output."""
    out: dict[str, Installed] = {}
    cur: Installed | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            cur = out.setdefault(line[1:], Installed())
        elif cur is None:
            continue
        elif line.startswith(":"):
            name = line[1:].split()[0]
            if name.startswith(PREFIX) and name not in cur.chains:
                cur.chains.append(name)
        elif line.startswith("-A "):
            words = line.split()
            if len(words) < 2 or words[1].startswith(PREFIX):
                continue
            target = _target(line)
            if target is not None and target.startswith(PREFIX):
                cur.hooks.append(line)
    return {name: inst for name, inst in out.items() if inst.chains or inst.hooks}


def _restore(want: tuple[Table, ...], saved: str) -> str:
    have = parse_save(saved)
    names = [t.name for t in want] + [n for n in have if n not in {t.name for t in want}]
    out: list[str] = []
    for name in names:
        t = next((x for x in want if x.name == name), None)
        h = have.get(name, Installed())
        stale = [c for c in h.chains if t is None or c not in t.chains]
        if t is None and not stale and not h.hooks:
            continue
        out.append(f"*{name}")
        if t is not None:
            out += [f":{c} - [0:0]" for c in t.chains]  # creates, or (--noflush) flushes
        out += ["-D" + line[2:] for line in h.hooks]
        out += [f"-F {c}" for c in stale] + [f"-X {c}" for c in stale]
        if t is not None:
            out += [*t.rules, *t.hooks]
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""


def apply_restore(opts: Options, family: int, saved: str) -> str:
    """``iptables-restore --noflush`` input that installs our rules for ``family`` given
    the current ``iptables-save`` output: one copy of each rule and jump, whatever was there
    before (jumps to our chains are deleted and re-appended; chains of ours this option set
    does not use are removed)."""
    return _restore(tables(opts, family), saved)


def clean_restore(saved: str) -> str:
    """``iptables-restore --noflush`` input that removes every jump to a ``MOSN_PY_*``
    chain and the chains themselves; "" when there is none."""
    return _restore((), saved)


# -- commands -------------------------------------------------------------------------------


def _tool(family: int, backend: str, verb: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}")
    base = "iptables" if family == 4 else "ip6tables"
    middle = "" if backend == "auto" else f"-{backend}"
    return f"{base}{middle}-{verb}"


def save_argv(family: int, backend: str = "auto") -> list[str]:
    return [_tool(family, backend, "save")]


def restore_argv(family: int, backend: str = "auto") -> list[str]:
    # --wait: legacy iptables takes a host-wide lock that another tool may hold for a moment
    return [_tool(family, backend, "restore"), "--noflush", "--wait=10"]


def _rule_selector(opts: Options) -> list[str]:
    return ["fwmark", str(opts.tproxy_mark), "lookup", str(opts.tproxy_table)]


def rule_show_argv(opts: Options, family: int) -> list[str]:
    """Lists the policy routing rules TPROXY needs, one line each (none: no output)."""
    return ["ip", f"-{family}", "rule", "show", *_rule_selector(opts)]


def route_show_argv(opts: Options, family: int) -> list[str]:
    return ["ip", f"-{family}", "route", "show", "table", str(opts.tproxy_table)]


# What ``ip route show table T`` says (exit 2) while nothing was ever put in table T.
NO_TABLE = "FIB table does not exist"


def count_rules(show_output: str) -> int:
    return sum(1 for line in show_output.splitlines() if line.strip())


def has_local_route(show_output: str) -> bool:
    """``ip route show table T`` lists our ``local default dev lo``."""
    return any(line.split()[:4] == ["local", "default", "dev", "lo"]
               for line in show_output.splitlines())


def routing_apply(opts: Options, family: int, rules_present: int) -> list[list[str]]:
    """Commands leaving exactly one ``fwmark MARK lookup TABLE`` rule and the local default
    route in TABLE (``ip rule add`` does not refuse duplicates, so count first)."""
    ip = ["ip", f"-{family}"]
    cmds = [[*ip, "rule", "del", *_rule_selector(opts)] for _ in range(rules_present - 1)]
    if rules_present == 0:
        cmds.append([*ip, "rule", "add", *_rule_selector(opts)])
    cmds.append([*ip, "route", "replace", "local", DEFAULT_ROUTE[family], "dev", "lo",
                 "table", str(opts.tproxy_table)])
    return cmds


def routing_clean(
    opts: Options, family: int, rules_present: int, route_present: bool
) -> list[list[str]]:
    ip = ["ip", f"-{family}"]
    cmds = [[*ip, "rule", "del", *_rule_selector(opts)] for _ in range(rules_present)]
    if route_present:
        cmds.append([*ip, "route", "del", "local", DEFAULT_ROUTE[family], "dev", "lo",
                     "table", str(opts.tproxy_table)])
    return cmds
