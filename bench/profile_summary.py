#!/usr/bin/env python3
"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) of a proxy under load.

py-spy writes one line per distinct stack: ``frame;frame;...;leaf COUNT``, each frame
``function (file:line)``. This prints the share of samples per function where it was the
leaf (self time: the interpreter was executing that function's own code, or a C call
made from it, e.g. a socket send), per function anywhere on the stack (inclusive time),
and per source file (self time), so the hot spots of the proxy are visible at a glance.

  py-spy record -o /tmp/p1.txt --format raw -d 5 -r 200 --nonblocking -p PID
  python bench/profile_summary.py /tmp/p1.txt --top 25
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def _short(path: str) -> str:
    """``.../site-packages/h2/connection.py`` -> ``h2/connection.py``; the repo's files
    from ``mosn_py/`` on."""
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" and "/" in tail else tail
    i = path.find("mosn_py/")
    return path[i:] if i >= 0 else os.path.basename(path)


def _name(frame: str, with_line: bool) -> tuple[str, str]:
    """(``function (file[:line])``, file) of one py-spy frame."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), "?"
    f = _short(m["file"])
    line = f":{m['line']}" if with_line and m["line"] else ""
    return f"{m['func']} ({f}{line})", f


def summarise(lines: list[str], *, with_line: bool = False) -> tuple[
        int, collections.Counter[str], collections.Counter[str], collections.Counter[str]]:
    """Total samples and Counters of self samples per function, inclusive samples per
    function, and self samples per file."""
    total = 0
    self_fn: collections.Counter[str] = collections.Counter()
    incl_fn: collections.Counter[str] = collections.Counter()
    self_file: collections.Counter[str] = collections.Counter()
    for raw in lines:
        raw = raw.rstrip("\n")
        if not raw or " " not in raw:
            continue
        stack, _, count_s = raw.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        names = [_name(f, with_line) for f in frames]
        leaf, leaf_file = names[-1]
        self_fn[leaf] += count
        self_file[leaf_file] += count
        for n in {n for n, _ in names}:
            incl_fn[n] += count
    return total, self_fn, incl_fn, self_file


def render(total: int, counters: list[tuple[str, collections.Counter[str]]], top: int) -> str:
    out = [f"{total} samples"]
    for title, c in counters:
        out += ["", f"{title}:", "| % | samples | where |", "|---:|---:|---|"]
        for name, n in c.most_common(top):
            out.append(f"| {100 * n / total:.1f} | {n} | `{name}` |" if total else "")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("profile", help="py-spy record --format raw output")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--lines", action="store_true", help="keep line numbers in function names")
    a = p.parse_args(argv)
    with open(a.profile) as f:
        total, self_fn, incl_fn, self_file = summarise(f.readlines(), with_line=a.lines)
    print(render(total, [("self time by function", self_fn),
                         ("inclusive time by function", incl_fn),
                         ("self time by file", self_file)], a.top))
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
