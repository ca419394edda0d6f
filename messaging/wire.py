"""Stored messages as wire frames (schema.codec.Message): the one conversion both the logic worker
and the web process use when they push a message."""

from __future__ import annotations

from messaging.services import StoredMessage
from schema.codec import Message, MessageKind

_WIRE_KINDS = {"text": MessageKind.TEXT, "system": MessageKind.SYSTEM}


def wire_message(message: StoredMessage, *, recalled: bool = False, created_at: int | None = None) -> Message:
    """created_at: the message's created_at in Unix milliseconds, when the caller has it already."""
    if created_at is None:
        created_at = int(message.created_at.timestamp() * 1000)
    return Message(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sender_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        kind=_WIRE_KINDS.get(message.kind, MessageKind.TEXT),
        body="" if recalled else message.body,
        reply_to_id=message.reply_to_id,
        created_at=created_at,
        recalled=recalled,
    )
