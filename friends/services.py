"""Every write of the friends app and the rules behind it: requests, friendships, remarks, blocks.

Views, the admin and commands call these; each runs in one transaction and publishes its
FriendsChanged events only after commit. Read helpers other apps use (are_friends,
is_blocked_either_way, friend_ids) live in friends.selectors and are re-exported here.

Decisions worth knowing:
- A request to someone who blocks you is refused with Blocked and a message that does not say
  "blocked"; a request to someone you block says so, since that is your own doing and you can undo it.
- A crossing request (bob already asked alice, alice now asks bob) makes them friends at once: both
  requests end accepted. Accepting a request also settles a reverse pending one the same way.
- Blocking is idempotent: blocking someone you already block returns the existing block.
- Concurrent duplicate requests are stopped by the partial unique constraint (one pending per
  direction): the loser's IntegrityError becomes Conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from friends.models import Block, FriendRequest, Friendship, RequestStatus
from friends.selectors import are_friends as are_friends
from friends.selectors import friend_ids as friend_ids
from friends.selectors import is_blocked_either_way as is_blocked_either_way
from imsite.errors import Blocked, Conflict, Forbidden, InvalidInput, NotFound
from imsite.events import FriendsChanged
from imsite.publisher import publish_user_event

MESSAGE_MAX_LENGTH = 200
REMARK_MAX_LENGTH = 64

Change = Literal["request_received", "request_accepted", "request_rejected", "removed", "blocked", "unblocked"]


@dataclass(frozen=True)
class BlockResult:
    """The live block, and whether this call created it (False: it already existed)."""

    block: Block
    created: bool


def _live_user(user_id: int, *, field: str) -> User:
    user = User.objects.filter(id=user_id, is_active=True).first()
    if user is None:
        raise NotFound(f"No user with id {user_id}.", field=field)
    return user


def _notify(user_id: int, other_user_id: int, change: Change) -> None:
    """Tells user_id's sessions, after commit, that something changed between them and other_user_id."""
    publish_user_event(FriendsChanged(user_id=user_id, other_user_id=other_user_id, change=change))


def _create_friendship(a: User, b: User) -> None:
    """Both direction rows, unless already there. A row created concurrently is the state we want."""
    for user, friend in ((a, b), (b, a)):
        if Friendship.objects.filter(user_id=user.id, friend_id=friend.id).exists():
            continue
        try:
            with transaction.atomic():
                Friendship.objects.create(user=user, friend=friend)
        except IntegrityError:
            if not Friendship.objects.filter(user_id=user.id, friend_id=friend.id).exists():
                raise


def _end_friendship(user_id: int, other_id: int) -> int:
    """Soft-deletes both direction rows; returns how many there were."""
    return (
        Friendship.objects.get_queryset()
        .filter(Q(user_id=user_id, friend_id=other_id) | Q(user_id=other_id, friend_id=user_id))
        .soft_delete()
    )


def _settle(request: FriendRequest, status: RequestStatus) -> None:
    request.status = status
    request.handled_at = timezone.now()
    request.save(update_fields=["status", "handled_at", "updated_at"])


def _accept_reverse_pending(request: FriendRequest) -> None:
    """A pending request the other way is answered by the same friendship: mark it accepted."""
    reverse = (
        FriendRequest.objects.select_for_update()
        .filter(from_user_id=request.to_user_id, to_user_id=request.from_user_id, status=RequestStatus.PENDING)
        .first()
    )
    if reverse is not None:
        _settle(reverse, RequestStatus.ACCEPTED)


def _pending_exists(from_user_id: int, to_user_id: int) -> bool:
    """The friendly early answer to a duplicate; the unique constraint is what guarantees it."""
    return FriendRequest.objects.filter(
        from_user_id=from_user_id, to_user_id=to_user_id, status=RequestStatus.PENDING
    ).exists()


def _check_not_blocked(actor: User, other: User) -> None:
    if Block.objects.filter(user_id=actor.id, blocked_id=other.id).exists():
        raise Blocked(f"You block {other.username}: unblock them first.")
    if Block.objects.filter(user_id=other.id, blocked_id=actor.id).exists():
        raise Blocked(f"{other.username} is not accepting friend requests from you.")


def send_friend_request(actor: User, *, to_user_id: int, message: str = "") -> FriendRequest:
    """Asks to_user_id to be friends; a crossing request makes the friendship at once (status accepted)."""
    if to_user_id == actor.id:
        raise InvalidInput("You cannot send a friend request to yourself.", field="friendId")
    if len(message) > MESSAGE_MAX_LENGTH:
        raise InvalidInput(f"The message is longer than {MESSAGE_MAX_LENGTH} characters.", field="message")
    with transaction.atomic():
        target = _live_user(to_user_id, field="friendId")
        _check_not_blocked(actor, target)
        if are_friends(actor.id, target.id):
            raise Conflict(f"You are already friends with {target.username}.", field="friendId")
        if _pending_exists(actor.id, target.id):
            raise Conflict(f"You already have a pending friend request to {target.username}.", field="friendId")
        crossing = (
            FriendRequest.objects.select_for_update()
            .filter(from_user_id=target.id, to_user_id=actor.id, status=RequestStatus.PENDING)
            .first()
        )
        request = FriendRequest(from_user=actor, to_user=target, message=message, status=RequestStatus.PENDING)
        if crossing is not None:
            request.status = RequestStatus.ACCEPTED
            request.handled_at = timezone.now()
        try:
            with transaction.atomic():
                request.save(force_insert=True)
        except IntegrityError as exc:
            raise Conflict(
                f"You already have a pending friend request to {target.username}.", field="friendId"
            ) from exc
        if crossing is None:
            _notify(target.id, actor.id, "request_received")
            return request
        _settle(crossing, RequestStatus.ACCEPTED)
        _create_friendship(actor, target)
        _notify(actor.id, target.id, "request_accepted")
        _notify(target.id, actor.id, "request_accepted")
        return request


