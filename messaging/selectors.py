"""Reads of the messaging app: the conversation list and message history. Nothing here changes a row.

Only members read a conversation; to anyone else it does not exist (NotFound). Recalled and
soft-deleted messages keep their seq (clients sync by seq and must see no gap) but lose their body.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from accounts.models import User
from imsite.errors import InvalidInput, NotFound
from messaging.models import Membership, Message
from messaging.services.sending import StoredMessage, as_stored

MEMBERS_INLINE_LIMIT = 20
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200


@dataclass(frozen=True)
class MemberProfile:
    """A member's public profile and role."""

    id: int
    username: str
    nickname: str
    avatar: str
    role: str


@dataclass(frozen=True)
class MessageView:
    id: int
    conversation_id: int
    seq: int
    sender_id: int
    client_msg_id: str
    kind: str
    body: str
    reply_to_id: int | None
    created_at: datetime
    edited_at: datetime | None
    recalled: bool


@dataclass(frozen=True)
class ConversationSummary:
    """One row of a user's conversation list; members is None for conversations above the inline limit."""

    id: int
    kind: str
    name: str
    avatar: str
    owner_id: int | None
    members: list[MemberProfile] | None
    member_count: int
    last_seq: int
    last_message: MessageView | None
    unread_count: int
    last_read_seq: int
    muted: bool
    role: str


@dataclass(frozen=True)
class HistoryPage:
    messages: list[MessageView]
    has_more: bool


def message_view(message: Message) -> MessageView:
    hidden = message.recalled or message.deleted
    return MessageView(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sender_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        kind=message.kind,
        body="" if hidden else message.body,
        reply_to_id=message.reply_to_id or None,
        created_at=message.created_at,
        edited_at=message.edited_at,
        recalled=hidden,
    )


def _profile(user: User, role: str) -> MemberProfile:
    return MemberProfile(id=user.id, username=user.username, nickname=user.nickname, avatar=user.avatar, role=role)


def _summaries(memberships: list[Membership]) -> list[ConversationSummary]:
    """Three queries in all: the memberships (by the caller), the last messages, the small groups' members."""
    last_ids = [m.conversation.last_message_id for m in memberships if m.conversation.last_message_id]
    last_messages = {message.conversation_id: message for message in Message.all_objects.filter(id__in=last_ids)}
    small = [m.conversation_id for m in memberships if m.conversation.member_count <= MEMBERS_INLINE_LIMIT]
    members: dict[int, list[MemberProfile]] = defaultdict(list)
    if small:
        for member in (
            Membership.objects.filter(conversation_id__in=small).select_related("user").order_by("joined_at", "id")
        ):
            members[member.conversation_id].append(_profile(member.user, member.role))
    out: list[ConversationSummary] = []
    for membership in memberships:
        conversation = membership.conversation
        last = last_messages.get(conversation.id)
        out.append(
            ConversationSummary(
                id=conversation.id,
                kind=conversation.kind,
                name=conversation.name,
                avatar=conversation.avatar,
                owner_id=conversation.owner_id,
                members=members[conversation.id] if conversation.id in small else None,
                member_count=conversation.member_count,
                last_seq=conversation.last_seq,
                last_message=message_view(last) if last is not None else None,
                unread_count=max(conversation.last_seq - membership.last_read_seq, 0),
                last_read_seq=membership.last_read_seq,
                muted=membership.muted,
                role=membership.role,
            )
        )
    return out


def _memberships_of(user: User, conversation_ids: Iterable[int] | None = None) -> list[Membership]:
    queryset = Membership.objects.filter(user_id=user.id, conversation__deleted=False).select_related("conversation")
    if conversation_ids is not None:
        queryset = queryset.filter(conversation_id__in=conversation_ids)
    return list(queryset.order_by("-conversation__updated_at", "-conversation_id"))


def list_conversations(user: User) -> list[ConversationSummary]:
    """Every conversation of the user, most recently active first, in three queries."""
    return _summaries(_memberships_of(user))


def conversation_for(user: User, conversation_id: int) -> ConversationSummary:
    """One conversation as list_conversations shows it; NotFound unless user is a member."""
    memberships = _memberships_of(user, [conversation_id])
    if not memberships:
        raise NotFound(f"No conversation with id {conversation_id}.")
    return _summaries(memberships)[0]


def member_ids_by_conversation(conversation_ids: Iterable[int]) -> dict[int, list[int]]:
    """The live members' user ids of each live conversation, in one query (pushes, typing, read updates)."""
    members: dict[int, list[int]] = defaultdict(list)
    for conversation_id, user_id in Membership.objects.filter(
        conversation_id__any=set(conversation_ids), conversation__deleted=False
    ).values_list("conversation_id", "user_id"):
        members[conversation_id].append(user_id)
    return dict(members)


