"""Thin views of the friends, blocks and user search endpoints: validate, call a service, shape."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from friends import selectors, services
from friends.api.serializers import (
    BlockSerializer,
    FriendRequestListQuerySerializer,
    FriendRequestSerializer,
    FriendshipSerializer,
    PublicProfileSerializer,
    RemarkSerializer,
    SendFriendRequestSerializer,
    UserSearchQuerySerializer,
)
from imsite.api.fields import parse_id
from imsite.errors import NotFound

TAG_FRIENDS = "friends"
TAG_BLOCKS = "blocks"
TAG_USERS = "users"


def _actor(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def _path_id(raw: str, what: str) -> int:
    """A snowflake id from the path; anything that cannot be one is a 404 like an unknown id."""
    value = parse_id(raw)
    if value is None:
        raise NotFound(f"No {what} with id {raw[:40]!r}.")
    return value


def _id_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.PATH, description=description)


def _validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    validated: dict[str, Any] = serializer.validated_data
    return validated


class UserSearchView(APIView):
    @extend_schema(
        tags=[TAG_USERS],
        summary="Find users by username or nickname",
        parameters=[UserSearchQuerySerializer],
        responses={200: PublicProfileSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        query = _validated(UserSearchQuerySerializer, request.query_params)
        limit: int = query.get("limit") or settings.USER_SEARCH_LIMIT
        users = selectors.search_users(_actor(request), query=query["q"], limit=limit)
        return Response(PublicProfileSerializer(users, many=True).data)


class FriendListView(APIView):
    @extend_schema(
        tags=[TAG_FRIENDS],
        summary="Your friends, newest first, with their profiles and whether they are online",
        responses={200: FriendshipSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        friendships = list(selectors.friendships_of(_actor(request).id))
        online = selectors.online_user_ids(f.friend_id for f in friendships)
        return Response(FriendshipSerializer(friendships, many=True, context={"online_ids": online}).data)


class FriendRequestSendView(APIView):
    @extend_schema(
        tags=[TAG_FRIENDS],
        summary="Ask a user to be friends (a crossing request makes you friends at once)",
        request=SendFriendRequestSerializer,
        responses={201: FriendRequestSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _validated(SendFriendRequestSerializer, request.data)
        friend_request = services.send_friend_request(
            _actor(request), to_user_id=data["friend_id"], message=data["message"]
        )
        return Response(FriendRequestSerializer(friend_request).data, status=status.HTTP_201_CREATED)


class FriendRequestListView(APIView):
    @extend_schema(
        tags=[TAG_FRIENDS],
        summary="Friend requests you received and sent, newest first",
        parameters=[FriendRequestListQuerySerializer],
        responses={200: FriendRequestSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        query = _validated(FriendRequestListQuerySerializer, request.query_params)
        directions: list[str] = query.get("direction") or ["incoming", "outgoing"]
        statuses = [query["status"]] if "status" in query else []
        requests = selectors.friend_requests_of(
            _actor(request).id,
            incoming="incoming" in directions,
            outgoing="outgoing" in directions,
            statuses=statuses,
        )
        return Response(FriendRequestSerializer(requests, many=True).data)


_request_id = _id_parameter("request_id", "Id of the friend request")


class FriendRequestAcceptView(APIView):
    @extend_schema(
        tags=[TAG_FRIENDS],
        summary="Accept a friend request addressed to you",
        parameters=[_request_id],
        request=None,
        responses={200: FriendRequestSerializer},
    )
    def post(self, request: Request, request_id: str) -> Response:
        friend_request = services.accept_friend_request(
            _actor(request), request_id=_path_id(request_id, "friend request")
        )
        return Response(FriendRequestSerializer(friend_request).data)


class FriendRequestRejectView(APIView):
    @extend_schema(
        tags=[TAG_FRIENDS],
        summary="Reject a friend request addressed to you",
        parameters=[_request_id],
        request=None,
        responses={200: FriendRequestSerializer},
    )
    def post(self, request: Request, request_id: str) -> Response:
        friend_request = services.reject_friend_request(
            _actor(request), request_id=_path_id(request_id, "friend request")
        )
        return Response(FriendRequestSerializer(friend_request).data)


_friend_id = _id_parameter("friend_id", "User id of the friend")


class FriendDetailView(APIView):
    @extend_schema(
        tags=[TAG_FRIENDS],
        summary="Set your private remark for a friend",
        parameters=[_friend_id],
        request=RemarkSerializer,
        responses={200: FriendshipSerializer},
    )
    def patch(self, request: Request, friend_id: str) -> Response:
        data = _validated(RemarkSerializer, request.data)
        friendship = services.update_friend_remark(
            _actor(request), friend_id=_path_id(friend_id, "friend"), remark=data["remark"]
        )
        online = selectors.online_user_ids([friendship.friend_id])
        return Response(FriendshipSerializer(friendship, context={"online_ids": online}).data)

    @extend_schema(
        tags=[TAG_FRIENDS],
        summary="Remove a friend (both directions)",
        parameters=[_friend_id],
        request=None,
        responses={200: OpenApiResponse(description="Removed; data is null")},
    )
    def delete(self, request: Request, friend_id: str) -> Response:
        services.remove_friend(_actor(request), friend_id=_path_id(friend_id, "friend"))
        return Response(None)


class BlockListView(APIView):
    @extend_schema(
        tags=[TAG_BLOCKS],
        summary="Users you block, newest first",
        responses={200: BlockSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(BlockSerializer(selectors.blocks_of(_actor(request).id), many=True).data)


_user_id = _id_parameter("user_id", "Id of the user")


class BlockDetailView(APIView):
    @extend_schema(
        tags=[TAG_BLOCKS],
        summary="Block a user: ends a friendship and rejects pending requests both ways; idempotent",
        parameters=[_user_id],
        request=None,
        responses={
            201: BlockSerializer,
            200: OpenApiResponse(BlockSerializer, description="Already blocked: the existing block"),
        },
    )
    def post(self, request: Request, user_id: str) -> Response:
        result = services.block_user(_actor(request), user_id=_path_id(user_id, "user"))
        return Response(
            BlockSerializer(result.block).data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )

    @extend_schema(
        tags=[TAG_BLOCKS],
        summary="Unblock a user",
        parameters=[_user_id],
        request=None,
        responses={200: OpenApiResponse(description="Unblocked; data is null")},
    )
    def delete(self, request: Request, user_id: str) -> Response:
        services.unblock_user(_actor(request), user_id=_path_id(user_id, "user"))
        return Response(None)
