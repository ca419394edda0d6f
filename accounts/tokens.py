"""JWT issue and verification on top of simplejwt.

Every token names its device session (sid) and the user's token version (tv). A refresh token is
valid only while it is the one its session holds (Device.refresh_jti): rotation replaces it, logout
and password change revoke the session, and a ban or password change bumps the token version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import Device, User
from imsite.errors import TokenInvalid

SESSION_CLAIM = "sid"
VERSION_CLAIM = "tv"


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    refresh_jti: str
    expires_at: datetime
    refresh_expires_at: datetime


@dataclass(frozen=True)
class RefreshClaims:
    user_id: int
    session_id: int
    token_version: int
    jti: str


def _lifetime(name: str) -> timedelta:
    value = settings.SIMPLE_JWT[name]
    assert isinstance(value, timedelta)
    return value


def _claim_name(name: str) -> str:
    # simplejwt's api_settings: SIMPLE_JWT with simplejwt's defaults for what it leaves out (JTI_CLAIM).
    return str(getattr(jwt_settings, name))


def issue_tokens(user: User, session_id: int) -> TokenPair:
    refresh = RefreshToken()
    refresh[_claim_name("USER_ID_CLAIM")] = str(user.pk)
    refresh[SESSION_CLAIM] = str(session_id)
    refresh[VERSION_CLAIM] = user.token_version
    access = refresh.access_token
    now = timezone.now()
    return TokenPair(
        access=str(access),
        refresh=str(refresh),
        refresh_jti=str(refresh[_claim_name("JTI_CLAIM")]),
        expires_at=now + _lifetime("ACCESS_TOKEN_LIFETIME"),
        refresh_expires_at=now + _lifetime("REFRESH_TOKEN_LIFETIME"),
    )


def _int_claim(token: RefreshToken | AccessToken, claim: str) -> int:
    try:
        return int(token[claim])
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenInvalid(f"Token is missing its '{claim}' claim.") from exc


def read_refresh_token(raw: str) -> RefreshClaims:
    """Signature, expiry and type checked; whether the session still holds it is the caller's check."""
    try:
        token = RefreshToken(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        raise TokenInvalid(f"Refresh token is invalid or expired: {exc}") from exc
    return RefreshClaims(
        user_id=_int_claim(token, _claim_name("USER_ID_CLAIM")),
        session_id=_int_claim(token, SESSION_CLAIM),
        token_version=_int_claim(token, VERSION_CLAIM),
        jti=str(token[_claim_name("JTI_CLAIM")]),
    )


def read_access_token(raw: str) -> tuple[int, int, int]:
    """(user id, session id, token version) of a valid access token; TokenInvalid otherwise."""
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        raise TokenInvalid(f"Access token is invalid or expired: {exc}") from exc
    return (
        _int_claim(token, _claim_name("USER_ID_CLAIM")),
        _int_claim(token, SESSION_CLAIM),
        _int_claim(token, VERSION_CLAIM),
    )


def live_session(user_id: int, session_id: int, token_version: int) -> Device:
    """The live device session a token speaks for, with its user loaded; TokenInvalid if it ended."""
    device = (
        Device.objects.select_related("user").filter(id=session_id, user_id=user_id, revoked_at__isnull=True).first()
    )
    return _checked_session(device, token_version)


def session_refusals(claims: list[tuple[int, int, int]]) -> list[TokenInvalid | None]:
    """live_session for many (user id, session id, token version) at once, in one query: None for a
    live session, or the TokenInvalid that refuses it, in the order given.

    The access node's check of every Auth frame: one statement written out (its tables and columns
    named from the models), no model instances. Through the ORM, building the query and two models of
    thirty fields each cost more CPU than the whole rest of a WebTransport session's authentication."""
    session_ids = list(dict.fromkeys(session_id for _, session_id, _ in claims))
    if not session_ids:
        return []
    device, user = Device._meta, User._meta
    sql = (
        f'SELECT d."id", d."user_id", u."deleted", u."is_active", u."token_version"'  # noqa: S608 - model names only
        f' FROM "{device.db_table}" d JOIN "{user.db_table}" u ON u."id" = d."user_id"'
        f' WHERE d."id" IN ({", ".join(["%s"] * len(session_ids))}) AND d."deleted" = %s AND d."revoked_at" IS NULL'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*session_ids, False])
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    answers: list[TokenInvalid | None] = []
    for user_id, session_id, version in claims:
        row = rows.get(session_id)
        if row is None or row[0] != user_id:
            answers.append(TokenInvalid(_ENDED))
        elif row[1] or not row[2]:
            answers.append(TokenInvalid(_DISABLED))
        elif row[3] != version:
            answers.append(TokenInvalid(_REVOKED))
        else:
            answers.append(None)
    return answers


_ENDED = "This session has ended (logged out, replaced or revoked): log in again."
_DISABLED = "This account is disabled."
_REVOKED = "This token was revoked (password change or ban): log in again."


def _checked_session(device: Device | None, token_version: int) -> Device:
    if device is None:
        raise TokenInvalid(_ENDED)
    user = device.user
    if user.deleted or not user.is_active:
        raise TokenInvalid(_DISABLED)
    if user.token_version != token_version:
        raise TokenInvalid(_REVOKED)
    return device
