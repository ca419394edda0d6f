"""GET /blocks, POST /blocks/{userId}, DELETE /blocks/{userId}."""

from __future__ import annotations

from typing import Any

import pytest

from friends import services
from friends.models import Block, FriendRequest, Friendship, RequestStatus
from friends.tests.conftest import API
from imsite.events import FriendsChanged


def changes(events: list[tuple[str, Any]]) -> list[tuple[int, int, str]]:
    return sorted((e.user_id, e.other_user_id, e.change) for _, e in events if isinstance(e, FriendsChanged))


def test_alice_can_block_charlie(as_user, alice, charlie, capture_events):
    with capture_events() as events:
        response = as_user(alice).post(f"{API}/blocks/{charlie.id}")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["userId"] == str(charlie.id)
    assert data["user"] == {"id": str(charlie.id), "username": "charlie", "nickname": "Charlie", "avatar": ""}
    assert data["createdAt"]
    assert Block.objects.filter(user=alice, blocked=charlie).exists()
    # Charlie is told nothing: there was nothing between them to end.
    assert changes(events) == [(alice.id, charlie.id, "blocked")]


def test_blocking_a_friend_ends_the_friendship_both_ways(
    as_user, alice, bob, alice_and_bob_are_friends, capture_events
):
    with capture_events() as events:
        assert as_user(alice).post(f"{API}/blocks/{bob.id}").status_code == 201
    assert not services.are_friends(alice.id, bob.id)
    assert not services.are_friends(bob.id, alice.id)
    assert changes(events) == sorted([(alice.id, bob.id, "blocked"), (bob.id, alice.id, "removed")])


def test_blocking_rejects_pending_requests_both_ways(as_user, alice, charlie, make_user):
    dave = make_user("dave")
    to_charlie = services.send_friend_request(alice, to_user_id=charlie.id)
    to_dave = services.send_friend_request(alice, to_user_id=dave.id)
    from_dave = services.send_friend_request(dave, to_user_id=charlie.id)
    assert as_user(charlie).post(f"{API}/blocks/{alice.id}").status_code == 201
    to_charlie.refresh_from_db()
    assert to_charlie.status == RequestStatus.REJECTED
    assert to_charlie.handled_at is not None
    # Requests between others are untouched.
    assert FriendRequest.objects.get(id=to_dave.id).status == RequestStatus.PENDING
    assert FriendRequest.objects.get(id=from_dave.id).status == RequestStatus.PENDING


def test_a_block_stops_requests_from_the_blocker_too(as_user, alice, charlie):
    services.block_user(charlie, user_id=alice.id)
    assert (
        as_user(charlie).post(f"{API}/friends/request", {"friendId": str(alice.id)}, format="json").status_code == 403
    )


def test_blocking_twice_is_idempotent(as_user, alice, charlie):
    client = as_user(alice)
    first = client.post(f"{API}/blocks/{charlie.id}")
    second = client.post(f"{API}/blocks/{charlie.id}")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["data"] == second.json()["data"]
    assert Block.objects.filter(user=alice, blocked=charlie).count() == 1


def test_block_list_shows_blocked_users_newest_first(as_user, alice, bob, charlie):
    services.block_user(alice, user_id=bob.id)
    services.block_user(alice, user_id=charlie.id)
    services.block_user(charlie, user_id=alice.id)  # charlie's block is not alice's to see
    response = as_user(alice).get(f"{API}/blocks")
    assert response.status_code == 200
    assert [item["userId"] for item in response.json()["data"]] == [str(charlie.id), str(bob.id)]
    assert response.json()["data"][0]["user"]["username"] == "charlie"


def test_unblocking_lifts_the_block(as_user, alice, charlie, capture_events):
    services.block_user(alice, user_id=charlie.id)
    with capture_events() as events:
        response = as_user(alice).delete(f"{API}/blocks/{charlie.id}")
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert not services.is_blocked_either_way(alice.id, charlie.id)
    assert as_user(alice).get(f"{API}/blocks").json()["data"] == []
    assert changes(events) == [(alice.id, charlie.id, "unblocked")]
    assert (
        as_user(charlie).post(f"{API}/friends/request", {"friendId": str(alice.id)}, format="json").status_code == 201
    )


def test_unblocking_does_not_restore_the_friendship(alice, bob, alice_and_bob_are_friends):
    services.block_user(alice, user_id=bob.id)
    services.unblock_user(alice, user_id=bob.id)
    assert not services.are_friends(alice.id, bob.id)
    assert Friendship.objects.count() == 0


def test_unblocking_someone_not_blocked_is_not_found(as_user, alice, charlie):
    response = as_user(alice).delete(f"{API}/blocks/{charlie.id}")
    assert response.status_code == 404
    assert "do not block" in response.json()["message"]


def test_charlie_cannot_lift_alices_block(as_user, alice, charlie):
    services.block_user(alice, user_id=charlie.id)
    assert as_user(charlie).delete(f"{API}/blocks/{alice.id}").status_code == 404
    assert services.is_blocked_either_way(alice.id, charlie.id)


def test_blocking_yourself_is_refused(as_user, alice):
    response = as_user(alice).post(f"{API}/blocks/{alice.id}")
    assert response.status_code == 400
    assert "yourself" in response.json()["message"]


def test_blocking_nobody_is_not_found(as_user, alice):
    assert as_user(alice).post(f"{API}/blocks/987654321").status_code == 404


@pytest.mark.parametrize("raw_id", ["charlie", "0", "-1", "1e5", "9" * 20])
def test_malformed_user_ids_are_not_found(as_user, alice, raw_id):
    client = as_user(alice)
    assert client.post(f"{API}/blocks/{raw_id}").status_code == 404
    assert client.delete(f"{API}/blocks/{raw_id}").status_code == 404


def test_blocks_need_a_token(api, charlie):
    assert api.get(f"{API}/blocks").status_code == 401
    assert api.post(f"{API}/blocks/{charlie.id}").status_code == 401
    assert api.delete(f"{API}/blocks/{charlie.id}").status_code == 401


def test_wrong_methods_on_blocks_are_not_allowed(as_user, alice, charlie):
    client = as_user(alice)
    assert client.post(f"{API}/blocks").status_code == 405
    assert client.get(f"{API}/blocks/{charlie.id}").status_code == 405
