"""Routes of the conversation, history, read and group endpoints (included under /api/v1/)."""

from django.urls import URLPattern, path

from messaging.api import views

urlpatterns: list[URLPattern] = [
    path("conversations", views.ConversationListView.as_view(), name="conversation-list"),
    path("conversations/direct", views.DirectConversationView.as_view(), name="conversation-direct"),
    path("conversations/<str:conversation_id>/messages", views.MessagesView.as_view(), name="conversation-messages"),
    path("conversations/<str:conversation_id>/read", views.ReadView.as_view(), name="conversation-read"),
    path("groups", views.GroupCreateView.as_view(), name="group-create"),
    path("groups/<str:conversation_id>", views.GroupView.as_view(), name="group-detail"),
    path("groups/<str:conversation_id>/members", views.GroupMembersView.as_view(), name="group-members"),
    path("groups/<str:conversation_id>/members/<str:user_id>", views.GroupMemberView.as_view(), name="group-member"),
    path("groups/<str:conversation_id>/leave", views.GroupLeaveView.as_view(), name="group-leave"),
    path("groups/<str:conversation_id>/owner", views.GroupOwnerView.as_view(), name="group-owner"),
]
