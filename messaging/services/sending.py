"""send_messages: the one write path of every message (realtime batches, REST sends, system messages).

A whole batch is one transaction with a fixed number of queries, however many messages it holds:

1. SELECT ... FOR UPDATE of the batch's conversations in id order, reading their last_seq, kind and
   direct key (which names both users of a direct conversation). Batches that share a conversation
   queue here (PostgreSQL; no deadlock: the order is fixed), so a retry of a message a concurrent
   batch is storing in the same conversation is seen by query 2;
2. the stored messages the batch's (sender, client_msg_id) keys already name (retries);
3. the live memberships of the batch's conversations: the member check, and the recipients that
   send_batch returns so that a caller pushing the messages needs no query of its own;
4. blocks between the two users of each direct conversation of the batch;
5. friendships of those pairs (only when DIRECT_MESSAGES_REQUIRE_FRIENDSHIP is on);
6. the replied-to messages (only when a request replies to one);
7. one UPDATE of every conversation of the batch: last_seq, last_message_id, updated_at;
8. one UPDATE of the senders' read positions, so nobody has their own messages as unread;
9. one INSERT of the messages: on PostgreSQL an INSERT from arrays for a small batch, COPY for a
   larger one (bulk.SMALL_INSERT_ROWS); executemany on SQLite.
On PostgreSQL 1-5 are one round trip and 7-9 another: every round trip made while the
conversations are locked is waited for by the batches queued behind them. Outside a caller's
transaction (the logic worker, the REST send) the BEGIN rides with 1-5 and the COMMIT with 7-9
(bulk.own_transaction), so a small batch costs two round trips in all (COPY adds two), and a small
batch's statements run prepared (planning them cost PostgreSQL more than running them).
The statements are written per database in bulk.py: the ORM's generic forms cost more CPU than the
database work at these batch sizes.

If the same (sender, client_msg_id) is meanwhile stored by a batch in another conversation, the
unique constraint stops the insert, the batch rolls back and runs again (it then answers duplicate).

A request that breaks a rule is rejected with a code and a reason; the others go on. A retried send
(same sender and client_msg_id, in an earlier batch or earlier in this one) is answered with the
first message, marked duplicate. Pushing stored messages to devices is the caller's job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

import msgspec
from django.conf import settings
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone

from imsite.snowflake import generator
from messaging.models import CLIENT_MSG_ID_MAX_LENGTH, ConversationKind, Message, MessageKind
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


# The send path's records are frozen msgspec Structs rather than frozen dataclasses: a few are made
# per message, and a Struct is built ten times faster (W5 profile). They hold no cycles, so they stay
# out of the garbage collector (gc=False), whose passes otherwise grow with every batch in hand.


class SendRequest(msgspec.Struct, frozen=True, gc=False):
    """One message to store: who sends it, where, and the sender's idempotency key."""

    sender_id: int
    conversation_id: int
    client_msg_id: str
    body: str
    kind: str = MessageKind.TEXT
    reply_to_id: int = 0


class StoredMessage(msgspec.Struct, frozen=True, gc=False):
    id: int
    conversation_id: int
    seq: int
    sender_id: int
    client_msg_id: str
    kind: str
    body: str
    reply_to_id: int
    created_at: datetime


class SendOutcome(msgspec.Struct, frozen=True, gc=False):
    """What became of one request: stored, duplicate (message is the first one) or rejected (code, reason)."""

    request: SendRequest
    status: SendStatus
    message: StoredMessage | None = None
    code: RejectCode | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not SendStatus.REJECTED


class SentBatch(msgspec.Struct, frozen=True):
    """send_batch's result: the outcomes in input order, and the live members' user ids of each live
    conversation of the batch, read in its transaction (the recipients of its pushes)."""

    outcomes: list[SendOutcome]
    members: dict[int, list[int]]


_KINDS = frozenset(MessageKind.values)  # Choices.values builds a new list on every access
_TEXT = MessageKind.TEXT.value  # a plain str compares faster than the enum member


