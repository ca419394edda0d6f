"""No input, however odd, makes a conversation or group endpoint answer 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from imsite.errors import ErrorCode
from messaging.tests.conftest import API, error

pytestmark = pytest.mark.django_db

BODIES: list[Any] = [
    None,
    "",
    "{",
    "[]",
    "null",
    '"text"',
    "1e999",
    "-0",
    json.dumps({"userId": {"$gt": 1}, "name": ["x"], "memberIds": {"a": 1}, "seq": {"n": 1}}),
    json.dumps({"user_id": "1", "member_ids": [1, 2], "role": ["admin"], "avatar": {"a": 1}}),
    json.dumps({"userId": "1" * 10_000, "name": "n" * 10_000, "avatar": "a" * 10_000, "seq": 10**400}),
    json.dumps({"userIds": ["1"] * 20_000, "memberIds": list(range(1, 20_000))}),
    json.dumps({"userId": "\u0000", "name": "\ud800x", "avatar": "\u0000", "role": "\ud800", "seq": -(10**30)}),
    json.dumps({"seq": 1e308, "userIds": [1e30], "memberIds": [-1, 0, 9223372036854775808]}),
    b"\xff\xfe not utf-8",
    "[" * 100_000 + "]" * 100_000,
    '{"seq": NaN, "userId": Infinity}',
]

PATHS = [
    ("get", "conversations"),
    ("post", "conversations/direct"),
    ("get", "conversations/{direct}/messages?beforeSeq=%00&limit=%FF"),
    ("get", "conversations/{direct}/messages?afterSeq=99999999999999999999999&limit=-1"),
    ("get", "conversations/{direct}/messages?beforeSeq=1&beforeSeq=x&limit=1e2"),
    ("get", "conversations/%F0%9F%98%80/messages"),
    ("post", "conversations/{direct}/read"),
    ("post", "conversations/" + "9" * 400 + "/read"),
    ("post", "groups"),
    ("patch", "groups/{group}"),
    ("post", "groups/{group}/members"),
    ("delete", "groups/{group}/members/{bob}"),
    ("delete", "groups/{group}/members/%00"),
    ("patch", "groups/{group}/members/{bob}"),
    ("patch", "groups/{group}/members/99999999999999999999"),
    ("post", "groups/{group}/owner"),
    ("post", "groups/{direct}/leave"),
    ("post", "groups/{group}/leave"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_no_input_gives_a_server_error(
    as_user: Callable[[User], APIClient], alice: User, bob: User, direct: int, group: int, method: str, path: str
) -> None:
    client = as_user(alice)
    url = f"{API}/{path.format(direct=direct, group=group, bob=bob.id)}"
    for body in BODIES:
        if body is None:
            response = client.generic(method.upper(), url)
        else:
            response = client.generic(method.upper(), url, body, content_type="application/json")
        assert response.status_code < 500, (method, url, body, response.content)
        assert response["Content-Type"].startswith("application/json")


def test_a_body_that_is_not_json_is_refused_with_415(as_user: Callable[[User], APIClient], alice: User) -> None:
    response = as_user(alice).generic(
        "POST", f"{API}/groups", "name=G", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "conversations/direct"),
        ("post", "conversations/{direct}/read"),
        ("post", "groups"),
        ("patch", "groups/{group}"),
        ("post", "groups/{group}/members"),
        ("post", "groups/{group}/owner"),
        ("patch", "groups/{group}/members/{bob}"),
    ],
)
def test_invalid_json_is_answered_with_a_parse_error(
    as_user: Callable[[User], APIClient], alice: User, bob: User, direct: int, group: int, method: str, path: str
) -> None:
    url = f"{API}/{path.format(direct=direct, group=group, bob=bob.id)}"

    response = as_user(alice).generic(method.upper(), url, '{"seq": ', content_type="application/json")

    error(response, 400, ErrorCode.MALFORMED_REQUEST)
