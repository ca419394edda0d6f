"""Bytes to typed frames, trusting nothing in them. Internal to schema/: import decode_frame,
decode_client_frame, frame_type and read_send_message from schema.codec.

A read past the end raises struct.error or IndexError, turned into FrameError; what Python would not
refuse is checked here: a negative position (which reads from the end), a slice past the end (which
comes back short), a count of elements the buffer cannot hold, offsets shared to multiply memory.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeAlias

from schema import layouts
from schema.frames import (
    AnyFrame,
    Auth,
    AuthResult,
    ClientFrame,
    Cursor,
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
    SendMessage,
    Sync,
    SyncResult,
    SystemNotification,
    Typing,
    TypingUpdate,
)

Buffer: TypeAlias = bytes | bytearray | memoryview

_I32_AT = struct.Struct("<i").unpack_from
_U16_AT = struct.Struct("<H").unpack_from
_U32_AT = struct.Struct("<I").unpack_from
_U64_AT = struct.Struct("<Q").unpack_from
_I64_AT = struct.Struct("<q").unpack_from
_VTABLE_ENTRIES_AT = tuple(struct.Struct(f"<{count}H").unpack_from for count in range(16))
_ABSENT = tuple((0,) * count for count in range(16))
_MESSAGE_KINDS = tuple(MessageKind)
_FRAME_FIELDS = layouts.FRAME.field_count
_SEND_MESSAGE_FIELDS = layouts.SEND_MESSAGE.field_count
_SEND_MESSAGE_TAG = int(FrameType.SEND_MESSAGE)  # a plain int compares 6 times faster than the enum member
_PING_FRAME = Ping()
_PONG_FRAME = Pong()
_RESYNC_FRAME = Resync()


def _malformed(what: str) -> FrameError:
    return FrameError(ErrorCode.MALFORMED, f"malformed frame: {what}")


def _missing(table: str, field: str) -> FrameError:
    return FrameError(ErrorCode.MALFORMED, f"malformed frame: {table} needs {field}")


def _slots(buffer: bytes, position: int, count: int) -> tuple[int, ...]:
    """The vtable entries of the first `count` fields of the table at `position`: where each field lies
    from `position` (0: absent). Fields that an older writer did not know are absent; fields a newer
    writer added past `count` are ignored. Reads past the end raise struct.error or IndexError
    (converted by the callers): only a negative position, which Python would read from the end,
    needs a check of its own."""
    vtable = position - _I32_AT(buffer, position)[0]
    if vtable < 0:
        raise _malformed("a vtable lies outside the buffer")
    listed = (_U16_AT(buffer, vtable)[0] - 4) >> 1
    entries: tuple[int, ...]
    if listed >= count:
        entries = _VTABLE_ENTRIES_AT[count](buffer, vtable + 4)
        return entries
    if listed >= 0:
        entries = _VTABLE_ENTRIES_AT[listed](buffer, vtable + 4) + _ABSENT[count - listed]
        return entries
    raise _malformed("a vtable is shorter than its header")


def _fields(buffer: bytes, position: int, count: int) -> list[int]:
    """Where each of the first `count` fields of the table at `position` lies in the buffer (0: absent)."""
    return [position + offset if offset else 0 for offset in _slots(buffer, position, count)]


def _u64(buffer: bytes, at: int) -> int:
    if not at:
        return 0
    value: int = _U64_AT(buffer, at)[0]
    return value


def _i64(buffer: bytes, at: int) -> int:
    if not at:
        return 0
    value: int = _I64_AT(buffer, at)[0]
    return value


def _u32(buffer: bytes, at: int) -> int:
    if not at:
        return 0
    value: int = _U32_AT(buffer, at)[0]
    return value


def _u16(buffer: bytes, at: int) -> int:
    if not at:
        return 0
    value: int = _U16_AT(buffer, at)[0]
    return value


def _bool(buffer: bytes, at: int) -> bool:
    return bool(at and buffer[at])


def _kind(buffer: bytes, at: int) -> MessageKind:
    value = buffer[at] if at else 0
    if value >= len(_MESSAGE_KINDS):
        raise _malformed(f"unknown message kind {value}")
    return _MESSAGE_KINDS[value]


def _target(buffer: bytes, at: int) -> int:
    """The position the offset field at `at` points to."""
    target: int = at + _U32_AT(buffer, at)[0]
    return target


def _vector(buffer: bytes, at: int, element_size: int) -> tuple[int, int]:
    """(position of the first element, element count) of the vector the offset field at `at` points
    to, once all its elements lie inside the buffer."""
    first = at + 4 + _U32_AT(buffer, at)[0]
    count: int = _U32_AT(buffer, first - 4)[0]
    if first + count * element_size > len(buffer):
        raise _malformed("a vector runs past the end of the buffer")
    return first, count


def _string(buffer: bytes, at: int) -> str:
    if not at:
        return ""
    first = at + 4 + _U32_AT(buffer, at)[0]
    end = first + _U32_AT(buffer, first - 4)[0]
    if buffer[end]:  # IndexError past the end; strings end with a zero byte
        raise _malformed("a string lacks its terminating zero")
    return buffer[first:end].decode()


def _table_positions(buffer: bytes, at: int) -> list[int]:
    if not at:
        return []
    first, count = _vector(buffer, at, 4)
    offsets = struct.unpack_from(f"<{count}I", buffer, first)
    return [first + 4 * index + offset for index, offset in enumerate(offsets)]


def _message(buffer: bytes, position: int) -> Message:
    f = _fields(buffer, position, layouts.MESSAGE.field_count)
    message = Message(
        id=_u64(buffer, f[0]),
        conversation_id=_u64(buffer, f[1]),
        seq=_u64(buffer, f[2]),
        sender_id=_u64(buffer, f[3]),
        client_msg_id=_string(buffer, f[4]),
        kind=_kind(buffer, f[5]),
        body=_string(buffer, f[6]),
        reply_to_id=_u64(buffer, f[7]),
        created_at=_i64(buffer, f[8]),
        edited_at=_i64(buffer, f[9]),
        recalled=_bool(buffer, f[10]),
    )
    if not message.id or not message.conversation_id or not message.seq:
        raise _missing("Message", "id, conversation_id and seq")
    return message


def _auth(buffer: bytes, position: int) -> Auth:
    f = _fields(buffer, position, layouts.AUTH.field_count)
    token = _string(buffer, f[0])
    if not token:
        raise _missing("Auth", "token")
    return Auth(token=token, device_id=_string(buffer, f[1]), platform=_string(buffer, f[2]))


def _ping(buffer: bytes, position: int) -> Ping:
    _fields(buffer, position, layouts.PING.field_count)
    return _PING_FRAME


def _send_message(buffer: bytes, position: int) -> SendMessage:
    # The logic worker's hot path (read_send_message), so _u64, _kind and _string are inlined: the
    # same checks, a fifth less time.
    client_msg_id_at, conversation_id_at, kind_at, body_at, reply_to_id_at = _slots(
        buffer, position, _SEND_MESSAGE_FIELDS
    )
    client_msg_id = body = ""
    if client_msg_id_at:
        client_msg_id_at += position
        first = client_msg_id_at + 4 + _U32_AT(buffer, client_msg_id_at)[0]
        end = first + _U32_AT(buffer, first - 4)[0]
        if buffer[end]:
            raise _malformed("a string lacks its terminating zero")
        client_msg_id = buffer[first:end].decode()
    conversation_id: int = _U64_AT(buffer, position + conversation_id_at)[0] if conversation_id_at else 0
    if not client_msg_id:
        raise _missing("SendMessage", "client_msg_id")
    if not conversation_id:
        raise _missing("SendMessage", "conversation_id")
    kind = buffer[position + kind_at] if kind_at else 0
    if kind >= len(_MESSAGE_KINDS):
        raise _malformed(f"unknown message kind {kind}")
    if body_at:
        body_at += position
        first = body_at + 4 + _U32_AT(buffer, body_at)[0]
        end = first + _U32_AT(buffer, first - 4)[0]
        if buffer[end]:
            raise _malformed("a string lacks its terminating zero")
        body = buffer[first:end].decode()
    return SendMessage(
        client_msg_id=client_msg_id,
        conversation_id=conversation_id,
        kind=_MESSAGE_KINDS[kind],
        body=body,
        reply_to_id=_U64_AT(buffer, position + reply_to_id_at)[0] if reply_to_id_at else 0,
    )


def _conversation_and_seq(buffer: bytes, position: int, layout: layouts.Layout, table: str) -> tuple[int, int]:
    f = _fields(buffer, position, layout.field_count)
    conversation_id = _u64(buffer, f[0])
    if not conversation_id:
        raise _missing(table, "conversation_id")
    return conversation_id, _u64(buffer, f[1])


def _push_ack(buffer: bytes, position: int) -> PushAck:
    conversation_id, seq = _conversation_and_seq(buffer, position, layouts.PUSH_ACK, "PushAck")
    return PushAck(conversation_id=conversation_id, seq=seq)


def _read_receipt(buffer: bytes, position: int) -> ReadReceipt:
    conversation_id, seq = _conversation_and_seq(buffer, position, layouts.READ_RECEIPT, "ReadReceipt")
    return ReadReceipt(conversation_id=conversation_id, seq=seq)


def _sync(buffer: bytes, position: int) -> Sync:
    f = _fields(buffer, position, layouts.SYNC.field_count)
    if not f[0]:
        return Sync()
    first, count = _vector(buffer, f[0], layouts.CURSOR_SIZE)
    values = struct.unpack_from(f"<{2 * count}Q", buffer, first)
    cursors = tuple(Cursor(conversation_id=values[i], after_seq=values[i + 1]) for i in range(0, 2 * count, 2))
    if not all(cursor.conversation_id for cursor in cursors):
        raise _missing("Sync cursor", "conversation_id")
    return Sync(cursors=cursors)


def _typing(buffer: bytes, position: int) -> Typing:
    f = _fields(buffer, position, layouts.TYPING.field_count)
    conversation_id = _u64(buffer, f[0])
    if not conversation_id:
        raise _missing("Typing", "conversation_id")
    return Typing(conversation_id=conversation_id)


def _auth_result(buffer: bytes, position: int) -> AuthResult:
    f = _fields(buffer, position, layouts.AUTH_RESULT.field_count)
    user_id = _u64(buffer, f[0])
    if not user_id:
        raise _missing("AuthResult", "user_id")
    return AuthResult(user_id=user_id, session_id=_u64(buffer, f[1]), heartbeat_seconds=_u32(buffer, f[2]))


def _pong(buffer: bytes, position: int) -> Pong:
    _fields(buffer, position, layouts.PONG.field_count)
    return _PONG_FRAME


def _message_ack(buffer: bytes, position: int) -> MessageAck:
    f = _fields(buffer, position, layouts.MESSAGE_ACK.field_count)
    ack = MessageAck(
        client_msg_id=_string(buffer, f[0]),
        message_id=_u64(buffer, f[1]),
        conversation_id=_u64(buffer, f[2]),
        seq=_u64(buffer, f[3]),
        created_at=_i64(buffer, f[4]),
    )
    if not ack.client_msg_id or not ack.message_id or not ack.conversation_id or not ack.seq:
        raise _missing("MessageAck", "client_msg_id, message_id, conversation_id and seq")
    return ack


def _send_error(buffer: bytes, position: int) -> SendError:
    f = _fields(buffer, position, layouts.SEND_ERROR.field_count)
    error = SendError(client_msg_id=_string(buffer, f[0]), code=_u16(buffer, f[1]), reason=_string(buffer, f[2]))
    if not error.client_msg_id or not error.code:
        raise _missing("SendError", "client_msg_id and code")
    return error


def _push_message(buffer: bytes, position: int) -> PushMessage:
    f = _fields(buffer, position, layouts.PUSH_MESSAGE.field_count)
    if not f[0]:
        raise _missing("PushMessage", "message")
    return PushMessage(message=_message(buffer, _target(buffer, f[0])))


def _sync_result(buffer: bytes, position: int) -> SyncResult:
    f = _fields(buffer, position, layouts.SYNC_RESULT.field_count)
    conversation_id = _u64(buffer, f[0])
    if not conversation_id:
        raise _missing("SyncResult", "conversation_id")
    messages = []
    text = 0
    for at in _table_positions(buffer, f[1]):
        message = _message(buffer, at)
        # Offsets may be shared; a valid buffer never holds more text than its own size.
        text += len(message.body) + len(message.client_msg_id)
        if text > len(buffer):
            raise _malformed("strings are shared too often")
        messages.append(message)
    return SyncResult(conversation_id=conversation_id, messages=tuple(messages), has_more=_bool(buffer, f[2]))


def _read_update(buffer: bytes, position: int) -> ReadUpdate:
    f = _fields(buffer, position, layouts.READ_UPDATE.field_count)
    update = ReadUpdate(conversation_id=_u64(buffer, f[0]), user_id=_u64(buffer, f[1]), seq=_u64(buffer, f[2]))
    if not update.conversation_id or not update.user_id:
        raise _missing("ReadUpdate", "conversation_id and user_id")
    return update


def _typing_update(buffer: bytes, position: int) -> TypingUpdate:
    f = _fields(buffer, position, layouts.TYPING_UPDATE.field_count)
    update = TypingUpdate(conversation_id=_u64(buffer, f[0]), user_id=_u64(buffer, f[1]))
    if not update.conversation_id or not update.user_id:
        raise _missing("TypingUpdate", "conversation_id and user_id")
    return update


def _presence_update(buffer: bytes, position: int) -> PresenceUpdate:
    f = _fields(buffer, position, layouts.PRESENCE_UPDATE.field_count)
    user_id = _u64(buffer, f[0])
    if not user_id:
        raise _missing("PresenceUpdate", "user_id")
    return PresenceUpdate(user_id=user_id, online=_bool(buffer, f[1]))


def _system_notification(buffer: bytes, position: int) -> SystemNotification:
    f = _fields(buffer, position, layouts.SYSTEM_NOTIFICATION.field_count)
    return SystemNotification(text=_string(buffer, f[0]))


def _kicked(buffer: bytes, position: int) -> Kicked:
    f = _fields(buffer, position, layouts.KICKED.field_count)
    return Kicked(reason=_string(buffer, f[0]))


def _error_frame(buffer: bytes, position: int) -> ErrorFrame:
    f = _fields(buffer, position, layouts.ERROR_FRAME.field_count)
    code = _u16(buffer, f[0])
    if not code:
        raise _missing("ErrorFrame", "code")
    return ErrorFrame(code=code, message=_string(buffer, f[1]))


def _resync(buffer: bytes, position: int) -> Resync:
    _fields(buffer, position, layouts.RESYNC.field_count)
    return _RESYNC_FRAME


_CLIENT_DECODERS: dict[int, Callable[[bytes, int], ClientFrame]] = {
    FrameType.AUTH: _auth,
    FrameType.PING: _ping,
    FrameType.SEND_MESSAGE: _send_message,
    FrameType.PUSH_ACK: _push_ack,
    FrameType.SYNC: _sync,
    FrameType.READ_RECEIPT: _read_receipt,
    FrameType.TYPING: _typing,
}
_DECODERS: dict[int, Callable[[bytes, int], AnyFrame]] = {
    **_CLIENT_DECODERS,
    FrameType.AUTH_RESULT: _auth_result,
    FrameType.PONG: _pong,
    FrameType.MESSAGE_ACK: _message_ack,
    FrameType.SEND_ERROR: _send_error,
    FrameType.PUSH_MESSAGE: _push_message,
    FrameType.SYNC_RESULT: _sync_result,
    FrameType.READ_UPDATE: _read_update,
    FrameType.TYPING_UPDATE: _typing_update,
    FrameType.PRESENCE_UPDATE: _presence_update,
    FrameType.SYSTEM_NOTIFICATION: _system_notification,
    FrameType.KICKED: _kicked,
    FrameType.RESYNC: _resync,
    FrameType.ERROR_FRAME: _error_frame,
}


def _as_bytes(data: Buffer) -> bytes:
    return data if type(data) is bytes else bytes(data)


def _converted(exc: Exception) -> FrameError:
    """FrameError for what reading bytes can raise: struct.error when a read runs past the end,
    UnicodeDecodeError for a string that is not UTF-8."""
    if isinstance(exc, FrameError):
        return exc
    if isinstance(exc, UnicodeDecodeError):
        return _malformed("a string is not valid UTF-8")
    return _malformed("truncated or corrupt")


_READ_ERRORS = (struct.error, ValueError, IndexError, OverflowError)


def _body(buffer: bytes) -> tuple[int, int]:
    """(union tag, position of the body table) of a Frame; the tag is one this codec knows."""
    if len(buffer) < 4:
        raise _malformed("shorter than 4 bytes" if buffer else "empty")
    root = _U32_AT(buffer, 0)[0]
    type_at, body_at = _slots(buffer, root, _FRAME_FIELDS)
    tag = buffer[root + type_at] if type_at else 0
    if tag not in _DECODERS:
        raise _malformed(f"unknown frame type {tag}")
    if not body_at:
        raise _missing("Frame", "body")
    body_at += root
    return tag, body_at + _U32_AT(buffer, body_at)[0]


def frame_type(data: Buffer) -> int:
    """The FrameType of a frame, reading nothing but the union tag. Raises FrameError when the frame's
    root table cannot be read or the tag is not a known frame type; the body is left unchecked."""
    buffer = _as_bytes(data)
    try:
        return _body(buffer)[0]
    except _READ_ERRORS as exc:
        raise _converted(exc) from None


def decode_frame(data: Buffer) -> AnyFrame:
    """The typed frame these bytes hold. Raises FrameError (and nothing else) for anything else:
    garbage, truncation, an unknown or absent type, offsets outside the buffer, a missing required
    field (an id of 0, an empty client_msg_id or token), a string that is not UTF-8."""
    buffer = _as_bytes(data)
    try:
        tag, body = _body(buffer)
        return _DECODERS[tag](buffer, body)
    except _READ_ERRORS as exc:
        raise _converted(exc) from None


def decode_client_frame(data: Buffer) -> ClientFrame:
    """decode_frame for bytes from a client: a server -> client frame is FrameError(UNEXPECTED_FRAME)."""
    buffer = _as_bytes(data)
    try:
        tag, body = _body(buffer)
        decode = _CLIENT_DECODERS.get(tag)
        if decode is None:
            raise FrameError(ErrorCode.UNEXPECTED_FRAME, f"clients may not send {FrameType(tag).name} frames")
        return decode(buffer, body)
    except _READ_ERRORS as exc:
        raise _converted(exc) from None


def read_send_message(data: Buffer) -> SendMessage:
    """The hot-path reader of the logic worker: a SendMessage frame, straight to its fields.
    Raises FrameError like decode_frame, and FrameError(UNEXPECTED_FRAME) for any other frame type."""
    buffer = data if type(data) is bytes else bytes(data)
    try:
        tag, body = _body(buffer)
        if tag != _SEND_MESSAGE_TAG:
            raise FrameError(ErrorCode.UNEXPECTED_FRAME, f"expected a SendMessage frame, got {FrameType(tag).name}")
        return _send_message(buffer, body)
    except _READ_ERRORS as exc:
        raise _converted(exc) from None