def max_body_bytes() -> int:
    return int(getattr(settings, "MESSAGE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def send_messages(requests: Sequence[SendRequest], *, allow_system: bool = False) -> list[SendOutcome]:
    """Stores a batch; returns one outcome per request, in input order.

    allow_system lets the batch hold kind=system messages (group events posted by the services);
    they skip the member, block and friendship rules and the body size limit. Clients never set it.
    """
    return send_batch(requests, allow_system=allow_system).outcomes


def send_batch(requests: Sequence[SendRequest], *, allow_system: bool = False) -> SentBatch:
    """send_messages, also returning the members of the batch's conversations (see SentBatch)."""
    if not requests:
        return SentBatch([], {})
    # Outside a caller's transaction, on PostgreSQL, the batch's BEGIN and COMMIT ride with its reads
    # and writes (bulk.own_transaction); inside one, or on SQLite, it is an atomic block.
    own = connection.vendor == "postgresql" and not connection.in_atomic_block
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with bulk.own_transaction() if own else transaction.atomic():
                batch = _Batch(requests, allow_system=allow_system, own_transaction=own)
                return SentBatch(batch.run(), batch.members)
        except ProgrammingError as error:
            # A database session that lost the send path's prepared statements (a server-side
            # DISCARD, a pooler): own_transaction forgot them, and the next pass prepares them again.
            if not bulk.lost_prepared_statements(error) or attempt == ATTEMPTS:
                raise
            logger.warning("the send path's prepared statements were gone; preparing them again")
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


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_DB_INT


def _problem(request: SendRequest, *, limit: int, allow_system: bool) -> tuple[RejectCode, str] | None:
    """The first rule of the request's own fields it breaks, or None (no database needed)."""
    sender, conversation, cmid, body, reply_to = (
        request.sender_id, request.conversation_id, request.client_msg_id, request.body, request.reply_to_id
    )  # fmt: skip
    # The common case in a few tests (it runs for every message): plain ints and strings in range, a
    # text body of at most limit / 4 characters (so at most limit UTF-8 bytes) with no NUL.
    if (
        type(sender) is int
        and type(conversation) is int
        and type(reply_to) is int
        and type(cmid) is str
        and type(body) is str
        and 0 < sender <= MAX_DB_INT
        and 0 < conversation <= MAX_DB_INT
        and 0 <= reply_to <= MAX_DB_INT
        and 0 < len(cmid) <= CLIENT_MSG_ID_MAX_LENGTH
        and 0 < len(body) <= limit // 4
        and request.kind == _TEXT
        and "\x00" not in cmid
        and "\x00" not in body
        and not body.isspace()
        and body.isprintable()  # no lone surrogate either (those are not printable)
    ):
        return None
    return _first_problem(request, limit=limit, allow_system=allow_system)


def _first_problem(request: SendRequest, *, limit: int, allow_system: bool) -> tuple[RejectCode, str] | None:
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


def as_stored(row: Message, *, hide_body: bool = False) -> StoredMessage:
    """A message row as the send path returns it; hide_body for recalled or deleted ones read back."""
    return StoredMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        sender_id=row.sender_id,
        client_msg_id=row.client_msg_id,
        kind=row.kind,
        body="" if hide_body else row.body,
        reply_to_id=row.reply_to_id,
        created_at=row.created_at,
    )


def _lock_and_read(
    conversation_ids: set[int], keys: set[tuple[int, str]], *, friendships: bool, begin: bool
) -> bulk.BatchReads:
    """bulk.lock_and_read (a seam for the test of a send racing another send of the same message)."""
    return bulk.lock_and_read(conversation_ids, keys, friendships=friendships, begin=begin)


def _direct_peer(key: str, sender_id: int) -> int:
    low, _, high = key.partition(":")
    return int(high) if int(low) == sender_id else int(low)


class _Batch:
    """One pass over a batch inside the caller's transaction. Indexes are positions in the input."""

    def __init__(self, requests: Sequence[SendRequest], *, allow_system: bool, own_transaction: bool) -> None:
        self.requests = requests
        self.allow_system = allow_system
        self.own_transaction = own_transaction  # bulk.own_transaction: BEGIN with the reads, COMMIT with the writes
        self.outcomes: list[SendOutcome | None] = [None] * len(requests)
        self.duplicate_of: dict[int, int] = {}  # index -> index of the accepted request with the same key
        self.memberships: dict[tuple[int, int], int] = {}  # (conversation, user) -> live membership id
        self.members: dict[int, list[int]] = {}  # live conversation -> its live members' user ids
        self.last_seq: dict[int, int] = {}  # live conversation -> its last_seq, row locked
        self.reads = bulk.BatchReads({}, [], [], set(), set())
        self.require_friendship = False

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
        self.require_friendship = bool(settings.DIRECT_MESSAGES_REQUIRE_FRIENDSHIP)
        reads = _lock_and_read(
            {requests[i].conversation_id for i in candidates},
            {(requests[i].sender_id, requests[i].client_msg_id) for i in candidates},
            friendships=self.require_friendship,
            begin=self.own_transaction,
        )
        conversations = reads.conversations
        self.last_seq = {cid: seq for cid, (seq, _, _) in conversations.items()}
        self.reads = reads
        existing = {(row[3], row[4]): StoredMessage(*row) for row in reads.stored}
        members: dict[int, list[int]] = {cid: [] for cid in conversations}
        memberships = self.memberships
        for membership_id, conversation_id, user_id in reads.memberships:
            if conversation_id in members:
                memberships[(conversation_id, user_id)] = membership_id
                members[conversation_id].append(user_id)
        self.members = members

        pending: list[int] = []
        first_by_key: dict[tuple[int, str], int] = {}
        peers: dict[int, int] = {}
        system_kind = MessageKind.SYSTEM.value
        direct_kind = ConversationKind.DIRECT.value
        peer_of: dict[tuple[int, int], int] = {}
        for index in candidates:
            request = requests[index]
            key = (request.sender_id, request.client_msg_id)
            if key in existing:
                self.outcomes[index] = SendOutcome(request, SendStatus.DUPLICATE, message=existing[key])
                continue
            if key in first_by_key:
                self.duplicate_of[index] = first_by_key[key]
                continue
            cid = request.conversation_id
            system = request.kind == system_kind
            if not system and (cid, request.sender_id) not in memberships:
                self.reject(index, RejectCode.NOT_MEMBER, "You are not a member of this conversation.")
                continue
            conversation = conversations.get(cid)
            if conversation is None:  # a system message to a missing conversation
                self.reject(index, RejectCode.INVALID, "No such conversation.")
                continue
            if not system and conversation[1] == direct_kind:
                peer = peer_of.get((cid, request.sender_id))
                if peer is None:
                    peer = peer_of[(cid, request.sender_id)] = _direct_peer(conversation[2], request.sender_id)
                peers[index] = peer
            first_by_key[key] = index
            pending.append(index)

        refused = self.relationship_rejections(peers) | self.reply_rejections(pending)
        accepted = [index for index in pending if index not in refused] if refused else pending
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
        # One (sender, peer) pair per conversation and sender, however many messages it sends.
        pairs = {(self.requests[i].sender_id, peer) for i, peer in peers.items()}
        blocks, friends = self.reads.blocks, self.reads.friendships
        require_friendship = self.require_friendship
        refusals: dict[tuple[int, int], tuple[RejectCode, str]] = {}
        for sender, peer in pairs:
            if (sender, peer) in blocks:
                refusals[(sender, peer)] = (
                    RejectCode.BLOCKED,
                    "You block this user: unblock them to send messages.",
                )
            elif (peer, sender) in blocks:
                refusals[(sender, peer)] = (RejectCode.BLOCKED, "This user is not accepting messages from you.")
            elif require_friendship and (sender, peer) not in friends:
                refusals[(sender, peer)] = (
                    RejectCode.NOT_FRIENDS,
                    "You can only send direct messages to your friends.",
                )
        if not refusals:
            return set()
        refused: set[int] = set()
        for index, peer in peers.items():
            refusal = refusals.get((self.requests[index].sender_id, peer))
            if refusal is not None:
                self.reject(index, *refusal)
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
        outcomes = self.outcomes
        memberships = self.memberships
        ids = generator().next_ids(len(accepted))
        now = timezone.now()
        next_seq = {cid: seq + 1 for cid, seq in self.last_seq.items()}
        last_id: dict[int, int] = {}
        rows: list[bulk.NewMessage] = []
        read_upto: dict[int, int] = {}
        stored = SendStatus.STORED
        for index, message_id in zip(accepted, ids, strict=True):
            request = requests[index]
            cid = request.conversation_id
            sender = request.sender_id
            seq = next_seq[cid]
            next_seq[cid] = seq + 1
            last_id[cid] = message_id
            row = (message_id, cid, seq, sender, request.client_msg_id, request.kind, request.body, request.reply_to_id)
            rows.append(row)
            outcomes[index] = SendOutcome(request, stored, StoredMessage(*row, now))
            membership_id = memberships.get((cid, sender))
            if membership_id is not None:
                read_upto[membership_id] = seq
        bulk.record_sends(
            rows, {cid: next_seq[cid] - 1 for cid in last_id}, last_id, read_upto, now, commit=self.own_transaction
        )
