"""Input validation and output shapes of the auth and profile endpoints (snake_case; the renderer
camelizes). Field rules come from accounts.services, which checks them again for other callers."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts import services
from accounts.models import Platform, User
from imsite.api.fields import IdField, StrictCharField

TOKEN_MAX_LENGTH = 4096


class StrictEmailField(serializers.EmailField, StrictCharField):
    pass


def _password_field(**kwargs: Any) -> StrictCharField:
    return StrictCharField(max_length=services.PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True, **kwargs)


def _phone_field() -> StrictCharField:
    return StrictCharField(
        required=False,
        allow_blank=True,
        max_length=services.PHONE_MAX_LENGTH,
        validators=[services.phone_validator],
        help_text="6 to 20 digits, optionally starting with + and separated by single spaces or dashes",
    )


def _email_field() -> StrictEmailField:
    return StrictEmailField(required=False, allow_blank=True, max_length=services.EMAIL_MAX_LENGTH)


def _nickname_field() -> StrictCharField:
    return StrictCharField(
        required=False,
        allow_blank=True,
        max_length=services.NICKNAME_MAX_LENGTH,
        help_text="Display name; empty means the username",
    )


# --- input


class RegisterSerializer(serializers.Serializer[Any]):
    username = StrictCharField(
        min_length=services.USERNAME_MIN_LENGTH,
        max_length=services.USERNAME_MAX_LENGTH,
        validators=[services.username_validator],
        help_text="3 to 32 letters, digits, underscore, dot or dash; unique ignoring case",
    )
    password = _password_field(help_text="Checked against the password rules (length, common, similarity)")
    nickname = _nickname_field()
    phone = _phone_field()
    email = _email_field()


class LoginSerializer(serializers.Serializer[Any]):
    username = StrictCharField(max_length=services.USERNAME_MAX_LENGTH)
    password = _password_field()
    device_id = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=services.DEVICE_ID_MAX_LENGTH,
        validators=[services.device_id_validator],
        help_text="Stable id of this device; a new login from it replaces its previous session. "
        "Generated when missing.",
    )
    platform = serializers.ChoiceField(choices=Platform.choices, required=False, help_text="Defaults to other")


class RefreshTokenSerializer(serializers.Serializer[Any]):
    refresh_token = StrictCharField(max_length=TOKEN_MAX_LENGTH, help_text="The refresh token of the session")


class ProfileUpdateSerializer(serializers.Serializer[Any]):
    nickname = _nickname_field()
    avatar = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=services.AVATAR_MAX_LENGTH,
        validators=[services.avatar_validator],
        help_text="http or https URL of the avatar image; empty removes it",
    )
    bio = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, max_length=services.BIO_MAX_LENGTH)
    phone = _phone_field()
    email = _email_field()


class ChangePasswordSerializer(serializers.Serializer[Any]):
    old_password = _password_field()
    new_password = _password_field(help_text="Checked against the password rules (length, common, similarity)")


# --- output


class ProfileSerializer(serializers.ModelSerializer[User]):
    id = IdField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "nickname", "phone", "email", "avatar", "bio", "created_at"]
        read_only_fields = fields


class TokensSerializer(serializers.Serializer[services.SessionTokens]):
    access_token = serializers.CharField(read_only=True, help_text="Send as 'Authorization: Bearer <accessToken>'")
    refresh_token = serializers.CharField(read_only=True, help_text="Single use: each refresh returns a new one")
    expires_at = serializers.DateTimeField(read_only=True, help_text="When the access token expires")
    refresh_expires_at = serializers.DateTimeField(read_only=True, help_text="When the refresh token expires")


class LoginResultSerializer(TokensSerializer):
    user_id = IdField(read_only=True)
    session_id = IdField(read_only=True, help_text="This device session; logout and kicks name it")
    device_id = serializers.CharField(read_only=True, help_text="The device id given, or the one generated")
