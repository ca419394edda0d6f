"""Conversation writes and their rules: direct conversations, groups and roles, read state, recall.

Every group change posts a system message into the group through send_messages (the same write path
as every other message), in the same transaction. Each function returns a frozen dataclass; the
system message it posted rides along so the caller can push it to online members.

Group rules:
- Anyone active who does not block the creator (and whom the creator does not block) can be put in
  a group; a group holds at most GROUP_MAX_MEMBERS members, the owner included.
- The owner and admins change the name and avatar and add members. The owner removes anyone but
  themselves; admins remove plain members only; plain members remove nobody.
- Only the owner sets roles (admin or member) and hands the group over (the old owner becomes an
  admin). The owner cannot leave while others remain; the last member leaving dissolves the group.
- Non-members are told a group does not exist (404); members lacking a role are told why (403).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from friends.models import Block
from friends.selectors import are_friends
from imsite.errors import Blocked, Conflict, Forbidden, InvalidInput, NotFound
from imsite.snowflake import next_id
from messaging.models import (
    AVATAR_MAX_LENGTH,
    GROUP_NAME_MAX_LENGTH,
    Conversation,
    ConversationKind,
    MemberRole,
    Membership,
    Message,
    MessageKind,
    direct_key,
)
from messaging.services.sending import SendRequest, StoredMessage, as_stored, send_messages

MANAGER_ROLES = (MemberRole.OWNER, MemberRole.ADMIN)


class GroupEvent(StrEnum):
    GROUP_CREATED = "group_created"
    GROUP_UPDATED = "group_updated"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    MEMBER_LEFT = "member_left"
    OWNER_CHANGED = "owner_changed"
    ROLE_CHANGED = "role_changed"
    GROUP_DISSOLVED = "group_dissolved"


@dataclass(frozen=True)
class DirectConversation:
    conversation_id: int
    created: bool


@dataclass(frozen=True)
class GroupChange:
    """What a group operation did; system_message is None when nothing changed (or nobody is left)."""

    conversation_id: int
    event: GroupEvent
    user_ids: tuple[int, ...] = ()
    system_message: StoredMessage | None = None


@dataclass(frozen=True)
class ReadState:
    conversation_id: int
    user_id: int
    last_read_seq: int
    changed: bool


@dataclass(frozen=True)
class RecallResult:
    message_id: int
    conversation_id: int
    seq: int
    changed: bool


# --- direct conversations


def get_or_create_direct_conversation(actor: User, *, other_user_id: int) -> DirectConversation:
    """The one direct conversation of actor and other_user_id, created (with both members) on first use."""
    if other_user_id == actor.id:
        raise InvalidInput("You cannot open a direct conversation with yourself.", field="userId")
    other = User.objects.filter(id=other_user_id, is_active=True).first()
    if other is None:
        raise NotFound(f"No user with id {other_user_id}.", field="userId")
    if Block.objects.filter(user_id=actor.id, blocked_id=other.id).exists():
        raise Blocked(f"You block {other.username}: unblock them first.", field="userId")
    if Block.objects.filter(user_id=other.id, blocked_id=actor.id).exists():
        raise Blocked(f"{other.username} is not accepting messages from you.", field="userId")
    if settings.DIRECT_MESSAGES_REQUIRE_FRIENDSHIP and not are_friends(actor.id, other.id):
        raise Forbidden(
            f"You can only message your friends: send {other.username} a friend request first.", field="userId"
        )
    key = direct_key(actor.id, other.id)
    existing = _direct_conversation_id(key)
    if existing is not None:
        return DirectConversation(conversation_id=existing, created=False)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(kind=ConversationKind.DIRECT, direct_key=key, member_count=2)
            Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user_id=user_id, role=MemberRole.MEMBER)
                    for user_id in (actor.id, other.id)
                ]
            )
    except IntegrityError:
        # Both opened it at once: the other request's row won the unique direct key.
        winner = Conversation.objects.get(kind=ConversationKind.DIRECT, direct_key=key)
        return DirectConversation(conversation_id=winner.id, created=False)
    return DirectConversation(conversation_id=conversation.id, created=True)


def _direct_conversation_id(key: str) -> int | None:
    found: int | None = (
        Conversation.objects.filter(kind=ConversationKind.DIRECT, direct_key=key).values_list("id", flat=True).first()
    )
    return found


# --- groups: helpers


def _post_event(actor: User, conversation_id: int, event: GroupEvent, **fields: Any) -> StoredMessage:
    """Posts the system message of a group change, through the one write path."""
    body = json.dumps({"event": event.value, "actorId": str(actor.id), **fields}, separators=(",", ":"))
    request = SendRequest(
        sender_id=actor.id,
        conversation_id=conversation_id,
        client_msg_id=f"sys-{next_id()}",
        body=body,
        kind=MessageKind.SYSTEM,
    )
    (outcome,) = send_messages([request], allow_system=True)
    if outcome.message is None:
        raise RuntimeError(f"system message of {event} refused: {outcome.code} {outcome.reason}")
    # Not imported at the top: messaging.notify imports this package (through wire and the worker).
    from messaging.notify import push_message_on_commit

    # Members who leave or are removed get the notice too: it is how their devices learn of it.
    departed = fields.get("userIds", ()) if event in (GroupEvent.MEMBER_LEFT, GroupEvent.MEMBER_REMOVED) else ()
    push_message_on_commit(outcome.message, also=(int(user_id) for user_id in departed))
    return outcome.message


def _id_strings(user_ids: Iterable[int]) -> list[str]:
    return [str(user_id) for user_id in user_ids]


def _clean_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise InvalidInput("The group name must not be empty.", field="name")
    if len(cleaned) > GROUP_NAME_MAX_LENGTH:
        raise InvalidInput(f"The group name is longer than {GROUP_NAME_MAX_LENGTH} characters.", field="name")
    return cleaned


def _unique(user_ids: Iterable[int], *, without: int) -> list[int]:
    return [user_id for user_id in dict.fromkeys(user_ids) if user_id != without]


def _max_members() -> int:
    return int(settings.GROUP_MAX_MEMBERS)


def _check_size(count: int, *, field: str) -> None:
    limit = _max_members()
    if count > limit:
        raise InvalidInput(f"A group holds at most {limit} members; this one would have {count}.", field=field)


def _addable_users(actor: User, user_ids: list[int], *, field: str) -> list[User]:
    """The users, all active, none blocking the actor or blocked by them; raises naming the first that is not."""
    users = {user.id: user for user in User.objects.filter(id__in=user_ids, is_active=True)}
    missing = [user_id for user_id in user_ids if user_id not in users]
    if missing:
        raise NotFound(f"No user with id {missing[0]}.", field=field)
    for blocker, blocked in Block.objects.filter(
        Q(user_id=actor.id, blocked_id__in=user_ids) | Q(user_id__in=user_ids, blocked_id=actor.id)
    ).values_list("user_id", "blocked_id"):
        if blocker == actor.id:
            raise Blocked(f"You block {users[blocked].username}: unblock them first.", field=field)
        raise Blocked(f"{users[blocker].username} cannot be added by you.", field=field)
    return [users[user_id] for user_id in user_ids]


def _locked_group(actor: User, conversation_id: int) -> tuple[Conversation, Membership]:
    """The group (row locked) and actor's live membership; NotFound for non-members."""
    conversation = (
        Conversation.objects.select_for_update().filter(id=conversation_id, kind=ConversationKind.GROUP).first()
    )
    membership = (
        Membership.objects.filter(conversation_id=conversation_id, user_id=actor.id).first()
        if conversation is not None
        else None
    )
    if conversation is None or membership is None:
        raise NotFound(f"No group with id {conversation_id}.")
    return conversation, membership


