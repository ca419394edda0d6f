"""send_messages: the one write path of every message (realtime batches, REST sends, system messages).

A whole batch is one transaction with a fixed number of queries, however many messages it holds:

1. SELECT ... FOR UPDATE of the batch's conversations in id order, reading their last_seq. Batches
   that share a conversation queue here (PostgreSQL; no deadlock: the order is fixed), so a retry
   of a message a concurrent batch is storing in the same conversation is seen by query 2;
2. the stored messages the batch's (sender, client_msg_id) keys already name (retries);
3. the live memberships of the senders in the batch's conversations, with each conversation's kind
   and direct key (the direct key names both users of a direct conversation);
4. blocks between the users of the batch's direct conversations (only when there is one);
5. friendships of those pairs (only when there is one and DIRECT_MESSAGES_REQUIRE_FRIENDSHIP is on);
6. the replied-to messages (only when a request replies to one);
7. one UPDATE of every conversation of the batch: last_seq, last_message_id, updated_at;
8. one INSERT of the messages: COPY on PostgreSQL, executemany on SQLite;
9. one UPDATE of the senders' read positions, so nobody has their own messages as unread.
Statements 7-9 are written per database in bulk.py: the ORM's generic forms cost more CPU than the
database work at these batch sizes.

If the same (sender, client_msg_id) is meanwhile stored by a batch in another conversation, the
unique constraint stops the insert, the batch rolls back and runs again (it then answers duplicate).

A request that breaks a rule is rejected with a code and a reason; the others go on. A retried send
(same sender and client_msg_id, in an earlier batch or earlier in this one) is answered with the
first message, marked duplicate. Pushing stored messages to devices is the caller's job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from friends.models import Block, Friendship
from imsite.snowflake import generator
from messaging.models import (
    CLIENT_MSG_ID_MAX_LENGTH,
    Conversation,
    ConversationKind,
    Membership,
    Message,
    MessageKind,
)
from messaging.services import bulk

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024
MAX_DB_INT = (1 << 63) - 1
ATTEMPTS = 3


class SendStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class RejectCode(StrEnum):
    NOT_MEMBER = "not_member"
    BLOCKED = "blocked"
    NOT_FRIENDS = "not_friends"
    BODY_TOO_LARGE = "body_too_large"
    INVALID = "invalid"


@dataclass(frozen=True)
class SendRequest:
    """One message to store: who sends it, where, and the sender's idempotency key."""

    sender_id: int
    conversation_id: int
    client_msg_id: str
    body: str
    kind: str = MessageKind.TEXT
    reply_to_id: int = 0


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    seq: int
    sender_id: int
    client_msg_id: str
    kind: str
    body: str
    reply_to_id: int
    created_at: datetime


@dataclass(frozen=True)
class SendOutcome:
    """What became of one request: stored, duplicate (message is the first one) or rejected (code, reason)."""

    request: SendRequest
    status: SendStatus
    message: StoredMessage | None = None
    code: RejectCode | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not SendStatus.REJECTED


_KINDS = frozenset(MessageKind.values)  # Choices.values builds a new list on every access


