"""How each table of schema/message.fbs is laid out: its field types in slot order, the vtable the
encoder writes, and how many fields the decoder looks up. Internal to schema/ (use schema.codec)."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from msgspec import Struct

from schema.frames import (
    Auth,
    AuthResult,
    ErrorFrame,
    FrameType,
    Kicked,
    MessageAck,
    Ping,
    Pong,
    PresenceUpdate,
    PushAck,
    PushMessage,
    ReadReceipt,
    ReadUpdate,
    Resync,
    SendError,
    SendMessage,
    Sync,
    SyncResult,
    SystemNotification,
    Typing,
    TypingUpdate,
)

BOOL, U8, U16, U32, U64, I64 = range(6)  # scalars, stored inline
STRING, CURSOR_VECTOR, TABLE, TABLE_VECTOR, UNION = range(6, 11)  # offsets
SCALAR_FORMATS = {BOOL: "?", U8: "B", U16: "H", U32: "I", U64: "Q", I64: "q"}
SCALAR_SIZES = {BOOL: 1, U8: 1, U16: 2, U32: 4, U64: 8, I64: 8}
OFFSET_SIZE = 4
CURSOR_SIZE = 16  # struct Cursor: two uint64


class Layout:
    """One table type: how the writer lays it out, and how many fields the reader looks up.

    Inline, after the offset to the vtable: 8-byte scalars, then 4, 2 and 1-byte ones, then the
    offsets to strings, vectors and tables (4-aligned). Tables holding 8-byte scalars start 4 bytes
    past a multiple of 8, so that every scalar is aligned.
    """

    __slots__ = (
        "align_mask",
        "align_remainder",
        "children",
        "field_count",
        "head_format",
        "offsets_at",
        "pack",
        "pack_offsets_into",
        "scalars",
        "size",
        "vtable",
    )

    def __init__(self, *fields: int | tuple[int, Layout]) -> None:
        kinds = [field[0] if isinstance(field, tuple) else field for field in fields]
        subs = [field[1] if isinstance(field, tuple) else None for field in fields]
        scalar_slots = sorted(
            (slot for slot, kind in enumerate(kinds) if kind in SCALAR_FORMATS),
            key=lambda slot: -SCALAR_SIZES[kinds[slot]],  # stable: largest first
        )
        child_slots = [slot for slot, kind in enumerate(kinds) if kind not in SCALAR_FORMATS]
        at = [0] * len(kinds)
        size = 4  # the signed offset to the vtable
        for slot in scalar_slots:
            at[slot] = size
            size += SCALAR_SIZES[kinds[slot]]
        padding = -size & 3 if child_slots else 0
        self.offsets_at = size + padding
        for index, slot in enumerate(child_slots):
            at[slot] = self.offsets_at + 4 * index
        size = self.offsets_at + 4 * len(child_slots)

        self.size = size
        """Bytes of the table itself (a multiple of 4 when it has offsets)."""
        self.field_count = len(kinds)
        self.align_mask, self.align_remainder = (7, 4) if any(SCALAR_SIZES.get(k) == 8 for k in kinds) else (3, 0)
        self.vtable = struct.pack(f"<{2 + len(kinds)}H", 4 + 2 * len(kinds), size, *at)
        # The offsets are written as zeros, then set once the children they point to are written.
        inline = "".join(SCALAR_FORMATS[kinds[slot]] for slot in scalar_slots)
        self.head_format = f"i{inline}{padding}x"
        """struct format (no byte order) of the table up to its offsets: the vtable offset and the scalars."""
        self.pack = struct.Struct(f"<{self.head_format}{4 * len(child_slots)}x").pack
        self.pack_offsets_into = struct.Struct(f"<{len(child_slots)}I").pack_into
        self.scalars: Callable[[Sequence[Any]], Sequence[Any]]
        if len(scalar_slots) > 1:
            self.scalars = itemgetter(*scalar_slots)
        else:
            self.scalars = lambda values: [values[slot] for slot in scalar_slots]
        self.children = tuple((slot, kinds[slot], subs[slot], at[slot]) for slot in child_slots)


def table(layout: Layout) -> tuple[int, Layout]:
    return (TABLE, layout)


def tables(layout: Layout) -> tuple[int, Layout]:
    return (TABLE_VECTOR, layout)


MESSAGE = Layout(U64, U64, U64, U64, STRING, U8, STRING, U64, I64, I64, BOOL)
AUTH = Layout(STRING, STRING, STRING)
PING = Layout()
SEND_MESSAGE = Layout(STRING, U64, U8, STRING, U64)
PUSH_ACK = Layout(U64, U64)
SYNC = Layout(CURSOR_VECTOR)
READ_RECEIPT = Layout(U64, U64)
TYPING = Layout(U64)
AUTH_RESULT = Layout(U64, U64, U32)
PONG = Layout()
MESSAGE_ACK = Layout(STRING, U64, U64, U64, I64)
SEND_ERROR = Layout(STRING, U16, STRING)
PUSH_MESSAGE = Layout(table(MESSAGE))
SYNC_RESULT = Layout(U64, tables(MESSAGE), BOOL)
READ_UPDATE = Layout(U64, U64, U64)
TYPING_UPDATE = Layout(U64, U64)
PRESENCE_UPDATE = Layout(U64, BOOL)
SYSTEM_NOTIFICATION = Layout(STRING)
KICKED = Layout(STRING)
ERROR_FRAME = Layout(U16, STRING)
RESYNC = Layout()
FRAME = Layout(U8, UNION)

FRAME_LAYOUTS: dict[type[Struct], tuple[FrameType, Layout]] = {
    Auth: (FrameType.AUTH, AUTH),
    Ping: (FrameType.PING, PING),
    SendMessage: (FrameType.SEND_MESSAGE, SEND_MESSAGE),
    PushAck: (FrameType.PUSH_ACK, PUSH_ACK),
    Sync: (FrameType.SYNC, SYNC),
    ReadReceipt: (FrameType.READ_RECEIPT, READ_RECEIPT),
    Typing: (FrameType.TYPING, TYPING),
    AuthResult: (FrameType.AUTH_RESULT, AUTH_RESULT),
    Pong: (FrameType.PONG, PONG),
    MessageAck: (FrameType.MESSAGE_ACK, MESSAGE_ACK),
    SendError: (FrameType.SEND_ERROR, SEND_ERROR),
    PushMessage: (FrameType.PUSH_MESSAGE, PUSH_MESSAGE),
    SyncResult: (FrameType.SYNC_RESULT, SYNC_RESULT),
    ReadUpdate: (FrameType.READ_UPDATE, READ_UPDATE),
    TypingUpdate: (FrameType.TYPING_UPDATE, TYPING_UPDATE),
    PresenceUpdate: (FrameType.PRESENCE_UPDATE, PRESENCE_UPDATE),
    SystemNotification: (FrameType.SYSTEM_NOTIFICATION, SYSTEM_NOTIFICATION),
    Kicked: (FrameType.KICKED, KICKED),
    ErrorFrame: (FrameType.ERROR_FRAME, ERROR_FRAME),
    Resync: (FrameType.RESYNC, RESYNC),
}
