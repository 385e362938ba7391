"""The interception rules, text for text: ``mosn_py.sidecar.iptables`` (pure) and the option
handling of ``mosn_py.sidecar.iptables_cli``. tests/e2e/test_iptables_netns.py runs them."""

from __future__ import annotations

import argparse
import subprocess
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from mosn_py.sidecar import iptables as ipt
from mosn_py.sidecar import iptables_cli

DEFAULT_NAT_V4 = """\
*nat
:MOSN_PY_INBOUND - [0:0]
:MOSN_PY_IN_REDIRECT - [0:0]
:MOSN_PY_OUTPUT - [0:0]
:MOSN_PY_REDIRECT - [0:0]
-A MOSN_PY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A MOSN_PY_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A MOSN_PY_INBOUND -p tcp -m tcp --dport 15001 -j RETURN
-A MOSN_PY_INBOUND -p tcp -m tcp --dport 15006 -j RETURN
-A MOSN_PY_INBOUND -p tcp -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A MOSN_PY_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1337 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT -d 127.0.0.1/32 -j RETURN
-A MOSN_PY_OUTPUT -j MOSN_PY_REDIRECT
-A PREROUTING -p tcp -j MOSN_PY_INBOUND
-A OUTPUT -p tcp -j MOSN_PY_OUTPUT
COMMIT
"""


def test_defaults_exact_rules() -> None:
    assert ipt.apply_restore(ipt.make_options(), 4, "") == DEFAULT_NAT_V4
    assert ipt.make_options() == ipt.Options()


def test_lists_exclusions_and_ids_exact_rules() -> None:
    opts = ipt.make_options(
        proxy_uid="1337,1500", proxy_gid="2000", outbound_port="16001", inbound_port="16006",
        inbound_ports="8080, 9090", exclude_outbound_ports="22,8081",
        outbound_cidrs="10.0.0.0/8,127.0.0.0/8", exclude_outbound_cidrs="10.96.0.1",
    )
    assert ipt.apply_restore(opts, 4, "") == """\
*nat
:MOSN_PY_INBOUND - [0:0]
:MOSN_PY_IN_REDIRECT - [0:0]
:MOSN_PY_OUTPUT - [0:0]
:MOSN_PY_REDIRECT - [0:0]
-A MOSN_PY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006
-A MOSN_PY_REDIRECT -p tcp -j REDIRECT --to-ports 16001
-A MOSN_PY_INBOUND -p tcp -m tcp --dport 8080 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_INBOUND -p tcp -m tcp --dport 9090 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -p tcp -m tcp --dport 22 -j RETURN
-A MOSN_PY_OUTPUT -p tcp -m tcp --dport 8081 -j RETURN
-A MOSN_PY_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A MOSN_PY_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1500 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -m owner --uid-owner 1500 -j RETURN
-A MOSN_PY_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 2000 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -m owner --gid-owner 2000 -j RETURN
-A MOSN_PY_OUTPUT -d 127.0.0.1/32 -j RETURN
-A MOSN_PY_OUTPUT -d 10.96.0.1/32 -j RETURN
-A MOSN_PY_OUTPUT -d 10.0.0.0/8 -j MOSN_PY_REDIRECT
-A MOSN_PY_OUTPUT -d 127.0.0.0/8 -j MOSN_PY_REDIRECT
-A PREROUTING -p tcp -j MOSN_PY_INBOUND
-A OUTPUT -p tcp -j MOSN_PY_OUTPUT
COMMIT
"""
    # 127.0.0.0/8 is captured, so the "application over lo: direct" rules are left out


