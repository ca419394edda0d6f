"""Outside the auth endpoints, requests are throttled per user (per IP for anonymous callers)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def tight_rates(settings: Any) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "user": "3/min", "anon": "2/min"}


@pytest.mark.django_db
def test_the_fourth_request_of_a_user_in_a_minute_is_a_429_envelope(tight_rates, client_for, alice) -> None:
    client = client_for(alice)
    for _ in range(3):
        assert client.get("/api/v1/friends").status_code == 200
    response = client.get("/api/v1/conversations")
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == 42900
    assert "Too many requests" in body["message"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.django_db
def test_each_user_has_their_own_budget_even_from_one_ip(tight_rates, client_for, alice, bob) -> None:
    alice_client, bob_client = client_for(alice), client_for(bob)
    for _ in range(3):
        assert alice_client.get("/api/v1/friends").status_code == 200
    assert alice_client.get("/api/v1/friends").status_code == 429
    assert bob_client.get("/api/v1/friends").status_code == 200


@pytest.mark.django_db
def test_anonymous_callers_are_throttled_per_ip(tight_rates, api) -> None:
    for _ in range(2):
        assert api.get("/api/v1/health", REMOTE_ADDR="10.9.8.7").status_code in (200, 503)
    assert api.get("/api/v1/health", REMOTE_ADDR="10.9.8.7").status_code == 429
    assert api.get("/api/v1/health", REMOTE_ADDR="10.9.8.8").status_code in (200, 503)
