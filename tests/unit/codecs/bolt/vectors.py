"""Golden Bolt vectors and the shared feed harness (STYLE 2.7, h11 ``tr()``).

Bytes come from real captures between third-party SOFARPC implementations
(``shared/fixtures/bolt/<name>.{request,response}.hex``); the expected field values come from
``index.json``, written by the capture tooling. Nothing here is produced by our encoder.

``build_frame`` is a deliberately naive, independent packer (straight from the bolt.md tables)
for the error and size cases that no capture covers; it is never used as a golden.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Frame, Role, StreamType
from mosn_py.codecs.bolt import BoltCodec, BoltExtra

REPO_ROOT = Path(__file__).resolve().parents[4]


def shared_dir() -> Path:
    """``$MOSN_PY_SHARED``, else ``<repo>/../shared``."""
    env = os.environ.get("MOSN_PY_SHARED")
    return Path(env) if env else REPO_ROOT / ".." / "shared"


FIXTURE_DIR = shared_dir() / "fixtures" / "bolt"
if not (FIXTURE_DIR / "index.json").is_file():
    raise RuntimeError(
        f"Bolt fixtures not found at {FIXTURE_DIR}; set MOSN_PY_SHARED to the shared directory"
    )

_STREAM_TYPE = {0: StreamType.RESPONSE, 1: StreamType.REQUEST, 2: StreamType.ONEWAY}


@dataclass(frozen=True)
class Vector:
    """One captured frame and what the capture tooling decoded from it."""

    capture: str  # e.g. "anthunder_aio__hello"
    kind: str  # "request" | "response"
    wire: bytes  # the .hex file
    fields: dict[str, Any]  # index.json[capture][kind]

    @property
    def name(self) -> str:
        return f"{self.capture}.{self.kind}"

    @property
    def is_request(self) -> bool:
        return self.kind == "request"

    @property
    def receiver(self) -> Role:
        """The role that decodes this frame."""
        return Role.SERVER if self.is_request else Role.CLIENT

    @property
    def sender(self) -> Role:
        """The role that encodes this frame."""
        return Role.CLIENT if self.is_request else Role.SERVER

    # expected values, all from index.json
    @property
    def stream_type(self) -> StreamType:
        return _STREAM_TYPE[self.fields["type"]]

    @property
    def request_id(self) -> int:
        return int(self.fields["request_id"])

    @property
    def header_pairs(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.fields["header"]]

    @property
    def headers(self) -> dict[str, str]:
        return {k: v for k, v in self.header_pairs if v is not None}

    @property
    def content(self) -> bytes:
        return bytes.fromhex(self.fields["content_hex"])

    @property
    def status(self) -> int:
        return int(self.fields.get("resp_status", 0))

    @property
    def timeout(self) -> int:
        return int(self.fields.get("timeout", 0))

    @property
    def is_heartbeat(self) -> bool:
        return self.fields["cmdcode"] == 0

    @property
    def has_crc(self) -> bool:
        return "crc32" in self.fields

    @property
    def id_offset(self) -> int:
        return 5 if self.fields["proto"] == 1 else 6

    @cached_property
    def extra(self) -> BoltExtra:
        f = self.fields
        return BoltExtra(
            proto=f["proto"],
            ver1=f.get("ver1", 1),
            type=f["type"],
            cmdcode=f["cmdcode"],
            ver2=f["ver2"],
            codec=f["codec"],
            switch=f.get("switch", 0),
            class_name=f["class_name"].encode("ascii"),
        )

    def frame_from_index(self) -> Frame:
        """A ``Frame`` built from index.json alone (``raw`` None), headers in captured order."""
        return Frame(
            stream_type=self.stream_type,
            request_id=self.request_id,
            headers=dict(self.header_pairs),
            body=self.content,
            status=self.status,
            timeout_ms=self.timeout,
            is_heartbeat=self.is_heartbeat,
            protocol="bolt",
            extra=self.extra,
        )


def load_vectors() -> list[Vector]:
    index = json.loads((FIXTURE_DIR / "index.json").read_text())
    out: list[Vector] = []
    for capture in sorted(index):
        for kind in ("request", "response"):
            wire = bytes.fromhex((FIXTURE_DIR / f"{capture}.{kind}.hex").read_text().strip())
            out.append(Vector(capture, kind, wire, index[capture][kind]))
    return out


VECTORS = load_vectors()
REQUESTS = [v for v in VECTORS if v.is_request]
RESPONSES = [v for v in VECTORS if not v.is_request]
CAPTURES = sorted({v.capture for v in VECTORS})


def vector(capture: str, kind: str) -> Vector:
    for v in VECTORS:
        if v.capture == capture and v.kind == kind:
            return v
    raise KeyError(f"{capture}.{kind}")


def assert_frame_matches(frame: Any, v: Vector) -> None:
    """Every decoded field equals the capture tooling's value."""
    assert isinstance(frame, Frame), frame
    assert frame.protocol == "bolt"
    assert frame.stream_type is v.stream_type
    assert frame.request_id == v.request_id
    assert dict(frame.headers) == v.headers
    assert list(frame.headers) == [k for k, val in v.header_pairs if val is not None]
    assert bytes(frame.body) == v.content
    assert frame.status == v.status
    assert frame.timeout_ms == v.timeout
    assert frame.is_heartbeat is v.is_heartbeat
    assert frame.end_stream is True
    assert frame.extra == v.extra
    assert type(frame.raw) is bytes and frame.raw == v.wire


