"""codecs/ and translate/ stay sans-IO: they never import asyncio, uvloop, socket or
selectors (DESIGN.md §1), so every byte-level behaviour is testable without a network."""

from __future__ import annotations

import ast
from pathlib import Path

import mosn_py

BANNED = {"asyncio", "uvloop", "socket", "selectors", "ssl"}
ROOT = Path(mosn_py.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
            if node.module.startswith("mosn_py."):
                out.add(node.module)
    return out


def test_codecs_and_translators_are_sans_io() -> None:
    files = [*ROOT.joinpath("codecs").rglob("*.py"), *ROOT.joinpath("translate").rglob("*.py")]
    assert files
    offenders = {}
    for f in files:
        mods = imported_modules(f)
        bad = (mods & BANNED) | {m for m in mods if m.startswith(("mosn_py.server",
                                                                   "mosn_py.filters",
                                                                   "mosn_py.upstream"))}
        if bad:
            offenders[str(f.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}
