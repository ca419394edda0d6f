"""Builders and readers for session-core tests: frames in, intents out, decoded for assertions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from realtime.session import Close, Intent, PublishUpstream, SendToClient, Session, SessionConfig
from schema.codec import (
    AnyFrame,
    Auth,
    ClientFrame,
    ErrorFrame,
    MessageAck,
    SendError,
    SendErrorCode,
    SendMessage,
    Upstream,
    decode_client_frame,
    decode_frame,
    decode_upstream,
    encode_frame,
)

ALICE = 101
SESSION_ID = 555
DEVICE = "alice-phone"
PLATFORM = "web"
NODE = "node-a"
CONNECTION = 7
T0 = 1_700_000_000.0
"""Unix seconds: `now` is wall-clock time, since envelopes stamp received_at with it."""


def auth_frame(token: str = "a.jwt.token") -> bytes:
    return encode_frame(Auth(token=token, device_id=DEVICE, platform=PLATFORM))


def connected_session(**config: Any) -> Session:
    session = Session(NODE, CONNECTION, SessionConfig(**config))
    assert session.connected(T0) == []
    return session


def open_session(**config: Any) -> Session:
    """Connected and authenticated as alice at T0, with its opening intents consumed."""
    session = connected_session(**config)
    session.receive(auth_frame(), T0)
    session.authenticated(ALICE, SESSION_ID, DEVICE, PLATFORM, T0)
    return session


def send_frame(client_msg_id: str, conversation_id: int = 9, body: str = "hello") -> bytes:
    return encode_frame(SendMessage(client_msg_id=client_msg_id, conversation_id=conversation_id, body=body))


def ack_frame(client_msg_id: str, seq: int = 1) -> bytes:
    ack = MessageAck(client_msg_id=client_msg_id, message_id=1000 + seq, conversation_id=9, seq=seq, created_at=1)
    return encode_frame(ack)


def send_error_frame(client_msg_id: str, code: SendErrorCode = SendErrorCode.NOT_MEMBER) -> bytes:
    return encode_frame(SendError(client_msg_id=client_msg_id, code=code, reason="refused"))


def to_client(intents: Sequence[Intent]) -> list[AnyFrame]:
    return [decode_frame(i.data) for i in intents if isinstance(i, SendToClient)]


def error_codes(intents: Sequence[Intent]) -> list[int]:
    return [f.code for f in to_client(intents) if isinstance(f, ErrorFrame)]


def send_errors(intents: Sequence[Intent]) -> list[tuple[str, int]]:
    return [(f.client_msg_id, f.code) for f in to_client(intents) if isinstance(f, SendError)]


def envelopes(intents: Sequence[Intent]) -> list[Upstream]:
    return [decode_upstream(i.payload) for i in intents if isinstance(i, PublishUpstream)]


def published(intents: Sequence[Intent]) -> list[ClientFrame]:
    """Every frame published, those an envelope carries in more_frames included, in order."""
    return [decode_client_frame(frame) for u in envelopes(intents) for frame in (u.frame, *u.more_frames)]


def published_ids(intents: Sequence[Intent]) -> list[str]:
    return [f.client_msg_id for f in published(intents) if isinstance(f, SendMessage)]


def closes(intents: Sequence[Intent]) -> list[Close]:
    return [i for i in intents if isinstance(i, Close)]