def test_no_inbound_capture_and_no_outbound_cidrs() -> None:
    opts = ipt.make_options(inbound_ports="", outbound_cidrs="", inbound_mode="tproxy")
    assert not opts.captures_inbound and not opts.tproxy
    (nat,) = ipt.tables(opts, 4)
    assert nat.chains == ("MOSN_PY_IN_REDIRECT", "MOSN_PY_OUTPUT", "MOSN_PY_REDIRECT")
    assert nat.hooks == ("-A OUTPUT -p tcp -j MOSN_PY_OUTPUT",)
    assert not any("MOSN_PY_IN_REDIRECT" in r and "owner" in r for r in nat.rules)
    assert not any(r.endswith("-j MOSN_PY_REDIRECT") for r in nat.rules)


# (a backslash at the end of a line continues it: every rule is one line)
TPROXY_V6 = """\
*nat
:MOSN_PY_IN_REDIRECT - [0:0]
:MOSN_PY_OUTPUT - [0:0]
:MOSN_PY_REDIRECT - [0:0]
-A MOSN_PY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A MOSN_PY_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A MOSN_PY_OUTPUT -s ::6/128 -o lo -j RETURN
-A MOSN_PY_OUTPUT ! -d ::1/128 -o lo -p tcp -m owner --uid-owner 1337 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT ! -d ::1/128 -o lo -p tcp -m owner --gid-owner 1337 -j MOSN_PY_IN_REDIRECT
-A MOSN_PY_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A MOSN_PY_OUTPUT -d ::1/128 -j RETURN
-A MOSN_PY_OUTPUT -d fd00:96::/64 -j RETURN
-A MOSN_PY_OUTPUT -d fd00::/8 -j MOSN_PY_REDIRECT
-A OUTPUT -p tcp -j MOSN_PY_OUTPUT
COMMIT
*mangle
:MOSN_PY_DIVERT - [0:0]
:MOSN_PY_INBOUND - [0:0]
:MOSN_PY_OUTPUT - [0:0]
:MOSN_PY_TPROXY - [0:0]
-A MOSN_PY_DIVERT -j MARK --set-xmark 0x64/0xffffffff
-A MOSN_PY_DIVERT -j ACCEPT
-A MOSN_PY_TPROXY ! -d ::1/128 -p tcp -j TPROXY --on-port 15006 --on-ip :: \
--tproxy-mark 0x64/0xffffffff
-A MOSN_PY_INBOUND -p tcp -m mark --mark 0x64 -j CONNMARK --save-mark --nfmask 0xffffffff \
--ctmask 0xffffffff
-A MOSN_PY_INBOUND -p tcp -m mark --mark 0x64 -j RETURN
-A MOSN_PY_INBOUND -s ::6/128 -i lo -p tcp -j RETURN
-A MOSN_PY_INBOUND -i lo -p tcp -m mark ! --mark 0x53a -j RETURN
-A MOSN_PY_INBOUND -p tcp -m tcp --dport 15001 -j RETURN
-A MOSN_PY_INBOUND -p tcp -m tcp --dport 15006 -j RETURN
-A MOSN_PY_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
-A MOSN_PY_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j MOSN_PY_DIVERT
-A MOSN_PY_INBOUND -p tcp -j MOSN_PY_TPROXY
-A MOSN_PY_OUTPUT -o lo -p tcp -m mark --mark 0x64 -j RETURN
-A MOSN_PY_OUTPUT ! -d ::1/128 -o lo -p tcp -m owner --uid-owner 1337 -j MARK \
--set-xmark 0x53a/0xffffffff
-A MOSN_PY_OUTPUT ! -d ::1/128 -o lo -p tcp -m owner --gid-owner 1337 -j MARK \
--set-xmark 0x53a/0xffffffff
-A MOSN_PY_OUTPUT -p tcp -m connmark --mark 0x64 -j CONNMARK --restore-mark \
--nfmask 0xffffffff --ctmask 0xffffffff
-A PREROUTING -p tcp -j MOSN_PY_INBOUND
-A OUTPUT -p tcp -j MOSN_PY_OUTPUT
COMMIT
"""