def max_body_bytes() -> int:
    return int(getattr(settings, "MESSAGE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def send_messages(requests: Sequence[SendRequest], *, allow_system: bool = False) -> list[SendOutcome]:
    """Stores a batch; returns one outcome per request, in input order.

    allow_system lets the batch hold kind=system messages (group events posted by the services);
    they skip the member, block and friendship rules and the body size limit. Clients never set it.
    """
    if not requests:
        return []
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _Batch(requests, allow_system=allow_system).run()
        except IntegrityError:
            # A concurrent batch stored one of our (sender, client_msg_id) keys after we looked:
            # the whole batch rolled back; the next pass finds that message and answers duplicate.
            if attempt == ATTEMPTS:
                raise
            logger.info(
                "send batch raced a concurrent send of the same message; retrying",
                extra={"size": len(requests), "attempt": attempt},
            )
    raise AssertionError("unreachable")


def _as_stored(row: Message) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        sender_id=row.sender_id,
        client_msg_id=row.client_msg_id,
        kind=row.kind,
        body=row.body,
        reply_to_id=row.reply_to_id,
        created_at=row.created_at,
    )


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_DB_INT


def _problem(request: SendRequest, *, limit: int, allow_system: bool) -> tuple[RejectCode, str] | None:
    """The first rule of the request's own fields it breaks, or None (no database needed)."""
    if not _is_id(request.sender_id) or not _is_id(request.conversation_id):
        return RejectCode.INVALID, "senderId and conversationId must be positive ids."
    cmid = request.client_msg_id
    if not isinstance(cmid, str) or not cmid or len(cmid) > CLIENT_MSG_ID_MAX_LENGTH or "\x00" in cmid:
        return RejectCode.INVALID, f"clientMsgId must be 1 to {CLIENT_MSG_ID_MAX_LENGTH} characters."
    if request.kind not in _KINDS:
        return RejectCode.INVALID, f"kind must be one of: {', '.join(sorted(_KINDS))}."
    system = request.kind == MessageKind.SYSTEM
    if system and not allow_system:
        return RejectCode.INVALID, "System messages are posted by the server only: use kind 'text'."
    reply_to = request.reply_to_id
    if isinstance(reply_to, bool) or not isinstance(reply_to, int) or not 0 <= reply_to <= MAX_DB_INT:
        return RejectCode.INVALID, "replyToId must be a message id, or 0 for no reply."
    body = request.body
    if not isinstance(body, str) or not body.strip():
        return RejectCode.INVALID, "The message body is empty."
    if "\x00" in body:
        return RejectCode.INVALID, "The message body contains a NUL character."
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        return RejectCode.INVALID, "The message body is not valid Unicode text (lone surrogate)."
    if size > limit and not system:
        return RejectCode.BODY_TOO_LARGE, f"The message body is {size} bytes; the limit is {limit} bytes."
    return None


_STORED_FIELDS = (
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "client_msg_id",
    "kind",
    "body",
    "reply_to_id",
    "created_at",
)


def _stored_by_key(keys: set[tuple[int, str]]) -> dict[tuple[int, str], Message]:
    """Messages already stored under any of the (sender, client_msg_id) keys."""
    if connection.vendor == "postgresql":
        # Exact pairs: `sender = ANY(..) AND client_msg_id = ANY(..)` probes the index for the cross
        # product (200 senders x 1,024 ids took 290 ms in W5); a join on unnest probes each key once.
        senders, cmids = zip(*keys, strict=True)
        rows: Iterable[Message] = Message.all_objects.raw(
            f"SELECT {', '.join('m.' + name for name in _STORED_FIELDS)} FROM {Message._meta.db_table} AS m "  # noqa: S608
            "JOIN unnest(%s::bigint[], %s::text[]) AS k(sender_id, client_msg_id) "
            "ON m.sender_id = k.sender_id AND m.client_msg_id = k.client_msg_id",
            [list(senders), list(cmids)],
        )
    else:
        senders_set = {sender for sender, _ in keys}
        cmids_set = {cmid for _, cmid in keys}
        rows = Message.all_objects.filter(sender_id__any=senders_set, client_msg_id__any=cmids_set).only(
            *_STORED_FIELDS
        )
    return {(row.sender_id, row.client_msg_id): row for row in rows if (row.sender_id, row.client_msg_id) in keys}


def _direct_peer(key: str, sender_id: int) -> int:
    low, _, high = key.partition(":")
    return int(high) if int(low) == sender_id else int(low)


class _Batch:
    """One pass over a batch inside the caller's transaction. Indexes are positions in the input."""

    def __init__(self, requests: Sequence[SendRequest], *, allow_system: bool) -> None:
        self.requests = requests
        self.allow_system = allow_system
        self.outcomes: list[SendOutcome | None] = [None] * len(requests)
        self.duplicate_of: dict[int, int] = {}  # index -> index of the accepted request with the same key
        self.memberships: dict[tuple[int, int], int] = {}  # (conversation, sender) -> live membership id
        self.last_seq: dict[int, int] = {}  # live conversation -> its last_seq, row locked

    def reject(self, index: int, code: RejectCode, reason: str) -> None:
        self.outcomes[index] = SendOutcome(self.requests[index], SendStatus.REJECTED, code=code, reason=reason)

    def run(self) -> list[SendOutcome]:
        limit = max_body_bytes()
        candidates: list[int] = []
        for index, request in enumerate(self.requests):
            problem = _problem(request, limit=limit, allow_system=self.allow_system)
            if problem is None:
                candidates.append(index)
            else:
                self.reject(index, *problem)
        if candidates:
            accepted = self.check_rules(candidates)
            if accepted:
                self.store(accepted)
        for index, first in self.duplicate_of.items():
            original = self.outcomes[first]
            if original is not None and original.message is not None:
                self.outcomes[index] = SendOutcome(self.requests[index], SendStatus.DUPLICATE, message=original.message)
            else:
                raise AssertionError("a duplicate points at a request that was not stored")
        done = [outcome for outcome in self.outcomes if outcome is not None]
        assert len(done) == len(self.requests), "every request gets an outcome"
        return done

    def check_rules(self, candidates: list[int]) -> list[int]:
        """Dedup, membership, blocks, friendship and replies for the candidates; returns the accepted."""
        requests = self.requests
        senders = {requests[i].sender_id for i in candidates}
        conversations = {requests[i].conversation_id for i in candidates}
        self.last_seq = _lock_conversations(conversations)
        existing = _stored_by_key({(requests[i].sender_id, requests[i].client_msg_id) for i in candidates})
        kinds: dict[int, tuple[str, str]] = {}
        for membership_id, conversation_id, user_id, kind, pair in Membership.objects.filter(
            conversation_id__any=conversations, user_id__any=senders, conversation__deleted=False
        ).values_list("id", "conversation_id", "user_id", "conversation__kind", "conversation__direct_key"):
            self.memberships[(conversation_id, user_id)] = membership_id
            kinds[conversation_id] = (kind, pair)

        pending: list[int] = []
        first_by_key: dict[tuple[int, str], int] = {}
        peers: dict[int, int] = {}
        for index in candidates:
            request = requests[index]
            key = (request.sender_id, request.client_msg_id)
            if key in existing:
                stored = _as_stored(existing[key])
                self.outcomes[index] = SendOutcome(request, SendStatus.DUPLICATE, message=stored)
                continue
            if key in first_by_key:
                self.duplicate_of[index] = first_by_key[key]
                continue
            system = request.kind == MessageKind.SYSTEM
            if not system and (request.conversation_id, request.sender_id) not in self.memberships:
                self.reject(index, RejectCode.NOT_MEMBER, "You are not a member of this conversation.")
                continue
            if request.conversation_id not in self.last_seq:  # a system message to a missing conversation
                self.reject(index, RejectCode.INVALID, "No such conversation.")
                continue
            kind, direct_key = kinds.get(request.conversation_id, ("", ""))
            if not system and kind == ConversationKind.DIRECT:
                peers[index] = _direct_peer(direct_key, request.sender_id)
            first_by_key[key] = index
            pending.append(index)

        refused = self.relationship_rejections(peers) | self.reply_rejections(pending)
        accepted = [index for index in pending if index not in refused]
        # A later request with the key of one refused here (same sender) is refused the same way.
        for index, first in list(self.duplicate_of.items()):
            if first in refused:
                del self.duplicate_of[index]
                self.reject(index, *self.rejection_of(first))
        return accepted

    def rejection_of(self, index: int) -> tuple[RejectCode, str]:
        outcome = self.outcomes[index]
        assert outcome is not None
        return outcome.code or RejectCode.INVALID, outcome.reason

    def relationship_rejections(self, peers: dict[int, int]) -> set[int]:
        """Blocks (either way) and, when the setting asks for it, friendship, for direct conversations."""
        if not peers:
            return set()
        users = {self.requests[i].sender_id for i in peers} | set(peers.values())
        blocks = set(
            Block.objects.filter(user_id__any=users, blocked_id__any=users).values_list("user_id", "blocked_id")
        )
        friends: set[tuple[int, int]] = set()
        require_friendship = bool(settings.DIRECT_MESSAGES_REQUIRE_FRIENDSHIP)
        if require_friendship:
            senders = {self.requests[i].sender_id for i in peers}
            friends = set(
                Friendship.objects.filter(user_id__any=senders, friend_id__any=set(peers.values())).values_list(
                    "user_id", "friend_id"
                )
            )
        refused: set[int] = set()
        for index, peer in peers.items():
            sender = self.requests[index].sender_id
            if (sender, peer) in blocks:
                self.reject(index, RejectCode.BLOCKED, "You block this user: unblock them to send messages.")
            elif (peer, sender) in blocks:
                self.reject(index, RejectCode.BLOCKED, "This user is not accepting messages from you.")
            elif require_friendship and (sender, peer) not in friends:
                self.reject(index, RejectCode.NOT_FRIENDS, "You can only send direct messages to your friends.")
            else:
                continue
            refused.add(index)
        return refused

    def reply_rejections(self, pending: list[int]) -> set[int]:
        replying = [i for i in pending if self.requests[i].reply_to_id]
        if not replying:
            return set()
        ids = {self.requests[i].reply_to_id for i in replying}
        where = dict(Message.all_objects.filter(id__any=ids).values_list("id", "conversation_id"))
        refused: set[int] = set()
        for index in replying:
            request = self.requests[index]
            if where.get(request.reply_to_id) != request.conversation_id:
                self.reject(index, RejectCode.INVALID, "replyToId names no message of this conversation.")
                refused.add(index)
        return refused

    def store(self, accepted: list[int]) -> None:
        """Allocates seqs (input order within each conversation), inserts, moves senders' read positions."""
        requests = self.requests
        ids = generator().next_ids(len(accepted))
        now = timezone.now()
        next_seq = {cid: seq + 1 for cid, seq in self.last_seq.items()}
        last_id: dict[int, int] = {}
        rows: list[bulk.NewMessage] = []
        read_upto: dict[int, int] = {}
        for index, message_id in zip(accepted, ids, strict=True):
            request = requests[index]
            cid = request.conversation_id
            seq = next_seq[cid]
            next_seq[cid] = seq + 1
            last_id[cid] = message_id
            rows.append(
                (message_id, cid, seq, request.sender_id, request.client_msg_id, request.kind, request.body,
                 request.reply_to_id)
            )  # fmt: skip
            stored = StoredMessage(
                message_id, cid, seq, request.sender_id, request.client_msg_id, request.kind, request.body,
                request.reply_to_id, now,
            )  # fmt: skip
            self.outcomes[index] = SendOutcome(request, SendStatus.STORED, message=stored)
            membership_id = self.memberships.get((cid, request.sender_id))
            if membership_id is not None:
                read_upto[membership_id] = seq
        bulk.advance_seqs({cid: next_seq[cid] - 1 for cid in last_id}, last_id, now)
        bulk.insert_new_messages(rows, now)
        bulk.raise_read_positions(read_upto, now)


def _lock_conversations(conversation_ids: set[int]) -> dict[int, int]:
    """Locks the live conversations in id order (PostgreSQL; SQLite serialises writers on its own) and
    returns their last_seq, which stays ours until the transaction ends."""
    return dict(
        Conversation.objects.select_for_update()
        .filter(id__any=conversation_ids)
        .order_by("id")
        .values_list("id", "last_seq")
    )
