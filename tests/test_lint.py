"""The package type-checks (``mypy --strict``) and the tree lints clean (ruff), STYLE.md §2.8.

Both tools come with the ``test`` extra and their configuration lives in ``pyproject.toml``;
these tests are never skipped, so CI fails the moment either reports anything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def test_mypy_strict() -> None:
    result = _run("mypy", "--strict", "mosn_py")
    assert result.returncode == 0, _report(result)


def test_ruff() -> None:
    result = _run("ruff", "check", "mosn_py", "bench", "tests")
    assert result.returncode == 0, _report(result)
