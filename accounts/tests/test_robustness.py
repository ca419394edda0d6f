"""No input makes an auth or profile endpoint answer 5xx: every refusal is a 4xx envelope."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.helpers import API, assert_error

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("post", "auth/register"),
    ("post", "auth/login"),
    ("post", "auth/refresh"),
    ("post", "auth/logout"),
    ("patch", "user/profile"),
    ("post", "user/password"),
]

RAW_BODIES = {
    "garbage": "{not json",
    "truncated": '{"username": "alice", "pass',
    "nan": '{"username": NaN, "bio": NaN, "refreshToken": Infinity}',
    "list": '["alice", "password"]',
    "string": '"alice"',
    "number": "12345",
    "null": "null",
    "true": "true",
    "deep nesting": "[" * 5000 + "]" * 5000,
    "nul character": '{"username": "al\\u0000ice", "password": "x\\u0000", "nickname": "\\u0000"}',
    "lone surrogate": '{"username": "\\ud800", "password": "\\udfff", "refreshToken": "\\ud800", "bio": "\\ud800"}',
    "operator object": '{"username": {"$gt": ""}, "password": {"$ne": null}, "refreshToken": {"a": 1}, "bio": {}}',
    "huge number": '{"username": 1e999, "password": 123456789012345678901234567890, "phone": 1e999}',
    "every field null": json.dumps(
        {
            key: None
            for key in (
                "username",
                "password",
                "nickname",
                "phone",
                "email",
                "deviceId",
                "platform",
                "refreshToken",
                "avatar",
                "bio",
                "oldPassword",
                "newPassword",
            )
        }
    ),
    "huge strings": json.dumps({key: "x" * 100_000 for key in ("username", "password", "refreshToken", "bio")}),
    "not utf-8": b'{"username": "\xff\xfe"}',
}


@pytest.fixture
def signed_in(client_for, alice) -> APIClient:
    client: APIClient = client_for(alice)
    return client


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_malformed_bodies_get_a_4xx_envelope(signed_in, method, path, name):
    raw = RAW_BODIES[name]
    response = getattr(signed_in, method)(f"{API}/{path}", data=raw, content_type="application/json")
    assert 400 <= response.status_code < 500, (name, response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "message", "data"}
    assert body["code"] != 0
    assert body["message"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_invalid_json_says_it_could_not_be_parsed(signed_in, method, path):
    response = getattr(signed_in, method)(f"{API}/{path}", data="{not json", content_type="application/json")
    assert_error(response, 400, 40001, mentions="parsed")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    ("content_type", "data"),
    [("text/plain", "username=alice"), ("application/x-www-form-urlencoded", "username=alice&password=x")],
)
def test_bodies_that_are_not_json_are_a_415(signed_in, method, path, content_type, data):
    response = getattr(signed_in, method)(f"{API}/{path}", data=data, content_type=content_type)
    assert_error(response, 415, 41500)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_an_empty_body_names_the_missing_fields_or_succeeds(signed_in, method, path):
    response = getattr(signed_in, method)(f"{API}/{path}", data="", content_type="application/json")
    if path == "user/profile":  # PATCH with nothing to change is fine
        assert response.status_code == 200
    else:
        assert_error(response, 400, 40000)


def test_nothing_was_written_by_all_that(signed_in, alice):
    for name, raw in RAW_BODIES.items():
        signed_in.post(f"{API}/auth/register", data=raw, content_type="application/json")
        signed_in.patch(f"{API}/user/profile", data=raw, content_type="application/json")
        assert list(User.objects.values_list("username", flat=True)) == ["alice"], name
    alice.refresh_from_db()
    assert (alice.nickname, alice.bio) == ("Alice", "")
