"""GET and PATCH /user/profile: your own profile, what may change, and ProfileChanged."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.tests.helpers import assert_error, ok_data
from imsite.errors import InvalidInput
from imsite.events import ProfileChanged
from imsite.nats_subjects import user_event

pytestmark = pytest.mark.django_db

PROFILE = "/api/v1/user/profile"


def patch(client: APIClient, body: Any) -> Any:
    return client.patch(PROFILE, body, format="json")


def profile_events(events: list[tuple[str, Any]]) -> list[tuple[str, int]]:
    return [(subject, event.user_id) for subject, event in events if isinstance(event, ProfileChanged)]


def test_your_profile_has_every_field_in_camel_case_and_the_id_as_a_string(client_for, make_user):
    erin = make_user("erin", phone="+1 555 0100", email="erin@example.com", bio="Hi")
    data = ok_data(client_for(erin).get(PROFILE))
    assert data == {
        "id": str(erin.id),
        "username": "erin",
        "nickname": "Erin",
        "phone": "+1 555 0100",
        "email": "erin@example.com",
        "avatar": "",
        "bio": "Hi",
        "createdAt": data["createdAt"],
    }
    assert data["createdAt"].endswith("Z")


def test_the_profile_needs_an_access_token(api):
    assert_error(api.get(PROFILE), 401, 40100, mentions="Authorization")


def test_patch_changes_the_fields_sent_and_publishes_profile_changed(client_for, alice, capture_events):
    client = client_for(alice)
    body = {
        "nickname": "Alice in Chains",
        "avatar": "https://cdn.example.com/a.png",
        "bio": "Down in a hole",
        "phone": "+44 20 7946 0958",
        "email": "alice@example.com",
    }
    with capture_events() as events:
        data = ok_data(patch(client, body))
    assert {key: data[key] for key in body} == body
    assert profile_events(events) == [(user_event(alice.id), alice.id)]
    alice.refresh_from_db()
    assert (alice.nickname, alice.avatar, alice.bio) == (
        "Alice in Chains",
        "https://cdn.example.com/a.png",
        body["bio"],
    )
    assert ok_data(client.get(PROFILE))["email"] == "alice@example.com"


def test_patch_of_one_field_leaves_the_others(client_for, make_user):
    erin = make_user("erin", email="erin@example.com")
    data = ok_data(patch(client_for(erin), {"bio": "New bio"}))
    assert data["bio"] == "New bio"
    assert data["email"] == "erin@example.com"
    assert data["nickname"] == "Erin"


def test_patch_that_changes_nothing_publishes_nothing(client_for, alice, capture_events):
    client = client_for(alice)
    with capture_events() as events:
        ok_data(patch(client, {"nickname": "Alice"}))
        ok_data(patch(client, {}))
    assert profile_events(events) == []


def test_empty_strings_clear_optional_fields_and_an_empty_nickname_falls_back_to_the_username(client_for, make_user):
    erin = make_user("erin", email="erin@example.com", avatar="https://x.example/a.png")
    data = ok_data(patch(client_for(erin), {"nickname": "", "email": "", "avatar": "", "phone": ""}))
    assert data["nickname"] == "erin"
    assert data["email"] == ""
    assert data["avatar"] == ""


def test_the_username_and_id_cannot_be_changed_through_the_profile(client_for, alice):
    data = ok_data(patch(client_for(alice), {"username": "mallory", "id": "1", "nickname": "A"}))
    assert data["username"] == "alice"
    assert data["id"] == str(alice.id)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("avatar", "javascript:alert(1)"),
        ("avatar", "ftp://example.com/a.png"),
        ("avatar", "not a url"),
        ("email", "nope"),
        ("phone", "12"),
        ("phone", "phone me"),
    ],
)
def test_invalid_values_are_refused_with_the_field_named(client_for, alice, field, value):
    assert_error(patch(client_for(alice), {field: value}), 400, 40000, mentions=field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nickname", "n" * 65),
        ("bio", "b" * 501),
        ("avatar", "https://example.com/" + "a" * 500),
        ("email", "e" * 250 + "@example.com"),
        ("phone", "1" * 33),
    ],
)
def test_oversize_values_are_refused_with_the_field_named(client_for, alice, field, value):
    assert_error(patch(client_for(alice), {field: value}), 400, 40000, mentions=field)
    alice.refresh_from_db()
    assert getattr(alice, field) != value


@pytest.mark.parametrize(("field", "value"), [("nickname", 5), ("bio", ["x"]), ("email", {"a": 1}), ("avatar", True)])
def test_wrong_typed_values_are_refused_with_the_field_named(client_for, alice, field, value):
    assert_error(patch(client_for(alice), {field: value}), 400, 40000, mentions=field)


def test_a_bio_of_exactly_the_limit_is_accepted(client_for, alice):
    bio = "b" * services.BIO_MAX_LENGTH
    assert ok_data(patch(client_for(alice), {"bio": bio}))["bio"] == bio


def test_the_profile_cannot_be_replaced_with_put(client_for, alice):
    assert_error(client_for(alice).put(PROFILE, {"nickname": "x"}, format="json"), 405, 40500)


def test_the_service_checks_the_rules_for_other_callers_too(alice):
    with pytest.raises(InvalidInput) as error:
        services.update_profile(alice, avatar="javascript:alert(1)")
    assert error.value.field == "avatar"
    with pytest.raises(InvalidInput):
        services.update_profile(alice, bio="b" * (services.BIO_MAX_LENGTH + 1))