def test_tproxy_ipv6_exact_rules() -> None:
    opts = ipt.make_options(
        inbound_mode="tproxy", tproxy_mark="100", tproxy_table="200", ipv6=True,
        exclude_inbound_ports="15020", outbound_cidrs="10.0.0.0/8,fd00::/8",
        exclude_outbound_cidrs="10.96.0.0/12,fd00:96::/64",
    )
    assert opts.families == (4, 6)
    assert ipt.apply_restore(opts, 6, "") == TPROXY_V6
    v4 = ipt.apply_restore(opts, 4, "")
    # each family gets its own CIDRs and loopback/passthrough addresses
    assert "-A MOSN_PY_OUTPUT -d 10.96.0.0/12 -j RETURN" in v4
    assert "-A MOSN_PY_OUTPUT -d 10.0.0.0/8 -j MOSN_PY_REDIRECT" in v4
    assert "fd00" not in v4 and "::" not in v4
    assert "--on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x64/0xffffffff" in v4


def test_tproxy_port_list() -> None:
    opts = ipt.make_options(inbound_mode="tproxy", inbound_ports="8080")
    mangle = ipt.tables(opts, 4)[1]
    assert [r for r in mangle.rules if "8080" in r or "15001" in r] == [
        "-A MOSN_PY_INBOUND -p tcp -m tcp --dport 8080 -m conntrack --ctstate "
        "RELATED,ESTABLISHED -j MOSN_PY_DIVERT",
        "-A MOSN_PY_INBOUND -p tcp -m tcp --dport 8080 -j MOSN_PY_TPROXY",
    ]
    # nat has no inbound chain in tproxy mode
    assert "MOSN_PY_INBOUND" not in ipt.tables(opts, 4)[0].chains


INSTALLED = """\
# Generated by iptables-save v1.8.9 (nf_tables) on Tue Nov 24 07:25:55 2026
*mangle
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:MOSN_PY_DIVERT - [0:0]
:MOSN_PY_TPROXY - [0:0]
-A PREROUTING -p udp -j ACCEPT
-A PREROUTING -p tcp -j MOSN_PY_TPROXY
-A MOSN_PY_DIVERT -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:MOSN_PY_OUTPUT - [0:0]
:MOSN_PY_OLD - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -m comment --comment "not -j MOSN_PY_X" -j RETURN
-A OUTPUT -p tcp -j MOSN_PY_OUTPUT
-A OUTPUT -p tcp -j MOSN_PY_OUTPUT
-A DOCKER -j MOSN_PY_OLD
-A MOSN_PY_OUTPUT -j MOSN_PY_OLD
COMMIT
"""


def test_parse_save() -> None:
    got = ipt.parse_save(INSTALLED)
    assert got["mangle"].chains == ["MOSN_PY_DIVERT", "MOSN_PY_TPROXY"]
    assert got["mangle"].hooks == ["-A PREROUTING -p tcp -j MOSN_PY_TPROXY"]
    assert got["nat"].chains == ["MOSN_PY_OUTPUT", "MOSN_PY_OLD"]
    # a foreign chain's jump into ours counts; a comment that mentions one does not
    assert got["nat"].hooks == ["-A OUTPUT -p tcp -j MOSN_PY_OUTPUT",
                                "-A OUTPUT -p tcp -j MOSN_PY_OUTPUT", "-A DOCKER -j MOSN_PY_OLD"]
    assert ipt.parse_save("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") == {}


