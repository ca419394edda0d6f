"""Input validation and output shapes of the friends, blocks and user search endpoints."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from accounts.models import User
from friends.models import Block, FriendRequest, Friendship, RequestStatus
from friends.services import MESSAGE_MAX_LENGTH, REMARK_MAX_LENGTH
from imsite.api.fields import IdField, StrictCharField

SEARCH_QUERY_MAX_LENGTH = 32
DIRECTIONS = ("incoming", "outgoing")


# --- input


class UserSearchQuerySerializer(serializers.Serializer[Any]):
    q = StrictCharField(min_length=1, max_length=SEARCH_QUERY_MAX_LENGTH, help_text="Text to look for")
    limit = serializers.IntegerField(
        required=False, min_value=1, help_text="At most this many results (1 to USER_SEARCH_LIMIT, its default)"
    )

    def validate_limit(self, value: int) -> int:
        ceiling: int = settings.USER_SEARCH_LIMIT
        if value > ceiling:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {ceiling}.")
        return value


class FriendRequestListQuerySerializer(serializers.Serializer[Any]):
    direction = StrictCharField(
        required=False,
        help_text="incoming, outgoing, or both comma-separated (the default)",
    )
    status = serializers.ChoiceField(choices=RequestStatus.choices, required=False, help_text="Only this status")

    def validate_direction(self, value: str) -> list[str]:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [part for part in parts if part not in DIRECTIONS]
        if unknown or not parts:
            raise serializers.ValidationError(f"Must be 'incoming', 'outgoing' or 'incoming,outgoing'; got {value!r}.")
        return parts


class SendFriendRequestSerializer(serializers.Serializer[Any]):
    friend_id = IdField(help_text="Id of the user to ask")
    message = StrictCharField(
        required=False, allow_blank=True, max_length=MESSAGE_MAX_LENGTH, default="", help_text="Greeting"
    )


class RemarkSerializer(serializers.Serializer[Any]):
    remark = StrictCharField(
        allow_blank=True, max_length=REMARK_MAX_LENGTH, help_text="Your private name for the friend; empty clears it"
    )


# --- output


class PublicProfileSerializer(serializers.ModelSerializer[User]):
    id = IdField(read_only=True)

    class Meta:
        model = User
        fields = ("id", "username", "nickname", "avatar")
        read_only_fields = fields


class FriendRequestSerializer(serializers.ModelSerializer[FriendRequest]):
    id = IdField(read_only=True)
    from_user_id = IdField(read_only=True)
    to_user_id = IdField(read_only=True)
    from_user = PublicProfileSerializer(read_only=True)
    to_user = PublicProfileSerializer(read_only=True)

    class Meta:
        model = FriendRequest
        fields = (
            "id",
            "from_user_id",
            "to_user_id",
            "message",
            "status",
            "created_at",
            "handled_at",
            "from_user",
            "to_user",
        )
        read_only_fields = fields


class FriendshipSerializer(serializers.ModelSerializer[Friendship]):
    """One friend as the owner sees them; `online` comes from context["online_ids"] (a set of ids)."""

    id = IdField(read_only=True)
    user_id = IdField(read_only=True)
    friend_id = IdField(read_only=True)
    friend = PublicProfileSerializer(read_only=True)
    online = serializers.SerializerMethodField()

    class Meta:
        model = Friendship
        fields = ("id", "user_id", "friend_id", "remark", "friend", "online", "created_at")
        read_only_fields = fields

    def get_online(self, friendship: Friendship) -> bool:
        online_ids: set[int] = self.context.get("online_ids", set())
        return friendship.friend_id in online_ids


class BlockSerializer(serializers.ModelSerializer[Block]):
    user_id = IdField(source="blocked_id", read_only=True, help_text="The blocked user")
    user = PublicProfileSerializer(source="blocked", read_only=True)

    class Meta:
        model = Block
        fields = ("user_id", "user", "created_at")
        read_only_fields = fields
