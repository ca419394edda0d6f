"""One batch of upstream envelopes -> service calls -> an Outbox of frames to send.

Runs on the worker's database thread (synchronous Django). Sends go to send_messages as one batch
(one transaction); read receipts, typing and sync are handled after them, in arrival order per kind.
An envelope that cannot be decoded is logged and dropped (there is nobody to answer); a frame that
cannot be decoded is answered with an ErrorFrame to its connection; a send that a rule refuses is
answered with a SendError. Nothing a client sends stops the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from django.db import InterfaceError, OperationalError

from messaging import selectors
from messaging.services import (
    RejectCode,
    SendOutcome,
    SendRequest,
    SendStatus,
    SentBatch,
    mark_read_by_id,
    send_batch,
)
from messaging.wire import wire_message
from realtime.fanout import Fanout
from schema.codec import (
    ErrorCode,
    ErrorFrame,
    FrameError,
    MessageAck,
    MessageKind,
    PushMessage,
    ReadReceipt,
    ReadUpdate,
    SendError,
    SendErrorCode,
    SendMessage,
    Sync,
    SyncResult,
    Typing,
    TypingUpdate,
    Upstream,
    decode_client_frame,
    decode_upstream,
    encode_frame,
    read_send_message,
)

logger = logging.getLogger(__name__)

SYNC_PAGE_SIZE = 200

_REJECT_CODES = {
    RejectCode.NOT_MEMBER: SendErrorCode.NOT_MEMBER,
    RejectCode.BLOCKED: SendErrorCode.BLOCKED,
    RejectCode.NOT_FRIENDS: SendErrorCode.NOT_FRIENDS,
    RejectCode.BODY_TOO_LARGE: SendErrorCode.BODY_TOO_LARGE,
    RejectCode.INVALID: SendErrorCode.INVALID,
}
_KINDS = {MessageKind.TEXT: "text", MessageKind.SYSTEM: "system"}


@dataclass(slots=True)
class Outbox:
    """What a batch sends: frames for known connections (answers) and frames for users (pushes)."""

    direct: dict[str, list[tuple[bytes, tuple[int, ...]]]] = field(default_factory=dict)
    fanouts: list[Fanout] = field(default_factory=list)
    stored: int = 0

    def answer(self, upstream: Upstream, frame: bytes) -> None:
        self.direct.setdefault(upstream.node_id, []).append((frame, (upstream.connection_id,)))


# An upstream envelope as decoded when it arrives, with its frame read when it is a SendMessage.
Inbound = tuple[Upstream, SendMessage | None]


def inbound(raw: bytes) -> list[tuple[Inbound, int]]:
    """Decodes an upstream payload as it arrives: the envelope and, for a send, its frame; with its
    partition key (the conversation of a send, else the user). An envelope holding several sends
    (more_frames) gives one item each, in order. Nothing for an undecodable envelope, which is logged
    and dropped (there is nobody to answer). A send whose frame cannot be read is passed on without
    it, for handle_batch to answer."""
    try:
        upstream = decode_upstream(raw)
    except FrameError as exc:
        logger.warning("undecodable upstream envelope dropped", extra={"error": str(exc), "size": len(raw)})
        return []
    if not upstream.more_frames:
        return [_item(upstream)]
    items = [_item(msgspec.structs.replace(upstream, more_frames=()))]
    for frame in upstream.more_frames:
        items.append(_item(msgspec.structs.replace(upstream, frame=frame, more_frames=())))
    return items


def _item(upstream: Upstream) -> tuple[Inbound, int]:
    try:
        send = read_send_message(upstream.frame)  # refuses any other frame type: most frames are sends
    except FrameError:
        return (upstream, None), upstream.user_id
    return (upstream, send), send.conversation_id


def handle_batch(items: Sequence[Inbound]) -> Outbox:
    outbox = Outbox()
    sends: list[tuple[Upstream, SendMessage]] = []
    reads: list[tuple[Upstream, ReadReceipt]] = []
    typings: list[tuple[Upstream, Typing]] = []
    syncs: list[tuple[Upstream, Sync]] = []
    for upstream, send in items:
        if send is not None:
            sends.append((upstream, send))
            continue
        try:
            frame = decode_client_frame(upstream.frame)
        except FrameError as exc:
            logger.info(
                "malformed client frame answered with an error",
                extra={"userId": upstream.user_id, "nodeId": upstream.node_id, "error": str(exc)},
            )
            outbox.answer(upstream, encode_frame(ErrorFrame(code=exc.code, message=str(exc))))
            continue
        if isinstance(frame, SendMessage):  # read here only if read_send_message refused it at intake
            sends.append((upstream, frame))
        elif isinstance(frame, ReadReceipt):
            reads.append((upstream, frame))
        elif isinstance(frame, Typing):
            typings.append((upstream, frame))
        elif isinstance(frame, Sync):
            syncs.append((upstream, frame))
        else:
            # Auth, Ping and PushAck end at the access node; one that reaches us is a node's bug.
            logger.warning(
                "frame not meant for the logic worker ignored",
                extra={"frameType": type(frame).__name__, "nodeId": upstream.node_id},
            )
    if sends:
        _handle_sends(sends, outbox)
    if reads or typings:
        members = selectors.member_ids_by_conversation({f.conversation_id for _, f in reads + typings})
        for upstream, receipt in reads:
            _handle_read(upstream, receipt, members, outbox)
        for upstream, typing in typings:
            _handle_typing(upstream, typing, members, outbox)
    _handle_syncs(syncs, outbox)
    return outbox


def _request(upstream: Upstream, frame: SendMessage) -> SendRequest:
    return SendRequest(
        sender_id=upstream.user_id,
        conversation_id=frame.conversation_id,
        client_msg_id=frame.client_msg_id,
        body=frame.body,
        kind=_KINDS.get(frame.kind, "text"),
        reply_to_id=frame.reply_to_id,
    )


def _store(requests: list[SendRequest]) -> SentBatch:
    """send_batch, isolating a poison request: if the batch fails for a reason other than an
    unreachable database, each request is tried alone and the ones that still fail are refused."""
    try:
        return send_batch(requests)
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable or restarting: the runner retries the whole batch
    except Exception:
        if len(requests) == 1:
            logger.exception("send refused: storing it failed", extra={"userId": requests[0].sender_id})
            refused = SendOutcome(
                request=requests[0],
                status=SendStatus.REJECTED,
                code=RejectCode.INVALID,
                reason="This message could not be stored.",
            )
            return SentBatch([refused], {})
        logger.exception("send batch failed; isolating the failing message", extra={"size": len(requests)})
        outcomes: list[SendOutcome] = []
        members: dict[int, list[int]] = {}
        for request in requests:
            alone = _store([request])
            outcomes += alone.outcomes
            members.update(alone.members)
        return SentBatch(outcomes, members)


def _handle_sends(sends: list[tuple[Upstream, SendMessage]], outbox: Outbox) -> None:
    sent = _store([_request(upstream, frame) for upstream, frame in sends])
    members = sent.members
    # A duplicate's first message may be in a conversation the batch did not lock: read those too.
    missing = {o.message.conversation_id for o in sent.outcomes if o.message is not None} - members.keys()
    if missing:
        members = {**members, **selectors.member_ids_by_conversation(missing)}
    created_ms: dict[datetime, int] = {}  # a batch's messages share one created_at
    recipients_of: dict[int, tuple[int, ...]] = {}
    stored_status = SendStatus.STORED
    direct, fanouts, stored = outbox.direct, outbox.fanouts, 0
    for (upstream, frame), outcome in zip(sends, sent.outcomes, strict=True):
        message = outcome.message
        if message is None:
            code = _REJECT_CODES.get(outcome.code or RejectCode.INVALID, SendErrorCode.INVALID)
            error = SendError(client_msg_id=frame.client_msg_id, code=code, reason=outcome.reason)
            outbox.answer(upstream, encode_frame(error))
            continue
        created_at = created_ms.get(message.created_at)
        if created_at is None:
            created_at = created_ms[message.created_at] = int(message.created_at.timestamp() * 1000)
        cid = message.conversation_id
        ack = MessageAck(
            client_msg_id=message.client_msg_id,
            message_id=message.id,
            conversation_id=cid,
            seq=message.seq,
            created_at=created_at,
        )
        node, connection = upstream.node_id, upstream.connection_id
        answers = direct.get(node)
        if answers is None:
            answers = direct[node] = []
        answers.append((encode_frame(ack), (connection,)))
        if outcome.status is stored_status:
            stored += 1
        # A duplicate is pushed again too: the worker that stored it may have died before pushing.
        # Devices drop pushes they already hold (by seq).
        push = encode_frame(PushMessage(message=wire_message(message, created_at=created_at)))
        recipients = recipients_of.get(cid)
        if recipients is None:
            recipients = recipients_of[cid] = tuple(members.get(cid, ()))
        fanouts.append(Fanout(push, recipients, (node, connection)))
    outbox.stored += stored


def _handle_read(upstream: Upstream, receipt: ReadReceipt, members: dict[int, list[int]], outbox: Outbox) -> None:
    if upstream.user_id not in members.get(receipt.conversation_id, ()):
        outbox.answer(upstream, _not_member_error(receipt.conversation_id))
        return
    state = mark_read_by_id(upstream.user_id, conversation_id=receipt.conversation_id, seq=receipt.seq)
    if not state.changed:
        return
    update = ReadUpdate(conversation_id=receipt.conversation_id, user_id=upstream.user_id, seq=state.last_read_seq)
    recipients = tuple(members[receipt.conversation_id])
    outbox.fanouts.append(Fanout(encode_frame(update), recipients, skip=(upstream.node_id, upstream.connection_id)))


def _handle_typing(upstream: Upstream, typing: Typing, members: dict[int, list[int]], outbox: Outbox) -> None:
    conversation_members = members.get(typing.conversation_id, ())
    if upstream.user_id not in conversation_members:
        outbox.answer(upstream, _not_member_error(typing.conversation_id))
        return
    others = tuple(user for user in conversation_members if user != upstream.user_id)
    if others:
        update = TypingUpdate(conversation_id=typing.conversation_id, user_id=upstream.user_id)
        outbox.fanouts.append(Fanout(encode_frame(update), others))


def _handle_syncs(syncs: Sequence[tuple[Upstream, Sync]], outbox: Outbox) -> None:
    """Every cursor of the batch's Syncs read at once; answered in arrival order."""
    asked = [(upstream, cursor) for upstream, sync in syncs for cursor in sync.cursors]
    cursors = [selectors.SyncCursor(upstream.user_id, c.conversation_id, c.after_seq) for upstream, c in asked]
    pages = selectors.messages_after_many(cursors, limit=SYNC_PAGE_SIZE)
    for (upstream, cursor), page in zip(asked, pages, strict=True):
        if page is None:
            outbox.answer(upstream, _not_member_error(cursor.conversation_id))
            continue
        messages, has_more = page
        result = SyncResult(
            conversation_id=cursor.conversation_id,
            messages=tuple(wire_message(m) for m in messages),
            has_more=has_more,
        )
        outbox.answer(upstream, encode_frame(result))


def _not_member_error(conversation_id: int) -> bytes:
    return encode_frame(
        ErrorFrame(code=ErrorCode.UNEXPECTED_FRAME, message=f"Not a member of conversation {conversation_id}.")
    )
