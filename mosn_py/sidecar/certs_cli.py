"""``mosn-py certs``: a CA and SPIFFE workload certificates for mesh mutual TLS.

    mosn-py certs ca --out DIR [--trust-domain cluster.local] [--days 3650] [--force]
        [--dry-run]
    mosn-py certs workload --ca DIR --out DIR --name NAME [--namespace default]
        [--service-account NAME] [--dns NAME ...] [--ip IP ...] [--days 365]
        [--trust-domain TD] [--force] [--dry-run]

``ca`` writes ``ca.pem`` and ``ca-key.pem``; ``workload`` writes ``cert.pem``, ``key.pem``
and ``ca.pem`` with the URI SAN ``spiffe://TD/ns/NAMESPACE/sa/SERVICE_ACCOUNT`` (the
service account defaults to ``--name``, the trust domain to the CA's). ``--dry-run`` prints
the openssl commands instead (a shell script; it checks the arguments and reads the CA but
writes nothing). Exit 0 done, 1 openssl failed, 2 a bad argument or a file already there.
Everything is made with the ``openssl`` command line (``mosn_py/sidecar/certs.py``).

Until ``cli.py`` wires the subcommand: ``python -m mosn_py.sidecar.certs_cli ca --out DIR``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from mosn_py.sidecar import certs

EXIT_FAILED = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ca|workload")
    ca = sub.add_parser("ca", help="make a CA (ca.pem, ca-key.pem)",
                        description="Make a CA: ca.pem and ca-key.pem (EC P-256).")
    ca.add_argument("--out", required=True, metavar="DIR", help="where to write (created)")
    ca.add_argument("--trust-domain", default=certs.DEFAULT_TRUST_DOMAIN, metavar="TD",
                    help=f"SPIFFE trust domain (default {certs.DEFAULT_TRUST_DOMAIN})")
    ca.add_argument("--days", type=int, default=certs.CA_DAYS,
                    help=f"validity (default {certs.CA_DAYS})")
    _common(ca)
    w = sub.add_parser("workload", help="make a workload certificate (cert.pem, key.pem, ca.pem)",
                       description="Make a workload certificate signed by a CA made with "
                                   "'mosn-py certs ca'.")
    w.add_argument("--ca", required=True, metavar="DIR", help="the CA's directory")
    w.add_argument("--out", required=True, metavar="DIR", help="where to write (created)")
    w.add_argument("--name", required=True, help="the workload (certificate CN)")
    w.add_argument("--namespace", default="default", help="Kubernetes namespace (default "
                   "'default')")
    w.add_argument("--service-account", metavar="NAME",
                   help="Kubernetes service account (default: --name)")
    w.add_argument("--dns", action="append", default=[], metavar="NAME",
                   help="a DNS SAN (repeatable)")
    w.add_argument("--ip", action="append", default=[], metavar="IP",
                   help="an IP SAN (repeatable)")
    w.add_argument("--days", type=int, default=certs.WORKLOAD_DAYS,
                   help=f"validity (default {certs.WORKLOAD_DAYS})")
    w.add_argument("--trust-domain", metavar="TD",
                   help="override the trust domain (default: the one in the CA)")
    _common(w)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.add_argument("--dry-run", action="store_true",
                   help="print the openssl commands; write nothing")


def _script(cmds: list[list[str]], out: Path, extfile: str | None = None,
            note: str | None = None) -> str:
    lines = ["#!/bin/sh", "# mosn-py certs --dry-run: nothing was written; this would run:"]
    if note:
        lines.append(f"# {note}")
    lines += ["set -e", f"mkdir -p {shlex.quote(str(out))}", f"cd {shlex.quote(str(out))}"]
    if extfile is not None:
        lines.append(f"cat > {certs.EXT} <<'EOF'\n{extfile}EOF")
    lines += [shlex.join(c) for c in cmds]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        if args.action == "ca":
            if args.dry_run:
                certs.check_trust_domain(args.trust_domain)
                certs.check_days(args.days)
                cmds = certs.ca_commands(args.trust_domain, args.days)
                cmds.append(["chmod", "600", certs.CA_KEY])
                print(_script(cmds, out.resolve()), end="")
                return 0
            made = certs.make_ca(out, args.trust_domain, args.days, args.force)
        else:
            ca_dir = Path(args.ca).resolve()
            if args.dry_run:
                td, identity, ext = certs.workload_plan(
                    ca_dir, args.name, args.namespace, args.service_account, args.dns,
                    args.ip, args.days, args.trust_domain)
                cmds = certs.workload_commands(ca_dir, td, args.name, args.days,
                                               certs.new_serial())
                cmds += [["chmod", "600", certs.KEY],
                         ["cp", str(ca_dir / certs.CA_CERT), certs.CA_CERT],
                         ["rm", certs.CSR, certs.EXT]]
                print(_script(cmds, out.resolve(), ext, f"identity {identity}"), end="")
                return 0
            made = certs.make_workload(
                ca_dir, out, args.name, args.namespace, args.service_account, args.dns,
                args.ip, args.days, args.trust_domain, args.force)
    except certs.CertError as e:
        print(f"certs: {e}", file=sys.stderr)
        return EXIT_USAGE if e.usage else EXIT_FAILED
    print(f"wrote {', '.join(str(f) for f in made.files)}")
    print(f"  identity   {made.identity}")
    print(made.description)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mosn-py certs",
                                     description="CA and workload certificates (openssl)")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
