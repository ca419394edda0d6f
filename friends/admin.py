"""Admin of friend requests, friendships and blocks: soft-deleted rows included, writes via services.

Rows are read-only here: adding or hard-deleting them would skip the rules and the events of
friends.services. The changes an operator needs are admin actions that call those services.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from friends import services
from friends.models import Block, FriendRequest, Friendship
from imsite.errors import ServiceError

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:  # ModelAdmin is generic only in django-stubs, not at runtime
    _ModelAdmin = admin.ModelAdmin


class _ReadOnlyAdmin(_ModelAdmin):
    """Lists every row, soft-deleted ones too (filter on `deleted`); no add, edit or delete."""

    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        related = [f.name for f in self.model._meta.get_fields() if f.many_to_one]
        return self.model.all_objects.select_related(*related)  # type: ignore[no-any-return]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FriendRequest)
class FriendRequestAdmin(_ReadOnlyAdmin):
    list_display = ("id", "from_user", "to_user", "status", "message", "created_at", "handled_at", "deleted")
    list_filter = ("status", "deleted")
    search_fields = ("from_user__username", "to_user__username", "message")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"


@admin.register(Friendship)
class FriendshipAdmin(_ReadOnlyAdmin):
    list_display = ("id", "user", "friend", "remark", "created_at", "deleted")
    list_filter = ("deleted",)
    search_fields = ("user__username", "friend__username", "remark")
    ordering = ("-created_at",)
    actions = ("end_friendships",)

    @admin.action(description="End the selected friendships (both directions)")
    def end_friendships(self, request: HttpRequest, queryset: QuerySet[Friendship]) -> None:
        ended = 0
        seen: set[frozenset[int]] = set()
        for friendship in queryset.filter(deleted=False).select_related("user"):
            pair = frozenset((friendship.user_id, friendship.friend_id))
            if pair in seen:  # both directions were selected: one removal ends both
                continue
            seen.add(pair)
            try:
                services.remove_friend(friendship.user, friend_id=friendship.friend_id)
                ended += 1
            except ServiceError as exc:  # ended meanwhile by the users themselves
                self.message_user(request, f"{friendship}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Ended {ended} friendship(s).", messages.SUCCESS)


@admin.register(Block)
class BlockAdmin(_ReadOnlyAdmin):
    list_display = ("id", "user", "blocked", "created_at", "deleted")
    list_filter = ("deleted",)
    search_fields = ("user__username", "blocked__username")
    ordering = ("-created_at",)
    actions = ("lift_blocks",)

    @admin.action(description="Lift the selected blocks")
    def lift_blocks(self, request: HttpRequest, queryset: QuerySet[Block]) -> None:
        lifted = 0
        for block in queryset.filter(deleted=False).select_related("user"):
            services.unblock_user(block.user, user_id=block.blocked_id)
            lifted += 1
        self.message_user(request, f"Lifted {lifted} block(s).", messages.SUCCESS)
