"""The two other ways a connection reaches a sidecar: IPv6 with iptables REDIRECT (the
original destination from IP6T_SO_ORIGINAL_DST) and IPv4 TPROXY (no NAT: the listener is
``transparent`` and the original destination is the local address it accepted on). In both,
an unconfigured server-first protocol goes through the passthrough and the server sees the
client's connection arrive at its own address."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.mesh import HERE, Pod, missing, pod_pair, start_sidecar
from tests.e2e.netns import Network

pytestmark = [pytest.mark.timeout(120)]
_SKIP = missing()
if _SKIP:
    pytestmark.append(pytest.mark.skip(reason=_SKIP))


def passthrough(address: str, **listener: Any) -> dict[str, Any]:
    return {
        "log": {"level": "debug", "format": "text"},
        "listeners": [{"name": "capture", "address": address, "protocol": "tcp",
                       "use_original_dst": True, "cluster": "passthrough", **listener}],
        "clusters": [{"name": "passthrough", "type": "original_dst", "connect_timeout": "5s"}],
    }


@pytest.fixture
def pods() -> Iterator[tuple[Pod, Pod]]:
    n = random.randint(10, 250)
    with Network() as net:
        yield pod_pair(net, f"10.79.{n}", ipv6=(f"fd00:79:{n}::1", f"fd00:79:{n}::2"))


def banner(a: Pod, host: str) -> str:
    out = a.run(sys.executable, str(HERE / "pod_client.py"), "banner", host, "9000",
                user=True).stdout
    return out.strip()


def test_ipv6_redirect_recovers_the_original_destination(
    pods: tuple[Pod, Pod], tmp_path: Path
) -> None:
    a, b = pods
    server6 = b.run("ip", "-6", "-o", "addr", "show", "scope", "global").stdout.split()[3]
    server6 = server6.split("/")[0]
    b.start(sys.executable, str(HERE / "banner_server.py"), "::", "9000", ready="READY")
    if a.run("ip6tables", "-t", "nat", "-L", check=False).returncode != 0:
        pytest.skip("ip6tables nat is not available in this kernel")
    a.run("ip6tables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", f"{server6}/128",
          "-m", "owner", "!", "--uid-owner", "0", "-j", "REDIRECT", "--to-ports", "15001")
    start_sidecar(a, passthrough("[::]:15001"), tmp_path)
    out = banner(a, server6)
    assert out.startswith("banner HELLO ") and out.endswith(" PING")
    log = (tmp_path / f"{a.ns}.log").read_text()
    assert f"destination=[{server6}]:9000" in log


def test_tproxy_keeps_the_destination_address(pods: tuple[Pod, Pod], tmp_path: Path) -> None:
    a, b = pods
    b.start(sys.executable, str(HERE / "banner_server.py"), b.ip, "9000", ready="READY")
    b.run("ip", "rule", "add", "fwmark", "1337", "lookup", "133")
    b.run("ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "133")
    r = b.run("iptables", "-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "-d", f"{b.ip}/32",
              "!", "-i", "lo", "-j", "TPROXY", "--on-port", "15006", "--on-ip", "0.0.0.0",
              "--tproxy-mark", "1337", check=False)
    if r.returncode != 0:
        pytest.skip(f"TPROXY is not available in this kernel: {r.stderr.strip()}")
    start_sidecar(b, passthrough("0.0.0.0:15006", transparent=True), tmp_path)
    out = banner(a, b.ip)
    assert out == f"banner HELLO {b.ip} PING"  # the proxy's own connection, from B
    log = (tmp_path / f"{b.ns}.log").read_text()
    assert f"destination={b.ip}:9000" in log