def _answerable_request(actor: User, request_id: int, verb: str) -> FriendRequest:
    """The pending request addressed to actor, locked; NotFound when actor is on neither side."""
    request = (
        FriendRequest.objects.select_for_update(of=("self",))
        .select_related("from_user", "to_user")
        .filter(id=request_id)
        .filter(Q(from_user_id=actor.id) | Q(to_user_id=actor.id))
        .first()
    )
    if request is None:
        raise NotFound(f"No friend request with id {request_id}.")
    if request.to_user_id != actor.id:
        raise Forbidden(f"Only {request.to_user.username}, who received this request, can {verb} it.")
    if request.status != RequestStatus.PENDING:
        raise Conflict(f"This friend request was already {request.status}.")
    return request


def accept_friend_request(actor: User, *, request_id: int) -> FriendRequest:
    """The addressee accepts: both friendship rows are created in the same transaction."""
    with transaction.atomic():
        request = _answerable_request(actor, request_id, "accept")
        _check_not_blocked(actor, request.from_user)
        if not request.from_user.is_active:
            raise Conflict(f"{request.from_user.username} can no longer be added as a friend.")
        _settle(request, RequestStatus.ACCEPTED)
        _accept_reverse_pending(request)
        _create_friendship(request.from_user, actor)
        _notify(request.from_user_id, actor.id, "request_accepted")
        _notify(actor.id, request.from_user_id, "request_accepted")
        return request


def reject_friend_request(actor: User, *, request_id: int) -> FriendRequest:
    """The addressee declines; the sender may ask again later."""
    with transaction.atomic():
        request = _answerable_request(actor, request_id, "reject")
        _settle(request, RequestStatus.REJECTED)
        _notify(request.from_user_id, actor.id, "request_rejected")
        _notify(actor.id, request.from_user_id, "request_rejected")
        return request


def update_friend_remark(actor: User, *, friend_id: int, remark: str) -> Friendship:
    """Sets actor's private name for a friend ("" clears it); the friend's side is untouched."""
    if len(remark) > REMARK_MAX_LENGTH:
        raise InvalidInput(f"The remark is longer than {REMARK_MAX_LENGTH} characters.", field="remark")
    with transaction.atomic():
        friendship = (
            Friendship.objects.select_for_update(of=("self",))
            .select_related("friend")
            .filter(user_id=actor.id, friend_id=friend_id, friend__deleted=False)
            .first()
        )
        if friendship is None:
            raise NotFound(f"User {friend_id} is not in your friend list.")
        friendship.remark = remark
        friendship.save(update_fields=["remark", "updated_at"])
        return friendship


def remove_friend(actor: User, *, friend_id: int) -> None:
    """Ends the friendship in both directions (soft delete); either side may ask again later."""
    with transaction.atomic():
        if not _end_friendship(actor.id, friend_id):
            raise NotFound(f"User {friend_id} is not in your friend list.")
        _notify(actor.id, friend_id, "removed")
        _notify(friend_id, actor.id, "removed")


def block_user(actor: User, *, user_id: int) -> BlockResult:
    """Blocks user_id: ends a friendship and rejects pending requests both ways. Idempotent.

    The blocked user hears only what a removal or rejection would tell them, never "blocked".
    """
    if user_id == actor.id:
        raise InvalidInput("You cannot block yourself.", field="userId")
    with transaction.atomic():
        target = User.objects.filter(id=user_id).first()
        if target is None:
            raise NotFound(f"No user with id {user_id}.", field="userId")
        existing = Block.objects.select_related("blocked").filter(user_id=actor.id, blocked_id=target.id).first()
        if existing is not None:
            return BlockResult(block=existing, created=False)
        try:
            with transaction.atomic():
                block = Block.objects.create(user=actor, blocked=target)
        except IntegrityError:
            concurrent = Block.objects.select_related("blocked").get(user_id=actor.id, blocked_id=target.id)
            return BlockResult(block=concurrent, created=False)
        ended = _end_friendship(actor.id, target.id)
        now = timezone.now()
        rejected = FriendRequest.objects.filter(
            Q(from_user_id=actor.id, to_user_id=target.id) | Q(from_user_id=target.id, to_user_id=actor.id),
            status=RequestStatus.PENDING,
        ).update(status=RequestStatus.REJECTED, handled_at=now, updated_at=now)
        _notify(actor.id, target.id, "blocked")
        if ended:
            _notify(target.id, actor.id, "removed")
        elif rejected:
            _notify(target.id, actor.id, "request_rejected")
        return BlockResult(block=block, created=True)


def unblock_user(actor: User, *, user_id: int) -> None:
    """Lifts actor's block on user_id; a friendship it ended is not restored."""
    with transaction.atomic():
        if not Block.objects.get_queryset().filter(user_id=actor.id, blocked_id=user_id).soft_delete():
            raise NotFound(f"You do not block user {user_id}.", field="userId")
        _notify(actor.id, user_id, "unblocked")
