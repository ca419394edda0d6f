"""POST /auth/login: device sessions, replacement by device id, and refusals that reveal nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Device, Platform
from accounts.tests.helpers import assert_error, bearer, kicks, ok_data, post
from conftest import PASSWORD
from imsite.nats_subjects import user_event

pytestmark = pytest.mark.django_db

LOGIN_KEYS = {"userId", "accessToken", "refreshToken", "expiresAt", "refreshExpiresAt", "sessionId", "deviceId"}


def log_in(client: APIClient, username: str = "alice", password: str = PASSWORD, **extra: object) -> Any:
    return post(client, "auth/login", {"username": username, "password": password, **extra})


def test_login_returns_tokens_for_a_new_device_session(api, alice):
    body = {"username": "alice", "password": PASSWORD, "deviceId": "phone-1", "platform": "ios"}
    response = post(api, "auth/login", body, HTTP_USER_AGENT="IM/1.0 (iPhone)")
    data = ok_data(response)
    assert set(data) == LOGIN_KEYS
    assert data["userId"] == str(alice.id)
    assert isinstance(data["sessionId"], str)
    assert data["sessionId"].isdigit()
    assert data["deviceId"] == "phone-1"
    assert data["expiresAt"] < data["refreshExpiresAt"]
    device = Device.objects.get(id=int(data["sessionId"]))
    assert device.user_id == alice.id
    assert device.device_id == "phone-1"
    assert device.platform == Platform.IOS
    assert device.user_agent == "IM/1.0 (iPhone)"
    assert device.ip == "127.0.0.1"
    assert device.refresh_jti
    assert device.revoked_at is None
    alice.refresh_from_db()
    assert alice.last_login is not None


def test_the_access_token_of_a_login_opens_the_profile(api, alice):
    data = ok_data(log_in(api))
    profile = ok_data(bearer(data["accessToken"]).get("/api/v1/user/profile"))
    assert profile["id"] == str(alice.id)


def test_login_ignores_the_letter_case_of_the_username(api, alice):
    assert ok_data(log_in(api, "ALICE"))["userId"] == str(alice.id)


def test_login_without_a_device_id_generates_one(api, alice):
    first = ok_data(log_in(api))
    second = ok_data(log_in(api))
    assert len(first["deviceId"]) == 32
    assert first["deviceId"] != second["deviceId"]
    assert Device.objects.get(id=int(first["sessionId"])).platform == Platform.OTHER
    assert Device.objects.filter(user=alice, revoked_at__isnull=True).count() == 2


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(api, alice):
    wrong_password = assert_error(log_in(api, password="Not-the-password-1"), 401, 40102)
    unknown_user = assert_error(log_in(api, "nobody"), 401, 40102)
    assert wrong_password == unknown_user
    assert wrong_password["message"] == "Wrong username or password."
    assert not Device.objects.exists()


def test_an_unknown_user_still_costs_one_password_hash(api, db, monkeypatch):
    hashed: list[str] = []

    def counting_make_password(raw: str) -> str:
        hashed.append(raw)
        return make_password(raw)

    monkeypatch.setattr("accounts.services.make_password", counting_make_password)
    assert_error(log_in(api, "nobody", "Some-password-9"), 401, 40102)
    assert hashed == ["Some-password-9"]


def test_banned_user_cannot_log_in(api, alice):
    services.ban_user(alice)
    assert_error(log_in(api), 403, 40300, mentions="banned")
    assert not Device.objects.filter(revoked_at__isnull=True).exists()


def test_a_banned_user_with_a_wrong_password_learns_nothing_about_the_ban(api, alice):
    services.ban_user(alice)
    body = assert_error(log_in(api, password="Not-the-password-1"), 401, 40102)
    assert "banned" not in body["message"]


def test_a_soft_deleted_user_cannot_log_in(api, alice):
    alice.soft_delete()
    assert_error(log_in(api), 401, 40102)


def test_a_login_from_the_same_device_replaces_its_previous_session(api, alice, capture_events):
    first = ok_data(log_in(api, deviceId="laptop"))
    other_device = ok_data(log_in(api, deviceId="phone"))
    with capture_events() as events:
        second = ok_data(log_in(api, deviceId="laptop"))
    old_session = int(first["sessionId"])
    assert kicks(events) == [(user_event(alice.id), alice.id, old_session, "replaced")]
    replaced = Device.objects.get(id=old_session)
    assert replaced.revoked_at is not None
    assert replaced.revoke_reason == "replaced"
    assert_error(bearer(first["accessToken"]).get("/api/v1/user/profile"), 401, 40101, mentions="session")
    ok_data(bearer(second["accessToken"]).get("/api/v1/user/profile"))
    ok_data(bearer(other_device["accessToken"]).get("/api/v1/user/profile"))


def test_the_same_device_id_of_another_user_is_a_separate_session(api, alice, bob, capture_events):
    alices = ok_data(log_in(api, deviceId="shared"))
    with capture_events() as events:
        ok_data(log_in(api, "bob", deviceId="shared"))
    assert kicks(events) == []
    ok_data(bearer(alices["accessToken"]).get("/api/v1/user/profile"))


def test_missing_username_and_password_are_both_named(api):
    assert_error(post(api, "auth/login", {}), 400, 40000, mentions=("username", "password"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", 123),
        ("username", ["alice"]),
        ("username", None),
        ("password", 12345678),
        ("password", {"value": PASSWORD}),
        ("deviceId", 7),
        ("platform", 1),
        ("platform", ["web"]),
    ],
)
def test_wrong_typed_fields_are_refused_with_the_field_named(api, alice, field, value):
    body = {"username": "alice", "password": PASSWORD, field: value}
    assert_error(post(api, "auth/login", body), 400, 40000, mentions=field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "a" * 33),
        ("password", "p" * 129),
        ("deviceId", "d" * 65),
        ("deviceId", "has spaces"),
        ("platform", "toaster"),
    ],
)
def test_oversize_or_invalid_fields_are_refused_with_the_field_named(api, alice, field, value):
    body = {"username": "alice", "password": PASSWORD, field: value}
    assert_error(post(api, "auth/login", body), 400, 40000, mentions=field)


def test_a_login_does_not_need_and_ignores_an_access_token(api, alice):
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    ok_data(log_in(api))
