"""Fixtures of the messaging tests: logged-in clients, conversations, and response helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from messaging.services import SendRequest, create_group, get_or_create_direct_conversation, send_messages

API = "/api/v1"


def ok(response: Any, status: int = 200) -> Any:
    """The data of a success envelope, after checking status and envelope."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == 0, body
    assert body["message"] == "success", body
    return body["data"]


def error(response: Any, status: int, code: int | None = None, *, mentions: str = "") -> dict[str, Any]:
    """An error envelope with the status, a non-zero code (the given one) and a message naming `mentions`."""
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "data"}, body
    assert body["code"] != 0, body
    if code is not None:
        assert body["code"] == code, body
    assert body["message"], body
    assert mentions.lower() in body["message"].lower(), body
    return body


def text(sender: User, conversation_id: int, client_msg_id: str, body: str = "hello", **extra: Any) -> SendRequest:
    return SendRequest(
        sender_id=sender.id, conversation_id=conversation_id, client_msg_id=client_msg_id, body=body, **extra
    )


def send(sender: User, conversation_id: int, *bodies: str) -> list[int]:
    """Stores messages through send_messages; returns their seqs."""
    outcomes = send_messages(
        [text(sender, conversation_id, f"{sender.username}-{index}-{body}", body) for index, body in enumerate(bodies)]
    )
    assert all(outcome.message is not None for outcome in outcomes), outcomes
    return [outcome.message.seq for outcome in outcomes if outcome.message is not None]


@pytest.fixture
def as_user(client_for: Callable[..., APIClient]) -> Callable[[User], APIClient]:
    """A client holding a real access token of the user (POST /auth/login), one login per user and test."""
    clients: dict[int, APIClient] = {}

    def _client(user: User) -> APIClient:
        if user.id not in clients:
            clients[user.id] = client_for(user)
        return clients[user.id]

    return _client


@pytest.fixture
def direct(alice: User, bob: User, alice_and_bob_are_friends: None) -> int:
    """The direct conversation of alice and bob (friends)."""
    return get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id


@pytest.fixture
def group(alice: User, bob: User, charlie: User) -> int:
    """A group owned by alice with bob and charlie as plain members."""
    return create_group(alice, name="Climbers", member_ids=[bob.id, charlie.id]).conversation_id


@pytest.fixture
def small_groups(settings: Any) -> int:
    """Groups hold at most 3 members (the owner included)."""
    settings.GROUP_MAX_MEMBERS = 3
    return 3


@pytest.fixture
def superuser(make_user: Callable[..., User]) -> User:
    return make_user("root", is_staff=True, is_superuser=True)
