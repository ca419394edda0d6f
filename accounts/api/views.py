"""Thin views of the auth and profile endpoints: validate, call a service, shape the result."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts import services
from accounts.api.serializers import (
    ChangePasswordSerializer,
    LoginResultSerializer,
    LoginSerializer,
    ProfileSerializer,
    ProfileUpdateSerializer,
    RefreshTokenSerializer,
    RegisterSerializer,
    TokensSerializer,
)
from accounts.models import User
from imsite.api.envelope import envelope
from imsite.api.throttling import AuthRateThrottle

TAG_AUTH = "auth"
TAG_PROFILE = "profile"
PASSWORD_CHANGED_MESSAGE = "Password changed: every session was signed out. Log in again with the new password."


def _actor(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def _validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    validated: dict[str, Any] = serializer.validated_data
    return validated


def _client_ip(request: Request) -> str:
    """The caller's address as the throttles see it (REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES)."""
    return str(BaseThrottle().get_ident(request) or "")


class _AuthEndpoint(APIView):
    """Reached without an access token; throttled per client IP."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]


class RegisterView(_AuthEndpoint):
    @extend_schema(
        tags=[TAG_AUTH],
        summary="Create an account",
        request=RegisterSerializer,
        responses={201: ProfileSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _validated(RegisterSerializer, request.data)
        user = services.register_user(
            username=data["username"],
            password=data["password"],
            nickname=data.get("nickname", ""),
            phone=data.get("phone", ""),
            email=data.get("email", ""),
        )
        return Response(ProfileSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(_AuthEndpoint):
    @extend_schema(
        tags=[TAG_AUTH],
        summary="Log in: opens a device session and returns its tokens",
        description="A login with the deviceId of a live session of the same user replaces that session.",
        request=LoginSerializer,
        responses={200: LoginResultSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _validated(LoginSerializer, request.data)
        result = services.login_user(
            username=data["username"],
            password=data["password"],
            device_id=data.get("device_id", ""),
            platform=data.get("platform", ""),
            ip=_client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        return Response(LoginResultSerializer(result).data)


class RefreshView(_AuthEndpoint):
    @extend_schema(
        tags=[TAG_AUTH],
        summary="Exchange the refresh token for new tokens (the refresh token rotates)",
        description="A refresh token works once. Presenting an already used one ends its session.",
        request=RefreshTokenSerializer,
        responses={200: TokensSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _validated(RefreshTokenSerializer, request.data)
        result = services.refresh_session(refresh_token=data["refresh_token"])
        return Response(TokensSerializer(result).data)


class LogoutView(APIView):
    throttle_classes = [AuthRateThrottle]

    @extend_schema(
        tags=[TAG_AUTH],
        summary="End the session of one of your refresh tokens and kick its connections",
        request=RefreshTokenSerializer,
        responses={200: OpenApiResponse(description="Logged out (also when that session had already ended)")},
    )
    def post(self, request: Request) -> Response:
        data = _validated(RefreshTokenSerializer, request.data)
        services.logout_session(_actor(request), refresh_token=data["refresh_token"])
        return Response(None)


class ProfileView(APIView):
    @extend_schema(tags=[TAG_PROFILE], summary="Your own profile", responses={200: ProfileSerializer})
    def get(self, request: Request) -> Response:
        return Response(ProfileSerializer(_actor(request)).data)

    @extend_schema(
        tags=[TAG_PROFILE],
        summary="Change your profile (only the fields sent)",
        request=ProfileUpdateSerializer,
        responses={200: ProfileSerializer},
    )
    def patch(self, request: Request) -> Response:
        data = _validated(ProfileUpdateSerializer, request.data)
        user = services.update_profile(_actor(request), **data)
        return Response(ProfileSerializer(user).data)


class ChangePasswordView(APIView):
    @extend_schema(
        tags=[TAG_PROFILE],
        summary="Change your password: every session ends, log in again",
        request=ChangePasswordSerializer,
        responses={
            200: inline_serializer(
                "PasswordChanged", {"relogin_required": serializers.BooleanField(help_text="Always true")}
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = _validated(ChangePasswordSerializer, request.data)
        services.change_password(_actor(request), old_password=data["old_password"], new_password=data["new_password"])
        # Wrapped here to carry a message of its own; `exception` tells the renderer not to wrap again.
        response = Response(envelope({"relogin_required": True}, message=PASSWORD_CHANGED_MESSAGE))
        response.exception = True
        return response
