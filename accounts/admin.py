"""Admin of users and device sessions: soft-deleted users visible, bans and passwords via services.

Writes that have consequences go through accounts.services: banning (actions), password changes
(tokens revoked, sessions kicked) and profile edits (ProfileChanged). `is_active` is read-only here
so that the only way to ban is the action that also ends the sessions. Hard deletes are disabled:
rows are soft-deleted by convention and nothing references users through database constraints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import Device, User
from imsite.errors import ServiceError

if TYPE_CHECKING:
    _UserAdminBase = DjangoUserAdmin[User]
    _ModelAdmin = admin.ModelAdmin[Device]
    _CreationForm = AdminUserCreationForm[User]
    _ChangeForm = UserChangeForm[User]
    _PasswordForm = AdminPasswordChangeForm[User]
else:  # generic only in django-stubs, not at runtime
    _UserAdminBase = DjangoUserAdmin
    _ModelAdmin = admin.ModelAdmin
    _CreationForm = AdminUserCreationForm
    _ChangeForm = UserChangeForm
    _PasswordForm = AdminPasswordChangeForm

PROFILE_FIELDS = ("nickname", "avatar", "bio", "phone", "email")
STAFF_FIELDS = ("is_staff", "is_superuser")


def _acting_user(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class UserCreationAdminForm(_CreationForm):
    """Django's creation form (password1/password2, hashed on save) for this user model and its rules."""

    class Meta:
        model = User
        fields = ("username", "nickname")

    def clean_username(self) -> str:
        username = str(self.cleaned_data.get("username") or "").strip()
        if not services.USERNAME_MIN_LENGTH <= len(username) <= services.USERNAME_MAX_LENGTH:
            raise ValidationError(
                f"Use {services.USERNAME_MIN_LENGTH} to {services.USERNAME_MAX_LENGTH} characters.", code="length"
            )
        services.username_validator(username)
        if services.username_taken(username):
            raise ValidationError("This username is taken (usernames are unique ignoring case).", code="unique")
        return username


class UserChangeAdminForm(_ChangeForm):
    class Meta:
        model = User
        fields = ("username", "password", *PROFILE_FIELDS, *STAFF_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rules: dict[str, list[Any]] = {
            "phone": [services.phone_validator],
            "email": [services.email_validator],
            "avatar": [services.avatar_validator],
        }
        for name, validators in rules.items():
            if name in self.fields:
                self.fields[name].validators.extend(validators)
        if "bio" in self.fields:
            self.fields["bio"].validators.append(MaxLengthValidator(services.BIO_MAX_LENGTH))
            self.fields["bio"].widget.attrs["maxlength"] = str(services.BIO_MAX_LENGTH)


class AdminPasswordResetForm(_PasswordForm):
    """Sets the password through the service: the user's tokens are revoked and sessions kicked."""

    def save(self, commit: bool = True) -> Any:
        password = self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        services.reset_password(self.user, new_password=password)
        return self.user


class LiveOrDeletedFilter(admin.SimpleListFilter):
    """Live users by default; soft-deleted ones on request."""

    title = "deleted"
    parameter_name = "rows"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("deleted", "Soft-deleted"), ("all", "All")]

    def _chosen(self) -> str:
        return str(self.value() or "live")

    def choices(self, changelist: Any) -> Any:
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self._chosen() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        chosen = self._chosen()
        if chosen == "live":
            return queryset.filter(deleted=False)
        if chosen == "deleted":
            return queryset.filter(deleted=True)
        return queryset


@admin.register(User)
class UserAdmin(_UserAdminBase):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    change_password_form = AdminPasswordResetForm
    list_display = ("username", "nickname", "email", "phone", "is_active", "is_staff", "deleted", "created_at")
    list_filter = (LiveOrDeletedFilter, "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "nickname", "email", "phone")
    ordering = ("-created_at",)
    filter_horizontal = ()
    readonly_fields = (
        "id",
        "is_active",
        "token_version",
        "last_login",
        "created_at",
        "updated_at",
        "deleted",
    )
    fieldsets = (
        (None, {"fields": ("id", "username", "password")}),
        ("Profile", {"fields": PROFILE_FIELDS}),
        ("Status", {"fields": ("is_active", "token_version", "deleted", "last_login", "created_at", "updated_at")}),
        ("Admin access", {"fields": STAFF_FIELDS}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "nickname", "usable_password", "password1", "password2")}),
    )
    actions = ["ban_users", "unban_users"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return User.all_objects.all()

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        # The username is chosen at creation; changing it later would break how people find each other.
        return (*self.readonly_fields, "username") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        changed = set(form.changed_data)
        profile = {name: form.cleaned_data[name] for name in PROFILE_FIELDS if name in changed}
        if profile:
            services.update_profile(User.all_objects.get(pk=obj.pk), **profile)
        staff = [name for name in STAFF_FIELDS if name in changed]
        if staff:
            obj.save(update_fields=[*staff, "updated_at"])

    @admin.action(description="Ban selected users")
    def ban_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        banned = 0
        for user in queryset:
            try:
                banned += services.ban_user(user, acting_user=_acting_user(request))
            except ServiceError as exc:
                self.message_user(request, f"{user.username}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Banned {banned} user(s); their sessions were ended.", messages.SUCCESS)

    @admin.action(description="Unban selected users")
    def unban_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        unbanned = sum(services.unban_user(user, acting_user=_acting_user(request)) for user in queryset)
        self.message_user(request, f"Unbanned {unbanned} user(s): they can log in again.", messages.SUCCESS)


class LiveSessionFilter(admin.SimpleListFilter):
    title = "session"
    parameter_name = "session"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("ended", "Ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "live":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "ended":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(Device)
class DeviceAdmin(_ModelAdmin):
    """Read-only: sessions are opened by login and ended by logout, password change and ban."""

    list_display = ("user", "device_id", "platform", "last_seen_at", "revoked_at", "revoke_reason", "ip")
    list_filter = (LiveSessionFilter, "platform", "revoke_reason")
    list_select_related = ("user",)
    search_fields = ("user__username", "device_id", "ip")
    ordering = ("-last_seen_at",)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Device]:
        return Device.all_objects.select_related("user")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Device | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Device | None = None) -> bool:
        return False
