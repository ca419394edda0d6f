"""The user and device admin: lists, search, filters, forms that hash passwords, writes via services."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Device, User
from accounts.tests.helpers import assert_error, kicks
from conftest import PASSWORD, login
from imsite.events import ProfileChanged
from imsite.nats_subjects import user_event

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"
DEVICES = "/admin/accounts/device/"
NEW_PASSWORD = "Admin-Set-Passw0rd"


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def usernames_listed(response) -> set[str]:
    return {user.username for user in response.context["cl"].result_list}


def change_form(user: User, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "nickname": user.nickname,
        "avatar": user.avatar,
        "bio": user.bio,
        "phone": user.phone,
        "email": user.email,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not False}


def test_the_user_list_shows_live_users_by_default_and_deleted_ones_on_request(admin_client, alice, bob):
    bob.soft_delete()
    assert usernames_listed(admin_client.get(USERS)) == {"root", "alice"}
    assert usernames_listed(admin_client.get(USERS, {"rows": "deleted"})) == {"bob"}
    assert usernames_listed(admin_client.get(USERS, {"rows": "all"})) == {"root", "alice", "bob"}


def test_the_user_list_searches_username_nickname_email_and_phone(admin_client, make_user):
    make_user("erin", nickname="Wonder", email="erin@example.com", phone="+1 555 0199")
    make_user("frank")
    for query in ("erin", "Wonder", "example.com", "555 0199"):
        assert usernames_listed(admin_client.get(USERS, {"q": query})) == {"erin"}, query


def test_the_user_list_filters_on_active_and_staff(admin_client, alice, bob):
    User.objects.filter(id=bob.id).update(is_active=False)
    assert usernames_listed(admin_client.get(USERS, {"is_active__exact": "0"})) == {"bob"}
    assert usernames_listed(admin_client.get(USERS, {"is_staff__exact": "1"})) == {"root"}


def test_a_soft_deleted_user_can_still_be_opened(admin_client, alice):
    alice.soft_delete()
    assert admin_client.get(f"{USERS}{alice.id}/change/").status_code == 200


def test_adding_a_user_in_the_admin_hashes_the_password(admin_client):
    response = admin_client.post(
        f"{USERS}add/",
        {
            "username": "gina",
            "nickname": "Gina",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302, response.content
    gina = User.objects.get(username="gina")
    assert gina.password != PASSWORD
    assert gina.check_password(PASSWORD)
    assert login(APIClient(), "gina")["accessToken"]


@pytest.mark.parametrize(("username", "error"), [("ALICE", "taken"), ("no spaces", "letters"), ("ab", "3 to 32")])
def test_adding_a_user_in_the_admin_applies_the_username_rules(admin_client, alice, username, error):
    body = {"username": username, "usable_password": "true", "password1": PASSWORD, "password2": PASSWORD}
    response = admin_client.post(f"{USERS}add/", body)
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors["username"])
    assert User.all_objects.count() == 2


def test_adding_a_user_with_mismatched_passwords_is_refused(admin_client):
    body = {"username": "gina", "usable_password": "true", "password1": PASSWORD, "password2": PASSWORD + "x"}
    assert admin_client.post(f"{USERS}add/", body).status_code == 200
    assert not User.objects.filter(username="gina").exists()


def test_editing_a_profile_in_the_admin_publishes_profile_changed(admin_client, alice, capture_events):
    with capture_events() as events:
        response = admin_client.post(f"{USERS}{alice.id}/change/", change_form(alice, nickname="Moderated"))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    alice.refresh_from_db()
    assert alice.nickname == "Moderated"
    assert [(s, e.user_id) for s, e in events if isinstance(e, ProfileChanged)] == [(user_event(alice.id), alice.id)]


def test_the_admin_change_form_checks_the_profile_rules(admin_client, alice):
    response = admin_client.post(f"{USERS}{alice.id}/change/", change_form(alice, phone="call me", bio="b" * 501))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "phone" in errors
    assert "bio" in errors
    alice.refresh_from_db()
    assert alice.phone == ""


def test_granting_staff_in_the_admin_changes_only_that(admin_client, alice, capture_events):
    with capture_events() as events:
        response = admin_client.post(f"{USERS}{alice.id}/change/", change_form(alice, is_staff="on"))
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.is_staff
    assert not alice.is_superuser
    assert events == []


def test_the_admin_change_form_cannot_set_is_active_or_the_username(admin_client, alice):
    form = change_form(alice, is_active="", username="mallory")
    admin_client.post(f"{USERS}{alice.id}/change/", form)
    alice.refresh_from_db()
    assert alice.is_active
    assert alice.username == "alice"


def test_setting_a_password_in_the_admin_ends_the_users_sessions(admin_client, client_for, alice, capture_events):
    old = client_for(alice)
    with capture_events() as events:
        response = admin_client.post(
            f"{USERS}{alice.id}/password/",
            {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
    assert response.status_code == 302
    assert kicks(events) == [(user_event(alice.id), alice.id, 0, "password_change")]
    assert_error(old.get("/api/v1/user/profile"), 401, 40101)
    assert login(APIClient(), "alice", NEW_PASSWORD)["accessToken"]


def test_users_cannot_be_hard_deleted_in_the_admin(admin_client, alice):
    assert admin_client.get(f"{USERS}{alice.id}/delete/").status_code == 403
    assert User.objects.filter(id=alice.id).exists()


def test_the_device_list_shows_sessions_and_filters_live_ones(admin_client, client_for, alice):
    client_for(alice, device_id="phone")
    ended = client_for(alice, device_id="laptop")
    ended.post("/api/v1/auth/logout", {"refreshToken": ended.tokens["refreshToken"]}, format="json")
    response = admin_client.get(DEVICES)
    assert response.status_code == 200
    assert {d.device_id for d in response.context["cl"].result_list} == {"phone", "laptop"}
    live = admin_client.get(DEVICES, {"session": "live"})
    assert {d.device_id for d in live.context["cl"].result_list} == {"phone"}
    found = admin_client.get(DEVICES, {"q": "laptop"})
    assert {d.revoke_reason for d in found.context["cl"].result_list} == {"logout"}


def test_devices_are_read_only_in_the_admin(admin_client, client_for, alice):
    client_for(alice, device_id="phone")
    device = Device.objects.get(device_id="phone")
    assert admin_client.get(f"{DEVICES}{device.id}/change/").status_code == 200
    assert admin_client.post(f"{DEVICES}{device.id}/change/", {"device_id": "evil"}).status_code == 403
    assert admin_client.get(f"{DEVICES}add/").status_code == 403
    assert admin_client.get(f"{DEVICES}{device.id}/delete/").status_code == 403
    device.refresh_from_db()
    assert device.device_id == "phone"
