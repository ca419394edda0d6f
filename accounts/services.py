"""Account operations: registration, login sessions, token refresh, logout, profile, password, bans.

Every write to users and device sessions goes through here, in one transaction, with the user events
(SessionsKicked, ProfileChanged) published after commit. Field rules (username, phone, avatar) are
defined here once; the API serializers attach the same validators for field-level errors.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator, RegexValidator, URLValidator
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Device, Platform, User
from accounts.tokens import TokenPair, issue_tokens, read_refresh_token
from imsite.errors import BadCredentials, Conflict, Forbidden, InvalidInput, TokenInvalid
from imsite.events import ProfileChanged, SessionsKicked
from imsite.publisher import publish_user_event

logger = logging.getLogger(__name__)

USERNAME_MIN_LENGTH = 3
USERNAME_MAX_LENGTH = User._meta.get_field("username").max_length or 0
PASSWORD_MAX_LENGTH = 128  # bounds the hashing work one request can ask for
BIO_MAX_LENGTH = 500
NICKNAME_MAX_LENGTH = User._meta.get_field("nickname").max_length or 0
PHONE_MAX_LENGTH = User._meta.get_field("phone").max_length or 0
EMAIL_MAX_LENGTH = User._meta.get_field("email").max_length or 0
AVATAR_MAX_LENGTH = User._meta.get_field("avatar").max_length or 0
DEVICE_ID_MAX_LENGTH = Device._meta.get_field("device_id").max_length or 0
IP_MAX_LENGTH = Device._meta.get_field("ip").max_length or 0
USER_AGENT_MAX_LENGTH = Device._meta.get_field("user_agent").max_length or 0

username_validator = RegexValidator(
    r"\A[A-Za-z0-9_.-]+\Z", "Use only letters, digits, underscore, dot and dash (no spaces).", code="invalid"
)
phone_validator = RegexValidator(
    r"\A\+?[0-9](?:[ -]?[0-9]){5,19}\Z",
    "Enter a phone number: 6 to 20 digits, optionally starting with + and separated by single spaces or dashes.",
    code="invalid",
)
device_id_validator = RegexValidator(
    r"\A[A-Za-z0-9._:-]+\Z", "Use only letters, digits and . _ : - in a device id.", code="invalid"
)
avatar_validator = URLValidator(schemes=["http", "https"], message="Enter an http or https URL of the avatar image.")
email_validator = EmailValidator(message="Enter a valid email address.")

BAD_CREDENTIALS_MESSAGE = "Wrong username or password."
BANNED_MESSAGE = "This account is banned: it cannot log in. Contact support if you think this is a mistake."
SESSION_ENDED_MESSAGE = "This session has ended (logged out, replaced or revoked): log in again."
REUSED_REFRESH_MESSAGE = (
    "This refresh token was already used once: the session has been ended in case the token was stolen. Log in again."
)

RevokeReason = Literal["logout", "password_change", "ban", "replaced", "reuse"]


@dataclass(frozen=True)
class SessionTokens:
    """What a client holds after login or refresh: its session and the token pair for it."""

    user_id: int
    session_id: int
    device_id: str
    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime


def _check(field: str, validator: Callable[[str], object], value: str) -> None:
    try:
        validator(value)
    except DjangoValidationError as exc:
        raise InvalidInput(f"{field}: {' '.join(exc.messages)}", field=field) from exc


def _check_length(field: str, value: str, maximum: int, minimum: int = 0) -> None:
    if not minimum <= len(value) <= maximum:
        bounds = f"between {minimum} and {maximum}" if minimum else f"at most {maximum}"
        raise InvalidInput(f"{field}: must be {bounds} characters long.", field=field)


def _check_password(field: str, password: str, user: User) -> None:
    _check_length(field, password, PASSWORD_MAX_LENGTH)
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise InvalidInput(f"{field}: {' '.join(exc.messages)}", field=field) from exc


def username_taken(username: str) -> bool:
    """Whether a user (live or soft-deleted) has this username in any letter case."""
    # Soft-deleted users keep their names: all_objects, so a name is never handed to a second person.
    return User.all_objects.alias(name=Lower("username")).filter(name=username.lower()).exists()


def _live_user_by_username(username: str) -> User | None:
    return User.objects.alias(name=Lower("username")).filter(name=username.lower()).first()


def _revoke_sessions(
    user_id: int, reason: RevokeReason, *, session_id: int | None = None, device_id: str | None = None
) -> list[int]:
    """Ends the live sessions of a user (all, one session, or those of one device); returns their ids."""
    live = Device.objects.select_for_update().filter(user_id=user_id, revoked_at__isnull=True)
    if session_id is not None:
        live = live.filter(id=session_id)
    if device_id is not None:
        live = live.filter(device_id=device_id)
    ids = list(live.values_list("id", flat=True))
    if ids:
        now = timezone.now()
        Device.objects.filter(id__in=ids, revoked_at__isnull=True).update(
            revoked_at=now, revoke_reason=reason, updated_at=now
        )
    return ids


def _session_tokens(user: User, device: Device, pair: TokenPair) -> SessionTokens:
    return SessionTokens(
        user_id=user.id,
        session_id=device.id,
        device_id=device.device_id,
        access_token=pair.access,
        refresh_token=pair.refresh,
        expires_at=pair.expires_at,
        refresh_expires_at=pair.refresh_expires_at,
    )


def register_user(*, username: str, password: str, nickname: str = "", phone: str = "", email: str = "") -> User:
    """A new active user; Conflict when the username is taken in any letter case."""
    username = username.strip()
    _check_length("username", username, USERNAME_MAX_LENGTH, USERNAME_MIN_LENGTH)
    _check("username", username_validator, username)
    nickname = nickname.strip() or username
    _check_length("nickname", nickname, NICKNAME_MAX_LENGTH)
    if phone:
        _check_length("phone", phone, PHONE_MAX_LENGTH)
        _check("phone", phone_validator, phone)
    if email:
        _check_length("email", email, EMAIL_MAX_LENGTH)
        _check("email", email_validator, email)
        email = User.objects.normalize_email(email)
    user = User(username=username, nickname=nickname, phone=phone, email=email)
    _check_password("password", password, user)
    if username_taken(username):
        raise Conflict(f"username: '{username}' is already taken; choose another.", field="username")
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError as exc:  # a concurrent registration took the name between check and insert
        raise Conflict(f"username: '{username}' is already taken; choose another.", field="username") from exc
    logger.info("user registered", extra={"userId": str(user.id)})
    return user


def login_user(
    *,
    username: str,
    password: str,
    device_id: str = "",
    platform: str = "",
    ip: str = "",
    user_agent: str = "",
) -> SessionTokens:
    """Checks the credentials and opens a device session.

    A login from a device id that already has a live session of this user replaces that session
    (it is revoked with reason "replaced" and kicked). Unknown usernames and wrong passwords get the
    same error after the same hashing work; a banned user is told so only after a right password.
    """
    device_id = device_id or uuid.uuid4().hex
    _check_length("deviceId", device_id, DEVICE_ID_MAX_LENGTH)
    _check("deviceId", device_id_validator, device_id)
    if platform not in Platform.values:
        platform = Platform.OTHER
    user = _live_user_by_username(username)
    if user is None:
        make_password(password)  # same cost as a real check: response time does not reveal the name
        raise BadCredentials(BAD_CREDENTIALS_MESSAGE)
    if not user.check_password(password):
        raise BadCredentials(BAD_CREDENTIALS_MESSAGE)
    if not user.is_active:
        raise Forbidden(BANNED_MESSAGE)
    now = timezone.now()
    with transaction.atomic():
        for session_id in _revoke_sessions(user.id, "replaced", device_id=device_id):
            publish_user_event(SessionsKicked(user_id=user.id, session_id=session_id, reason="replaced"))
        device = Device(
            user=user,
            device_id=device_id,
            platform=platform,
            ip=ip[:IP_MAX_LENGTH],
            user_agent=user_agent[:USER_AGENT_MAX_LENGTH],
            last_seen_at=now,
        )
        tokens = issue_tokens(user, device.id)
        device.refresh_jti = tokens.refresh_jti
        device.refresh_expires_at = tokens.refresh_expires_at
        device.save(force_insert=True)
        user.last_login = now
        user.save(update_fields=["last_login", "updated_at"])
    logger.info("user logged in", extra={"userId": str(user.id), "sessionId": str(device.id)})
    return _session_tokens(user, device, tokens)


def refresh_session(*, refresh_token: str) -> SessionTokens:
    """Rotates the session's refresh token: the presented one must be the one the session holds.

    Presenting an older refresh token of a live session means two parties hold it: the session is
    revoked (reason "reuse") and kicked, and the caller must log in again.
    """
    claims = read_refresh_token(refresh_token)
    with transaction.atomic():
        device = Device.objects.select_related("user").filter(id=claims.session_id, user_id=claims.user_id).first()
        if device is None or not device.is_live:
            raise TokenInvalid(SESSION_ENDED_MESSAGE)
        user = device.user
        if user.deleted or not user.is_active or user.token_version != claims.token_version:
            raise TokenInvalid("This token was revoked (password change or ban): log in again.")
        tokens = issue_tokens(user, device.id)
        now = timezone.now()
        # Conditional update: of two concurrent refreshes with one token, exactly one wins.
        rotated = Device.objects.filter(id=device.id, refresh_jti=claims.jti, revoked_at__isnull=True).update(
            refresh_jti=tokens.refresh_jti,
            refresh_expires_at=tokens.refresh_expires_at,
            last_seen_at=now,
            updated_at=now,
        )
    if not rotated:
        with transaction.atomic():
            if _revoke_sessions(user.id, "reuse", session_id=device.id):
                publish_user_event(SessionsKicked(user_id=user.id, session_id=device.id, reason="reuse"))
        logger.warning("refresh token reused", extra={"userId": str(user.id), "sessionId": str(device.id)})
        raise TokenInvalid(REUSED_REFRESH_MESSAGE)
    return _session_tokens(user, device, tokens)


def logout_session(user: User, *, refresh_token: str) -> bool:
    """Ends the session the refresh token names, which must be one of the user's own.

    Returns False when that session had already ended (logging out twice is not an error).
    """
    claims = read_refresh_token(refresh_token)
    if claims.user_id != user.id:
        raise Forbidden("refreshToken: this refresh token belongs to another account.", field="refreshToken")
    with transaction.atomic():
        ended = _revoke_sessions(user.id, "logout", session_id=claims.session_id)
        if ended:
            publish_user_event(SessionsKicked(user_id=user.id, session_id=claims.session_id, reason="logout"))
    return bool(ended)


def update_profile(
    user: User,
    *,
    nickname: str | None = None,
    avatar: str | None = None,
    bio: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> User:
    """Changes the given fields (None leaves one as it is); publishes ProfileChanged if any changed."""
    changes: dict[str, str] = {}
    if nickname is not None:
        nickname = nickname.strip()
        _check_length("nickname", nickname, NICKNAME_MAX_LENGTH)
        changes["nickname"] = nickname or user.username
    if avatar is not None:
        avatar = avatar.strip()
        _check_length("avatar", avatar, AVATAR_MAX_LENGTH)
        if avatar:
            _check("avatar", avatar_validator, avatar)
        changes["avatar"] = avatar
    if bio is not None:
        _check_length("bio", bio, BIO_MAX_LENGTH)
        changes["bio"] = bio
    if phone is not None:
        phone = phone.strip()
        if phone:
            _check_length("phone", phone, PHONE_MAX_LENGTH)
            _check("phone", phone_validator, phone)
        changes["phone"] = phone
    if email is not None:
        email = email.strip()
        if email:
            _check_length("email", email, EMAIL_MAX_LENGTH)
            _check("email", email_validator, email)
            email = User.objects.normalize_email(email)
        changes["email"] = email
    changed = [name for name, value in changes.items() if getattr(user, name) != value]
    if not changed:
        return user
    for name in changed:
        setattr(user, name, changes[name])
    with transaction.atomic():
        user.save(update_fields=[*changed, "updated_at"])
        publish_user_event(ProfileChanged(user_id=user.id))
    return user


def _replace_password(user: User, password: str | None) -> None:
    """New password hash (None: password login disabled), token version bumped, every session kicked."""
    with transaction.atomic():
        locked = User.all_objects.select_for_update().get(id=user.id)
        locked.set_password(password)
        locked.token_version += 1
        locked.save(update_fields=["password", "token_version", "updated_at"])
        _revoke_sessions(user.id, "password_change")
        publish_user_event(SessionsKicked(user_id=user.id, session_id=0, reason="password_change"))
    user.password, user.token_version = locked.password, locked.token_version


def change_password(user: User, *, old_password: str, new_password: str) -> None:
    """The user's own change: needs the current password; every session must log in again."""
    if not user.check_password(old_password):
        raise InvalidInput("oldPassword: the current password is wrong.", field="oldPassword")
    if new_password == old_password:
        raise InvalidInput("newPassword: must differ from the current password.", field="newPassword")
    _check_password("newPassword", new_password, user)
    _replace_password(user, new_password)
    logger.info("password changed", extra={"userId": str(user.id)})


