"""Bytes to typed frames and back: the one gate between schema/message.fbs's wire format and Python,
and the internal NATS envelopes (Upstream, Downstream).

Frames are FlatBuffers, written and read directly instead of through the generated Python
(schema/wire/), for two reasons measured in schema/README.md:
- cost: the generated builders and accessors are 5-40 times slower (about 100 us to encode a
  PushMessage, 44 us to read one, against 2 and 9 us here: precomputed layouts, and for most frame
  types one struct.pack of the constant prefix, the table and the first string's length);
- safety: the generated readers trust the bytes (a string running past the end is silently cut short;
  other damage raises TypeError, IndexError or struct.error). No offset or length is trusted here, so
  nothing a client sends raises anything but FrameError.
schema/tests hold this module to flatc's code both ways: the generated readers read what this writes,
this reads what the generated builders write, field by field, for every table.

The envelopes never reach a browser: they are msgspec MessagePack (schema/envelopes.py), which is
8-60 times faster than the FlatBuffers they were, and their decoders refuse anything but a
well-typed envelope with FrameError(MALFORMED) just the same.

Modules behind it: frames (typed frames and envelopes, codes, FrameError), layouts (each table's field
types in slot order), encoder, decoder, envelopes, framing (length prefixes for streams). Import from
here only.
"""

from __future__ import annotations

from schema.decoder import Buffer, decode_client_frame, decode_frame, frame_type, read_send_message
from schema.encoder import encode_frame
from schema.envelopes import MAX_ENVELOPE_BYTES, decode_downstream, decode_upstream, encode_downstream, encode_upstream
from schema.frames import (
    FIRST_SERVER_FRAME_TYPE,
    AnyFrame,
    Auth,
    AuthResult,
    ClientFrame,
    Cursor,
    Delivery,
    Downstream,
    ErrorCode,
    ErrorFrame,
    FrameError,
    FrameType,
    Kicked,
    Message,
    MessageAck,
    MessageKind,
    Ping,
    Pong,
    PresenceUpdate,
    PushAck,
    PushMessage,
    ReadReceipt,
    ReadUpdate,
    Resync,
    SendError,
    SendErrorCode,
    SendMessage,
    ServerFrame,
    Sync,
    SyncResult,
    SystemNotification,
    Typing,
    TypingUpdate,
    Upstream,
)
from schema.framing import FrameReader, frame_with_length

__all__ = [
    "FIRST_SERVER_FRAME_TYPE",
    "MAX_ENVELOPE_BYTES",
    "AnyFrame",
    "Auth",
    "AuthResult",
    "Buffer",
    "ClientFrame",
    "Cursor",
    "Delivery",
    "Downstream",
    "ErrorCode",
    "ErrorFrame",
    "FrameError",
    "FrameReader",
    "FrameType",
    "Kicked",
    "Message",
    "MessageAck",
    "MessageKind",
    "Ping",
    "Pong",
    "PresenceUpdate",
    "PushAck",
    "PushMessage",
    "ReadReceipt",
    "ReadUpdate",
    "Resync",
    "SendError",
    "SendErrorCode",
    "SendMessage",
    "ServerFrame",
    "Sync",
    "SyncResult",
    "SystemNotification",
    "Typing",
    "TypingUpdate",
    "Upstream",
    "decode_client_frame",
    "decode_downstream",
    "decode_frame",
    "decode_upstream",
    "encode_downstream",
    "encode_frame",
    "encode_upstream",
    "frame_type",
    "frame_with_length",
    "read_send_message",
]
