"""POST /user/password: the change ends every session, and the refusals name the field."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Device
from accounts.tests.helpers import assert_error, kicks, post
from conftest import PASSWORD, login
from imsite.nats_subjects import user_event

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Brand-New-Passw0rd"
PROFILE = "/api/v1/user/profile"


def change(client: APIClient, old: object = PASSWORD, new: object = NEW_PASSWORD) -> Any:
    return post(client, "user/password", {"oldPassword": old, "newPassword": new})


def test_changing_the_password_kills_every_token_and_kicks_every_session(client_for, alice, capture_events):
    phone = client_for(alice, device_id="phone")
    laptop = client_for(alice, device_id="laptop")
    with capture_events() as events:
        response = change(phone)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["code"] == 0
    assert "log in again" in body["message"].lower()
    assert body["data"] == {"reloginRequired": True}
    assert kicks(events) == [(user_event(alice.id), alice.id, 0, "password_change")]
    alice.refresh_from_db()
    assert alice.token_version == 1
    assert alice.check_password(NEW_PASSWORD)
    reasons = set(Device.objects.filter(user=alice).values_list("revoke_reason", flat=True))
    assert reasons == {"password_change"}
    for client in (phone, laptop):
        assert_error(client.get(PROFILE), 401, 40101)
        refresh = post(APIClient(), "auth/refresh", {"refreshToken": client.tokens["refreshToken"]})
        assert_error(refresh, 401, 40101)


def test_after_a_change_only_the_new_password_logs_in(client_for, alice):
    change(client_for(alice))
    assert_error(post(APIClient(), "auth/login", {"username": "alice", "password": PASSWORD}), 401, 40102)
    assert login(APIClient(), "alice", NEW_PASSWORD)["accessToken"]


def test_a_wrong_old_password_is_a_400_naming_the_field_and_changes_nothing(client_for, alice, capture_events):
    client = client_for(alice)
    with capture_events() as events:
        body = assert_error(change(client, old="Not-the-password-1"), 400, 40000, mentions="oldPassword")
    assert body["data"] == {"field": "oldPassword"}
    assert kicks(events) == []
    alice.refresh_from_db()
    assert alice.token_version == 0
    assert alice.check_password(PASSWORD)
    assert client.get(PROFILE).status_code == 200


@pytest.mark.parametrize("new", ["short1!", "password", "98765432101", "alice_01"])
def test_a_weak_new_password_is_refused_naming_the_field(client_for, alice, new):
    body = assert_error(change(client_for(alice), new=new), 400, 40000, mentions="newPassword")
    assert body["data"] == {"field": "newPassword"}


def test_the_new_password_must_differ_from_the_old_one(client_for, alice):
    assert_error(change(client_for(alice), new=PASSWORD), 400, 40000, mentions=("newPassword", "differ"))


def test_missing_passwords_are_both_named(client_for, alice):
    assert_error(post(client_for(alice), "user/password", {}), 400, 40000, mentions=("oldPassword", "newPassword"))


@pytest.mark.parametrize(("field", "value"), [("oldPassword", 123), ("newPassword", ["x"]), ("newPassword", "n" * 129)])
def test_wrong_typed_or_oversize_passwords_are_refused_naming_the_field(client_for, alice, field, value):
    body = {"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD, field: value}
    assert_error(post(client_for(alice), "user/password", body), 400, 40000, mentions=field)


def test_changing_the_password_needs_an_access_token(api, alice):
    assert_error(change(api), 401, 40100)
