"""Configuration: the typed model (``model``), value parsers (``values``), the YAML loader.

    from mosn_py.config import load_config
    config = load_config("mosn.yaml", known_filters=registries.stream_filters.names())

``DEFAULT_CONFIG_PATH`` is the bundled demo config that ``mosn-py run`` loads without ``-c``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mosn_py.config.loader import check_protocol_compatibility, load_config, parse_config
from mosn_py.config.model import Config

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Config",
    "check_protocol_compatibility",
    "load_config",
    "load_default_config",
    "parse_config",
]

# Shipped as package data (pyproject: mosn_py = ["defaults/*.yaml"]).
DEFAULT_CONFIG_PATH: Path = Path(__file__).resolve().parent.parent / "defaults" / "default.yaml"


def load_default_config(**kwargs: Any) -> Config:
    """``load_config(DEFAULT_CONFIG_PATH, **kwargs)``."""
    return load_config(DEFAULT_CONFIG_PATH, **kwargs)
