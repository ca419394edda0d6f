"""The first-day flow of API.md over real HTTP (a live server thread, as curl would see it):
register -> login -> profile -> search -> friend request -> accept -> friends list."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest


def call(base: str, method: str, path: str, body: dict[str, Any] | None = None, token: str = "") -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}/api/v1/{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.django_db(transaction=True)
def test_two_strangers_register_find_each_other_and_become_friends(live_server: Any) -> None:
    base = live_server.url
    for username in ("dora", "emil"):
        status, body = call(base, "POST", "auth/register", {"username": username, "password": "Tr1cky-Pass-99"})
        assert status == 201, body
        assert body["code"] == 0
        assert isinstance(body["data"]["id"], str)

    status, dora = call(base, "POST", "auth/login", {"username": "dora", "password": "Tr1cky-Pass-99"})
    assert status == 200, dora
    assert {"userId", "accessToken", "refreshToken", "expiresAt"} <= set(dora["data"])
    _, emil = call(base, "POST", "auth/login", {"username": "emil", "password": "Tr1cky-Pass-99", "platform": "web"})
    dora_token, emil_token = dora["data"]["accessToken"], emil["data"]["accessToken"]

    status, profile = call(base, "PATCH", "user/profile", {"nickname": "Dora D."}, token=dora_token)
    assert status == 200
    assert profile["data"]["nickname"] == "Dora D."

    status, found = call(base, "GET", "users/search?q=emi", token=dora_token)
    assert status == 200
    assert [user["username"] for user in found["data"]] == ["emil"]
    emil_id = found["data"][0]["id"]

    status, request = call(base, "POST", "friends/request", {"friendId": emil_id, "message": "hi!"}, token=dora_token)
    assert status == 201, request
    assert request["data"]["status"] == "pending"

    status, incoming = call(base, "GET", "friends/requests?direction=incoming", token=emil_token)
    assert [r["id"] for r in incoming["data"]] == [request["data"]["id"]]

    status, accepted = call(base, "POST", f"friends/requests/{request['data']['id']}/accept", token=emil_token)
    assert status == 200
    assert accepted["data"]["status"] == "accepted"

    status, friends = call(base, "GET", "friends", token=dora_token)
    assert status == 200
    assert [(f["friendId"], f["friend"]["username"]) for f in friends["data"]] == [(emil_id, "emil")]
    assert friends["data"][0]["online"] is False

    status, refused = call(base, "GET", "friends", token="not-a-token")
    assert status == 401
    assert refused["code"] != 0
