"""GET /friends, PATCH /friends/{friendId} (remark), DELETE /friends/{friendId}."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from friends import services
from friends.models import Friendship
from friends.tests.conftest import API
from imsite.events import FriendsChanged


def test_friends_list_shows_the_friend_with_profile_remark_and_presence(as_user, alice, bob, alice_and_bob_are_friends):
    response = as_user(alice).get(f"{API}/friends")
    assert response.status_code == 200
    [item] = response.json()["data"]
    row = Friendship.objects.get(user=alice, friend=bob)
    assert item == {
        "id": str(row.id),
        "userId": str(alice.id),
        "friendId": str(bob.id),
        "remark": "",
        "friend": {"id": str(bob.id), "username": "bob", "nickname": "Bob", "avatar": ""},
        "online": False,
        "createdAt": item["createdAt"],
    }
    assert item["createdAt"]


def test_friends_list_is_empty_for_a_stranger(as_user, charlie, alice_and_bob_are_friends):
    response = as_user(charlie).get(f"{API}/friends")
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_friends_list_reports_online_from_the_presence_layer(
    as_user, alice, bob, charlie, befriend, alice_and_bob_are_friends, go_online
):
    befriend(alice, charlie)
    go_online(bob)
    response = as_user(alice).get(f"{API}/friends")
    online = {item["friend"]["username"]: item["online"] for item in response.json()["data"]}
    assert online == {"bob": True, "charlie": False}


def test_friends_list_makes_a_constant_number_of_queries(
    as_user, alice, befriend, make_user, django_assert_max_num_queries
):
    client = as_user(alice)
    befriend(alice, make_user("friend0"))
    with CaptureQueriesContext(connection) as one_friend:
        assert client.get(f"{API}/friends").status_code == 200
    for index in range(1, 6):
        befriend(alice, make_user(f"friend{index}"))
    with django_assert_max_num_queries(len(one_friend.captured_queries)):
        response = client.get(f"{API}/friends")
    assert len(response.json()["data"]) == 6
    assert len(one_friend.captured_queries) <= 3


def test_friends_list_leaves_out_removed_friends(as_user, alice, bob, alice_and_bob_are_friends):
    services.remove_friend(bob, friend_id=alice.id)
    assert as_user(alice).get(f"{API}/friends").json()["data"] == []


def test_friends_list_needs_a_token(api):
    assert api.get(f"{API}/friends").status_code == 401


def test_post_on_the_friends_list_is_method_not_allowed(as_user, alice):
    assert as_user(alice).post(f"{API}/friends", {}, format="json").status_code == 405


# --- remark


def test_friend_can_set_a_remark_only_on_their_side(as_user, alice, bob, alice_and_bob_are_friends):
    response = as_user(alice).patch(f"{API}/friends/{bob.id}", {"remark": "Bobby"}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["remark"] == "Bobby"
    assert data["friendId"] == str(bob.id)
    assert data["friend"]["username"] == "bob"
    assert data["online"] is False
    assert Friendship.objects.get(user=alice, friend=bob).remark == "Bobby"
    assert Friendship.objects.get(user=bob, friend=alice).remark == ""
    listed = as_user(alice).get(f"{API}/friends").json()["data"]
    assert listed[0]["remark"] == "Bobby"


def test_an_empty_remark_clears_it(as_user, alice, bob, alice_and_bob_are_friends):
    services.update_friend_remark(alice, friend_id=bob.id, remark="Bobby")
    response = as_user(alice).patch(f"{API}/friends/{bob.id}", {"remark": ""}, format="json")
    assert response.status_code == 200
    assert Friendship.objects.get(user=alice, friend=bob).remark == ""


def test_a_remark_of_64_characters_fits_and_65_does_not(as_user, alice, bob, alice_and_bob_are_friends):
    client = as_user(alice)
    assert client.patch(f"{API}/friends/{bob.id}", {"remark": "r" * 64}, format="json").status_code == 200
    response = client.patch(f"{API}/friends/{bob.id}", {"remark": "r" * 65}, format="json")
    assert response.status_code == 400
    assert "remark" in response.json()["message"]
    assert Friendship.objects.get(user=alice, friend=bob).remark == "r" * 64


@pytest.mark.parametrize("body", [{}, {"remark": None}, {"remark": 5}, {"remark": ["x"]}, {"nickname": "x"}])
def test_remark_must_be_a_string(as_user, alice, bob, alice_and_bob_are_friends, body):
    response = as_user(alice).patch(f"{API}/friends/{bob.id}", body, format="json")
    assert response.status_code == 400
    assert "remark" in response.json()["message"]


def test_charlie_cannot_set_a_remark_on_a_stranger(as_user, alice, charlie):
    response = as_user(charlie).patch(f"{API}/friends/{alice.id}", {"remark": "x"}, format="json")
    assert response.status_code == 404
    assert "not in your friend list" in response.json()["message"]


@pytest.mark.parametrize("raw_id", ["bob", "0", "-3", "9" * 30])
def test_malformed_friend_ids_are_not_found(as_user, alice, raw_id):
    client = as_user(alice)
    assert client.patch(f"{API}/friends/{raw_id}", {"remark": "x"}, format="json").status_code == 404
    assert client.delete(f"{API}/friends/{raw_id}").status_code == 404


def test_remark_needs_a_token(api, bob):
    assert api.patch(f"{API}/friends/{bob.id}", {"remark": "x"}, format="json").status_code == 401


def test_put_on_a_friend_is_method_not_allowed(as_user, alice, bob, alice_and_bob_are_friends):
    assert as_user(alice).put(f"{API}/friends/{bob.id}", {"remark": "x"}, format="json").status_code == 405


# --- removal


def test_removing_a_friend_ends_both_directions(as_user, alice, bob, alice_and_bob_are_friends, capture_events):
    with capture_events() as events:
        response = as_user(alice).delete(f"{API}/friends/{bob.id}")
    assert response.status_code == 200
    assert response.json() == {"code": 0, "message": "success", "data": None}
    assert not Friendship.objects.filter(user=alice, friend=bob).exists()
    assert not Friendship.objects.filter(user=bob, friend=alice).exists()
    assert Friendship.all_objects.filter(deleted=True).count() == 2
    changes = sorted((e.user_id, e.other_user_id, e.change) for _, e in events if isinstance(e, FriendsChanged))
    assert changes == sorted([(alice.id, bob.id, "removed"), (bob.id, alice.id, "removed")])


def test_removing_a_stranger_is_not_found(as_user, alice, charlie):
    response = as_user(alice).delete(f"{API}/friends/{charlie.id}")
    assert response.status_code == 404


def test_removing_twice_is_not_found(as_user, alice, bob, alice_and_bob_are_friends):
    client = as_user(alice)
    assert client.delete(f"{API}/friends/{bob.id}").status_code == 200
    assert client.delete(f"{API}/friends/{bob.id}").status_code == 404


def test_friends_can_befriend_again_after_removal(as_user, alice, bob, alice_and_bob_are_friends):
    services.remove_friend(alice, friend_id=bob.id)
    sent = as_user(bob).post(f"{API}/friends/request", {"friendId": str(alice.id)}, format="json")
    assert sent.status_code == 201
    accepted = as_user(alice).post(f"{API}/friends/requests/{sent.json()['data']['id']}/accept")
    assert accepted.status_code == 200
    assert services.are_friends(alice.id, bob.id)
    assert services.are_friends(bob.id, alice.id)
    assert Friendship.all_objects.filter(user=alice, friend=bob).count() == 2  # the old row stays, deleted


def test_removing_needs_a_token(api, bob):
    assert api.delete(f"{API}/friends/{bob.id}").status_code == 401
