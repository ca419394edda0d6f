"""Bans and unbans: through the services and through the admin actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Device, User
from accounts.tests.helpers import assert_error, kicks, ok_data, post
from conftest import PASSWORD, login
from imsite.errors import Forbidden
from imsite.nats_subjects import user_event

pytestmark = pytest.mark.django_db

PROFILE = "/api/v1/user/profile"
CHANGELIST = "/admin/accounts/user/"


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, root):
    client.force_login(root)
    return client


def run_action(admin_client: Client, action: str, *users: User) -> Any:
    return admin_client.post(
        CHANGELIST, {"action": action, "_selected_action": [str(u.id) for u in users]}, follow=True
    )


def assert_banned_everywhere(user: User, clients: list[Any]) -> None:
    """Every old access and refresh token refused, and a new login refused as banned.

    The clients come from client_for: APIClients that also hold their login data in `tokens`.
    """
    for client in clients:
        assert_error(client.get(PROFILE), 401, 40101)
        assert_error(post(APIClient(), "auth/refresh", {"refreshToken": client.tokens["refreshToken"]}), 401, 40101)
    body = {"username": user.username, "password": PASSWORD}
    assert_error(post(APIClient(), "auth/login", body), 403, 40300, mentions="banned")


def test_ban_kills_every_token_kicks_every_session_and_blocks_login(client_for, alice, capture_events):
    clients = [client_for(alice, device_id="phone"), client_for(alice, device_id="laptop")]
    with capture_events() as events:
        assert services.ban_user(alice) is True
    assert kicks(events) == [(user_event(alice.id), alice.id, 0, "ban")]
    alice.refresh_from_db()
    assert not alice.is_active
    assert alice.token_version == 1
    assert set(Device.objects.filter(user=alice).values_list("revoke_reason", flat=True)) == {"ban"}
    assert_banned_everywhere(alice, clients)


def test_banning_a_banned_user_changes_nothing(alice, capture_events):
    services.ban_user(alice)
    with capture_events() as events:
        assert services.ban_user(alice) is False
    assert kicks(events) == []
    alice.refresh_from_db()
    assert alice.token_version == 1


def test_unban_lets_the_user_log_in_again_but_old_tokens_stay_dead(client_for, alice):
    old = client_for(alice)
    services.ban_user(alice)
    assert services.unban_user(alice) is True
    assert services.unban_user(alice) is False
    assert_error(old.get(PROFILE), 401, 40101)
    fresh = login(APIClient(), "alice")
    assert ok_data(APIClient(HTTP_AUTHORIZATION=f"Bearer {fresh['accessToken']}").get(PROFILE))["id"] == str(alice.id)


def test_an_admin_cannot_ban_themselves(root):
    with pytest.raises(Forbidden):
        services.ban_user(root, acting_user=root)
    root.refresh_from_db()
    assert root.is_active


def test_the_admin_ban_action_bans_and_kicks_the_selected_users(admin_client, client_for, alice, bob, charlie):
    alice_client, bob_client = client_for(alice), client_for(bob)
    charlie_client = client_for(charlie)
    response = run_action(admin_client, "ban_users", alice, bob)
    assert response.status_code == 200
    assert "Banned 2 user(s)" in [str(m) for m in get_messages(response.wsgi_request)][-1]
    assert_banned_everywhere(alice, [alice_client])
    assert_banned_everywhere(bob, [bob_client])
    ok_data(charlie_client.get(PROFILE))
    assert User.objects.get(id=charlie.id).is_active


def test_the_admin_ban_action_publishes_the_kicks(admin_client, alice, capture_events):
    with capture_events() as events:
        run_action(admin_client, "ban_users", alice)
    assert kicks(events) == [(user_event(alice.id), alice.id, 0, "ban")]


def test_the_admin_ban_action_refuses_to_ban_the_acting_admin(admin_client, root, alice):
    response = run_action(admin_client, "ban_users", root, alice)
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("cannot ban yourself" in text for text in texts)
    assert any("Banned 1 user(s)" in text for text in texts)
    root.refresh_from_db()
    alice.refresh_from_db()
    assert root.is_active
    assert not alice.is_active


def test_the_admin_unban_action_lets_users_log_in_again(admin_client, alice):
    services.ban_user(alice)
    response = run_action(admin_client, "unban_users", alice)
    assert "Unbanned 1 user(s)" in [str(m) for m in get_messages(response.wsgi_request)][-1]
    assert login(APIClient(), "alice")["accessToken"]


def test_a_staff_user_who_is_not_superuser_cannot_run_the_ban_action(client, make_user, alice):
    clerk = make_user("clerk", is_staff=True)
    client.force_login(clerk)
    response = client.post(CHANGELIST, {"action": "ban_users", "_selected_action": [str(alice.id)]})
    assert response.status_code == 403
    alice.refresh_from_db()
    assert alice.is_active