def _member(conversation: Conversation, user_id: int, *, field: str = "userId") -> Membership:
    membership: Membership | None = Membership.objects.filter(conversation_id=conversation.id, user_id=user_id).first()
    if membership is None:
        raise NotFound(f"User {user_id} is not a member of this group.", field=field)
    return membership


def _require_manager(membership: Membership, what: str) -> None:
    if membership.role not in MANAGER_ROLES:
        raise Forbidden(f"Only the owner and admins can {what}.")


def _change_member_count(conversation: Conversation, delta: int) -> None:
    Conversation.objects.filter(id=conversation.id).update(
        member_count=F("member_count") + delta, updated_at=timezone.now()
    )


# --- groups: operations


def create_group(actor: User, *, name: str, member_ids: Iterable[int]) -> GroupChange:
    """A new group owned by actor with the given members (actor is added as owner)."""
    cleaned = _clean_name(name)
    user_ids = _unique(member_ids, without=actor.id)
    _check_size(len(user_ids) + 1, field="memberIds")
    with transaction.atomic():
        _addable_users(actor, user_ids, field="memberIds")
        conversation = Conversation.objects.create(
            kind=ConversationKind.GROUP, name=cleaned, owner=actor, member_count=len(user_ids) + 1
        )
        Membership.objects.bulk_create(
            [Membership(conversation=conversation, user=actor, role=MemberRole.OWNER)]
            + [Membership(conversation=conversation, user_id=uid, role=MemberRole.MEMBER) for uid in user_ids]
        )
        message = _post_event(
            actor, conversation.id, GroupEvent.GROUP_CREATED, name=cleaned, userIds=_id_strings(user_ids)
        )
    return GroupChange(conversation.id, GroupEvent.GROUP_CREATED, tuple(user_ids), message)


