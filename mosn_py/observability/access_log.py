"""Access logs: one line per TCP connection or per L7 request.

Lines are JSON objects. ``path: "-"`` writes them through the ``mosn_py.access`` logger
(so they share the process's log stream); any other path is a file opened in append mode
and line-buffered.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TextIO

from mosn_py.config.model import AccessLogConfig

_access_logger = logging.getLogger("mosn_py.access")


class AccessLog:
    __slots__ = ("_file",)

    def __init__(self, config: AccessLogConfig) -> None:
        self._file: TextIO | None = None
        if config.path != "-":
            self._file = open(config.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def write(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        else:
            _access_logger.info("access", extra={"fields": entry})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
