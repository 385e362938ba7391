"""Wire tables and the sans-IO rule for the Bolt package."""

from __future__ import annotations

import ast
import zlib
from pathlib import Path

import mosn_py.codecs.bolt as bolt
from mosn_py.codecs.base import Codec, HeartbeatCapable, PoolMode, Role
from mosn_py.codecs.bolt import (
    RESP_STATUS_BY_PROXY_STATUS,
    BoltCodec,
    BoltExtra,
    RespStatus,
    crc_present,
    resp_status_for,
)
from mosn_py.codecs.bolt.wire import LAYOUTS, frame_crc
from mosn_py.errors import ProxyStatus

BANNED = {"asyncio", "uvloop", "socket", "selectors", "ssl", "threading"}


def test_sans_io_imports() -> None:
    """codecs/ never imports the event loop or the socket layer (STYLE 2.1)."""
    pkg = Path(bolt.__file__).parent
    for path in sorted(pkg.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in BANNED, f"{path.name} imports {name}"


def test_codec_satisfies_the_protocols() -> None:
    codec = BoltCodec(Role.SERVER)
    assert isinstance(codec, Codec) and isinstance(codec, HeartbeatCapable)
    assert BoltCodec.protocol == "bolt" and BoltCodec.pool_mode is PoolMode.MULTIPLEX
    assert not hasattr(codec, "__dict__")


def test_resp_status_values() -> None:
    """bolt.md §5.5: 0x10..0x12 are hex."""
    assert [int(s) for s in RespStatus] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 18]


def test_mapping_table() -> None:
    assert set(RESP_STATUS_BY_PROXY_STATUS) == set(ProxyStatus)
    for status in ProxyStatus:
        assert resp_status_for(status) is RESP_STATUS_BY_PROXY_STATUS[status]


def test_crc_rule() -> None:
    assert crc_present(2, 2, 1) and crc_present(2, 2, 0xFF)
    assert not crc_present(2, 2, 0) and not crc_present(2, 2, 2)
    assert not crc_present(2, 1, 1)  # Java: ver1 1 means no CRC whatever the switch
    assert not crc_present(1, 2, 1)
    assert BoltExtra(proto=2, ver1=2, switch=1).has_crc
    assert not BoltExtra(proto=2, ver1=1, switch=1).has_crc and not BoltExtra().has_crc
    assert frame_crc(b"abc") == zlib.crc32(b"abc")


def test_layout_sizes() -> None:
    """bolt.md §1, §2, §7: 22/20 bytes in v1, 24/22 in v2."""
    sizes = {key: lay.size for key, lay in LAYOUTS.items()}
    assert sizes == {
        (1, 1): 22,
        (1, 2): 22,
        (1, 0): 20,
        (2, 1): 24,
        (2, 2): 24,
        (2, 0): 22,
    }