def test_apply_over_an_installed_set_removes_jumps_and_stale_chains() -> None:
    text = ipt.apply_restore(ipt.Options(), 4, INSTALLED)
    nat, mangle = text.split("COMMIT\n")[:2]
    assert nat.splitlines()[:11] == [
        "*nat",
        ":MOSN_PY_INBOUND - [0:0]",
        ":MOSN_PY_IN_REDIRECT - [0:0]",
        ":MOSN_PY_OUTPUT - [0:0]",
        ":MOSN_PY_REDIRECT - [0:0]",
        "-D OUTPUT -p tcp -j MOSN_PY_OUTPUT",
        "-D OUTPUT -p tcp -j MOSN_PY_OUTPUT",
        "-D DOCKER -j MOSN_PY_OLD",
        "-F MOSN_PY_OLD",
        "-X MOSN_PY_OLD",
        "-A MOSN_PY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
    ]
    assert nat.count("-A OUTPUT -p tcp -j MOSN_PY_OUTPUT") == 1
    assert "DOCKER -m addrtype" not in nat and "-A DOCKER" not in nat.replace("-D DOCKER", "")
    # redirect mode wants no mangle chains: the old ones and their jump go
    assert mangle == ("*mangle\n-D PREROUTING -p tcp -j MOSN_PY_TPROXY\n"
                      "-F MOSN_PY_DIVERT\n-F MOSN_PY_TPROXY\n"
                      "-X MOSN_PY_DIVERT\n-X MOSN_PY_TPROXY\n")


def test_clean() -> None:
    assert ipt.clean_restore("") == ""
    assert ipt.clean_restore("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DOCKER\n"
                             "COMMIT\n") == ""
    assert ipt.clean_restore(DEFAULT_NAT_V4.replace(" - [0:0]", " - [3:180]")) == """\
*nat
-D PREROUTING -p tcp -j MOSN_PY_INBOUND
-D OUTPUT -p tcp -j MOSN_PY_OUTPUT
-F MOSN_PY_INBOUND
-F MOSN_PY_IN_REDIRECT
-F MOSN_PY_OUTPUT
-F MOSN_PY_REDIRECT
-X MOSN_PY_INBOUND
-X MOSN_PY_IN_REDIRECT
-X MOSN_PY_OUTPUT
-X MOSN_PY_REDIRECT
COMMIT
"""


def test_routing_commands() -> None:
    opts = ipt.make_options(inbound_mode="tproxy", ipv6=True)
    route4 = ["ip", "-4", "route", "replace", "local", "0.0.0.0/0", "dev", "lo", "table", "133"]
    assert ipt.routing_apply(opts, 4, 0) == [
        ["ip", "-4", "rule", "add", "fwmark", "1337", "lookup", "133"], route4]
    assert ipt.routing_apply(opts, 4, 1) == [route4]
    assert ipt.routing_apply(opts, 6, 3) == [
        ["ip", "-6", "rule", "del", "fwmark", "1337", "lookup", "133"],
        ["ip", "-6", "rule", "del", "fwmark", "1337", "lookup", "133"],
        ["ip", "-6", "route", "replace", "local", "::/0", "dev", "lo", "table", "133"]]
    assert ipt.routing_clean(opts, 4, 0, False) == []
    assert ipt.routing_clean(opts, 6, 1, True) == [
        ["ip", "-6", "rule", "del", "fwmark", "1337", "lookup", "133"],
        ["ip", "-6", "route", "del", "local", "::/0", "dev", "lo", "table", "133"]]
    assert ipt.rule_show_argv(opts, 4) == ["ip", "-4", "rule", "show", "fwmark", "1337",
                                           "lookup", "133"]
    assert ipt.count_rules("32765:\tfrom all fwmark 0x539 lookup 133\n\n") == 1
    assert ipt.has_local_route("local default dev lo scope host \n")
    assert ipt.has_local_route("local default dev lo metric 1024 pref medium\n")
    assert not ipt.has_local_route("local 10.0.0.0/8 dev lo scope host\n")


