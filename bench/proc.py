"""Process helpers for the benchmarks: CPU seconds from /proc and CPU pinning with taskset.

CPU time comes from ``/proc/PID/stat`` fields 14-17 (utime, stime, cutime, cstime) in
clock ticks, divided by ``os.sysconf("SC_CLK_TCK")`` (100 on Linux: 10 ms resolution,
fine for runs of seconds). ``tree_cpu_seconds`` adds every live descendant (a proxy with
``workers: N`` forks worker processes) and the reaped children already folded into each
process's cutime/cstime, so nothing is counted twice:

  total = sum over (pid + live descendants) of utime + stime + cutime + cstime

Pinning is ``taskset -c CPUS cmd...``; taskset execs the command, so the PID of the
Popen is the PID of the pinned program itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuTimes:
    user: float      # seconds
    system: float
    children_user: float
    children_system: float

    @property
    def own(self) -> float:
        return self.user + self.system

    @property
    def total(self) -> float:
        return self.user + self.system + self.children_user + self.children_system


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the ``(comm)`` field; index 0 is field 3 (state)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # comm may contain spaces and parentheses: split after the LAST ')'
    return raw[raw.rindex(b")") + 2:].decode("ascii").split()


def cpu_times(pid: int) -> CpuTimes:
    """utime/stime/cutime/cstime of one process, in seconds (raises if it is gone)."""
    try:
        f = _stat_fields(pid)
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    # stat(5): 14 utime, 15 stime, 16 cutime, 17 cstime  -> indexes 11..14 here
    ut, st, cut, cst = (int(x) / CLK_TCK for x in f[11:15])
    return CpuTimes(ut, st, cut, cst)


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User+system CPU seconds of ``pid``; with ``children``, its whole process tree."""
    return tree_cpu_seconds(pid) if children else cpu_times(pid).own


def start_time(pid: int) -> int:
    """Start time of ``pid`` in clock ticks since boot (stat field 22): identifies a process."""
    try:
        return int(_stat_fields(pid)[19])
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None


def parent_pid(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def descendants(pid: int) -> list[int]:
    """PIDs of all live descendants of ``pid`` (scan of /proc; order unspecified)."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = parent_pid(int(name))
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in kids.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def tree_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid``'s tree, as in ``tree_cpu_seconds``."""
    pids = [pid, *descendants(pid)]
    user = system = 0.0
    for i, p in enumerate(pids):
        try:
            t = cpu_times(p)
        except ProcessLookupError:
            if i == 0:
                raise
            continue
        user += t.user + t.children_user
        system += t.system + t.children_system
    return user, system


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``, its live descendants and every child they have reaped."""
    total = cpu_times(pid).total
    for d in descendants(pid):
        try:
            total += cpu_times(d).total
        except ProcessLookupError:
            pass  # exited between the scan and the read; its parent's cutime has it later
    return total


# -- pinning -------------------------------------------------------------------------------


def have_taskset() -> bool:
    return shutil.which("taskset") is not None


def available_cpus() -> list[int]:
    """CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0))


def pinned(cmd: Sequence[str], cpus: str | int | None, nice: int = 0) -> list[str]:
    """``cmd`` prefixed with ``taskset -c CPUS`` (and ``nice -n N`` when nice != 0).

    Both wrappers exec the command, so the resulting PID is the command's own.
    """
    out = list(cmd)
    if cpus is not None:
        if not have_taskset():
            raise RuntimeError("taskset not found (apt-get install -y util-linux)")
        out = ["taskset", "-c", str(cpus), *out]
    if nice:
        out = ["nice", "-n", str(nice), *out]
    return out


