"""POST /auth/register: the profile of the new user, and every way the input can be wrong."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from accounts.tests.helpers import assert_error, ok_data, post
from conftest import PASSWORD, login
from imsite.errors import Conflict, InvalidInput

pytestmark = pytest.mark.django_db

PROFILE_KEYS = {"id", "username", "nickname", "phone", "email", "avatar", "bio", "createdAt"}


def register(api: APIClient, **body: object) -> Any:
    return post(api, "auth/register", {"username": "dana", "password": PASSWORD, **body})


def test_register_creates_a_user_and_returns_its_profile_in_camel_case(api):
    data = ok_data(register(api, nickname="Dana D.", phone="+1 555-0100", email="dana@example.com"), status=201)
    assert set(data) == PROFILE_KEYS
    user = User.objects.get(username="dana")
    assert data["id"] == str(user.id)
    assert data["username"] == "dana"
    assert data["nickname"] == "Dana D."
    assert data["phone"] == "+1 555-0100"
    assert data["email"] == "dana@example.com"
    assert data["createdAt"]
    assert user.check_password(PASSWORD)
    assert user.is_active
    assert not user.is_staff
    assert not user.is_superuser


def test_register_with_only_username_and_password_uses_the_username_as_nickname(api):
    data = ok_data(register(api), status=201)
    assert data["nickname"] == "dana"
    assert data["phone"] == ""
    assert data["email"] == ""
    assert data["avatar"] == ""
    assert data["bio"] == ""


def test_registered_user_can_log_in(api):
    ok_data(register(api), status=201)
    tokens = login(APIClient(), "dana")
    assert tokens["accessToken"]


def test_register_ignores_a_broken_authorization_header(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    ok_data(register(api), status=201)


def test_the_password_is_never_echoed(api):
    response = register(api)
    assert PASSWORD not in response.content.decode()


@pytest.mark.parametrize("taken", ["alice", "Alice", "ALICE"])
def test_a_username_taken_in_any_letter_case_is_a_conflict(api, alice, taken):
    body = assert_error(register(api, username=taken), 409, 40900, mentions=("username", "taken"))
    assert body["data"] == {"field": "username"}
    assert User.all_objects.count() == 1


def test_the_username_of_a_soft_deleted_user_stays_taken(api, alice):
    alice.soft_delete()
    assert_error(register(api, username="alice"), 409, 40900, mentions="username")


def test_missing_username_and_password_are_both_named(api):
    body = assert_error(post(api, "auth/register", {}), 400, 40000, mentions=("username", "password"))
    assert set(body["data"]["errors"]) == {"username", "password"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", 12345),
        ("username", ["dana"]),
        ("username", {"name": "dana"}),
        ("username", True),
        ("username", None),
        ("password", 1234567890123),
        ("password", [PASSWORD]),
        ("nickname", 42),
        ("phone", 15550100),
        ("email", ["dana@example.com"]),
    ],
)
def test_wrong_typed_fields_are_refused_with_the_field_named(api, field, value):
    assert_error(register(api, **{field: value}), 400, 40000, mentions=field)
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "d" * 33),
        ("password", "Aa1!" * 33),
        ("nickname", "n" * 65),
        ("phone", "+" + "1" * 32),
        ("email", "d" * 250 + "@example.com"),
    ],
)
def test_oversize_strings_are_refused_with_the_field_named(api, field, value):
    assert_error(register(api, **{field: value}), 400, 40000, mentions=field)


@pytest.mark.parametrize("username", ["ab", "a b", "al!ce", "ålice", "dana@home", "", "   "])
def test_usernames_outside_the_rules_are_refused(api, username):
    assert_error(register(api, username=username), 400, 40000, mentions="username")


@pytest.mark.parametrize("username", ["abc", "Dana_B", "d.a-n_a", "x" * 32, "007"])
def test_usernames_inside_the_rules_are_accepted(api, username):
    ok_data(register(api, username=username), status=201)


@pytest.mark.parametrize(
    ("username", "password", "why"),
    [
        ("dana", "Sh0rt!", "too short"),
        ("dana", "password", "too common"),
        ("dana", "1234567890123", "entirely numeric"),
        ("dana_roberts", "Dana_Roberts1", "too similar to the username"),
    ],
)
def test_weak_passwords_are_refused_by_the_password_validators(api, username, password, why):
    body = assert_error(register(api, username=username, password=password), 400, 40000, mentions="password")
    assert body["data"]["field"] == "password", why
    assert not User.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("email", "not-an-email"), ("email", "a@b"), ("phone", "call me")])
def test_invalid_email_or_phone_is_refused(api, field, value):
    assert_error(register(api, **{field: value}), 400, 40000, mentions=field)


@pytest.mark.parametrize("phone", ["+86 138 0013 8000", "555-0100-22", "0123456789"])
def test_phone_numbers_in_usual_spellings_are_accepted(api, phone):
    assert ok_data(register(api, phone=phone), status=201)["phone"] == phone


def test_the_service_applies_the_same_rules_without_the_api(db):
    with pytest.raises(InvalidInput) as bad_name:
        services.register_user(username="no spaces", password=PASSWORD)
    assert bad_name.value.field == "username"
    with pytest.raises(InvalidInput) as bad_phone:
        services.register_user(username="dana", password=PASSWORD, phone="12")
    assert bad_phone.value.field == "phone"
    services.register_user(username="Dana", password=PASSWORD)
    with pytest.raises(Conflict):
        services.register_user(username="dANA", password=PASSWORD)


def test_the_database_refuses_a_second_username_differing_only_in_case(db):
    from django.db import IntegrityError, transaction

    User.objects.create_user("erin", PASSWORD)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("ERIN", PASSWORD)
