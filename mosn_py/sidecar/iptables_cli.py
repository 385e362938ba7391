"""``mosn-py iptables apply|clean``: install or remove the sidecar's interception rules.

    mosn-py iptables apply [--proxy-uid 1337] [--proxy-gid GID] [--outbound-port 15001]
        [--inbound-port 15006] [--inbound-ports '*'|LIST] [--exclude-inbound-ports LIST]
        [--outbound-cidrs '*'|LIST] [--exclude-outbound-cidrs LIST]
        [--exclude-outbound-ports LIST] [--inbound-mode redirect|tproxy]
        [--tproxy-mark 1337] [--tproxy-table 133] [--ipv6] [--backend auto|nft|legacy]
        [--dry-run]
    mosn-py iptables clean [--ipv6] [--inbound-mode redirect|tproxy] [--tproxy-mark 1337]
        [--tproxy-table 133] [--backend auto|nft|legacy] [--dry-run]

Needs CAP_NET_ADMIN in the target network namespace (a Kubernetes init container with
NET_ADMIN and NET_RAW, or ``ip netns exec NS``). Exit 0 done (``clean`` with nothing
installed included), 1 a command failed (its stderr is printed), 2 a bad option.
``--dry-run`` changes nothing: it reads the current state when it can and prints the
commands it would run, as a shell script. The rules themselves: ``mosn_py/sidecar/iptables.py``
and docs/sidecar.md.

Until ``cli.py`` wires the subcommand: ``python -m mosn_py.sidecar.iptables_cli apply ...``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Sequence

from mosn_py.sidecar import iptables as ipt

EXIT_FAILED = 1
EXIT_USAGE = 2
TIMEOUT = 30.0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ipv6", action="store_true",
                   help="also IPv6 (ip6tables, ip -6); off by default")
    p.add_argument("--inbound-mode", choices=ipt.MODES, default="redirect",
                   help="inbound capture: nat REDIRECT (default) or mangle TPROXY")
    p.add_argument("--tproxy-mark", default="1337", metavar="MARK",
                   help="tproxy: packet mark routed to the local table (default 1337)")
    p.add_argument("--tproxy-table", default="133", metavar="TABLE",
                   help="tproxy: routing table holding 'local default dev lo' (default 133)")
    p.add_argument("--backend", choices=ipt.BACKENDS, default="auto",
                   help="iptables-restore (auto, whatever the system links), "
                        "iptables-nft-restore or iptables-legacy-restore")
    p.add_argument("--dry-run", action="store_true",
                   help="change nothing; print the commands that would run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="apply|clean")
    a = sub.add_parser("apply", help="install the interception rules (idempotent)",
                       description="Install the interception rules; running it again "
                                   "replaces them (one copy of each rule).")
    a.add_argument("--proxy-uid", default="1337", metavar="UID[,UID]",
                   help="the proxy's user id: its traffic is never captured (default 1337)")
    a.add_argument("--proxy-gid", default=None, metavar="GID[,GID]",
                   help="the proxy's group id, likewise (default: --proxy-uid)")
    a.add_argument("--outbound-port", default="15001", metavar="PORT",
                   help="where outbound TCP is redirected (default 15001)")
    a.add_argument("--inbound-port", default="15006", metavar="PORT",
                   help="where inbound TCP is redirected (default 15006)")
    a.add_argument("--inbound-ports", default="*", metavar="'*'|LIST",
                   help="inbound destination ports captured: '*' every port (default), "
                        "a comma list, or '' none")
    a.add_argument("--exclude-inbound-ports", default="", metavar="LIST",
                   help="with '*': ports left alone (e.g. the admin port)")
    a.add_argument("--outbound-cidrs", default="*", metavar="'*'|LIST",
                   help="outbound destinations captured: '*' all (default), a comma list of "
                        "CIDRs, or '' none")
    a.add_argument("--exclude-outbound-cidrs", default="", metavar="LIST",
                   help="outbound destinations left alone (comma list of CIDRs)")
    a.add_argument("--exclude-outbound-ports", default="", metavar="LIST",
                   help="outbound destination ports left alone")
    _common(a)
    c = sub.add_parser("clean", help="remove every MOSN_PY_* chain and the jumps to them",
                       description="Remove every MOSN_PY_* chain and the jumps to them "
                                   "(other rules stay); with --inbound-mode tproxy also the "
                                   "policy routing rule and route.")
    _common(c)


class _Runner:
    """Runs commands, or (dry run) prints them; reads state either way when it can."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.printed_header = False

    def say(self, line: str) -> None:
        if self.dry_run and not self.printed_header:
            print("#!/bin/sh\n# mosn-py iptables --dry-run: nothing was changed; this would run:")
            self.printed_header = True
        print(line)

    def read(self, argv: list[str], empty_if: str | None = None) -> str | None:
        """stdout of a read-only command, None if it failed (reported as a comment in a dry
        run, an error otherwise); "" when it failed saying ``empty_if``."""
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            err = f"{argv[0]}: {_reason(e)}"
        else:
            if r.returncode == 0:
                return r.stdout
            if empty_if is not None and empty_if in r.stderr:
                return ""
            err = f"{shlex.join(argv)} exited {r.returncode}: {r.stderr.strip()}"
        if self.dry_run:
            self.say(f"# {err} (assuming nothing of mosn-py is installed)")
        else:
            print(f"iptables: {err}", file=sys.stderr)
        return None

    def run(self, argv: list[str], stdin: str | None = None) -> bool:
        if self.dry_run:
            if stdin is None:
                self.say(shlex.join(argv))
            else:
                self.say(f"{shlex.join(argv)} <<'EOF'\n{stdin}EOF")
            return True
        try:
            r = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                               timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"iptables: {argv[0]}: {_reason(e)}", file=sys.stderr)
            return False
        if r.returncode != 0:
            print(f"iptables: {shlex.join(argv)} exited {r.returncode}: {r.stderr.strip()}",
                  file=sys.stderr)
            if stdin is not None:
                print(f"its input was:\n{stdin}", file=sys.stderr, end="")
            return False
        return True