def test_tool_names() -> None:
    assert ipt.save_argv(4) == ["iptables-save"]
    assert ipt.save_argv(6, "legacy") == ["ip6tables-legacy-save"]
    assert ipt.restore_argv(4, "nft") == ["iptables-nft-restore", "--noflush", "--wait=10"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"inbound_ports": "0"}, "--inbound-ports: '0' is not a port (1-65535)"),
    ({"inbound_ports": "80,65536"}, "--inbound-ports: '65536' is not a port (1-65535)"),
    ({"exclude_inbound_ports": "*"}, "--exclude-inbound-ports: '*' is not allowed here"),
    ({"exclude_outbound_ports": "http"}, "--exclude-outbound-ports: 'http' is not a port"),
    ({"outbound_port": "-1"}, "--outbound-port: '-1' is not a port"),
    ({"inbound_port": "15001"}, "--inbound-port: 15001 is also the --outbound-port"),
    ({"inbound_ports": "8080,15006"}, "--inbound-ports: 15006 is the proxy's own port"),
    ({"inbound_ports": "8080", "exclude_inbound_ports": "8080"},
     "--inbound-ports: 8080 is also in --exclude-inbound-ports"),
    ({"outbound_cidrs": "10.0.0.0/33"}, "--outbound-cidrs: '10.0.0.0/33' is not an IP"),
    ({"exclude_outbound_cidrs": "*"}, "--exclude-outbound-cidrs: '*' is not allowed here"),
    ({"exclude_outbound_cidrs": "example.com"}, "'example.com' is not an IP address or CIDR"),
    ({"outbound_cidrs": "fd00::/8"}, "--outbound-cidrs: fd00::/8 is IPv6; add --ipv6"),
    ({"proxy_uid": "istio-proxy"}, "--proxy-uid: 'istio-proxy' is not a numeric id"),
    ({"proxy_uid": ""}, "--proxy-uid: give at least one numeric id"),
    ({"proxy_gid": "4294967295"}, "--proxy-gid: '4294967295' is not a numeric id"),
    ({"inbound_mode": "tproxyy"}, "--inbound-mode: 'tproxyy' is not redirect or tproxy"),
    ({"tproxy_mark": "0"}, "--tproxy-mark: '0' is not a mark"),
    ({"tproxy_mark": "1338"}, "--tproxy-mark: 1338 marks the proxy's connections"),
    ({"tproxy_table": "254"}, "--tproxy-table: 254 is the kernel's 'main' table"),
    ({"tproxy_table": "x"}, "--tproxy-table: 'x' is not a routing table number"),
])
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ipt.OptionError) as e:
        ipt.make_options(**kwargs)
    assert message in str(e.value)


def test_option_parsing() -> None:
    opts = ipt.make_options(proxy_uid="0x539", inbound_ports="80,,80, 443",
                            outbound_cidrs="10.1.2.3,10.1.2.3/8", tproxy_mark="0x10")
    assert opts.proxy_uids == opts.proxy_gids == (1337,)
    assert opts.inbound_ports == (80, 443)
    assert opts.outbound_cidrs == (ip_network("10.1.2.3/32"), ip_network("10.0.0.0/8"))
    assert opts.tproxy_mark == 16
    assert ipt.make_options(inbound_ports="").inbound_ports == ()
    assert ipt.make_options(inbound_ports=" * ").inbound_ports is None
    # a v6 exclusion next to v4 ones is fine with --ipv6
    assert ipt.make_options(exclude_outbound_cidrs="10.0.0.0/8,fd00::/8", ipv6=True)


# -- the command --------------------------------------------------------------------------


def test_cli_bad_option_exits_2_before_running_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("ran a command")

    monkeypatch.setattr(subprocess, "run", refuse)
    assert iptables_cli.main(["apply", "--exclude-inbound-ports", "99999"]) == 2
    assert capsys.readouterr().err == (
        "iptables: --exclude-inbound-ports: '99999' is not a port (1-65535)\n")
    assert iptables_cli.main(["clean", "--tproxy-table", "255"]) == 2


