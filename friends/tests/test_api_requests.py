"""POST /friends/request, GET /friends/requests, POST /friends/requests/{id}/accept and /reject."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from friends import services
from friends.models import FriendRequest, Friendship, RequestStatus
from friends.tests.conftest import API
from imsite.errors import Conflict
from imsite.events import FriendsChanged


def send(client: APIClient, body: object) -> Any:
    return client.post(f"{API}/friends/request", body, format="json")


def friend_event_pairs(events: list[tuple[str, Any]]) -> list[tuple[str, int, int, str]]:
    return [
        (subject, event.user_id, event.other_user_id, event.change)
        for subject, event in events
        if isinstance(event, FriendsChanged)
    ]


# --- sending


def test_alice_can_send_charlie_a_friend_request(as_user, alice, charlie, capture_events):
    with capture_events() as events:
        response = send(as_user(alice), {"friendId": str(charlie.id), "message": "Hello Charlie"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == 0
    data = body["data"]
    assert data["fromUserId"] == str(alice.id)
    assert data["toUserId"] == str(charlie.id)
    assert data["message"] == "Hello Charlie"
    assert data["status"] == "pending"
    assert data["handledAt"] is None
    assert data["createdAt"]
    assert data["fromUser"] == {"id": str(alice.id), "username": "alice", "nickname": "Alice", "avatar": ""}
    assert data["toUser"]["id"] == str(charlie.id)
    assert FriendRequest.objects.get(id=int(data["id"])).status == RequestStatus.PENDING
    assert friend_event_pairs(events) == [
        (f"im.user.{charlie.id}.event", charlie.id, alice.id, "request_received"),
    ]


def test_friend_id_may_be_a_json_number_and_message_is_optional(as_user, alice, charlie):
    response = send(as_user(alice), {"friendId": charlie.id})
    assert response.status_code == 201, response.content
    assert response.json()["data"]["message"] == ""


def test_sending_a_friend_request_to_yourself_is_refused(as_user, alice):
    response = send(as_user(alice), {"friendId": str(alice.id)})
    assert response.status_code == 400
    assert "yourself" in response.json()["message"]
    assert not FriendRequest.objects.exists()


def test_sending_a_friend_request_to_nobody_is_not_found(as_user, alice):
    response = send(as_user(alice), {"friendId": "123456789"})
    assert response.status_code == 404
    assert response.json()["code"] == 40400
    assert "123456789" in response.json()["message"]


def test_sending_a_friend_request_to_a_banned_user_is_not_found(as_user, alice, make_user):
    banned = make_user("banned", is_active=False)
    assert send(as_user(alice), {"friendId": str(banned.id)}).status_code == 404


@pytest.mark.parametrize(
    "friend_id",
    [["1"], {"id": "1"}, "abc", "12a", "-5", "0", 0, -1, 1.5, True, None, "", "9" * 20, 2**63, " 12"],
)
def test_friend_id_must_be_an_id(as_user, alice, friend_id):
    response = send(as_user(alice), {"friendId": friend_id})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == 40000
    assert "friendId" in response.json()["message"]


def test_friend_id_is_required(as_user, alice):
    response = send(as_user(alice), {"message": "hi"})
    assert response.status_code == 400
    assert "friendId" in response.json()["message"]
    assert "required" in response.json()["message"]


def test_oversize_message_is_refused(as_user, alice, charlie):
    response = send(as_user(alice), {"friendId": str(charlie.id), "message": "x" * 201})
    assert response.status_code == 400
    assert "message" in response.json()["message"]
    assert not FriendRequest.objects.exists()


@pytest.mark.parametrize("message", [123, ["hi"], {"a": 1}, True])
def test_message_must_be_a_string(as_user, alice, charlie, message):
    response = send(as_user(alice), {"friendId": str(charlie.id), "message": message})
    assert response.status_code == 400
    assert "message" in response.json()["message"]


def test_invalid_json_is_a_clear_400(as_user, alice):
    response = as_user(alice).post(f"{API}/friends/request", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == 40001
    assert "could not be parsed" in response.json()["message"]


@pytest.mark.parametrize("body", ["[]", '"text"', "null", "42"])
def test_body_must_be_a_json_object(as_user, alice, body):
    response = as_user(alice).post(f"{API}/friends/request", body, content_type="application/json")
    assert response.status_code == 400


def test_duplicate_pending_request_is_a_conflict(as_user, alice, charlie):
    client = as_user(alice)
    assert send(client, {"friendId": str(charlie.id)}).status_code == 201
    response = send(client, {"friendId": str(charlie.id)})
    assert response.status_code == 409
    assert "pending" in response.json()["message"]
    assert FriendRequest.objects.filter(from_user=alice, to_user=charlie).count() == 1


def test_a_concurrent_duplicate_caught_by_the_constraint_is_a_conflict(alice, charlie, monkeypatch):
    services.send_friend_request(alice, to_user_id=charlie.id)
    # The other request was inserted between this one's check and its insert.
    monkeypatch.setattr(services, "_pending_exists", lambda from_user_id, to_user_id: False)
    with pytest.raises(Conflict, match="pending"):
        services.send_friend_request(alice, to_user_id=charlie.id)
    assert FriendRequest.objects.filter(from_user=alice, to_user=charlie, status="pending").count() == 1


def test_friend_request_to_a_friend_is_a_conflict(as_user, alice, bob, alice_and_bob_are_friends):
    response = send(as_user(alice), {"friendId": str(bob.id)})
    assert response.status_code == 409
    assert "already friends" in response.json()["message"]


def test_blocked_user_cannot_send_friend_request(as_user, alice, charlie):
    services.block_user(alice, user_id=charlie.id)
    response = send(as_user(charlie), {"friendId": str(alice.id)})
    assert response.status_code == 403
    assert response.json()["code"] == 40301
    assert "block" not in response.json()["message"].lower()
    assert not FriendRequest.objects.exists()


def test_user_cannot_send_friend_request_to_someone_they_block(as_user, alice, charlie):
    services.block_user(alice, user_id=charlie.id)
    response = send(as_user(alice), {"friendId": str(charlie.id)})
    assert response.status_code == 403
    assert "unblock" in response.json()["message"]


def test_crossing_requests_become_a_friendship(as_user, alice, charlie, capture_events):
    first = services.send_friend_request(charlie, to_user_id=alice.id, message="hi alice")
    with capture_events() as events:
        response = send(as_user(alice), {"friendId": str(charlie.id)})
    assert response.status_code == 201
    assert response.json()["data"]["status"] == "accepted"
    assert response.json()["data"]["handledAt"]
    first.refresh_from_db()
    assert first.status == RequestStatus.ACCEPTED
    assert first.handled_at is not None
    assert Friendship.objects.filter(user=alice, friend=charlie).exists()
    assert Friendship.objects.filter(user=charlie, friend=alice).exists()
    assert sorted(friend_event_pairs(events)) == sorted(
        [
            (f"im.user.{alice.id}.event", alice.id, charlie.id, "request_accepted"),
            (f"im.user.{charlie.id}.event", charlie.id, alice.id, "request_accepted"),
        ]
    )


def test_friend_request_needs_a_token(api, charlie):
    response = send(api, {"friendId": str(charlie.id)})
    assert response.status_code == 401
    assert response.json()["code"] == 40100


def test_get_on_the_send_endpoint_is_method_not_allowed(as_user, alice):
    response = as_user(alice).get(f"{API}/friends/request")
    assert response.status_code == 405
    assert response.json()["code"] == 40500


# --- listing


def test_requests_list_shows_incoming_and_outgoing_newest_first(as_user, alice, bob, charlie, make_user):
    dave = make_user("dave")
    to_charlie = services.send_friend_request(alice, to_user_id=charlie.id)
    from_dave = services.send_friend_request(dave, to_user_id=alice.id)
    services.send_friend_request(bob, to_user_id=charlie.id)  # not alice's business
    response = as_user(alice).get(f"{API}/friends/requests")
    assert response.status_code == 200
    ids = [item["id"] for item in response.json()["data"]]
    assert ids == [str(from_dave.id), str(to_charlie.id)]


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("incoming", ["from_dave"]), ("outgoing", ["to_charlie"]), ("incoming,outgoing", ["from_dave", "to_charlie"])],
)
def test_requests_list_filters_by_direction(as_user, alice, charlie, make_user, direction, expected):
    dave = make_user("dave")
    made = {
        "to_charlie": services.send_friend_request(alice, to_user_id=charlie.id),
        "from_dave": services.send_friend_request(dave, to_user_id=alice.id),
    }
    response = as_user(alice).get(f"{API}/friends/requests", {"direction": direction})
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["data"]] == [str(made[name].id) for name in expected]


def test_requests_list_filters_by_status(as_user, alice, bob, charlie):
    accepted = services.send_friend_request(bob, to_user_id=alice.id)
    services.accept_friend_request(alice, request_id=accepted.id)
    services.send_friend_request(charlie, to_user_id=alice.id)
    response = as_user(alice).get(f"{API}/friends/requests", {"status": "accepted"})
    assert [item["id"] for item in response.json()["data"]] == [str(accepted.id)]
    assert response.json()["data"][0]["status"] == "accepted"


@pytest.mark.parametrize("query", [{"direction": "sideways"}, {"direction": ","}, {"status": "maybe"}])
def test_requests_list_rejects_unknown_filter_values(as_user, alice, query):
    response = as_user(alice).get(f"{API}/friends/requests", query)
    assert response.status_code == 400
    assert next(iter(query)) in response.json()["message"]


def test_requests_list_needs_a_token(api):
    assert api.get(f"{API}/friends/requests").status_code == 401


# --- answering


def test_addressee_can_accept_a_friend_request(as_user, alice, charlie, capture_events):
    request = services.send_friend_request(alice, to_user_id=charlie.id)
    with capture_events() as events:
        response = as_user(charlie).post(f"{API}/friends/requests/{request.id}/accept")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["id"] == str(request.id)
    assert data["status"] == "accepted"
    assert data["handledAt"]
    assert Friendship.objects.filter(user=alice, friend=charlie).count() == 1
    assert Friendship.objects.filter(user=charlie, friend=alice).count() == 1
    assert sorted(friend_event_pairs(events)) == sorted(
        [
            (f"im.user.{alice.id}.event", alice.id, charlie.id, "request_accepted"),
            (f"im.user.{charlie.id}.event", charlie.id, alice.id, "request_accepted"),
        ]
    )


def test_accepting_also_settles_a_reverse_pending_request(alice, charlie):
    # Both asked at the same moment (neither saw the other's request): accepting one settles both.
    mine = FriendRequest.objects.create(from_user=alice, to_user=charlie, status=RequestStatus.PENDING)
    theirs = FriendRequest.objects.create(from_user=charlie, to_user=alice, status=RequestStatus.PENDING)
    services.accept_friend_request(charlie, request_id=mine.id)
    theirs.refresh_from_db()
    assert theirs.status == RequestStatus.ACCEPTED
    assert Friendship.objects.count() == 2


def test_addressee_can_reject_a_friend_request(as_user, alice, charlie, capture_events):
    request = services.send_friend_request(alice, to_user_id=charlie.id)
    with capture_events() as events:
        response = as_user(charlie).post(f"{API}/friends/requests/{request.id}/reject")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "rejected"
    assert not Friendship.objects.exists()
    assert (f"im.user.{alice.id}.event", alice.id, charlie.id, "request_rejected") in friend_event_pairs(events)


def test_a_rejected_sender_may_ask_again(as_user, alice, charlie):
    request = services.send_friend_request(alice, to_user_id=charlie.id)
    services.reject_friend_request(charlie, request_id=request.id)
    assert send(as_user(alice), {"friendId": str(charlie.id)}).status_code == 201


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_charlie_cannot_answer_alices_request_to_bob(as_user, alice, bob, charlie, action):
    request = services.send_friend_request(alice, to_user_id=bob.id)
    response = as_user(charlie).post(f"{API}/friends/requests/{request.id}/{action}")
    assert response.status_code == 404
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_sender_cannot_answer_their_own_request(as_user, alice, charlie, action):
    request = services.send_friend_request(alice, to_user_id=charlie.id)
    response = as_user(alice).post(f"{API}/friends/requests/{request.id}/{action}")
    assert response.status_code == 403
    assert "charlie" in response.json()["message"]
    assert not Friendship.objects.exists()


@pytest.mark.parametrize(("first", "second"), [("accept", "accept"), ("accept", "reject"), ("reject", "accept")])
def test_answering_a_request_twice_is_a_conflict(as_user, alice, charlie, first, second):
    request = services.send_friend_request(alice, to_user_id=charlie.id)
    client = as_user(charlie)
    assert client.post(f"{API}/friends/requests/{request.id}/{first}").status_code == 200
    response = client.post(f"{API}/friends/requests/{request.id}/{second}")
    assert response.status_code == 409
    assert "already" in response.json()["message"]


@pytest.mark.parametrize("raw_id", ["abc", "0", "-1", "1.5", "9" * 25, "123456789", "%20"])
def test_unknown_or_malformed_request_ids_are_not_found(as_user, alice, raw_id):
    response = as_user(alice).post(f"{API}/friends/requests/{raw_id}/accept")
    assert response.status_code == 404
    assert response.json()["code"] == 40400


def test_answering_needs_post(as_user, alice, charlie):
    request = services.send_friend_request(alice, to_user_id=charlie.id)
    assert as_user(charlie).get(f"{API}/friends/requests/{request.id}/accept").status_code == 405


def test_answering_needs_a_token(api, alice, charlie):
    request = services.send_friend_request(alice, to_user_id=charlie.id)
    assert api.post(f"{API}/friends/requests/{request.id}/accept").status_code == 401
