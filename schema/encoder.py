"""Typed frames to bytes, laid out as schema.layouts says. Internal to schema/: import encode_frame
from schema.codec.

Every frame of one type starts with the same bytes (root offset, Frame table, the body's vtable), and
every table is laid out the same way, so most frame types are written by one struct.pack of those
bytes, the vtable offset, the scalars and the offsets, followed by at most two strings: tables without
offsets, tables whose offsets are one or two strings (MessageAck, SendError, SendMessage, ErrorFrame,
Kicked, ...), and PushMessage (the same for its Message). The rest (Auth, Sync, SyncResult) go through
_Writer, which writes any table; both produce the same bytes (schema/tests check it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

from msgspec import Struct
from msgspec.structs import astuple

from schema.frames import AnyFrame, FrameType
from schema.layouts import CURSOR_VECTOR, FRAME, FRAME_LAYOUTS, STRING, TABLE, TABLE_VECTOR, Layout

_UOFFSET = struct.Struct("<I")
_PADDING = tuple(bytes(n) for n in range(8))


class _Writer:
    """Builds one buffer front to back: the root offset, then each table followed by what it points
    to (so every offset points forward), one vtable per table type."""

    __slots__ = ("buffer", "vtables")

    def __init__(self, prefix: bytes = bytes(4), vtables: dict[Layout, int] | None = None) -> None:
        self.buffer = bytearray(prefix)
        self.vtables = {} if vtables is None else dict(vtables)

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
            if kind == STRING:
                data = value.encode()
                buffer += _PADDING[-len(buffer) & 3]
                target = len(buffer)
                buffer += _UOFFSET.pack(len(data))
                buffer += data
                buffer.append(0)
            elif kind == TABLE:
                assert sub is not None  # set for every table and table vector field
                target = self.table(sub, astuple(value))
            elif kind == TABLE_VECTOR:
                assert sub is not None
                target = self.table_vector(sub, value)
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


def _out_of_range(what: str, exc: struct.error) -> ValueError:
    return ValueError(f"cannot encode {what}: a number is out of range for its field ({exc})")


_Encoder = Callable[[Any], bytes]


def _by_writer(cls: type[Struct], tag: FrameType, layout: Layout) -> _Encoder:
    """Any frame type, table by table."""
    prefix, vtables = _frame_prefix(tag, layout)
    what = cls.__name__

    def encode(frame: Any) -> bytes:
        writer = _Writer(prefix, vtables)
        try:
            writer.table(layout, astuple(frame))
        except struct.error as exc:
            raise _out_of_range(what, exc) from None
        return bytes(writer.buffer)

    return encode


# After a string: its terminating zero, the padding to 4 (by its length & 3), the next string's length.
_AFTER_STRING = tuple(struct.Struct(f"<{1 + (-(size + 1) & 3)}xI").pack for size in range(4))
_GAP = tuple(1 + (-(size + 1) & 3) for size in range(4))


def _packed(
    what: str, prefix: bytes, vtable_offset: int, layout: Layout, values_of: Callable[[Any], Sequence[Any]]
) -> _Encoder | None:
    """One struct.pack of the constant prefix, the table at its end and the first string's length, then
    the table's strings (at most two, right after the table in slot order, as _Writer puts them); None
    for a table with other offsets."""
    if any(kind != STRING for _, kind, _, _ in layout.children) or len(layout.children) > 2:
        return None
    scalars = layout.scalars
    head_format = f"<{len(prefix)}s{layout.head_format}{len(layout.children)}I"
    if not layout.children:
        head = struct.Struct(head_format).pack

        def encode_fixed(frame: Any) -> bytes:
            try:
                return head(prefix, vtable_offset, *scalars(values_of(frame)))
            except struct.error as exc:
                raise _out_of_range(what, exc) from None

        return encode_fixed

    head = struct.Struct(f"{head_format}I").pack
    (slot, _, _, at), *rest = layout.children
    to_string = layout.size - at  # the first string lies right after the table (a multiple of 4 long)
    if not rest:

        def encode_one_string(frame: Any) -> bytes:
            values = values_of(frame)
            data: bytes = values[slot].encode()
            try:
                return head(prefix, vtable_offset, *scalars(values), to_string, len(data)) + data + b"\0"
            except struct.error as exc:
                raise _out_of_range(what, exc) from None

        return encode_one_string

    ((next_slot, _, _, next_at),) = rest
    to_next = layout.size + 4 - next_at  # plus the first string's length and what follows it

    def encode_two_strings(frame: Any) -> bytes:
        values = values_of(frame)
        data = values[slot].encode()
        next_data = values[next_slot].encode()
        size = len(data)
        try:
            table = head(prefix, vtable_offset, *scalars(values), to_string, to_next + size + _GAP[size & 3], size)
            return b"".join((table, data, _AFTER_STRING[size & 3](len(next_data)), next_data, b"\0"))
        except struct.error as exc:
            raise _out_of_range(what, exc) from None

    return encode_two_strings


def _encoder(cls: type[Struct], tag: FrameType, layout: Layout) -> _Encoder:
    """The fastest encoder of _packed, or _by_writer's where _packed writes no such table."""
    prefix, vtables = _frame_prefix(tag, layout)
    fast = _packed(cls.__name__, prefix, len(prefix) - vtables[layout], layout, astuple)
    if fast is not None:
        return fast
    if layout.field_count == 1 and layout.children:
        ((slot, kind, sub, at),) = layout.children
        if kind == TABLE and sub is not None:  # a table holding one table (PushMessage): the same for that
            writer = _Writer(prefix, vtables)
            writer.buffer += layout.pack(len(prefix) - vtables[layout])
            child = writer.start(sub)
            layout.pack_offsets_into(writer.buffer, len(prefix) + layout.offsets_at, child - len(prefix) - at)
            get_child = attrgetter(cls.__struct_fields__[slot])
            fast = _packed(
                cls.__name__, bytes(writer.buffer), child - writer.vtables[sub], sub, lambda f: astuple(get_child(f))
            )
            if fast is not None:
                return fast
    return _by_writer(cls, tag, layout)


_ENCODERS: dict[type[Struct], _Encoder] = {
    cls: _encoder(cls, tag, layout) for cls, (tag, layout) in FRAME_LAYOUTS.items()
}
_BY_WRITER: dict[type[Struct], _Encoder] = {
    cls: _by_writer(cls, tag, layout) for cls, (tag, layout) in FRAME_LAYOUTS.items()
}
"""Every frame type through _Writer: the reference the tests hold _ENCODERS to."""


def encode_frame(frame: AnyFrame) -> bytes:
    """The bytes of one Frame. Raises ValueError for a number out of its field's range."""
    return _ENCODERS[type(frame)](frame)