def is_member(user_id: int, conversation_id: int) -> bool:
    member: bool = Membership.objects.filter(
        conversation_id=conversation_id, user_id=user_id, conversation__deleted=False
    ).exists()
    return member


def history(
    user: User,
    conversation_id: int,
    *,
    before_seq: int | None = None,
    after_seq: int | None = None,
    limit: int = HISTORY_DEFAULT_LIMIT,
) -> HistoryPage:
    """A page of messages in ascending seq order.

    before_seq: the newest `limit` messages below it (no cursor: the newest page); has_more says older
    ones remain. after_seq: the oldest `limit` messages above it; has_more says newer ones remain.
    """
    if before_seq is not None and after_seq is not None:
        raise InvalidInput("Send beforeSeq or afterSeq, not both.")
    if not 1 <= limit <= HISTORY_MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {HISTORY_MAX_LIMIT}.", field="limit")
    if not is_member(user.id, conversation_id):
        raise NotFound(f"No conversation with id {conversation_id}.")
    messages = Message.all_objects.filter(conversation_id=conversation_id)
    if after_seq is not None:
        rows = list(messages.filter(seq__gt=after_seq).order_by("seq")[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
    else:
        if before_seq is not None:
            messages = messages.filter(seq__lt=before_seq)
        rows = list(messages.order_by("-seq")[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit][::-1]
    return HistoryPage(messages=[message_view(row) for row in rows], has_more=has_more)


def messages_after(
    user_id: int, *, conversation_id: int, after_seq: int, limit: int = HISTORY_MAX_LIMIT
) -> tuple[list[StoredMessage], bool] | None:
    """The logic worker's sync: up to `limit` messages above after_seq in seq order and whether more
    remain; None when user_id is not a member. Recalled and deleted messages come with an empty body."""
    return messages_after_many([SyncCursor(user_id, conversation_id, after_seq)], limit=limit)[0]


class SyncCursor(NamedTuple):
    user_id: int
    conversation_id: int
    after_seq: int


def messages_after_many(
    cursors: Sequence[SyncCursor], *, limit: int = HISTORY_MAX_LIMIT
) -> list[tuple[list[StoredMessage], bool] | None]:
    """messages_after for many cursors at once, in their order: one membership query, and one query
    for the pages of a round of conversations (a conversation asked from two different seqs takes a
    round each). A node that restarts sends hundreds of Syncs at once, mostly for the same
    conversations from the same seqs (a group's members): two queries per cursor were most of the
    logic worker's time while its clients reconnected."""
    if not cursors:
        return []
    bounded = max(1, min(limit, HISTORY_MAX_LIMIT))
    members = set(
        Membership.objects.filter(
            conversation_id__in={c.conversation_id for c in cursors},
            user_id__in={c.user_id for c in cursors},
            conversation__deleted=False,
        ).values_list("user_id", "conversation_id")
    )
    wanted = {(c.conversation_id, c.after_seq) for c in cursors if (c.user_id, c.conversation_id) in members}
    pages: dict[tuple[int, int], tuple[list[StoredMessage], bool]] = {}
    rounds: list[dict[int, int]] = []  # conversation id -> after_seq, each conversation once a round
    for conversation_id, after_seq in sorted(wanted):
        free = next((r for r in rounds if conversation_id not in r), None)
        if free is None:
            free = {}
            rounds.append(free)
        free[conversation_id] = after_seq
    for round_ in rounds:
        rows: dict[int, list[Message]] = defaultdict(list)
        for row in _pages_of(round_, bounded + 1):
            rows[row.conversation_id].append(row)
        for conversation_id, after_seq in round_.items():
            found = rows[conversation_id]
            page = [as_stored(row, hide_body=row.recalled or row.deleted) for row in found[:bounded]]
            pages[(conversation_id, after_seq)] = (page, len(found) > bounded)
    return [
        pages[(c.conversation_id, c.after_seq)] if (c.user_id, c.conversation_id) in members else None for c in cursors
    ]


def _pages_of(after_seqs: dict[int, int], rows_each: int) -> list[Message]:
    """Up to rows_each messages of each conversation above its seq, in (conversation, seq) order."""
    above = Q()
    for conversation_id, after_seq in after_seqs.items():
        above |= Q(conversation_id=conversation_id, seq__gt=max(after_seq, 0))
    numbered = (
        Message.all_objects.filter(above)
        .annotate(place=Window(RowNumber(), partition_by=[F("conversation_id")], order_by=F("seq").asc()))
        .filter(place__lte=rows_each)
        .order_by("conversation_id", "seq")
    )
    return list(numbered)


def stored_message(message_id: int) -> MessageView:
    """A message the logic worker has just acknowledged."""
    return message_view(Message.all_objects.get(id=message_id))
