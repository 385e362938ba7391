"""Access logs: one line per TCP connection or per L7 request.

Lines are JSON objects, one per line. ``path: "-"`` writes them to standard output (the
process log goes to standard error, so the two never interleave and the access log does not
depend on the log level); any other path is a file opened in append mode, line-buffered.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from mosn_py.config.model import AccessLogConfig


class AccessLog:
    __slots__ = ("_file",)

    def __init__(self, config: AccessLogConfig) -> None:
        self._file: TextIO | None = None
        if config.path != "-":
            self._file = open(config.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def write(self, entry: dict[str, Any]) -> None:
        f = self._file if self._file is not None else sys.stdout
        f.write(json.dumps(entry, separators=(",", ":")) + "\n")
        if self._file is None:
            f.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