class FakeSystem:
    """``subprocess.run`` standing in for iptables-save, ip rule/route and the rest."""

    def __init__(self, save: str, rules: str = "") -> None:
        self.save, self.rules = save, rules
        self.ran: list[tuple[list[str], str | None]] = []

    def __call__(self, argv: list[str], input: str | None = None,
                 **kw: Any) -> subprocess.CompletedProcess[str]:
        self.ran.append((argv, input))
        if argv[0].endswith("-save"):
            return subprocess.CompletedProcess(argv, 0, self.save, "")
        if argv[1:4] == ["-4", "rule", "show"]:
            return subprocess.CompletedProcess(argv, 0, self.rules, "")
        if argv[1:4] == ["-4", "route", "show"]:
            return subprocess.CompletedProcess(argv, 2, "", "Error: ipv4: FIB table does not "
                                                           "exist.\nDump terminated\n")
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_cli_dry_run_prints_a_script_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeSystem(DEFAULT_NAT_V4, rules="32765:\tfrom all fwmark 0x539 lookup 133\n")
    monkeypatch.setattr(subprocess, "run", fake)
    assert iptables_cli.main(["apply", "--dry-run", "--inbound-mode", "tproxy"]) == 0
    out = capsys.readouterr().out
    assert [argv[0] for argv, _ in fake.ran] == ["iptables-save", "ip", "ip"]  # reads only
    assert out.startswith("#!/bin/sh\n# mosn-py iptables --dry-run: nothing was changed")
    assert "iptables-restore --noflush --wait=10 <<'EOF'\n*nat\n" in out
    assert "-D PREROUTING -p tcp -j MOSN_PY_INBOUND\n-D OUTPUT -p tcp -j MOSN_PY_OUTPUT\n" in out
    assert "-F MOSN_PY_INBOUND\n-X MOSN_PY_INBOUND\n" in out  # nat INBOUND is redirect-only
    assert out.endswith("COMMIT\nEOF\nip -4 route replace local 0.0.0.0/0 dev lo table 133\n")
    assert "rule add" not in out  # one is there already


def test_cli_apply_and_clean_run_the_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeSystem("")
    monkeypatch.setattr(subprocess, "run", fake)
    assert iptables_cli.main(["apply"]) == 0
    assert fake.ran[-1] == (["iptables-restore", "--noflush", "--wait=10"], DEFAULT_NAT_V4)
    assert "interception rules installed (IPv4, inbound redirect" in capsys.readouterr().out
    fake.ran.clear()
    assert iptables_cli.main(["clean", "--inbound-mode", "tproxy"]) == 0
    assert [argv[:3] for argv, _ in fake.ran] == [
        ["iptables-save"], ["ip", "-4", "rule"], ["ip", "-4", "route"]]
    assert "nothing of mosn-py installed (IPv4)" in capsys.readouterr().out


def test_cli_reports_a_failed_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        if argv[0] == "iptables-save":
            return subprocess.CompletedProcess(argv, 0, "", "")
        return subprocess.CompletedProcess(argv, 2, "", "iptables-restore: line 9 failed")

    monkeypatch.setattr(subprocess, "run", run)
    assert iptables_cli.main(["apply"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("iptables: iptables-restore --noflush --wait=10 exited 2: "
                          "iptables-restore: line 9 failed\nits input was:\n*nat\n")

    def missing(argv: list[str], **kw: Any) -> Any:
        raise FileNotFoundError(argv[0])

    monkeypatch.setattr(subprocess, "run", missing)
    assert iptables_cli.main(["clean"]) == 1
    assert "iptables-save: not found (Debian: apt-get install iptables" in capsys.readouterr().err


def test_the_kubernetes_examples_init_containers_take_valid_options() -> None:
    path = Path(__file__).resolve().parents[3] / "examples" / "kubernetes" / "app.yaml"
    inits = [c for doc in yaml.safe_load_all(path.read_text()) if doc["kind"] == "Deployment"
             for c in doc["spec"]["template"]["spec"]["initContainers"]]
    assert len(inits) == 2
    for c in inits:
        assert c["args"][:3] == ["mosn-py", "iptables", "apply"]
        assert set(c["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
        parser = argparse.ArgumentParser()
        iptables_cli.add_arguments(parser)
        opts = iptables_cli._options(parser.parse_args(c["args"][2:]))
        assert opts.proxy_uids == (1337,)
