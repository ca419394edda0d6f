"""manage.py seed_demo: demo users, all friends, an admin; a second run changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from friends import services
from friends.models import FriendRequest, Friendship
from imsite.events import FriendsChanged


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_creates_three_friends_and_an_admin_and_prints_the_passwords():
    output = seed()
    names = ("alice", "bob", "carol")
    users = {user.username: user for user in User.objects.filter(username__in=names)}
    assert set(users) == set(names)
    for user in users.values():
        assert user.check_password("demo-pass-123")
        assert user.is_active
        assert not user.is_staff
    for a in names:
        for b in names:
            if a != b:
                assert services.are_friends(users[a].id, users[b].id)
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password("admin-pass-123")
    assert "demo-pass-123" in output
    assert "admin-pass-123" in output
    assert "Demo data ready" in output


@pytest.mark.django_db
def test_running_seed_demo_twice_changes_nothing_and_says_so():
    seed()
    counts = (User.all_objects.count(), Friendship.all_objects.count(), FriendRequest.all_objects.count())
    output = seed("--password", "another-pass-456")
    assert (User.all_objects.count(), Friendship.all_objects.count(), FriendRequest.all_objects.count()) == counts
    assert "nothing changed" in output
    assert User.objects.get(username="alice").check_password("demo-pass-123")


@pytest.mark.django_db
def test_seed_demo_completes_what_is_missing(make_user):
    alice = make_user("alice")
    bob = make_user("bob")
    pending = services.send_friend_request(bob, to_user_id=alice.id)
    output = seed("--password", "Custom-pass-789")
    pending.refresh_from_db()
    assert pending.status == "accepted"
    assert services.are_friends(alice.id, bob.id)
    assert User.objects.get(username="carol").check_password("Custom-pass-789")
    assert "alice exists" in output
    assert Friendship.objects.count() == 6


@pytest.mark.django_db
@pytest.mark.parametrize("option", ["--password", "--admin-password"])
@pytest.mark.parametrize("password", ["short", "12345678901", "password"])
def test_seed_demo_refuses_a_weak_password(option, password):
    with pytest.raises(CommandError, match=option):
        seed(option, password)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_seed_demo_fails_cleanly_when_demo_users_block_each_other(make_user):
    alice = make_user("alice")
    bob = make_user("bob")
    services.block_user(alice, user_id=bob.id)
    with pytest.raises(CommandError, match="nothing was changed"):
        seed()
    assert not User.objects.filter(username__in=["carol", "admin"]).exists()


@pytest.mark.django_db
def test_seed_demo_skips_events_when_nats_is_down(settings):
    settings.NATS_URL = "nats://127.0.0.1:1"
    output = seed()
    assert "friend events are skipped" in output
    assert "Demo data ready" in output


@pytest.mark.services
@pytest.mark.django_db
def test_seed_demo_publishes_friend_events_when_nats_is_up(nats_url, capture_events):
    with capture_events() as events:
        output = seed()
    assert "skipped" not in output
    changes = [event.change for _, event in events if isinstance(event, FriendsChanged)]
    # Three requests, each accepted; both sides hear of each acceptance.
    assert sorted(changes) == ["request_accepted"] * 6 + ["request_received"] * 3
