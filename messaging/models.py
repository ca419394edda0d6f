"""Conversations (direct and group), who belongs to them, and the messages in them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from imsite.models import BaseModel, string_field, text_field

GROUP_NAME_MAX_LENGTH = 64
AVATAR_MAX_LENGTH = 512
CLIENT_MSG_ID_MAX_LENGTH = 64


class ConversationKind(models.TextChoices):
    DIRECT = "direct", "Direct"
    GROUP = "group", "Group"


class MemberRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    SYSTEM = "system", "System"


def direct_key(user_id: int, other_id: int) -> str:
    """The key that makes one direct conversation per pair of users, whoever opened it."""
    low, high = sorted((user_id, other_id))
    return f"{low}:{high}"


class Conversation(BaseModel):
    kind = string_field(16, "direct or group", choices=ConversationKind.choices)
    name = string_field(GROUP_NAME_MAX_LENGTH, "Group name; empty for direct conversations")
    avatar = string_field(AVATAR_MAX_LENGTH, "Group avatar image URL")
    owner = models.ForeignKey(
        User,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        db_comment="Group owner; null for direct conversations",
    )
    last_seq = models.BigIntegerField(default=0, db_comment="Seq of the newest message (0: no message yet)")
    last_message_id = models.BigIntegerField(default=0, db_comment="Id of the newest message (0: none)")
    member_count = models.IntegerField(default=0, db_comment="Live memberships, kept with every join and leave")
    direct_key = string_field(
        48, "Direct conversations: '<lower user id>:<higher user id>', unique among live ones; empty for groups"
    )

    class Meta:
        db_table = "messaging_conversation"
        db_table_comment = "Conversations: direct (two users) and groups"
        constraints = [
            models.UniqueConstraint(
                fields=["direct_key"],
                condition=Q(kind="direct", deleted=False),
                name="conversation_direct_key_unique_live",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == ConversationKind.DIRECT:
            return f"direct {self.direct_key}"
        return f"group {self.name or self.id}"


class Membership(BaseModel):
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="memberships",
        db_comment="The conversation",
    )
    user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_comment="The member"
    )
    role = string_field(16, "owner, admin or member (direct conversations: member)", choices=MemberRole.choices)
    last_read_seq = models.BigIntegerField(default=0, db_comment="Highest seq the member has read")
    muted = models.BooleanField(default=False, db_comment="Notifications muted by the member")
    joined_at = models.DateTimeField(default=timezone.now, db_comment="When the member joined")

    class Meta:
        db_table = "messaging_membership"
        db_table_comment = "Members of conversations: one live row per (conversation, user); leaving soft-deletes it"
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "user"], condition=Q(deleted=False), name="membership_unique_live"
            ),
        ]
        indexes = [models.Index(fields=["user", "deleted"], name="membership_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id} ({self.role})"


class Message(BaseModel):
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="messages",
        db_index=False,  # (conversation, seq) leads with it: a second index only slows inserts
        db_comment="The conversation",
    )
    seq = models.BigIntegerField(db_comment="Position in the conversation: 1, 2, 3 ... with no gaps")
    sender = models.ForeignKey(
        User,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        db_index=False,  # (sender, client_msg_id) leads with it
        db_comment="Who sent it",
    )
    client_msg_id = string_field(
        CLIENT_MSG_ID_MAX_LENGTH, "Sender-chosen id that makes retries idempotent; 'sys-<id>' for system messages"
    )
    kind = string_field(16, "text or system", choices=MessageKind.choices)
    body = text_field("Text; for system messages a JSON event")
    reply_to_id = models.BigIntegerField(default=0, db_comment="Id of the message replied to (0: none)")
    edited_at = models.DateTimeField(null=True, blank=True, db_comment="When the body was last edited")
    recalled = models.BooleanField(default=False, db_comment="Recalled: the body is no longer shown")

    class Meta:
        db_table = "messaging_message"
        db_table_comment = "Messages; (conversation, seq) is unique and serves history paging"
        constraints = [
            # Also the index of history paging and sync: (conversation, seq) range scans.
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_conversation_seq_unique"),
            models.UniqueConstraint(fields=["sender", "client_msg_id"], name="message_sender_client_msg_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq}"
