"""Reads of the friends app: relationship checks other apps call, user search, and the listings.

Writes and rules live in friends/services.py; nothing here changes a row.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from accounts.models import User
from friends.models import Block, FriendRequest, Friendship, RequestStatus

logger = logging.getLogger(__name__)


def are_friends(user_id: int, other_id: int) -> bool:
    """True when a live friendship joins the two (both direction rows are written together)."""
    return Friendship.objects.filter(user_id=user_id, friend_id=other_id).exists()


def is_blocked_either_way(user_id: int, other_id: int) -> bool:
    """True when either user blocks the other."""
    return Block.objects.filter(
        Q(user_id=user_id, blocked_id=other_id) | Q(user_id=other_id, blocked_id=user_id)
    ).exists()


def friend_ids(user_id: int) -> list[int]:
    """Ids of the user's friends (soft-deleted users left out), in no particular order."""
    return friend_ids_of_many([user_id]).get(user_id, [])


# Well under SQLite's limit on a statement's parameters (32,766; 999 before 3.32).
_USERS_PER_FRIENDS_QUERY = 500


def friend_ids_of_many(user_ids: Iterable[int]) -> dict[int, list[int]]:
    """Each user's friend ids (soft-deleted users left out, users without friends absent), one
    statement per 500 users: the access node asks once for all the sessions that opened or closed
    meanwhile."""
    users = list(dict.fromkeys(user_ids))
    found: dict[int, list[int]] = {}
    for start in range(0, len(users), _USERS_PER_FRIENDS_QUERY):
        rows = Friendship.objects.filter(
            user_id__in=users[start : start + _USERS_PER_FRIENDS_QUERY], friend__deleted=False
        ).values_list("user_id", "friend_id")
        for owner, friend in rows:
            found.setdefault(owner, []).append(friend)
    return found


def online_user_ids(user_ids: Iterable[int]) -> set[int]:
    """The subset of user_ids with at least one live connection, from the presence store.

    When the store cannot be reached the friends list still loads: everyone shows offline and the
    failure is logged as an error.
    """
    from realtime.presence import online_user_ids as lookup

    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return set()
    try:
        return lookup(ids) & set(ids)
    except (TimeoutError, OSError) as exc:
        logger.error("presence unavailable: friends shown offline", extra={"error": repr(exc)})
        return set()


def search_users(actor: User, *, query: str, limit: int) -> list[User]:
    """Active users whose username or nickname contains query (case-insensitive), best match first.

    Order: exact username, username prefix, nickname prefix, other matches; then by username.
    Leaves out the actor, inactive and deleted users, and users who block the actor.
    """
    blockers = Block.objects.filter(blocked_id=actor.id).values("user_id")
    rank = Case(
        When(username__iexact=query, then=Value(0)),
        When(username__istartswith=query, then=Value(1)),
        When(nickname__istartswith=query, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    matches = (
        User.objects.filter(is_active=True)
        .filter(Q(username__icontains=query) | Q(nickname__icontains=query))
        .exclude(id=actor.id)
        .exclude(id__in=blockers)
        .annotate(rank=rank)
        .order_by("rank", "username")
    )
    return list(matches[:limit])


def friendships_of(user_id: int) -> QuerySet[Friendship]:
    """The user's live friendships with the friend's profile joined in, newest first."""
    return (
        Friendship.objects.filter(user_id=user_id, friend__deleted=False)
        .select_related("friend")
        .order_by("-created_at", "-id")
    )


def friendship_of(user_id: int, friend_id: int) -> Friendship | None:
    return Friendship.objects.filter(user_id=user_id, friend_id=friend_id).select_related("friend").first()


def friend_requests_of(
    user_id: int, *, incoming: bool = True, outgoing: bool = True, statuses: Collection[str] = ()
) -> QuerySet[FriendRequest]:
    """Requests the user received and/or sent, both profiles joined in, newest first.

    statuses narrows to those RequestStatus values; empty means every status.
    """
    sides = Q()
    if incoming:
        sides |= Q(to_user_id=user_id, from_user__deleted=False)
    if outgoing:
        sides |= Q(from_user_id=user_id, to_user__deleted=False)
    if not (incoming or outgoing):
        return FriendRequest.objects.none()
    requests = FriendRequest.objects.filter(sides)
    if statuses:
        requests = requests.filter(status__in=[RequestStatus(status) for status in statuses])
    return requests.select_related("from_user", "to_user").order_by("-created_at", "-id")


def blocks_of(user_id: int) -> QuerySet[Block]:
    """Users the user blocks, with their profiles, newest first."""
    return Block.objects.filter(user_id=user_id).select_related("blocked").order_by("-created_at", "-id")
