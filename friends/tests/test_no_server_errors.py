"""No input, however odd, makes a friends endpoint answer 5xx."""

from __future__ import annotations

import json

import pytest

from friends.tests.conftest import API

BODIES = [
    None,
    "",
    "{",
    "[]",
    "null",
    '"text"',
    "1e999",
    json.dumps({"friendId": {"$gt": 1}, "message": ["x"]}),
    json.dumps({"friend_id": "1", "remark": {"a": 1}}),
    json.dumps({"friendId": "1" * 10_000, "remark": "r" * 10_000, "message": "m" * 10_000}),
    json.dumps({"friendId": "\u0000", "remark": "\ud800x"}),
    "\xff\xfe not utf-8",
]

PATHS = [
    ("get", "users/search?q=%00&limit=%FF"),
    ("get", "users/search?q=" + "a" * 5000),
    ("get", "friends/requests?direction=%00,,incoming&status[]=1"),
    ("post", "friends/request"),
    ("post", "friends/requests/{other}/accept"),
    ("post", "friends/requests/%F0%9F%98%80/reject"),
    ("patch", "friends/{other}"),
    ("delete", "friends/{other}"),
    ("patch", "friends/" + "9" * 400),
    ("post", "blocks/{other}"),
    ("delete", "blocks/%00"),
    ("get", "friends"),
    ("get", "blocks"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_no_input_gives_a_server_error(as_user, alice, bob, alice_and_bob_are_friends, method, path):
    client = as_user(alice)
    url = f"{API}/{path.format(other=bob.id)}"
    for body in BODIES:
        if body is None:
            response = client.generic(method.upper(), url)
        else:
            response = client.generic(method.upper(), url, body, content_type="application/json")
        assert response.status_code < 500, (method, url, body, response.content)
        assert response["Content-Type"].startswith("application/json")
