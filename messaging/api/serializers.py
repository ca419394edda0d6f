"""Request validation and response shapes of the conversation, history, read and group endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from imsite.api.fields import MAX_ID, IdField, StrictCharField
from messaging.models import (
    AVATAR_MAX_LENGTH,
    CLIENT_MSG_ID_MAX_LENGTH,
    GROUP_NAME_MAX_LENGTH,
    ConversationKind,
    MemberRole,
    MessageKind,
)
from messaging.selectors import HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT

# A hard cap on ids in one request, whatever GROUP_MAX_MEMBERS says (the services check that one).
MAX_IDS_PER_REQUEST = 10_000


class StrictIntegerField(serializers.IntegerField):
    """An IntegerField for JSON bodies: a JSON number only, not "3", 3.0 or true."""

    default_error_messages = {"not_an_integer": "Must be an integer (a JSON number)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


def _seq_field(**kwargs: Any) -> serializers.IntegerField:
    """A seq in a query string (text that holds an integer)."""
    return serializers.IntegerField(min_value=0, max_value=MAX_ID, **kwargs)


# --- requests


class DirectConversationRequestSerializer(serializers.Serializer[Any]):
    user_id = IdField(help_text="The other user.")


class HistoryQuerySerializer(serializers.Serializer[Any]):
    before_seq = _seq_field(required=False, help_text="The newest page below this seq.")
    after_seq = _seq_field(required=False, help_text="The oldest page above this seq.")
    limit = serializers.IntegerField(min_value=1, max_value=HISTORY_MAX_LIMIT, default=HISTORY_DEFAULT_LIMIT)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("before_seq") is not None and attrs.get("after_seq") is not None:
            raise serializers.ValidationError("Send beforeSeq or afterSeq, not both.")
        return attrs


class SendRequestSerializer(serializers.Serializer[Any]):
    client_msg_id = StrictCharField(
        min_length=1,
        max_length=CLIENT_MSG_ID_MAX_LENGTH,
        help_text="Chosen by the client, unique per sender: a retry with the same id is not stored twice.",
    )
    body = StrictCharField(trim_whitespace=False, help_text="The text (at most MESSAGE_MAX_BODY_BYTES in UTF-8).")
    kind = serializers.ChoiceField(choices=[MessageKind.TEXT], required=False, default=MessageKind.TEXT)
    reply_to_id = IdField(required=False, allow_null=True, help_text="The message this one answers.")


class ReadRequestSerializer(serializers.Serializer[Any]):
    seq = StrictIntegerField(
        min_value=0, max_value=MAX_ID, help_text="The highest seq read; the read position never moves back."
    )


class GroupCreateRequestSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=GROUP_NAME_MAX_LENGTH)
    member_ids = serializers.ListField(child=IdField(), max_length=MAX_IDS_PER_REQUEST)


class GroupUpdateRequestSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=GROUP_NAME_MAX_LENGTH, required=False)
    avatar = StrictCharField(max_length=AVATAR_MAX_LENGTH, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Send a new name or avatar.")
        return attrs


class GroupMembersRequestSerializer(serializers.Serializer[Any]):
    user_ids = serializers.ListField(child=IdField(), min_length=1, max_length=MAX_IDS_PER_REQUEST)


class GroupOwnerRequestSerializer(serializers.Serializer[Any]):
    user_id = IdField(help_text="The member who becomes the owner; the old owner becomes an admin.")


class MemberRoleRequestSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(
        choices=[(MemberRole.ADMIN, "Admin"), (MemberRole.MEMBER, "Member")],
        # The default message echoes the input, which may not even be encodable text.
        error_messages={"invalid_choice": "Must be 'admin' or 'member'."},
    )


# --- responses (they read the selectors' dataclasses)


class MemberSerializer(serializers.Serializer[Any]):
    id = IdField()
    username = serializers.CharField()
    nickname = serializers.CharField()
    avatar = serializers.CharField()
    role = serializers.ChoiceField(choices=MemberRole.choices)


class MessageSerializer(serializers.Serializer[Any]):
    id = IdField()
    conversation_id = IdField()
    seq = serializers.IntegerField()
    sender_id = IdField()
    client_msg_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    body = serializers.CharField(help_text="Empty when recalled; system messages hold a JSON event.")
    reply_to_id = IdField(allow_null=True)
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    recalled = serializers.BooleanField()


class ConversationSerializer(serializers.Serializer[Any]):
    id = IdField()
    kind = serializers.ChoiceField(choices=ConversationKind.choices)
    name = serializers.CharField()
    avatar = serializers.CharField()
    owner_id = IdField(allow_null=True)
    members = MemberSerializer(many=True, allow_null=True, help_text="Null for conversations over 20 members.")
    member_count = serializers.IntegerField()
    last_seq = serializers.IntegerField()
    last_message = MessageSerializer(allow_null=True)
    unread_count = serializers.IntegerField()
    last_read_seq = serializers.IntegerField()
    muted = serializers.BooleanField()
    role = serializers.ChoiceField(choices=MemberRole.choices)


class HistorySerializer(serializers.Serializer[Any]):
    messages = MessageSerializer(many=True)
    has_more = serializers.BooleanField()


class ReadStateSerializer(serializers.Serializer[Any]):
    conversation_id = IdField()
    last_read_seq = serializers.IntegerField()
