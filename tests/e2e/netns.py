"""Network namespaces for e2e tests: create them, wire them with veth pairs, run commands in
them, and always delete what was made.

    with Network() as net:                       # or the ``network`` fixture pattern below
        a, b = net.netns(), net.netns()          # "mosnpy-<random>", lo up
        net.veth(a, b, "10.79.1.1/24", "10.79.1.2/24")
        net.veth(a, None, "10.79.2.1/24", "10.79.2.2/24")   # None: the root namespace
        net.dummy(a, "10.79.3.1/24")
        a.run("iptables-save")                   # CompletedProcess[str]; raises on failure
        a.run("python3", "client.py", user=1000) # as another uid (setpriv)
        p = a.popen("python3", "server.py")      # terminated at cleanup
    # every process started with popen is stopped, every namespace and root-side link deleted

``skip_reason()`` says why these tests cannot run here (not root, no ``ip netns``, iptables
not usable inside a namespace), or None. Names start with ``mosnpy-`` so a leftover is easy to
spot (``ip netns list``) and never mistaken for someone else's.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from types import TracebackType
from typing import Any

PREFIX = "mosnpy-"
TIMEOUT = 30.0


def _sh(cmd: Sequence[str], *, check: bool = True, timeout: float = TIMEOUT,
        input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input,
                       env={**os.environ, **env} if env else None)
    if check and r.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} -> exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def as_user(uid: int, gid: int | None = None) -> list[str]:
    """Command prefix that runs the rest as ``uid`` (and ``gid``, default the uid), with no
    supplementary groups. ``setpriv`` is in util-linux, on every Debian."""
    g = uid if gid is None else gid
    return ["setpriv", f"--reuid={uid}", f"--regid={g}", "--clear-groups"]


class Netns:
    """One network namespace (made by ``Network.netns``)."""

    def __init__(self, name: str, owner: Network) -> None:
        self.name = name
        self._owner = owner

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    def argv(self, cmd: Sequence[str], user: int | None = None,
             group: int | None = None) -> list[str]:
        """``cmd`` run inside this namespace (as ``user``/``group`` when given)."""
        prefix = as_user(user, group) if user is not None else []
        return ["ip", "netns", "exec", self.name, *prefix, *cmd]

    def run(self, *cmd: str, user: int | None = None, group: int | None = None,
            check: bool = True, timeout: float = TIMEOUT, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run to completion; stdout/stderr captured as text; ``env`` is added to this
        process's environment. ``check`` raises AssertionError with both outputs on a
        non-zero exit."""
        return _sh(self.argv(cmd, user, group), check=check, timeout=timeout, input=input,
                   env=env)

    def popen(self, *cmd: str, user: int | None = None, group: int | None = None,
              **kwargs: Any) -> subprocess.Popen[Any]:
        """Start in the background (``subprocess.Popen`` keyword arguments pass through);
        the process is terminated, then killed, at cleanup."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc: subprocess.Popen[Any] = subprocess.Popen(self.argv(cmd, user, group), **kwargs)
        self._owner._procs.append(proc)
        return proc


class Network:
    """Owns namespaces, links and processes; ``cleanup()`` (or leaving the ``with`` block)
    removes all of them, even after a failure, and never raises."""

    def __init__(self) -> None:
        self._namespaces: list[Netns] = []
        self._root_links: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []

    def __enter__(self) -> Network:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()

    @staticmethod
    def _suffix() -> str:
        return secrets.token_hex(4)

    def netns(self, *, lo_up: bool = True) -> Netns:
        """A new namespace named ``mosnpy-<8 hex digits>``, loopback up unless told."""
        ns = Netns(PREFIX + self._suffix(), self)
        _sh(["ip", "netns", "add", ns.name])
        self._namespaces.append(ns)
        if lo_up:
            ns.run("ip", "link", "set", "lo", "up")
        return ns

    def veth(self, a: Netns | None, b: Netns | None, addr_a: str | None = None,
             addr_b: str | None = None) -> tuple[str, str]:
        """A veth pair between ``a`` and ``b`` (None: the root namespace), each end up and
        given its address (``10.1.2.3/24``, IPv6 too) when one is given. IPv6 addresses skip
        duplicate address detection, so they are usable at once. Returns the two interface
        names."""
        tag = self._suffix()
        ends = (f"mp{tag}a", f"mp{tag}b")
        cmd = ["ip", "link", "add", ends[0]]
        if a is not None:
            cmd += ["netns", a.name]
        cmd += ["type", "veth", "peer", "name", ends[1]]
        if b is not None:
            cmd += ["netns", b.name]
        _sh(cmd)
        for ns, dev in ((a, ends[0]), (b, ends[1])):
            if ns is None:
                self._root_links.append(dev)
        for ns, dev, addr in ((a, ends[0], addr_a), (b, ends[1], addr_b)):
            if addr is not None:
                self.add_address(ns, dev, addr)
            self._ip(ns, "link", "set", dev, "up")
        return ends

    def dummy(self, ns: Netns, addr: str | None = None) -> str:
        """A dummy interface in ``ns`` (an address nothing answers from outside), up."""
        dev = f"md{self._suffix()}"
        self._ip(ns, "link", "add", dev, "type", "dummy")
        if addr is not None:
            self.add_address(ns, dev, addr)
        self._ip(ns, "link", "set", dev, "up")
        return dev

    def add_address(self, ns: Netns | None, dev: str, addr: str) -> None:
        extra = ["nodad"] if ":" in addr else []
        self._ip(ns, "addr", "add", addr, "dev", dev, *extra)

    @staticmethod
    def _ip(ns: Netns | None, *args: str) -> None:
        if ns is None:
            _sh(["ip", *args])
        else:
            ns.run("ip", *args)

    def cleanup(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
        for p in self._procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream is not None:
                    stream.close()
        self._procs.clear()
        for dev in self._root_links:  # usually gone with its peer's namespace already
            subprocess.run(["ip", "link", "del", dev], capture_output=True, timeout=TIMEOUT)
        self._root_links.clear()
        for ns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True,
                           timeout=TIMEOUT)
        self._namespaces.clear()


@cache
def skip_reason(*tools: str) -> str | None:
    """Why namespace + iptables tests cannot run here, or None when they can. ``tools`` are
    further commands the caller needs (``setpriv``, ``curl``...)."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "iptables-save", "iptables-restore", *tools):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash scripts/install.sh --test)"
    probe = f"{PREFIX}probe-{secrets.token_hex(3)}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    try:
        r = subprocess.run(["ip", "netns", "exec", probe, "iptables", "-t", "nat", "-L", "-n"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        if r.returncode != 0:
            return f"iptables (nat) does not work in a namespace: {r.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=TIMEOUT)
    return None


@cache
def python_for_users() -> str:
    """A Python interpreter an unprivileged uid can run (the test's own may live under
    /root): ``sys.executable`` if uid 65534 can start it, else the system ``python3``. For
    stdlib-only scripts."""
    r = subprocess.run([*as_user(65534), sys.executable, "-c", "pass"], capture_output=True,
                       timeout=TIMEOUT)
    if r.returncode == 0:
        return sys.executable
    return shutil.which("python3", path="/usr/bin:/bin") or "python3"
