"""Fixtures of the friends tests: API clients acting as a user, and response helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.models import User

API = "/api/v1"


@pytest.fixture
def as_user(client_for: Callable[..., APIClient]) -> Callable[[User], APIClient]:
    """A client holding the user's access token from the real login endpoint; one login per user per test."""
    clients: dict[int, APIClient] = {}

    def _client(user: User) -> APIClient:
        if user.id not in clients:
            clients[user.id] = client_for(user)
        return clients[user.id]

    return _client