def start_pinned(cmd: Sequence[str], cpus: str | int | None, nice: int = 0,
                 **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``cmd`` pinned to ``cpus`` (e.g. ``0`` or ``"1,3"``) and return the Popen."""
    return subprocess.Popen(pinned(cmd, cpus, nice), **popen_kwargs)


def affinity_of(pid: int) -> list[int]:
    """The CPUs a running process is allowed on (to verify pinning)."""
    return sorted(os.sched_getaffinity(pid))


def stop_process(p: subprocess.Popen[bytes], grace: float = 3.0) -> int | None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; return the exit code.

    Live descendants seen before the SIGTERM that are still alive afterwards are
    SIGKILLed too (only processes this harness started, found through its own child).
    """
    if p.poll() is not None:
        return p.returncode
    kids = []
    try:
        for k in descendants(p.pid):
            try:
                kids.append((k, start_time(k)))
            except (ProcessLookupError, FileNotFoundError):
                pass
    except OSError:
        pass
    p.terminate()
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    for k, started in kids:
        try:
            if start_time(k) == started:  # the same process, not a reused PID
                os.kill(k, 9)
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            pass
    return p.returncode


# -- whole-machine CPU (to spot noise from processes outside the benchmark) ---------------


@dataclass(frozen=True)
class SystemCpu:
    """Seconds from /proc/stat per CPU line ("cpu" = all CPUs, "cpu0", "cpu1", ...)."""

    task: dict[str, float]     # user + nice + system (time charged to processes)
    softirq: dict[str, float]  # irq + softirq (loopback packet processing lands here)
    steal: dict[str, float]    # time the hypervisor ran something else on this vCPU

    def delta(self, before: SystemCpu) -> SystemCpu:
        return SystemCpu(*({k: getattr(self, f)[k] - getattr(before, f).get(k, 0.0)
                            for k in getattr(self, f)}
                           for f in ("task", "softirq", "steal")))


def system_cpu() -> SystemCpu:
    task: dict[str, float] = {}
    irq: dict[str, float] = {}
    steal: dict[str, float] = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *vals = line.split()
            v = [int(x) / CLK_TCK for x in vals] + [0.0] * 8
            task[name] = v[0] + v[1] + v[2]
            irq[name] = v[5] + v[6]
            steal[name] = v[7]
    return SystemCpu(task, irq, steal)


# -- CPU of the processes outside the benchmark ------------------------------------------------

PF_KTHREAD = 0x00200000  # stat field 9 (flags): a kernel thread


def outside_cpu(root: int) -> dict[tuple[int, int], float]:
    """CPU seconds so far of every user-space process that is not ``root`` or below it.

    Keys are (pid, start time), so a reused PID is a new process; values are utime +
    stime + cutime + cstime (children a process reaped are in its own numbers). Kernel
    threads are left out. The difference of two samples (``outside_delta``) is the CPU
    other work used in between.

    Why not ``/proc/stat`` minus the benchmark's processes: with tick-based accounting
    (CONFIG_TICK_CPU_ACCOUNTING, no IRQ_TIME_ACCOUNTING) a tick that lands in softirq is
    booked as ``softirq`` in /proc/stat but as ``stime`` of the interrupted task, so on
    loopback, where every send runs the receiver's input path in softirq, the benchmark's
    own processes show more system time than /proc/stat does and the difference hides
    other processes' work.
    """
    stats: dict[int, list[str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stats[int(name)] = _stat_fields(int(name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    kids: dict[int, list[int]] = {}
    for pid, f in stats.items():
        kids.setdefault(int(f[1]), []).append(pid)
    ours = {root}
    todo = [root]
    while todo:
        for child in kids.get(todo.pop(), ()):
            ours.add(child)
            todo.append(child)
    out: dict[tuple[int, int], float] = {}
    for pid, f in stats.items():
        if pid in ours or int(f[6]) & PF_KTHREAD:
            continue
        # stat(5): 14-17 utime stime cutime cstime, 22 starttime -> indexes 11..14, 19
        out[(pid, int(f[19]))] = sum(int(x) for x in f[11:15]) / CLK_TCK
    return out


def outside_delta(before: dict[tuple[int, int], float],
                  after: dict[tuple[int, int], float]) -> float:
    """CPU seconds used between two ``outside_cpu`` samples.

    A process that started in between counts whole. One that exited in between reaches
    the total through the parent that reaped it (cutime/cstime grow by the child's whole
    life), so what it had used before the first sample is taken off again. Children
    reaped by nobody (SIGCHLD ignored) are not in any parent's numbers: they are missed.
    """
    grown = sum(v - before.get(k, 0.0) for k, v in after.items())
    gone = sum(v for k, v in before.items() if k not in after)
    return max(0.0, grown - gone)
