"""POST /auth/refresh and /auth/logout, and what bad, expired or revoked tokens get."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import Device
from accounts.tests.helpers import assert_error, bearer, expired, kicks, ok_data, post, tampered
from conftest import login
from imsite.nats_subjects import user_event

pytestmark = pytest.mark.django_db

PROFILE = "/api/v1/user/profile"


def refresh(refresh_token: object) -> Any:
    return post(APIClient(), "auth/refresh", {"refreshToken": refresh_token})


def logout(client: APIClient, refresh_token: object) -> Any:
    return post(client, "auth/logout", {"refreshToken": refresh_token})


def session_of(tokens: dict[str, str]) -> Device:
    return Device.objects.get(id=int(tokens["sessionId"]))


# --- refresh


def test_refresh_rotates_the_refresh_token_and_marks_the_session_seen(alice):
    tokens = login(APIClient(), "alice")
    seen_before = session_of(tokens).last_seen_at
    data = ok_data(refresh(tokens["refreshToken"]))
    assert set(data) == {"accessToken", "refreshToken", "expiresAt", "refreshExpiresAt"}
    assert data["refreshToken"] != tokens["refreshToken"]
    assert data["accessToken"] != tokens["accessToken"]
    device = session_of(tokens)
    assert device.refresh_jti == str(RefreshToken(data["refreshToken"])["jti"])
    assert device.last_seen_at > seen_before
    assert ok_data(bearer(data["accessToken"]).get(PROFILE))["id"] == str(alice.id)


def test_each_new_refresh_token_can_be_used_once_in_turn(alice):
    current = login(APIClient(), "alice")["refreshToken"]
    for _ in range(3):
        current = ok_data(refresh(current))["refreshToken"]


def test_a_reused_refresh_token_is_refused_and_ends_the_session(alice, capture_events):
    tokens = login(APIClient(), "alice")
    rotated = ok_data(refresh(tokens["refreshToken"]))
    with capture_events() as events:
        assert_error(refresh(tokens["refreshToken"]), 401, 40101, mentions="already used")
    session_id = int(tokens["sessionId"])
    assert kicks(events) == [(user_event(alice.id), alice.id, session_id, "reuse")]
    device = session_of(tokens)
    assert device.revoked_at is not None
    assert device.revoke_reason == "reuse"
    # Both holders are out: the rotated refresh token and every access token of the session.
    assert_error(refresh(rotated["refreshToken"]), 401, 40101, mentions="ended")
    assert_error(bearer(rotated["accessToken"]).get(PROFILE), 401, 40101)
    assert_error(bearer(tokens["accessToken"]).get(PROFILE), 401, 40101)


def test_a_reused_refresh_token_leaves_the_other_sessions_alone(alice):
    phone = login(APIClient(), "alice", deviceId="phone")
    laptop = login(APIClient(), "alice", deviceId="laptop")
    ok_data(refresh(phone["refreshToken"]))
    assert_error(refresh(phone["refreshToken"]), 401, 40101)
    ok_data(bearer(laptop["accessToken"]).get(PROFILE))
    ok_data(refresh(laptop["refreshToken"]))


def test_an_expired_refresh_token_is_refused(alice):
    tokens = login(APIClient(), "alice")
    assert_error(refresh(expired(tokens["refreshToken"], RefreshToken)), 401, 40101, mentions="expired")
    assert session_of(tokens).revoked_at is None


def test_a_tampered_refresh_token_is_refused(alice):
    tokens = login(APIClient(), "alice")
    assert_error(refresh(tampered(tokens["refreshToken"])), 401, 40101, mentions="invalid")


def test_an_access_token_is_not_a_refresh_token(alice):
    tokens = login(APIClient(), "alice")
    assert_error(refresh(tokens["accessToken"]), 401, 40101)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "🙂" * 10])
def test_garbage_refresh_tokens_are_refused_without_a_server_error(db, garbage):
    response = refresh(garbage)
    assert response.status_code in (400, 401), response.content
    assert response.json()["code"] in (40000, 40101)


@pytest.mark.parametrize("value", [None, 123, ["token"], {"token": "x"}, "t" * 4097])
def test_a_refresh_token_of_the_wrong_type_or_size_is_refused_naming_the_field(db, value):
    assert_error(refresh(value), 400, 40000, mentions="refreshToken")


def test_a_refresh_without_a_token_names_the_field(db):
    assert_error(post(APIClient(), "auth/refresh", {}), 400, 40000, mentions="refreshToken")


def test_a_refresh_token_of_a_logged_out_session_is_refused(alice):
    tokens = login(APIClient(), "alice")
    ok_data(logout(bearer(tokens["accessToken"]), tokens["refreshToken"]))
    assert_error(refresh(tokens["refreshToken"]), 401, 40101, mentions="ended")


# --- access tokens


def test_an_expired_access_token_is_refused(alice):
    tokens = login(APIClient(), "alice")
    assert_error(bearer(expired(tokens["accessToken"], AccessToken)).get(PROFILE), 401, 40101, mentions="expired")


def test_a_tampered_access_token_is_refused(alice):
    tokens = login(APIClient(), "alice")
    assert_error(bearer(tampered(tokens["accessToken"])).get(PROFILE), 401, 40101)


def test_a_refresh_token_is_not_an_access_token(alice):
    tokens = login(APIClient(), "alice")
    assert_error(bearer(tokens["refreshToken"]).get(PROFILE), 401, 40101)


def test_an_access_token_signed_with_another_key_is_refused(alice):
    claims = AccessToken(login(APIClient(), "alice")["accessToken"]).payload
    forged = jwt.encode(claims, "another-key-entirely-0123456789abcdef", algorithm="HS256")
    assert_error(bearer(forged).get(PROFILE), 401, 40101)


# --- logout


def test_logout_ends_the_session_and_kicks_it(alice, capture_events):
    tokens = login(APIClient(), "alice")
    client = bearer(tokens["accessToken"])
    with capture_events() as events:
        assert ok_data(logout(client, tokens["refreshToken"])) is None
    session_id = int(tokens["sessionId"])
    assert kicks(events) == [(user_event(alice.id), alice.id, session_id, "logout")]
    device = session_of(tokens)
    assert device.revoked_at is not None
    assert device.revoke_reason == "logout"


def test_after_logout_the_old_access_token_is_refused(alice):
    tokens = login(APIClient(), "alice")
    client = bearer(tokens["accessToken"])
    ok_data(logout(client, tokens["refreshToken"]))
    assert_error(client.get(PROFILE), 401, 40101, mentions="log in again")


def test_logout_can_end_another_session_of_your_own(alice, capture_events):
    phone = login(APIClient(), "alice", deviceId="phone")
    laptop = login(APIClient(), "alice", deviceId="laptop")
    laptop_client = bearer(laptop["accessToken"])
    with capture_events() as events:
        ok_data(logout(laptop_client, phone["refreshToken"]))
    assert kicks(events) == [(user_event(alice.id), alice.id, int(phone["sessionId"]), "logout")]
    assert_error(bearer(phone["accessToken"]).get(PROFILE), 401, 40101)
    ok_data(laptop_client.get(PROFILE))
    with capture_events() as again:
        ok_data(logout(laptop_client, phone["refreshToken"]))
    assert kicks(again) == []


def test_logout_with_someone_elses_refresh_token_is_forbidden(alice, bob, capture_events):
    alices = login(APIClient(), "alice")
    bobs = login(APIClient(), "bob")
    with capture_events() as events:
        body = assert_error(logout(bearer(alices["accessToken"]), bobs["refreshToken"]), 403, 40300)
    assert "another account" in body["message"]
    assert body["data"] == {"field": "refreshToken"}
    assert kicks(events) == []
    ok_data(bearer(bobs["accessToken"]).get(PROFILE))


def test_logout_needs_an_access_token(alice):
    tokens = login(APIClient(), "alice")
    assert_error(logout(APIClient(), tokens["refreshToken"]), 401, 40100)
    assert session_of(tokens).revoked_at is None


def test_logout_with_a_bad_refresh_token_is_refused(alice):
    tokens = login(APIClient(), "alice")
    client = bearer(tokens["accessToken"])
    assert_error(logout(client, "not-a-token"), 401, 40101)
    assert_error(logout(client, 42), 400, 40000, mentions="refreshToken")
    assert_error(post(client, "auth/logout", {}), 400, 40000, mentions="refreshToken")
    assert session_of(tokens).revoked_at is None


def test_a_session_that_was_revoked_elsewhere_refuses_its_access_token(alice):
    tokens = login(APIClient(), "alice")
    Device.objects.filter(id=int(tokens["sessionId"])).update(revoked_at=timezone.now(), revoke_reason="logout")
    assert_error(bearer(tokens["accessToken"]).get(PROFILE), 401, 40101)