def update_group(
    actor: User, *, conversation_id: int, name: str | None = None, avatar: str | None = None
) -> GroupChange:
    """Renames the group or changes its avatar (owner and admins)."""
    if name is None and avatar is None:
        raise InvalidInput("Send a new name or avatar.")
    cleaned = _clean_name(name) if name is not None else None
    if avatar is not None and len(avatar) > AVATAR_MAX_LENGTH:
        raise InvalidInput(f"The avatar URL is longer than {AVATAR_MAX_LENGTH} characters.", field="avatar")
    with transaction.atomic():
        conversation, membership = _locked_group(actor, conversation_id)
        _require_manager(membership, "change the group")
        changes: dict[str, str] = {}
        if cleaned is not None and cleaned != conversation.name:
            changes["name"] = cleaned
        if avatar is not None and avatar != conversation.avatar:
            changes["avatar"] = avatar
        if not changes:
            return GroupChange(conversation.id, GroupEvent.GROUP_UPDATED)
        for attribute, value in changes.items():
            setattr(conversation, attribute, value)
        conversation.save(update_fields=[*changes, "updated_at"])
        message = _post_event(actor, conversation.id, GroupEvent.GROUP_UPDATED, **changes)
    return GroupChange(conversation.id, GroupEvent.GROUP_UPDATED, (), message)


def add_group_members(actor: User, *, conversation_id: int, user_ids: Iterable[int]) -> GroupChange:
    """Adds users (owner and admins); users already in the group are left as they are."""
    requested = _unique(user_ids, without=actor.id)
    with transaction.atomic():
        conversation, membership = _locked_group(actor, conversation_id)
        _require_manager(membership, "add members")
        present = set(
            Membership.objects.filter(conversation_id=conversation.id, user_id__in=requested).values_list(
                "user_id", flat=True
            )
        )
        new_ids = [user_id for user_id in requested if user_id not in present]
        if not new_ids:
            return GroupChange(conversation.id, GroupEvent.MEMBER_ADDED)
        _check_size(conversation.member_count + len(new_ids), field="userIds")
        _addable_users(actor, new_ids, field="userIds")
        Membership.objects.bulk_create(
            # Newcomers start read up to now: the history before they joined is not unread for them.
            Membership(
                conversation=conversation, user_id=uid, role=MemberRole.MEMBER, last_read_seq=conversation.last_seq
            )
            for uid in new_ids
        )
        _change_member_count(conversation, len(new_ids))
        message = _post_event(actor, conversation.id, GroupEvent.MEMBER_ADDED, userIds=_id_strings(new_ids))
    return GroupChange(conversation.id, GroupEvent.MEMBER_ADDED, tuple(new_ids), message)


def remove_group_member(actor: User, *, conversation_id: int, user_id: int) -> GroupChange:
    """Removes a member: the owner removes anyone else, admins remove plain members only."""
    with transaction.atomic():
        conversation, membership = _locked_group(actor, conversation_id)
        if user_id == actor.id:
            raise InvalidInput("To remove yourself, leave the group instead.", field="userId")
        _require_manager(membership, "remove members")
        target = _member(conversation, user_id)
        if membership.role == MemberRole.ADMIN and target.role != MemberRole.MEMBER:
            raise Forbidden("Admins can remove plain members only, not the owner or other admins.")
        target.soft_delete()
        _change_member_count(conversation, -1)
        message = _post_event(actor, conversation.id, GroupEvent.MEMBER_REMOVED, userIds=[str(user_id)])
    return GroupChange(conversation.id, GroupEvent.MEMBER_REMOVED, (user_id,), message)


def leave_group(actor: User, *, conversation_id: int) -> GroupChange:
    """Actor leaves; the owner must hand the group over first unless nobody else is left."""
    with transaction.atomic():
        conversation, membership = _locked_group(actor, conversation_id)
        others = Membership.objects.filter(conversation_id=conversation.id).exclude(id=membership.id).exists()
        if membership.role == MemberRole.OWNER and others:
            raise Conflict("The owner cannot leave the group: hand it over to another member first.")
        if not others:
            membership.soft_delete()
            conversation.member_count = 0
            conversation.deleted = True
            conversation.save(update_fields=["member_count", "deleted", "updated_at"])
            return GroupChange(conversation.id, GroupEvent.GROUP_DISSOLVED, (actor.id,))
        message = _post_event(actor, conversation.id, GroupEvent.MEMBER_LEFT, userIds=[str(actor.id)])
        membership.soft_delete()
        _change_member_count(conversation, -1)
    return GroupChange(conversation.id, GroupEvent.MEMBER_LEFT, (actor.id,), message)


