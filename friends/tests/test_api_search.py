"""GET /users/search?q=&limit=."""

from __future__ import annotations

from typing import Any

import pytest

from friends import services
from friends.tests.conftest import API


def usernames(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["username"] for item in response.json()["data"]]


def test_search_returns_public_profiles_only(as_user, alice, bob):
    response = as_user(alice).get(f"{API}/users/search", {"q": "bob"})
    assert response.status_code == 200
    assert response.json()["data"] == [{"id": str(bob.id), "username": "bob", "nickname": "Bob", "avatar": ""}]


def test_search_matches_usernames_and_nicknames_ignoring_case(as_user, alice, make_user):
    make_user("robert", nickname="Bobby Tables")
    make_user("bobcat", nickname="Cat")
    make_user("zed", nickname="Zed")
    assert usernames(as_user(alice).get(f"{API}/users/search", {"q": "BOB"})) == ["bobcat", "robert"]


def test_search_puts_the_exact_username_first(as_user, alice, make_user):
    make_user("annabob", nickname="Anna")
    make_user("bobby", nickname="Bobby")
    make_user("rob", nickname="Bob the builder")
    make_user("bob", nickname="Zzz")
    assert usernames(as_user(alice).get(f"{API}/users/search", {"q": "Bob"})) == ["bob", "bobby", "rob", "annabob"]


def test_search_leaves_out_yourself_inactive_and_deleted_users(as_user, alice, make_user):
    make_user("alina")
    make_user("albert", is_active=False)
    make_user("alfred").soft_delete()
    assert usernames(as_user(alice).get(f"{API}/users/search", {"q": "al"})) == ["alina"]


def test_search_leaves_out_users_who_block_you(as_user, alice, bob, charlie):
    services.block_user(bob, user_id=charlie.id)
    assert usernames(as_user(charlie).get(f"{API}/users/search", {"q": "b"})) == []
    # The blocker still finds the one they block.
    assert usernames(as_user(bob).get(f"{API}/users/search", {"q": "charlie"})) == ["charlie"]


def test_search_treats_wildcard_characters_literally(as_user, alice, make_user):
    make_user("under_score")
    make_user("underxscore")
    assert usernames(as_user(alice).get(f"{API}/users/search", {"q": "r_s"})) == ["under_score"]
    assert usernames(as_user(alice).get(f"{API}/users/search", {"q": "%"})) == []


def test_search_returns_at_most_the_configured_limit(as_user, alice, make_user, settings):
    for index in range(5):
        make_user(f"user{index}")
    settings.USER_SEARCH_LIMIT = 3
    client = as_user(alice)
    assert usernames(client.get(f"{API}/users/search", {"q": "user"})) == ["user0", "user1", "user2"]
    assert usernames(client.get(f"{API}/users/search", {"q": "user", "limit": "2"})) == ["user0", "user1"]
    response = client.get(f"{API}/users/search", {"q": "user", "limit": "4"})
    assert response.status_code == 400
    assert "limit" in response.json()["message"]
    assert "3" in response.json()["message"]


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "9" * 30])
def test_search_limit_must_be_a_positive_integer(as_user, alice, limit):
    response = as_user(alice).get(f"{API}/users/search", {"q": "bob", "limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()["message"]


@pytest.mark.parametrize("query", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 33}])
def test_search_needs_a_query_of_1_to_32_characters(as_user, alice, query):
    response = as_user(alice).get(f"{API}/users/search", query)
    assert response.status_code == 400
    assert response.json()["message"].startswith("q:")


def test_search_accepts_a_query_of_32_characters(as_user, alice):
    assert usernames(as_user(alice).get(f"{API}/users/search", {"q": "x" * 32})) == []


def test_search_needs_a_token(api, bob):
    assert api.get(f"{API}/users/search", {"q": "bob"}).status_code == 401


def test_post_on_search_is_method_not_allowed(as_user, alice):
    assert as_user(alice).post(f"{API}/users/search", {"q": "bob"}, format="json").status_code == 405
