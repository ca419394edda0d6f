"""Typed frames and envelopes to bytes, laid out as schema.layouts says. Internal to schema/: import
encode_frame, encode_upstream and encode_downstream from schema.codec."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import chain
from typing import Any

from msgspec import Struct
from msgspec.structs import astuple

from schema.frames import AnyFrame, Downstream, FrameType, Upstream
from schema.layouts import (
    BYTES,
    CURSOR_VECTOR,
    DOWNSTREAM,
    FRAME,
    FRAME_LAYOUTS,
    STRING,
    TABLE,
    TABLE_VECTOR,
    U64_VECTOR,
    UPSTREAM,
    Layout,
)

_UOFFSET = struct.Struct("<I")
_PADDING = tuple(bytes(n) for n in range(8))


class _Writer:
    """Builds one buffer front to back: the root offset, then each table followed by what it points
    to (so every offset points forward), one vtable per table type."""

    __slots__ = ("buffer", "vtables")

    def __init__(self, prefix: bytes = bytes(4), vtables: dict[Layout, int] | None = None) -> None:
        self.buffer = bytearray(prefix)
        self.vtables = {} if vtables is None else dict(vtables)

    def finish(self, root: int) -> bytes:
        _UOFFSET.pack_into(self.buffer, 0, root)
        return bytes(self.buffer)

    def start(self, layout: Layout) -> int:
        """Writes the table's vtable unless one is written already, and aligns; where the table goes."""
        buffer = self.buffer
        vtable = self.vtables.get(layout)
        if vtable is None:
            buffer += _PADDING[len(buffer) & 1]
            vtable = self.vtables[layout] = len(buffer)
            buffer += layout.vtable
        buffer += _PADDING[(layout.align_remainder - len(buffer)) & layout.align_mask]
        return len(buffer)

    def table(self, layout: Layout, values: Sequence[Any]) -> int:
        position = self.start(layout)
        buffer = self.buffer
        buffer += layout.pack(position - self.vtables[layout], *layout.scalars(values))
        if not layout.children:
            return position
        offsets = []
        for slot, kind, sub, at in layout.children:
            value = values[slot]
            if kind in (STRING, BYTES):
                data = value.encode() if kind == STRING else value
                buffer += _PADDING[-len(buffer) & 3]
                target = len(buffer)
                buffer += _UOFFSET.pack(len(data))
                buffer += data
                if kind == STRING:
                    buffer.append(0)
            elif kind == TABLE:
                assert sub is not None  # set for every table and table vector field
                target = self.table(sub, astuple(value))
            elif kind == TABLE_VECTOR:
                assert sub is not None
                target = self.table_vector(sub, value)
            elif kind == U64_VECTOR:
                target = self.u64_vector(value)
            elif kind == CURSOR_VECTOR:
                target = self.u64_vector(tuple(chain.from_iterable(astuple(cursor) for cursor in value)), 2)
            else:  # the Frame union is written by _frame_prefix
                raise TypeError(f"no writer for field kind {kind}")
            offsets.append(target - position - at)
        layout.pack_offsets_into(buffer, position + layout.offsets_at, *offsets)
        return position

    def u64_vector(self, values: Sequence[int], per_element: int = 1) -> int:
        buffer = self.buffer
        buffer += _PADDING[(4 - len(buffer)) & 7]  # the elements after the length come 8-aligned
        position = len(buffer)
        buffer += struct.pack(f"<I{len(values)}Q", len(values) // per_element, *values)
        return position

    def table_vector(self, layout: Layout, items: Sequence[Struct]) -> int:
        buffer = self.buffer
        buffer += _PADDING[-len(buffer) & 3]
        position = len(buffer)
        buffer += _UOFFSET.pack(len(items))
        buffer += bytes(4 * len(items))
        for index, item in enumerate(items):
            element = position + 4 + 4 * index
            _UOFFSET.pack_into(buffer, element, self.table(layout, astuple(item)) - element)
        return position


def _frame_prefix(tag: FrameType, layout: Layout) -> tuple[bytes, dict[Layout, int]]:
    """What every frame of one type starts with: the root offset, the Frame table (tag and offset to
    the body) and the body's vtable, up to where the body table goes; and the vtables written."""
    writer = _Writer()
    frame = writer.start(FRAME)
    writer.buffer += FRAME.pack(frame - writer.vtables[FRAME], tag)
    body = writer.start(layout)
    FRAME.pack_offsets_into(writer.buffer, frame + FRAME.offsets_at, body - frame - FRAME.offsets_at)
    _UOFFSET.pack_into(writer.buffer, 0, frame)
    return bytes(writer.buffer), writer.vtables


_FRAME_PREFIXES = {cls: (layout, *_frame_prefix(tag, layout)) for cls, (tag, layout) in FRAME_LAYOUTS.items()}


def _write(writer: _Writer, layout: Layout, values: Sequence[Any], what: str) -> int:
    try:
        return writer.table(layout, values)
    except struct.error as exc:
        raise ValueError(f"cannot encode {what}: a number is out of range for its field ({exc})") from exc


def encode_frame(frame: AnyFrame) -> bytes:
    """The bytes of one Frame. Raises ValueError for a number out of its field's range."""
    layout, prefix, vtables = _FRAME_PREFIXES[type(frame)]
    writer = _Writer(prefix, vtables)
    _write(writer, layout, astuple(frame), type(frame).__name__)
    return bytes(writer.buffer)


def encode_upstream(upstream: Upstream) -> bytes:
    writer = _Writer()
    return writer.finish(_write(writer, UPSTREAM, astuple(upstream), "Upstream"))


def encode_downstream(downstream: Downstream) -> bytes:
    writer = _Writer()
    return writer.finish(_write(writer, DOWNSTREAM, astuple(downstream), "Downstream"))
