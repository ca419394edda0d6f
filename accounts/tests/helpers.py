"""Request and assertion helpers of the accounts tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from imsite.events import SessionsKicked

API = "/api/v1"


def post(client: APIClient, path: str, body: Any, **extra: Any) -> Any:
    return client.post(f"{API}/{path}", body, format="json", **extra)


def bearer(access_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return client


def ok_data(response: Any, status: int = 200) -> Any:
    """The data of a success envelope, after checking the status and the envelope."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == 0, body
    assert body["message"] == "success", body
    return body["data"]


def assert_error(response: Any, status: int, code: int, *, mentions: str | tuple[str, ...] = ()) -> dict[str, Any]:
    """An error envelope: the status, a non-zero code, and a message naming each of `mentions`."""
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "data"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str), body
    assert body["message"], body
    for word in (mentions,) if isinstance(mentions, str) else mentions:
        assert word in body["message"], (word, body["message"])
    return body


def kicks(events: list[tuple[str, Any]]) -> list[tuple[str, int, int, str]]:
    return [(s, e.user_id, e.session_id, e.reason) for s, e in events if isinstance(e, SessionsKicked)]


def expired(raw: str, token_class: type[AccessToken] | type[RefreshToken]) -> str:
    """The same token re-signed with an expiry an hour ago."""
    token = token_class(raw)  # type: ignore[arg-type]
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=1))
    return str(token)


def tampered(raw: str) -> str:
    """The token with one character of its signature changed."""
    head, _, signature = raw.rpartition(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"