def transfer_group_ownership(actor: User, *, conversation_id: int, new_owner_id: int) -> GroupChange:
    """The owner hands the group to another member and becomes an admin."""
    with transaction.atomic():
        conversation, membership = _locked_group(actor, conversation_id)
        if membership.role != MemberRole.OWNER:
            raise Forbidden("Only the owner can hand the group over.")
        if new_owner_id == actor.id:
            raise InvalidInput("You already own this group.", field="userId")
        target = _member(conversation, new_owner_id)
        target.role = MemberRole.OWNER
        target.save(update_fields=["role", "updated_at"])
        membership.role = MemberRole.ADMIN
        membership.save(update_fields=["role", "updated_at"])
        conversation.owner_id = new_owner_id
        conversation.save(update_fields=["owner", "updated_at"])
        message = _post_event(actor, conversation.id, GroupEvent.OWNER_CHANGED, userIds=[str(new_owner_id)])
    return GroupChange(conversation.id, GroupEvent.OWNER_CHANGED, (new_owner_id,), message)


def set_member_role(actor: User, *, conversation_id: int, user_id: int, role: str) -> GroupChange:
    """The owner makes a member an admin or an admin a plain member."""
    if role not in (MemberRole.ADMIN, MemberRole.MEMBER):
        raise InvalidInput(
            "role must be 'admin' or 'member'; to hand the group over, transfer ownership.", field="role"
        )
    with transaction.atomic():
        conversation, membership = _locked_group(actor, conversation_id)
        if membership.role != MemberRole.OWNER:
            raise Forbidden("Only the owner can change roles.")
        if user_id == actor.id:
            raise InvalidInput("The owner's role changes only by handing the group over.", field="userId")
        target = _member(conversation, user_id)
        if target.role == role:
            return GroupChange(conversation.id, GroupEvent.ROLE_CHANGED, (user_id,))
        target.role = role
        target.save(update_fields=["role", "updated_at"])
        message = _post_event(actor, conversation.id, GroupEvent.ROLE_CHANGED, userIds=[str(user_id)], role=role)
    return GroupChange(conversation.id, GroupEvent.ROLE_CHANGED, (user_id,), message)


# --- read state and recall


def mark_read(actor: User, *, conversation_id: int, seq: int) -> ReadState:
    """Moves actor's read position forward to seq (never back, never past the conversation's last seq)."""
    return mark_read_by_id(actor.id, conversation_id=conversation_id, seq=seq)


def mark_read_by_id(user_id: int, *, conversation_id: int, seq: int) -> ReadState:
    """mark_read for callers that hold a user id, not a User (the logic worker's read receipts)."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidInput("seq must be a non-negative integer.", field="seq")
    membership: Membership | None = (
        Membership.objects.select_related("conversation")
        .filter(conversation_id=conversation_id, user_id=user_id, conversation__deleted=False)
        .first()
    )
    if membership is None:
        raise NotFound(f"No conversation with id {conversation_id}.")
    target = min(seq, membership.conversation.last_seq)
    changed = bool(
        target > membership.last_read_seq
        and Membership.objects.filter(id=membership.id, last_read_seq__lt=target).update(
            last_read_seq=target, updated_at=timezone.now()
        )
    )
    current = max(target, membership.last_read_seq)
    if target > membership.last_read_seq and not changed:
        # Another device moved it further in the meantime: report where it is now.
        current = Membership.objects.values_list("last_read_seq", flat=True).get(id=membership.id)
    return ReadState(conversation_id=conversation_id, user_id=user_id, last_read_seq=current, changed=changed)


def recall_message(actor: User | None, *, message_id: int) -> RecallResult:
    """Marks a message recalled (its body is no longer shown). actor None: the system; else staff or the sender."""
    with transaction.atomic():
        message = Message.all_objects.select_for_update().filter(id=message_id).first()
        if message is None:
            raise NotFound(f"No message with id {message_id}.")
        if actor is not None and not actor.is_staff and actor.id != message.sender_id:
            raise Forbidden("Only the sender or an administrator can recall a message.")
        changed = not message.recalled
        if changed:
            message.recalled = True
            message.save(update_fields=["recalled", "updated_at"])
            from messaging.notify import push_message_on_commit  # not at the top: see _post_event

            push_message_on_commit(as_stored(message), recalled=True)
    return RecallResult(
        message_id=message.id, conversation_id=message.conversation_id, seq=message.seq, changed=changed
    )
