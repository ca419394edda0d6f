"""Users and the device sessions they log in from."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from imsite.models import BaseModel, LiveQuerySet, string_field, text_field


class UserManager(BaseUserManager["User"]):
    """Hides soft-deleted users and builds users the way createsuperuser expects."""

    use_in_migrations = True

    def get_queryset(self) -> LiveQuerySet[User]:
        return LiveQuerySet(self.model, using=self._db).filter(deleted=False)

    def create_user(self, username: str, password: str | None = None, **extra: Any) -> User:
        if not username:
            raise ValueError("username is required")
        user = self.model(username=username, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(username, password, **extra)


class User(BaseModel, AbstractBaseUser):
    # AbstractBaseUser's columns, redeclared so that they carry comments.
    password = string_field(128, "Password hash (Argon2)", blank=False)
    last_login = models.DateTimeField(null=True, blank=True, db_comment="Last successful login")

    username = string_field(32, "Login name: letters, digits, underscore, dot, dash", unique=True, blank=False)
    nickname = string_field(64, "Display name")
    phone = string_field(32, "Phone number, free form")
    email = string_field(254, "Email address")
    avatar = string_field(512, "Avatar image URL")
    bio = text_field("Self description")
    is_active = models.BooleanField(default=True, db_comment="False once banned: cannot log in")
    is_staff = models.BooleanField(default=False, db_comment="May use the Django admin")
    is_superuser = models.BooleanField(default=False, db_comment="Holds every admin permission")
    token_version = models.PositiveIntegerField(
        default=0, db_comment="Bumped on password change and ban: tokens with an older version are refused"
    )

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]
    all_objects: ClassVar[models.Manager[User]] = models.Manager()

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        db_table = "accounts_user"
        db_table_comment = "Registered users"
        verbose_name = "user"
        constraints = [
            # Usernames are unique ignoring case; login looks them up through this index.
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def display_name(self) -> str:
        return self.nickname or self.username

    # The admin's permission checks: staff superusers hold everything, nobody else holds anything.
    def has_perm(self, perm: str, obj: object | None = None) -> bool:
        return self.is_active and self.is_staff and self.is_superuser

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and self.is_staff and self.is_superuser


class Platform(models.TextChoices):
    WEB = "web", "Web"
    IOS = "ios", "iOS"
    ANDROID = "android", "Android"
    DESKTOP = "desktop", "Desktop"
    CLI = "cli", "Command line"
    OTHER = "other", "Other"


class Device(BaseModel):
    """One login session of one device: the refresh token it holds and when it was last seen."""

    user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="devices", db_comment="Owner"
    )
    device_id = string_field(64, "Client-chosen device id, stable across logins of one device")
    platform = string_field(16, "Client platform", choices=Platform.choices)
    refresh_jti = string_field(64, "jti of the one refresh token this session currently holds", db_index=True)
    refresh_expires_at = models.DateTimeField(db_comment="When the current refresh token expires")
    last_seen_at = models.DateTimeField(default=timezone.now, db_comment="Last login, refresh or connection")
    ip = string_field(45, "Client IP at login")
    user_agent = string_field(256, "Client User-Agent at login")
    revoked_at = models.DateTimeField(null=True, blank=True, db_comment="When the session was ended; null while live")
    revoke_reason = string_field(32, "Why the session ended: logout, password_change, ban, replaced, reuse")

    class Meta:
        db_table = "accounts_device"
        db_table_comment = "Device sessions: one row per login of a device"
        indexes = [models.Index(fields=["user", "revoked_at"], name="device_user_live_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.device_id}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and not self.deleted
