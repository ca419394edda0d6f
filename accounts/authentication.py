"""DRF authentication: a Bearer access token whose device session is still live."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.models import Device, User
from accounts.tokens import live_session, read_access_token
from imsite.errors import TokenInvalid
from imsite.logging import bind


class SessionJWTAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, Device] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <accessToken>'.")
        try:
            raw = header[1].decode("ascii")
            user_id, session_id, version = read_access_token(raw)
            device = live_session(user_id, session_id, version)
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Access token must be ASCII.") from exc
        except TokenInvalid as exc:
            raise exceptions.AuthenticationFailed(exc.message) from exc
        bind(userId=str(user_id))
        # request.auth is the device session: views know which device is calling.
        return device.user, device

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def request_device(request: Any) -> Device:
    device = request.auth
    if not isinstance(device, Device):
        raise exceptions.NotAuthenticated()
    return device
