"""The auth endpoints are throttled per client IP, with the envelope and a Retry-After header."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.tests.helpers import assert_error, post
from conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _three_auth_requests_a_minute(settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "auth": "3/min"}


def wrong_login(client: APIClient, **extra: object) -> Any:
    return post(client, "auth/login", {"username": "alice", "password": "Wrong-passw0rd"}, **extra)


def test_the_fourth_login_in_a_minute_is_a_429_envelope_with_retry_after(api, alice):
    for _ in range(3):
        assert wrong_login(api).status_code == 401
    response = wrong_login(api)
    body = assert_error(response, 429, 42900, mentions="Too many requests")
    assert int(response.headers["Retry-After"]) > 0
    assert body["data"]["retryAfterSeconds"] == int(response.headers["Retry-After"])


def test_a_throttled_client_cannot_log_in_even_with_the_right_password(api, alice):
    for _ in range(3):
        wrong_login(api)
    body = {"username": "alice", "password": PASSWORD}
    assert_error(post(api, "auth/login", body), 429, 42900)


def test_register_refresh_and_login_share_the_per_ip_budget(api, alice):
    post(api, "auth/register", {"username": "dana", "password": PASSWORD})
    post(api, "auth/refresh", {"refreshToken": "x"})
    wrong_login(api)
    assert_error(post(api, "auth/register", {"username": "erin", "password": PASSWORD}), 429, 42900)
    assert_error(post(api, "auth/refresh", {"refreshToken": "x"}), 429, 42900)


def test_another_ip_has_its_own_budget(api, alice):
    for _ in range(4):
        wrong_login(api, REMOTE_ADDR="10.0.0.1")
    assert_error(wrong_login(api, REMOTE_ADDR="10.0.0.1"), 429, 42900)
    assert_error(wrong_login(api, REMOTE_ADDR="10.0.0.2"), 401, 40102)


def test_logout_is_throttled_per_ip_too(client_for, alice, settings):
    client = client_for(alice)  # the login spends one of the three
    for _ in range(2):
        assert post(client, "auth/logout", {"refreshToken": "x"}).status_code == 401
    assert_error(post(client, "auth/logout", {"refreshToken": "x"}), 429, 42900)


def test_the_profile_is_not_counted_against_the_auth_budget(client_for, alice):
    client = client_for(alice)
    for _ in range(5):
        assert client.get("/api/v1/user/profile").status_code == 200
