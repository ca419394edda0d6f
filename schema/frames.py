"""Typed wire frames, internal envelopes and protocol codes: what schema/message.fbs carries, as Python.

Import these from schema.codec, which encodes and decodes them. Every number here (frame types, enum
values, error codes) is the schema's; schema/tests check that the two agree.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

import msgspec


class FrameType(IntEnum):
    """Union tags of Frame.body. Client -> server: 1-31; server -> client: 32-127. Never reused."""

    AUTH = 1
    PING = 2
    SEND_MESSAGE = 3
    PUSH_ACK = 4
    SYNC = 5
    READ_RECEIPT = 6
    TYPING = 7
    AUTH_RESULT = 32
    PONG = 33
    MESSAGE_ACK = 34
    SEND_ERROR = 35
    PUSH_MESSAGE = 36
    SYNC_RESULT = 37
    READ_UPDATE = 38
    TYPING_UPDATE = 39
    PRESENCE_UPDATE = 40
    SYSTEM_NOTIFICATION = 41
    KICKED = 42
    ERROR_FRAME = 43
    RESYNC = 44


FIRST_SERVER_FRAME_TYPE = 32
"""Tags below this are frames a client may send; tags from it on are frames only a server sends."""


class MessageKind(IntEnum):
    TEXT = 0
    SYSTEM = 1


class ErrorCode(IntEnum):
    """Codes of Error frames; the same numbers close a WebSocket or WebTransport session."""

    MALFORMED = 4000
    TOO_LARGE = 4001
    UNEXPECTED_FRAME = 4002
    NOT_AUTHENTICATED = 4010
    AUTH_FAILED = 4011
    AUTH_TIMEOUT = 4012
    HEARTBEAT_TIMEOUT = 4013
    RATE_LIMITED = 4029
    TOO_MANY_ERRORS = 4030
    INTERNAL = 4500
    UNAVAILABLE = 4503


class SendErrorCode(IntEnum):
    """Codes of SendError frames. Only UNAVAILABLE is worth retrying with the same client_msg_id."""

    INVALID = 4100
    BODY_TOO_LARGE = 4101
    CONVERSATION_NOT_FOUND = 4102
    NOT_MEMBER = 4103
    NOT_FRIENDS = 4104
    BLOCKED = 4105
    RATE_LIMITED = 4129
    UNAVAILABLE = 4150


class FrameError(ValueError):
    """Bytes that are not a valid frame (or envelope). `code` is the ErrorCode to answer with."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Struct(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Immutable, keyword-only, and free of reference cycles (so outside the garbage collector).
    Subclasses repeat frozen and kw_only, which type checkers do not inherit. Fields follow the
    schema's slot order, which the codec relies on (schema/tests check it)."""


class Message(_Struct, frozen=True, kw_only=True):
    id: int
    conversation_id: int
    seq: int
    sender_id: int
    client_msg_id: str = ""
    kind: MessageKind = MessageKind.TEXT
    body: str = ""
    reply_to_id: int = 0
    created_at: int = 0
    """Unix milliseconds."""
    edited_at: int = 0
    """Unix milliseconds; 0: never edited."""
    recalled: bool = False


class Cursor(_Struct, frozen=True, kw_only=True):
    conversation_id: int
    after_seq: int = 0


# client -> server


class Auth(_Struct, frozen=True, kw_only=True):
    token: str
    device_id: str = ""
    platform: str = ""


class Ping(_Struct, frozen=True, kw_only=True):
    pass


class SendMessage(_Struct, frozen=True, kw_only=True):
    client_msg_id: str
    conversation_id: int
    kind: MessageKind = MessageKind.TEXT
    body: str = ""
    reply_to_id: int = 0


class PushAck(_Struct, frozen=True, kw_only=True):
    conversation_id: int
    seq: int


class Sync(_Struct, frozen=True, kw_only=True):
    cursors: tuple[Cursor, ...] = ()


class ReadReceipt(_Struct, frozen=True, kw_only=True):
    conversation_id: int
    seq: int


class Typing(_Struct, frozen=True, kw_only=True):
    conversation_id: int


# server -> client


class AuthResult(_Struct, frozen=True, kw_only=True):
    user_id: int
    session_id: int
    heartbeat_seconds: int


