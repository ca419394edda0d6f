"""Admin of conversations, memberships and messages: read-only views, writes only through the services.

Soft-deleted rows are listed too (filter on "deleted"); the only write is the recall action, which goes
through messaging.services.recall_message like every other write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from messaging.models import Conversation, Membership, Message
from messaging.services import recall_message

BODY_PREVIEW_LENGTH = 80

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:  # ModelAdmin is generic only in django-stubs, not at runtime
    _ModelAdmin = admin.ModelAdmin


class _ReadOnlyAdmin(_ModelAdmin):
    """Lists every row, soft-deleted ones included; nothing is added, edited or deleted here."""

    show_full_result_count = False  # no COUNT(*) over the whole table on every page

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = self.model.all_objects.all()
        return queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(_ReadOnlyAdmin):
    list_display = ("id", "kind", "name", "owner", "member_count", "last_seq", "deleted", "created_at", "updated_at")
    list_filter = ("kind", "deleted")
    search_fields = ("=id", "name", "direct_key")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    ordering = ("-id",)


@admin.register(Membership)
class MembershipAdmin(_ReadOnlyAdmin):
    list_display = ("id", "conversation", "user", "role", "last_read_seq", "muted", "deleted", "joined_at")
    list_filter = ("role", "conversation__kind", "muted", "deleted")
    search_fields = ("=conversation__id", "user__username", "conversation__name")
    list_select_related = ("conversation", "user")
    raw_id_fields = ("conversation", "user")
    ordering = ("-id",)


@admin.register(Message)
class MessageAdmin(_ReadOnlyAdmin):
    list_display = ("id", "conversation", "seq", "sender", "kind", "preview", "recalled", "deleted", "created_at")
    list_filter = ("kind", "conversation__kind", "recalled", "deleted")
    search_fields = ("body", "client_msg_id", "=conversation__id", "sender__username")
    list_select_related = ("conversation", "sender")
    raw_id_fields = ("conversation", "sender")
    ordering = ("-id",)
    actions = ("recall_selected",)

    @admin.display(description="body")
    def preview(self, obj: Message) -> str:
        body = obj.body
        return body if len(body) <= BODY_PREVIEW_LENGTH else body[: BODY_PREVIEW_LENGTH - 1] + "…"

    @admin.action(description="Recall selected messages")
    def recall_selected(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        actor = request.user if isinstance(request.user, User) else None
        recalled = sum(
            recall_message(actor, message_id=message_id).changed for message_id in queryset.values_list("id", flat=True)
        )
        self.message_user(request, f"Recalled {recalled} message(s).", messages.SUCCESS)
