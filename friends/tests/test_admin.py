"""The admin of friend requests, friendships and blocks: soft-deleted rows visible, writes via services."""

from __future__ import annotations

import pytest
from django.test import Client

from friends import services
from friends.models import Block, FriendRequest, Friendship


@pytest.fixture
def admin_client_of(make_user):
    staff = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    return client


@pytest.mark.parametrize("model", ["friendrequest", "friendship", "block"])
def test_admin_lists_include_soft_deleted_rows(admin_client_of, alice, bob, charlie, alice_and_bob_are_friends, model):
    services.remove_friend(alice, friend_id=bob.id)
    services.block_user(alice, user_id=charlie.id)
    services.unblock_user(alice, user_id=charlie.id)
    FriendRequest.objects.get(from_user=alice, to_user=bob).soft_delete()  # services never do; data fixes may
    response = admin_client_of.get(f"/admin/friends/{model}/", {"deleted__exact": "1"})
    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert len(rows) >= 1
    assert all(row.deleted for row in rows)


@pytest.mark.parametrize("model", ["friendrequest", "friendship", "block"])
def test_admin_search_finds_rows_by_username(admin_client_of, alice, bob, alice_and_bob_are_friends, model):
    services.block_user(alice, user_id=bob.id)
    response = admin_client_of.get(f"/admin/friends/{model}/", {"q": "alice"})
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 1


def test_admin_cannot_add_friendships_directly(admin_client_of):
    assert admin_client_of.get("/admin/friends/friendship/add/").status_code == 403


def test_admin_action_ends_a_friendship_in_both_directions(admin_client_of, alice, bob, alice_and_bob_are_friends):
    ids = [str(pk) for pk in Friendship.objects.values_list("id", flat=True)]
    response = admin_client_of.post(
        "/admin/friends/friendship/", {"action": "end_friendships", "_selected_action": ids}, follow=True
    )
    assert response.status_code == 200
    assert not services.are_friends(alice.id, bob.id)
    assert "Ended 1 friendship" in response.content.decode()


def test_admin_action_lifts_blocks(admin_client_of, alice, charlie):
    block = services.block_user(alice, user_id=charlie.id).block
    admin_client_of.post("/admin/friends/block/", {"action": "lift_blocks", "_selected_action": [str(block.id)]})
    assert not Block.objects.exists()
