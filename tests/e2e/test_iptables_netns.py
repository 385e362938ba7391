"""``mosn-py iptables apply|clean`` in fresh network namespaces: the rules are installed once
however often ``apply`` runs, ``clean`` removes exactly them, and they intercept what they
should and nothing else:

    ns A, the "pod" (10.79.N.1, fd79:N::1)          ns B (10.79.N.2, .3, fd79:N::2)
    listeners :15001 and :15006 report the           listeners :8080, :8081 say who they are
    original destination (SO_ORIGINAL_DST, or the
    local address under TPROXY); :9090 the app,
    :15020 an admin port; clients run as uid 1000
    (the app) or 1337 (the proxy)
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mosn_py.sidecar import certs
from tests.e2e.netns import Netns, Network, python_for_users, skip_reason

REPO = Path(__file__).resolve().parents[2]
APP_UID = 1000
PROXY_UID = 1337

pytestmark = [pytest.mark.timeout(180)]
_SKIP = skip_reason("setpriv", "ip6tables")
if _SKIP:
    pytestmark.append(pytest.mark.skip(reason=_SKIP))

# label:port[:6][:t] ... -- one listener per argument: IPv4 (and IPv6 with "6"), IP_TRANSPARENT
# with "t" (TPROXY). Each connection gets "LABEL orig=ORIGINAL_DST local=SOCKNAME", then the
# echo of the line the client sends.
SERVER = r"""
import socket, struct, sys, threading

def original_dst(conn, family):
    try:
        if family == socket.AF_INET:
            raw = conn.getsockopt(socket.SOL_IP, 80, 16)  # SO_ORIGINAL_DST: sockaddr_in
            return "%s:%d" % (socket.inet_ntop(family, raw[4:8]),
                              struct.unpack("!H", raw[2:4])[0])
        raw = conn.getsockopt(41, 80, 28)  # SOL_IPV6, IP6T_SO_ORIGINAL_DST: sockaddr_in6
        return "[%s]:%d" % (socket.inet_ntop(family, raw[8:24]),
                            struct.unpack("!H", raw[2:4])[0])
    except OSError:
        return "-"

def serve(sock, label, family):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=talk, args=(conn, label, family), daemon=True).start()

def talk(conn, label, family):
    with conn:
        host, port = conn.getsockname()[:2]
        local = ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (host, port)
        conn.sendall(("%s orig=%s local=%s\n" % (label, original_dst(conn, family), local))
                     .encode())
        f = conn.makefile("rb")
        line = f.readline()
        conn.sendall(b"echo:" + line)

for spec in sys.argv[1:]:
    label, port, *flags = spec.split(":")
    families = [socket.AF_INET] + ([socket.AF_INET6] if "6" in flags else [])
    for family in families:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if "t" in flags:
            s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", int(port)))
        s.listen(16)
        threading.Thread(target=serve, args=(s, label, family), daemon=True).start()
print("READY", flush=True)
threading.Event().wait()
"""

# HOST PORT [SOURCE]: prints the greeting line, "|", the echo of "ping" (or refused/timeout)
CLIENT = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(5)
if len(sys.argv) > 3:
    s.bind((sys.argv[3], 0))
try:
    s.connect((host, port))
    f = s.makefile("rb")
    first = f.readline().decode().strip()
    s.sendall(b"ping\n")
    print(first, "|", f.readline().decode().strip())
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("timeout")
"""