# --- the feed harness ------------------------------------------------------------------------


def drain(codec: BoltCodec) -> list[Any]:
    """Pull events until NEED_DATA or CLOSED (included)."""
    out: list[Any] = []
    while True:
        ev = codec.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)
        if ev is ConnectionEvent.CLOSED:
            return out


def feed(role: Role, chunks: Iterable[bytes], *, eof: bool = False) -> list[Any]:
    """Feed ``chunks`` one at a time, pulling after each; events in order."""
    codec = BoltCodec(role)
    events: list[Any] = []
    for chunk in chunks:
        codec.receive_data(chunk)
        events += drain(codec)
    if eof:
        codec.receive_data(b"")
        events += drain(codec)
    return events


def splits(data: bytes) -> Iterator[list[bytes]]:
    """``data`` whole, then cut in two at every offset."""
    yield [data]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# --- an independent, naive frame packer (bolt.md §1, §2, §7) --------------------------------


def build_frame(
    *,
    proto: int = 1,
    ver1: int = 1,
    type: int = 1,
    cmdcode: int = 1,
    ver2: int = 1,
    request_id: int = 1,
    codec: int = 11,
    switch: int = 0,
    timeout: int = 0,
    status: int = 0,
    class_name: bytes = b"",
    header: bytes = b"",
    content: bytes = b"",
    class_len: int | None = None,
    header_len: int | None = None,
    content_len: int | None = None,
    crc: bool | int | None = None,
) -> bytes:
    """Pack a frame field by field. Lengths default to the real ones; ``crc`` True appends a
    correct CRC32, an int appends that value, None appends one when proto 2, ver1 2 and
    switch bit 0."""
    out = bytearray([proto])
    if proto == 2:
        out.append(ver1)
    out += bytes([type]) + struct.pack(">H", cmdcode) + bytes([ver2])
    out += struct.pack(">I", request_id) + bytes([codec])
    if proto == 2:
        out.append(switch)
    if type == 0:
        out += struct.pack(">H", status)
    else:
        out += struct.pack(">i", timeout)
    out += struct.pack(
        ">HHi",
        len(class_name) if class_len is None else class_len,
        len(header) if header_len is None else header_len,
        len(content) if content_len is None else content_len,
    )
    out += class_name + header + content
    if crc is None:
        crc = proto == 2 and ver1 == 2 and bool(switch & 1)
    if crc is True:
        out += struct.pack(">I", zlib.crc32(out))
    elif crc is not False:
        out += struct.pack(">I", crc)
    return bytes(out)


def pack_header_map(pairs: Iterable[tuple[bytes | None, bytes | None]]) -> bytes:
    """SimpleMapSerializer block; ``None`` is written as length -1 (sofa-bolt-node)."""
    out = bytearray()
    for key, value in pairs:
        for item in (key, value):
            if item is None:
                out += struct.pack(">i", -1)
            else:
                out += struct.pack(">i", len(item)) + item
    return bytes(out)