def reset_password(user: User, *, new_password: str | None, acting_user: User | None = None) -> None:
    """An administrator sets a user's password (None disables password login); sessions end as on a change."""
    if new_password is not None:
        _check_password("newPassword", new_password, user)
    _replace_password(user, new_password)
    logger.info(
        "password reset by admin",
        extra={"userId": str(user.id), "actingUserId": str(acting_user.id) if acting_user else None},
    )


def ban_user(user: User, *, acting_user: User | None = None) -> bool:
    """Deactivates the user, invalidates every token and kicks every session; False if already banned."""
    if acting_user is not None and acting_user.id == user.id:
        raise Forbidden("You cannot ban yourself.")
    with transaction.atomic():
        locked = User.all_objects.select_for_update().get(id=user.id)
        if not locked.is_active:
            return False
        locked.is_active = False
        locked.token_version += 1
        locked.save(update_fields=["is_active", "token_version", "updated_at"])
        _revoke_sessions(user.id, "ban")
        publish_user_event(SessionsKicked(user_id=user.id, session_id=0, reason="ban"))
    user.is_active, user.token_version = locked.is_active, locked.token_version
    logger.info(
        "user banned",
        extra={"userId": str(user.id), "actingUserId": str(acting_user.id) if acting_user else None},
    )
    return True


def unban_user(user: User, *, acting_user: User | None = None) -> bool:
    """Lets a banned user log in again (old tokens stay invalid); False if the user was not banned."""
    with transaction.atomic():
        updated = User.all_objects.filter(id=user.id, is_active=False).update(is_active=True, updated_at=timezone.now())
    if updated:
        user.is_active = True
        logger.info(
            "user unbanned",
            extra={"userId": str(user.id), "actingUserId": str(acting_user.id) if acting_user else None},
        )
    return bool(updated)
