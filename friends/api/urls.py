"""Routes of the friends, blocks and user search endpoints."""

from django.urls import URLPattern, path

from friends.api import views

urlpatterns: list[URLPattern] = [
    path("users/search", views.UserSearchView.as_view(), name="users-search"),
    path("friends", views.FriendListView.as_view(), name="friends"),
    path("friends/request", views.FriendRequestSendView.as_view(), name="friends-request"),
    path("friends/requests", views.FriendRequestListView.as_view(), name="friends-requests"),
    path(
        "friends/requests/<str:request_id>/accept",
        views.FriendRequestAcceptView.as_view(),
        name="friends-request-accept",
    ),
    path(
        "friends/requests/<str:request_id>/reject",
        views.FriendRequestRejectView.as_view(),
        name="friends-request-reject",
    ),
    path("friends/<str:friend_id>", views.FriendDetailView.as_view(), name="friends-detail"),
    path("blocks", views.BlockListView.as_view(), name="blocks"),
    path("blocks/<str:user_id>", views.BlockDetailView.as_view(), name="blocks-detail"),
]