def _reason(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError):
        return "not found (Debian: apt-get install iptables iproute2)"
    if isinstance(e, subprocess.TimeoutExpired):
        return f"no answer within {TIMEOUT:.0f}s"
    return str(e)


def _options(args: argparse.Namespace) -> ipt.Options:
    if args.action == "clean":
        return ipt.make_options(inbound_mode=args.inbound_mode, tproxy_mark=args.tproxy_mark,
                                tproxy_table=args.tproxy_table, ipv6=args.ipv6)
    return ipt.make_options(
        proxy_uid=args.proxy_uid, proxy_gid=args.proxy_gid,
        outbound_port=args.outbound_port, inbound_port=args.inbound_port,
        inbound_ports=args.inbound_ports, exclude_inbound_ports=args.exclude_inbound_ports,
        outbound_cidrs=args.outbound_cidrs, exclude_outbound_cidrs=args.exclude_outbound_cidrs,
        exclude_outbound_ports=args.exclude_outbound_ports, inbound_mode=args.inbound_mode,
        tproxy_mark=args.tproxy_mark, tproxy_table=args.tproxy_table, ipv6=args.ipv6,
    )


def run(args: argparse.Namespace) -> int:
    try:
        opts = _options(args)
    except ipt.OptionError as e:
        print(f"iptables: {e}", file=sys.stderr)
        return EXIT_USAGE
    runner = _Runner(args.dry_run)
    apply = args.action == "apply"
    changed = False
    for family in opts.families:
        saved = runner.read(ipt.save_argv(family, args.backend))
        if saved is None and not args.dry_run:
            return EXIT_FAILED
        text = (ipt.apply_restore(opts, family, saved or "") if apply
                else ipt.clean_restore(saved or ""))
        if text:
            if not runner.run(ipt.restore_argv(family, args.backend), stdin=text):
                return EXIT_FAILED
            changed = True
        if opts.inbound_mode != "tproxy" or (apply and not opts.tproxy):
            continue
        rules = runner.read(ipt.rule_show_argv(opts, family))
        routes = runner.read(ipt.route_show_argv(opts, family), empty_if=ipt.NO_TABLE)
        if (rules is None or routes is None) and not args.dry_run:
            return EXIT_FAILED
        present = ipt.count_rules(rules or "")
        cmds = (ipt.routing_apply(opts, family, present) if apply
                else ipt.routing_clean(opts, family, present, ipt.has_local_route(routes or "")))
        for argv in cmds:
            if not runner.run(argv):
                return EXIT_FAILED
            changed = True
    if not args.dry_run:
        families = " and ".join(f"IPv{f}" for f in opts.families)
        if apply:
            print(f"iptables: interception rules installed ({families}, inbound "
                  f"{opts.inbound_mode}, outbound -> :{opts.outbound_port}, "
                  f"inbound -> :{opts.inbound_port})")
        elif changed:
            print(f"iptables: mosn-py rules removed ({families})")
        else:
            print(f"iptables: nothing of mosn-py installed ({families})")
    elif not changed:
        runner.say("# nothing to do")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mosn-py iptables",
                                     description="sidecar interception rules")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
