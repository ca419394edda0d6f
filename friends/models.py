"""Friend requests, friendships (one row per direction) and blocks."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from accounts.models import User
from imsite.models import BaseModel, string_field


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class FriendRequest(BaseModel):
    from_user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_comment="Who asks"
    )
    to_user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_comment="Who is asked"
    )
    message = string_field(200, "Greeting sent with the request")
    status = string_field(16, "pending, accepted or rejected", choices=RequestStatus.choices)
    handled_at = models.DateTimeField(null=True, blank=True, db_comment="When it was accepted or rejected")

    class Meta:
        db_table = "friends_request"
        db_table_comment = "Friend requests and their outcome"
        constraints = [
            models.UniqueConstraint(
                fields=["from_user", "to_user"],
                condition=Q(status="pending", deleted=False),
                name="friend_request_one_pending",
            ),
            models.CheckConstraint(condition=~Q(from_user=F("to_user")), name="friend_request_not_self"),
        ]
        indexes = [
            models.Index(fields=["to_user", "status"], name="friend_request_incoming_idx"),
            models.Index(fields=["from_user", "status"], name="friend_request_outgoing_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_user_id} -> {self.to_user_id} ({self.status})"


class Friendship(BaseModel):
    """One direction of a friendship: each side keeps its own remark."""

    user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_comment="Owner of this side"
    )
    friend = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_comment="The friend"
    )
    remark = string_field(64, "The owner's private name for the friend")

    class Meta:
        db_table = "friends_friendship"
        db_table_comment = "Friendships, one row per direction"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "friend"], condition=Q(deleted=False), name="friendship_unique_live"
            ),
            models.CheckConstraint(condition=~Q(user=F("friend")), name="friendship_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} <-> {self.friend_id}"


class Block(BaseModel):
    user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_comment="Who blocks"
    )
    blocked = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_comment="Who is blocked"
    )

    class Meta:
        db_table = "friends_block"
        db_table_comment = "Blocks: the blocked user cannot send requests or messages to the blocker"
        constraints = [
            models.UniqueConstraint(fields=["user", "blocked"], condition=Q(deleted=False), name="block_unique_live"),
            models.CheckConstraint(condition=~Q(user=F("blocked")), name="block_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} blocks {self.blocked_id}"
