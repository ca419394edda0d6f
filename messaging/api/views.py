"""Conversation, history, read and group endpoints: validate, call a service or selector, shape the reply.

Every conversation endpoint answers 404 to non-members. Sending (POST conversations/{id}/messages)
goes through the logic worker like a realtime send (messaging/gateway.py).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_device
from imsite.errors import ServiceUnavailable
from messaging import selectors, services
from messaging.api.permissions import PathIdsAreIds, acting_user
from messaging.api.serializers import (
    ConversationSerializer,
    DirectConversationRequestSerializer,
    GroupCreateRequestSerializer,
    GroupMembersRequestSerializer,
    GroupOwnerRequestSerializer,
    GroupUpdateRequestSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    MemberRoleRequestSerializer,
    MessageSerializer,
    ReadRequestSerializer,
    ReadStateSerializer,
    SendRequestSerializer,
)
from messaging.gateway import WorkerUnavailable, gateway, send_error_as_service_error
from schema.codec import MessageKind as WireKind
from schema.codec import SendError, SendMessage

CONVERSATIONS = ["conversations"]
GROUPS = ["groups"]

_ID_SCHEMA = {"type": "string", "pattern": "^[0-9]{1,19}$"}
CONVERSATION_ID = OpenApiParameter(
    "conversation_id",
    _ID_SCHEMA,
    OpenApiParameter.PATH,
    description="The conversation (a group's id is its conversation id).",
)
USER_ID = OpenApiParameter("user_id", _ID_SCHEMA, OpenApiParameter.PATH, description="The member.")


class _MessagingView(APIView):
    permission_classes = [IsAuthenticated, PathIdsAreIds]
    path_ids: dict[str, int]

    def validated(self, serializer_class: type[Any], data: Any) -> dict[str, Any]:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        result: dict[str, Any] = serializer.validated_data
        return result

    def conversation_reply(self, request: Request, conversation_id: int, code: int = status.HTTP_200_OK) -> Response:
        summary = selectors.conversation_for(acting_user(request), conversation_id)
        return Response(ConversationSerializer(summary).data, status=code)


class ConversationListView(_MessagingView):
    @extend_schema(
        tags=CONVERSATIONS,
        summary="The caller's conversations, most recently active first",
        responses={200: ConversationSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        summaries = selectors.list_conversations(acting_user(request))
        return Response(ConversationSerializer(summaries, many=True).data)


class DirectConversationView(_MessagingView):
    @extend_schema(
        tags=CONVERSATIONS,
        summary="Open the direct conversation with a user (created once; needs friendship, no blocks)",
        request=DirectConversationRequestSerializer,
        responses={200: ConversationSerializer, 201: ConversationSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.validated(DirectConversationRequestSerializer, request.data)
        result = services.get_or_create_direct_conversation(acting_user(request), other_user_id=data["user_id"])
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return self.conversation_reply(request, result.conversation_id, code)


_QUERY_NAMES = {"beforeSeq": "before_seq", "afterSeq": "after_seq", "limit": "limit"}


class MessagesView(_MessagingView):
    """GET a page of history; POST a message (through the logic worker, like a realtime send)."""

    @extend_schema(
        tags=CONVERSATIONS,
        summary="A page of messages in ascending seq order",
        parameters=[
            CONVERSATION_ID,
            OpenApiParameter(
                "beforeSeq",
                {"type": "integer", "minimum": 0},
                description="The newest page below this seq (default: the newest page). Not with afterSeq.",
            ),
            OpenApiParameter(
                "afterSeq", {"type": "integer", "minimum": 0}, description="The oldest page above this seq (sync)."
            ),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 200}, description="Default 50."),
        ],
        responses={200: HistorySerializer},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        query = {
            snake: request.query_params[camel] for camel, snake in _QUERY_NAMES.items() if camel in request.query_params
        }
        data = self.validated(HistoryQuerySerializer, query)
        page = selectors.history(
            acting_user(request),
            self.path_ids["conversation_id"],
            before_seq=data.get("before_seq"),
            after_seq=data.get("after_seq"),
            limit=data["limit"],
        )
        return Response(HistorySerializer(page).data)

    @extend_schema(
        tags=CONVERSATIONS,
        summary="Send a message (stored by the logic worker; a retry with the same clientMsgId is not stored twice)",
        parameters=[CONVERSATION_ID],
        request=SendRequestSerializer,
        responses={201: MessageSerializer},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        data = self.validated(SendRequestSerializer, request.data)
        device = request_device(request)
        frame = SendMessage(
            client_msg_id=data["client_msg_id"],
            conversation_id=self.path_ids["conversation_id"],
            kind=WireKind.TEXT,
            body=data["body"],
            reply_to_id=data.get("reply_to_id") or 0,
        )
        try:
            answer = gateway.send(user_id=device.user_id, session_id=device.id, device_id=device.device_id, frame=frame)
        except WorkerUnavailable as exc:
            raise ServiceUnavailable(
                "The message could not be confirmed in time; send it again with the same clientMsgId."
            ) from exc
        if isinstance(answer, SendError):
            raise send_error_as_service_error(answer)
        # A retry answers with the message its first attempt stored.
        message = selectors.stored_message(answer.message_id)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class ReadView(_MessagingView):
    @extend_schema(
        tags=CONVERSATIONS,
        parameters=[CONVERSATION_ID],
        summary="Move the read position forward (never back, never past the last seq)",
        request=ReadRequestSerializer,
        responses={200: ReadStateSerializer},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        data = self.validated(ReadRequestSerializer, request.data)
        state = services.mark_read(
            acting_user(request), conversation_id=self.path_ids["conversation_id"], seq=data["seq"]
        )
        return Response(ReadStateSerializer(state).data)


class GroupCreateView(_MessagingView):
    @extend_schema(
        tags=GROUPS,
        summary="Create a group owned by the caller",
        request=GroupCreateRequestSerializer,
        responses={201: ConversationSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.validated(GroupCreateRequestSerializer, request.data)
        change = services.create_group(acting_user(request), name=data["name"], member_ids=data["member_ids"])
        return self.conversation_reply(request, change.conversation_id, status.HTTP_201_CREATED)


class GroupView(_MessagingView):
    @extend_schema(
        tags=GROUPS,
        parameters=[CONVERSATION_ID],
        summary="Rename the group or change its avatar (owner and admins)",
        request=GroupUpdateRequestSerializer,
        responses={200: ConversationSerializer},
    )
    def patch(self, request: Request, conversation_id: str) -> Response:
        data = self.validated(GroupUpdateRequestSerializer, request.data)
        group_id = self.path_ids["conversation_id"]
        services.update_group(
            acting_user(request), conversation_id=group_id, name=data.get("name"), avatar=data.get("avatar")
        )
        return self.conversation_reply(request, group_id)


class GroupMembersView(_MessagingView):
    @extend_schema(
        tags=GROUPS,
        parameters=[CONVERSATION_ID],
        summary="Add members (owner and admins); users already in the group are skipped",
        request=GroupMembersRequestSerializer,
        responses={200: ConversationSerializer},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        data = self.validated(GroupMembersRequestSerializer, request.data)
        group_id = self.path_ids["conversation_id"]
        services.add_group_members(acting_user(request), conversation_id=group_id, user_ids=data["user_ids"])
        return self.conversation_reply(request, group_id)


class GroupMemberView(_MessagingView):
    @extend_schema(
        tags=GROUPS,
        parameters=[CONVERSATION_ID, USER_ID],
        summary="Remove a member (the owner: anyone else; admins: plain members)",
        request=None,
        responses={200: ConversationSerializer},
    )
    def delete(self, request: Request, conversation_id: str, user_id: str) -> Response:
        group_id = self.path_ids["conversation_id"]
        services.remove_group_member(acting_user(request), conversation_id=group_id, user_id=self.path_ids["user_id"])
        return self.conversation_reply(request, group_id)

    @extend_schema(
        tags=GROUPS,
        parameters=[CONVERSATION_ID, USER_ID],
        summary="Set a member's role to admin or member (owner only)",
        request=MemberRoleRequestSerializer,
        responses={200: ConversationSerializer},
    )
    def patch(self, request: Request, conversation_id: str, user_id: str) -> Response:
        data = self.validated(MemberRoleRequestSerializer, request.data)
        group_id = self.path_ids["conversation_id"]
        services.set_member_role(
            acting_user(request), conversation_id=group_id, user_id=self.path_ids["user_id"], role=data["role"]
        )
        return self.conversation_reply(request, group_id)


class GroupLeaveView(_MessagingView):
    @extend_schema(
        tags=GROUPS,
        parameters=[CONVERSATION_ID],
        summary="Leave the group (the owner hands it over first, unless alone: then it is dissolved)",
        request=None,
        responses={200: None},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        services.leave_group(acting_user(request), conversation_id=self.path_ids["conversation_id"])
        return Response(None)


class GroupOwnerView(_MessagingView):
    @extend_schema(
        tags=GROUPS,
        parameters=[CONVERSATION_ID],
        summary="Hand the group over to another member (owner only; the old owner becomes an admin)",
        request=GroupOwnerRequestSerializer,
        responses={200: ConversationSerializer},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        data = self.validated(GroupOwnerRequestSerializer, request.data)
        group_id = self.path_ids["conversation_id"]
        services.transfer_group_ownership(acting_user(request), conversation_id=group_id, new_owner_id=data["user_id"])
        return self.conversation_reply(request, group_id)
