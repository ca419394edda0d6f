"""The read helpers other apps call (are_friends, is_blocked_either_way, friend_ids) and presence."""

from __future__ import annotations

from friends import selectors, services


def test_alice_and_bob_are_friends_and_charlie_is_not(alice, bob, charlie, alice_and_bob_are_friends):
    assert services.are_friends(alice.id, bob.id)
    assert services.are_friends(bob.id, alice.id)
    assert not services.are_friends(alice.id, charlie.id)
    assert services.friend_ids(alice.id) == [bob.id]
    assert services.friend_ids(charlie.id) == []


def test_friend_ids_leave_out_deleted_users(alice, bob, charlie, befriend, alice_and_bob_are_friends):
    befriend(alice, charlie)
    charlie.soft_delete()
    assert services.friend_ids(alice.id) == [bob.id]


def test_friend_ids_leave_out_ended_friendships(alice, bob, charlie, befriend, alice_and_bob_are_friends):
    befriend(alice, charlie)
    assert sorted(services.friend_ids(alice.id)) == sorted([bob.id, charlie.id])
    services.remove_friend(alice, friend_id=charlie.id)
    assert services.friend_ids(alice.id) == [bob.id]
    assert services.friend_ids(charlie.id) == []


def test_friend_ids_of_many_answers_each_user_with_one_statement(
    alice, bob, charlie, befriend, alice_and_bob_are_friends, django_assert_num_queries
):
    befriend(charlie, bob)
    with django_assert_num_queries(1):
        found = selectors.friend_ids_of_many([alice.id, bob.id, charlie.id, alice.id])
    assert {user: sorted(friends) for user, friends in found.items()} == {
        alice.id: [bob.id],
        bob.id: sorted([alice.id, charlie.id]),
        charlie.id: [bob.id],
    }
    charlie.soft_delete()
    assert selectors.friend_ids_of_many([bob.id, charlie.id]) == {bob.id: [alice.id], charlie.id: [bob.id]}
    assert selectors.friend_ids_of_many([]) == {}


def test_friend_ids_of_many_reads_a_long_list_in_parts(
    alice, bob, alice_and_bob_are_friends, django_assert_num_queries
):
    strangers = list(range(10**12, 10**12 + 1200))  # ids nobody has: more users than one statement takes
    with django_assert_num_queries(3):
        found = selectors.friend_ids_of_many([*strangers, alice.id])
    assert found == {alice.id: [bob.id]}


def test_a_block_counts_either_way(alice, charlie):
    assert not services.is_blocked_either_way(alice.id, charlie.id)
    services.block_user(alice, user_id=charlie.id)
    assert services.is_blocked_either_way(alice.id, charlie.id)
    assert services.is_blocked_either_way(charlie.id, alice.id)
    services.unblock_user(alice, user_id=charlie.id)
    assert not services.is_blocked_either_way(charlie.id, alice.id)


def test_only_users_with_a_live_connection_are_online(alice, bob, charlie, go_online):
    assert selectors.online_user_ids([alice.id, bob.id]) == set()
    assert selectors.online_user_ids([]) == set()
    go_online(bob)
    go_online(charlie, node_id="other-node", connection_id=7)
    assert selectors.online_user_ids([alice.id, bob.id, charlie.id, bob.id]) == {bob.id, charlie.id}


def test_an_unreachable_presence_store_shows_everyone_offline_and_logs_it(alice, monkeypatch, caplog):
    import realtime.presence

    def unreachable(user_ids):
        raise TimeoutError("presence store unreachable")

    monkeypatch.setattr(realtime.presence, "online_user_ids", unreachable)
    assert selectors.online_user_ids([alice.id]) == set()
    assert "presence unavailable" in caplog.text