def cli(ns: Netns, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return ns.run(sys.executable, "-m", "mosn_py.sidecar.iptables_cli", *args, check=check,
                  env={"PYTHONPATH": str(REPO)})


def save(ns: Netns, family: int = 4, backend: str = "auto") -> list[str]:
    """``iptables-save`` lines without comments and counters."""
    tool = ("iptables" if family == 4 else "ip6tables") + (
        "" if backend == "auto" else f"-{backend}") + "-save"
    out = ns.run(tool).stdout
    return [re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines()
            if line and not line.startswith("#")]


def restore_blocks(script: str) -> dict[int, list[str]]:
    """The iptables-restore input per family in a ``--dry-run`` script."""
    out: dict[int, list[str]] = {}
    for m in re.finditer(r"^(\S+)-restore [^\n]*<<'EOF'\n(.*?)^EOF$", script, re.M | re.S):
        family = 6 if m.group(1).startswith("ip6tables") else 4
        out[family] = m.group(2).splitlines()
    return out


def rules(lines: list[str]) -> list[str]:
    """The ``-A`` lines, each prefixed with its table: ``"nat -A OUTPUT ..."``."""
    out, table = [], ""
    for line in lines:
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            out.append(f"{table} {line}")
    return out


def ip_state(ns: Netns, family: int) -> tuple[list[str], list[str]]:
    r = ns.run("ip", f"-{family}", "rule", "show", "fwmark", "1337", "lookup", "133").stdout
    t = ns.run("ip", f"-{family}", "route", "show", "table", "133", check=False).stdout
    return r.splitlines(), t.splitlines()


def _backends() -> list[Any]:
    legacy = shutil.which("iptables-legacy-restore") and shutil.which("ip6tables-legacy-save")
    return ["auto", pytest.param("legacy", marks=pytest.mark.skipif(
        not legacy, reason="iptables-legacy is not installed"))]


CONFIGS = {
    "redirect": ["--exclude-inbound-ports", "15020", "--exclude-outbound-ports", "22,8081"],
    "tproxy-ipv6": ["--inbound-mode", "tproxy", "--ipv6", "--inbound-ports", "8080,9090",
                    "--outbound-cidrs", "10.0.0.0/8,fd00::/8",
                    "--exclude-outbound-cidrs", "10.96.0.0/12,fd00:96::/64"],
}


@pytest.fixture
def net() -> Iterator[Network]:
    with Network() as n:
        yield n


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_apply_twice_then_clean_twice(net: Network, config: str, backend: str) -> None:
    ns = net.netns()
    extra = [*CONFIGS[config], "--backend", backend]
    families = (4, 6) if "--ipv6" in extra else (4,)
    tproxy = "tproxy" in extra
    suffix = "" if backend == "auto" else f"-{backend}"
    # Somebody else's rules, in both tables we use, with a chain of their own.
    for family in families:
        tool = ("iptables" if family == 4 else "ip6tables") + suffix
        for rule in (["-t", "nat", "-N", "FOREIGN"],
                     ["-t", "nat", "-A", "FOREIGN", "-p", "tcp", "-j", "RETURN"],
                     ["-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "2222",
                      "-j", "FOREIGN"],
                     ["-t", "nat", "-A", "OUTPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT"],
                     ["-t", "mangle", "-A", "PREROUTING", "-p", "udp", "-j", "ACCEPT"]):
            ns.run(tool, *rule)
    before = {f: save(ns, f, backend) for f in families}

    cli(ns, "apply", *extra)
    first = {f: save(ns, f, backend) for f in families}
    routing = {f: ip_state(ns, f) for f in families}
    dry = cli(ns, "apply", "--dry-run", *extra).stdout
    cli(ns, "apply", *extra)
    second = {f: save(ns, f, backend) for f in families}
    assert second == first
    assert {f: ip_state(ns, f) for f in families} == routing

    blocks = restore_blocks(dry)
    assert sorted(blocks) == list(families)
    for f in families:
        wanted = rules(blocks[f])
        assert wanted
        for line in wanted:  # exactly as iptables-save prints it, and once
            assert rules(first[f]).count(line) == 1, (f, line, first[f])
        ours = [x for x in rules(first[f]) if "MOSN_PY_" in x]
        assert sorted(ours) == sorted(wanted)
        # the second apply removed the jumps before adding them again
        assert "-D OUTPUT -p tcp -j MOSN_PY_OUTPUT" in blocks[f]
        assert "-D PREROUTING -p tcp -j MOSN_PY_INBOUND" in blocks[f]
        # the foreign rules are all there, in their order
        assert [x for x in rules(first[f]) if "MOSN_PY_" not in x] == rules(before[f])
        rule_lines, routes = routing[f]
        if tproxy:
            assert len(rule_lines) == 1 and "fwmark 0x539 lookup 133" in rule_lines[0]
            assert any(r.startswith("local default dev lo") for r in routes)
        else:
            assert rule_lines == [] and routes == []

    clean = ["--backend", backend] + (["--ipv6"] if 6 in families else []) + (
        ["--inbound-mode", "tproxy"] if tproxy else [])
    out = cli(ns, "clean", *clean).stdout
    assert "removed" in out
    after = {f: save(ns, f, backend) for f in families}
    for f in families:
        assert not any("MOSN_PY_" in x for x in after[f])
        assert rules(after[f]) == rules(before[f])
        assert ":FOREIGN -" in after[f]
        assert ip_state(ns, f) == ([], [])
    out = cli(ns, "clean", *clean).stdout
    assert "nothing of mosn-py installed" in out
    assert {f: save(ns, f, backend) for f in families} == after
    assert "# nothing to do" in cli(ns, "clean", "--dry-run", *clean).stdout


def test_apply_replaces_a_different_option_set(net: Network) -> None:
    """Switching tproxy -> redirect: the mangle chains go, the nat ones are rewritten."""
    ns = net.netns()
    cli(ns, "apply", "--inbound-mode", "tproxy")
    assert any("MOSN_PY_TPROXY" in x for x in save(ns))
    cli(ns, "apply", "--outbound-port", "16001")
    now = save(ns)
    assert not any("MOSN_PY_TPROXY" in x or "MOSN_PY_DIVERT" in x for x in now)
    assert "-A MOSN_PY_REDIRECT -p tcp -j REDIRECT --to-ports 16001" in now
    assert rules(now).count("nat -A PREROUTING -p tcp -j MOSN_PY_INBOUND") == 1
    assert not any(x.startswith("mangle") and "MOSN_PY_" in x for x in rules(now))
    cli(ns, "clean", "--inbound-mode", "tproxy")  # the policy routing rule of the first run
    assert ip_state(ns, 4) == ([], [])


def test_bad_options_change_nothing(net: Network) -> None:
    ns = net.netns()
    before = save(ns)
    r = cli(ns, "apply", "--exclude-outbound-cidrs", "10.0.0.300/8", check=False)
    assert r.returncode == 2
    assert "--exclude-outbound-cidrs: '10.0.0.300/8' is not an IP address or CIDR" in r.stderr
    assert save(ns) == before


# -- interception --------------------------------------------------------------------------


class Pods:
    def __init__(self, net: Network, n: int) -> None:
        self.a, self.b = net.netns(), net.netns()
        self.a_ip, self.b_ip, self.b_ip2 = f"10.79.{n}.1", f"10.79.{n}.2", f"10.79.{n}.3"
        self.a_ip6, self.b_ip6 = f"fd79:{n}::1", f"fd79:{n}::2"
        _, dev_b = net.veth(self.a, self.b, f"{self.a_ip}/24", f"{self.b_ip}/24")
        net.add_address(self.a, f"{_}", f"{self.a_ip6}/64")
        net.add_address(self.b, dev_b, f"{self.b_ip6}/64")
        net.add_address(self.b, dev_b, f"{self.b_ip2}/24")

    def serve(self, ns: Netns, *specs: str) -> None:
        p = ns.popen(sys.executable, "-c", SERVER, *specs, text=True)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "READY", p.stderr.read() if p.stderr else line

    @staticmethod
    def dial(ns: Netns, host: str, port: int, *, uid: int | None = None,
             gid: int | None = None, source: str | None = None) -> str:
        args = [host, str(port)] + ([source] if source else [])
        py = python_for_users() if uid is not None else sys.executable
        return ns.run(py, "-c", CLIENT, *args, user=uid, group=gid).stdout.strip()


@pytest.fixture(scope="module")
def redirect_pods() -> Iterator[Pods]:
    with Network() as net:
        pods = Pods(net, random.randint(1, 250))
        cli(pods.a, "apply", "--ipv6", "--proxy-uid", str(PROXY_UID),
            "--exclude-inbound-ports", "15020", "--exclude-outbound-ports", "8081",
            "--exclude-outbound-cidrs", f"{pods.b_ip2}/32")
        pods.serve(pods.a, "outbound:15001:6", "inbound:15006:6", "app:9090:6", "admin:15020")
        pods.serve(pods.b, "b8080:8080:6", "b8081:8081")
        yield pods


def test_app_outbound_goes_to_15001_with_its_original_destination(redirect_pods: Pods) -> None:
    p = redirect_pods
    out = p.dial(p.a, p.b_ip, 8080, uid=APP_UID)
    assert out.startswith(f"outbound orig={p.b_ip}:8080 ") and out.endswith("| echo:ping")


def test_app_outbound_ipv6(redirect_pods: Pods) -> None:
    p = redirect_pods
    out = p.dial(p.a, p.b_ip6, 8080, uid=APP_UID)
    assert out.startswith(f"outbound orig=[{p.b_ip6}]:8080 "), out
    assert p.dial(p.a, p.b_ip6, 8080, uid=PROXY_UID).startswith("b8080 ")


def test_proxy_uid_and_gid_are_not_redirected(redirect_pods: Pods) -> None:
    p = redirect_pods
    assert p.dial(p.a, p.b_ip, 8080, uid=PROXY_UID).startswith("b8080 ")
    assert p.dial(p.a, p.b_ip, 8080, uid=APP_UID, gid=PROXY_UID).startswith("b8080 ")


def test_excluded_outbound_port_and_cidr_are_direct(redirect_pods: Pods) -> None:
    p = redirect_pods
    assert p.dial(p.a, p.b_ip, 8081, uid=APP_UID).startswith("b8081 ")
    assert p.dial(p.a, p.b_ip2, 8080, uid=APP_UID).startswith("b8080 ")


def test_inbound_goes_to_15006_except_excluded_and_own_ports(redirect_pods: Pods) -> None:
    p = redirect_pods
    out = p.dial(p.b, p.a_ip, 9090)
    assert out.startswith(f"inbound orig={p.a_ip}:9090 ") and out.endswith("| echo:ping")
    assert p.dial(p.b, p.a_ip6, 9090).startswith(f"inbound orig=[{p.a_ip6}]:9090 ")
    assert p.dial(p.b, p.a_ip, 15020).startswith("admin ")
    assert p.dial(p.b, p.a_ip, 15001).startswith("outbound ")  # not sent to 15006


def test_loopback(redirect_pods: Pods) -> None:
    p = redirect_pods
    # the application calling itself, by localhost or by its pod address: direct
    assert p.dial(p.a, "127.0.0.1", 9090, uid=APP_UID).startswith("app ")
    assert p.dial(p.a, p.a_ip, 9090, uid=APP_UID).startswith("app ")
    # the proxy calling its own pod's address: through the inbound side
    assert p.dial(p.a, p.a_ip, 9090, uid=PROXY_UID).startswith(f"inbound orig={p.a_ip}:9090 ")
    # ... but not from 127.0.0.6 (the inbound passthrough) nor to localhost
    assert p.dial(p.a, p.a_ip, 9090, uid=PROXY_UID, source="127.0.0.6").startswith("app ")
    assert p.dial(p.a, "127.0.0.1", 9090, uid=PROXY_UID).startswith("app ")


def test_tproxy_inbound_keeps_the_destination_address(net: Network) -> None:
    pods = Pods(net, random.randint(1, 250))
    a = pods.a
    cli(a, "apply", "--inbound-mode", "tproxy", "--exclude-inbound-ports", "15020")
    cli(a, "apply", "--inbound-mode", "tproxy", "--exclude-inbound-ports", "15020")
    assert len(ip_state(a, 4)[0]) == 1
    pods.serve(a, "inbound:15006:t", "app:9090", "admin:15020")
    # no NAT: the proxy's socket has the original destination as its own address, and the
    # rest of the connection (the echo) reaches it through the mark and the local route
    # (SO_ORIGINAL_DST still answers: conntrack's original tuple, which is the same)
    out = pods.dial(pods.b, pods.a_ip, 9090)
    assert out.startswith(f"inbound orig={pods.a_ip}:9090 local={pods.a_ip}:9090 "), out
    assert out.endswith("| echo:ping")
    assert pods.dial(pods.b, pods.a_ip, 15020).startswith("admin ")
    # the application calling itself by its pod address is not captured
    assert pods.dial(a, pods.a_ip, 9090, uid=APP_UID).startswith("app ")
    # the proxy calling its own pod's address reaches the inbound port by NAT even here:
    # only SO_ORIGINAL_DST knows the destination then
    out = pods.dial(a, pods.a_ip, 9090, uid=PROXY_UID)
    assert out.startswith(f"inbound orig={pods.a_ip}:9090 local=127.0.0.1:15006 "), out
    cli(a, "clean", "--inbound-mode", "tproxy")
    assert ip_state(a, 4) == ([], [])
    assert pods.dial(pods.b, pods.a_ip, 9090).startswith("app ")


# -- examples/kubernetes, as far as one host can run it -----------------------------------


def _start(ns: Netns, log: Path, *cmd: str) -> None:
    """``cmd`` in the background in ``ns``, stdout and stderr to ``log``."""
    with log.open("wb") as f:
        ns.popen(*cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, stdout=f,
                 stderr=subprocess.STDOUT)


def _wait_for(path: Path, log: Path, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} not ready:\n{log.read_text()}"
        time.sleep(0.05)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_kubernetes_example_in_two_namespaces(net: Network, tmp_path: Path) -> None:
    """examples/kubernetes/ without Kubernetes: two "pods" (namespaces), the init
    containers' `mosn-py iptables apply` arguments, `mosn-py control-plane` serving the
    ConfigMap's files by node.cluster, each sidecar started from the bootstrap ConfigMap,
    and `mosn-py certs` certificates. What differs from a cluster: sidecars run as root
    (this test's Python may be unreadable for uid 1337), so `--proxy-uid 0`; certificate
    paths point at each pod's own directory; the web Service's name is its pod's IP."""
    examples = REPO / "examples" / "kubernetes"
    cp_docs = list(yaml.safe_load_all((examples / "control-plane.yaml").read_text()))
    app_docs = list(yaml.safe_load_all((examples / "app.yaml").read_text()))
    resources = next(d for d in cp_docs if d["kind"] == "ConfigMap")["data"]
    bootstrap = next(d for d in app_docs if d["kind"] == "ConfigMap")["data"]["bootstrap.yaml"]
    inits = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["initContainers"][0]["args"]
             for d in app_docs if d["kind"] == "Deployment"}

    n = random.randint(1, 250)
    client, web, cp = net.netns(), net.netns(), net.netns()
    client_ip, web_ip = f"10.80.{n}.1", f"10.80.{n}.2"
    net.veth(client, web, f"{client_ip}/24", f"{web_ip}/24")
    # the control plane in a "pod" of its own (a pod calling its own IP is another story)
    net.veth(client, cp, f"10.81.{n}.1/24", f"10.81.{n}.2/24")
    net.veth(web, cp, f"10.82.{n}.1/24", f"10.82.{n}.2/24")
    xds_for = {"client": f"10.81.{n}.2:18000", "web": f"10.82.{n}.2:18000"}
    certs.make_ca(tmp_path / "ca", days=2)
    for name in ("web", "client"):
        certs.make_workload(tmp_path / "ca", tmp_path / name, name, namespace="shop", days=2)
    for name in ("web", "client"):
        text = resources[f"{name}.yaml"].replace("/etc/mosn-py/certs", str(tmp_path / name))
        text = text.replace("web.shop.svc.cluster.local:8080", f"{web_ip}:8080")
        (tmp_path / f"{name}.yaml").write_text(text)
    for ns, name in ((web, "web"), (client, "client")):
        args = inits[name][2:]
        args[args.index("--proxy-uid") + 1] = "0"
        cli(ns, *args)

    cp_log = tmp_path / "cp.log"
    _start(cp, cp_log, sys.executable, "-m", "mosn_py.cli", "control-plane",
           "-c", str(tmp_path / "client.yaml"), "--node-cluster", f"web={tmp_path / 'web.yaml'}",
           "--node-cluster", f"client={tmp_path / 'client.yaml'}", "--listen", "0.0.0.0:18000",
           "--ready-file", str(tmp_path / "cp.ready"))
    _wait_for(tmp_path / "cp.ready", cp_log, "control plane")
    app = web.popen(sys.executable, str(REPO / "tests/integration/peers/http_backend.py"),
                    "8080", "web-app", text=True)
    assert app.stdout is not None and app.stdout.readline().startswith("READY")
    for ns, name, ip in ((web, "web", web_ip), (client, "client", client_ip)):
        text = (bootstrap.replace("@POD_IP@", ip).replace("@POD_NAME@", f"{name}-0")
                .replace("@POD_NAMESPACE@", "shop").replace("@APP@", name)
                .replace("mosn-control-plane.mosn-system.svc.cluster.local:18000",
                         xds_for[name]))
        (tmp_path / f"{name}-bootstrap.yaml").write_text(text)
        log = tmp_path / f"{name}-sidecar.log"
        _start(ns, log, sys.executable, "-m", "mosn_py.cli", "run", "-c",
               str(tmp_path / f"{name}-bootstrap.yaml"), "--ready-file",
               str(tmp_path / f"{name}.ready"))
        _wait_for(tmp_path / f"{name}.ready", log, f"{name} sidecar")
    assert "inbound" in (tmp_path / "web.ready").read_text()  # listeners came over xDS
    assert "outbound" in (tmp_path / "client.ready").read_text()

    # curl in the client pod, unprivileged, knows nothing of the mesh
    out = client.run("curl", "-s", "--max-time", "10", "-H", "Host: web.shop",
                     f"http://{web_ip}:8080/echo", user=65534).stdout
    echo = json.loads(out)
    assert echo["server"] == "web-app"
    xfcc = dict((k.lower(), v) for k, v in echo["headers"])["x-forwarded-client-cert"]
    assert "URI=spiffe://cluster.local/ns/shop/sa/client" in xfcc
    # without the client's sidecar (root is not intercepted here) the web pod refuses it
    r = client.run("curl", "-s", "--max-time", "5", f"http://{web_ip}:8080/echo", check=False)
    assert r.returncode != 0 and "web-app" not in r.stdout