class Pong(_Struct, frozen=True, kw_only=True):
    pass


class MessageAck(_Struct, frozen=True, kw_only=True):
    client_msg_id: str
    message_id: int
    conversation_id: int
    seq: int
    created_at: int


class SendError(_Struct, frozen=True, kw_only=True):
    client_msg_id: str
    code: int
    """A SendErrorCode; a plain int so that codes added later still decode."""
    reason: str = ""


class PushMessage(_Struct, frozen=True, kw_only=True):
    message: Message


class SyncResult(_Struct, frozen=True, kw_only=True):
    conversation_id: int
    messages: tuple[Message, ...] = ()
    has_more: bool = False


class ReadUpdate(_Struct, frozen=True, kw_only=True):
    conversation_id: int
    user_id: int
    seq: int


class TypingUpdate(_Struct, frozen=True, kw_only=True):
    conversation_id: int
    user_id: int


class PresenceUpdate(_Struct, frozen=True, kw_only=True):
    user_id: int
    online: bool


class SystemNotification(_Struct, frozen=True, kw_only=True):
    text: str


class Kicked(_Struct, frozen=True, kw_only=True):
    reason: str
    """logout, password_change, ban or replaced."""


class Resync(_Struct, frozen=True, kw_only=True):
    """Pushes to this session may have been lost (the node's NATS connection dropped): sync every
    known conversation from its last seq."""


class ErrorFrame(_Struct, frozen=True, kw_only=True):
    """The Error frame of API.md (ErrorFrame in the schema, so TypeScript keeps its global Error)."""

    code: int
    """An ErrorCode; a plain int so that codes added later still decode."""
    message: str = ""


ClientFrame = Auth | Ping | SendMessage | PushAck | Sync | ReadReceipt | Typing
ServerFrame = (
    AuthResult
    | Pong
    | MessageAck
    | SendError
    | PushMessage
    | SyncResult
    | ReadUpdate
    | TypingUpdate
    | PresenceUpdate
    | SystemNotification
    | Kicked
    | ErrorFrame
    | Resync
)
AnyFrame = ClientFrame | ServerFrame


# Internal NATS envelopes: msgspec MessagePack, not FlatBuffers (schema/README.md says why). Each
# is an array of its fields in declaration order (array_like), so that order is the wire format:
# new fields go at the end, with a default. The constraints (Meta) are checked when decoding only.

# MessagePack ints stop at 2**64 - 1 and at -2**63 (and msgspec takes no bound beyond int64).
_Uint64 = Annotated[int, msgspec.Meta(ge=0)]
_Id = Annotated[int, msgspec.Meta(ge=1)]
"""A uint64 that must be set."""
_Int64 = Annotated[int, msgspec.Meta(le=2**63 - 1)]
_NonEmptyBytes = Annotated[bytes, msgspec.Meta(min_length=1)]
_NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]


class _Envelope(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """Like _Struct, but written as a MessagePack array of the field values (no names)."""


class Upstream(_Envelope, frozen=True, kw_only=True):
    """im.logic.upstream: one client frame (opaque bytes) with who sent it and where answers go."""

    frame: _NonEmptyBytes
    user_id: _Id
    device_id: str
    session_id: _Uint64
    node_id: _NonEmptyStr
    """The access node holding the connection."""
    connection_id: _Uint64
    """Unique within that node."""
    received_at: _Int64
    """Unix milliseconds, when the access node read the frame."""
    more_frames: tuple[_NonEmptyBytes, ...] = ()
    """Further SendMessage frames of the same connection, in the order sent: sends that queued while
    the connection's previous envelope was out travel together, so one worker stores them in order.
    Last, with a default: a reader that predates it ignores it (and reads only the first frame)."""


class Delivery(_Envelope, frozen=True, kw_only=True):
    """One encoded frame and the connections (of one access node) that get exactly these bytes."""

    frame: bytes
    connection_ids: tuple[_Uint64, ...]


class Downstream(_Envelope, frozen=True, kw_only=True):
    """im.access.{node_id}.downstream: a batch of pushes for one access node."""

    deliveries: tuple[Delivery, ...]
