"""The group endpoints: create, update, members, roles, ownership, leaving, and their system messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from friends.services import block_user
from imsite.errors import ErrorCode
from messaging.models import Conversation, MemberRole, Membership, Message, MessageKind
from messaging.services import set_member_role
from messaging.tests.conftest import API, error, ok

pytestmark = pytest.mark.django_db

AsUser = Callable[[User], APIClient]


def _events(conversation_id: int) -> list[dict[str, Any]]:
    """The decoded system messages of the conversation, oldest first."""
    bodies = Message.objects.filter(conversation_id=conversation_id, kind=MessageKind.SYSTEM).order_by("seq")
    return [json.loads(body) for body in bodies.values_list("body", flat=True)]


def _roles(conversation_id: int) -> dict[int, str]:
    return dict(Membership.objects.filter(conversation_id=conversation_id).values_list("user_id", "role"))


# --- POST /groups


def test_alice_creates_a_group_and_owns_it(as_user: AsUser, alice: User, bob: User, charlie: User) -> None:
    body = {"name": "  Climbers  ", "memberIds": [str(bob.id), str(charlie.id), str(bob.id), str(alice.id)]}

    data = ok(as_user(alice).post(f"{API}/groups", body, format="json"), 201)

    group = int(data["id"])
    assert data["kind"] == "group"
    assert data["name"] == "Climbers"
    assert data["ownerId"] == str(alice.id)
    assert data["role"] == MemberRole.OWNER
    assert data["memberCount"] == 3
    assert _roles(group) == {alice.id: "owner", bob.id: "member", charlie.id: "member"}
    assert _events(group) == [
        {
            "event": "group_created",
            "actorId": str(alice.id),
            "name": "Climbers",
            "userIds": [str(bob.id), str(charlie.id)],
        }
    ]
    assert data["lastMessage"]["kind"] == "system"


def test_a_group_may_start_with_its_owner_alone(as_user: AsUser, alice: User) -> None:
    data = ok(as_user(alice).post(f"{API}/groups", {"name": "Notes", "memberIds": []}, format="json"), 201)

    assert data["memberCount"] == 1


def test_a_group_cannot_outgrow_the_size_limit(
    as_user: AsUser, alice: User, bob: User, charlie: User, make_user: Callable[..., User], small_groups: int
) -> None:
    dave = make_user("dave")
    body = {"name": "Too many", "memberIds": [str(bob.id), str(charlie.id), str(dave.id)]}

    response = as_user(alice).post(f"{API}/groups", body, format="json")

    error(response, 400, ErrorCode.VALIDATION, mentions="at most 3")
    assert not Conversation.objects.exists()


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"memberIds": []}, "name"),
        ({"name": "", "memberIds": []}, "name"),
        ({"name": "   ", "memberIds": []}, "name"),
        ({"name": "x" * 65, "memberIds": []}, "name"),
        ({"name": 5, "memberIds": []}, "name"),
        ({"name": True, "memberIds": []}, "name"),
        ({"name": ["a"], "memberIds": []}, "name"),
        ({"name": "G"}, "memberIds"),
        ({"name": "G", "memberIds": "1,2"}, "memberIds"),
        ({"name": "G", "memberIds": [None]}, "memberIds"),
        ({"name": "G", "memberIds": ["abc"]}, "memberIds"),
        ({"name": "G", "memberIds": [{"id": 1}]}, "memberIds"),
        ({"name": "bad\u0000name", "memberIds": []}, "name"),
    ],
)
def test_creating_a_group_validates_name_and_member_ids(
    as_user: AsUser, alice: User, body: dict[str, Any], mentions: str
) -> None:
    error(as_user(alice).post(f"{API}/groups", body, format="json"), 400, ErrorCode.VALIDATION, mentions=mentions)


def test_a_group_with_an_unknown_user_is_refused(as_user: AsUser, alice: User) -> None:
    response = as_user(alice).post(f"{API}/groups", {"name": "G", "memberIds": ["424242"]}, format="json")

    error(response, 404, ErrorCode.NOT_FOUND, mentions="424242")


def test_someone_who_blocks_alice_cannot_be_put_in_her_group(as_user: AsUser, alice: User, charlie: User) -> None:
    block_user(charlie, user_id=alice.id)

    response = as_user(alice).post(f"{API}/groups", {"name": "G", "memberIds": [str(charlie.id)]}, format="json")

    error(response, 403, ErrorCode.BLOCKED, mentions="charlie")


def test_creating_a_group_needs_a_token(api: APIClient) -> None:
    error(api.post(f"{API}/groups", {"name": "G", "memberIds": []}, format="json"), 401)


# --- PATCH /groups/{id}


def test_the_owner_renames_the_group_and_members_hear_of_it(as_user: AsUser, alice: User, group: int) -> None:
    data = ok(
        as_user(alice).patch(
            f"{API}/groups/{group}", {"name": "Boulderers", "avatar": "https://x/a.png"}, format="json"
        )
    )

    assert (data["name"], data["avatar"]) == ("Boulderers", "https://x/a.png")
    assert _events(group)[-1] == {
        "event": "group_updated",
        "actorId": str(alice.id),
        "name": "Boulderers",
        "avatar": "https://x/a.png",
    }


def test_an_admin_may_change_the_group_but_a_plain_member_may_not(
    as_user: AsUser, alice: User, bob: User, charlie: User, group: int
) -> None:
    set_member_role(alice, conversation_id=group, user_id=bob.id, role=MemberRole.ADMIN)

    ok(as_user(bob).patch(f"{API}/groups/{group}", {"avatar": ""}, format="json"))
    refused = as_user(charlie).patch(f"{API}/groups/{group}", {"name": "Mine now"}, format="json")

    error(refused, 403, ErrorCode.PERMISSION_DENIED, mentions="owner and admins")
    assert Conversation.objects.get(id=group).name == "Climbers"


def test_an_unchanged_update_posts_no_system_message(as_user: AsUser, alice: User, group: int) -> None:
    before = len(_events(group))

    ok(as_user(alice).patch(f"{API}/groups/{group}", {"name": "Climbers"}, format="json"))

    assert len(_events(group)) == before


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({}, "name or avatar"),
        ({"name": ""}, "name"),
        ({"name": "n" * 65}, "name"),
        ({"avatar": "a" * 513}, "avatar"),
        ({"avatar": 7}, "avatar"),
        ({"name": None}, "name"),
    ],
)
def test_updating_a_group_validates_its_fields(
    as_user: AsUser, alice: User, group: int, body: dict[str, Any], mentions: str
) -> None:
    error(
        as_user(alice).patch(f"{API}/groups/{group}", body, format="json"), 400, ErrorCode.VALIDATION, mentions=mentions
    )


def test_a_direct_conversation_is_not_a_group(as_user: AsUser, alice: User, direct: int) -> None:
    error(as_user(alice).patch(f"{API}/groups/{direct}", {"name": "G"}, format="json"), 404, ErrorCode.NOT_FOUND)


def test_an_outsider_sees_no_group(as_user: AsUser, make_user: Callable[..., User], group: int) -> None:
    eve = make_user("eve")

    error(as_user(eve).patch(f"{API}/groups/{group}", {"name": "G"}, format="json"), 404, ErrorCode.NOT_FOUND)
    error(as_user(eve).post(f"{API}/groups/{group}/leave"), 404, ErrorCode.NOT_FOUND)
    error(as_user(eve).get(f"{API}/conversations/{group}/messages"), 404, ErrorCode.NOT_FOUND)


# --- POST /groups/{id}/members


def test_the_owner_adds_members_and_a_system_message_says_so(
    as_user: AsUser, alice: User, make_user: Callable[..., User], group: int
) -> None:
    dave = make_user("dave")

    data = ok(as_user(alice).post(f"{API}/groups/{group}/members", {"userIds": [str(dave.id)]}, format="json"))

    assert data["memberCount"] == 4
    assert _roles(group)[dave.id] == MemberRole.MEMBER
    assert _events(group)[-1] == {"event": "member_added", "actorId": str(alice.id), "userIds": [str(dave.id)]}


def test_a_newcomer_has_only_the_join_notice_unread(
    as_user: AsUser, alice: User, make_user: Callable[..., User], group: int
) -> None:
    dave = make_user("dave")
    ok(as_user(alice).post(f"{API}/groups/{group}/members", {"userIds": [str(dave.id)]}, format="json"))

    (item,) = ok(as_user(dave).get(f"{API}/conversations"))

    assert item["unreadCount"] == 1


def test_adding_people_already_in_the_group_changes_nothing(
    as_user: AsUser, alice: User, bob: User, group: int
) -> None:
    before = len(_events(group))

    data = ok(as_user(alice).post(f"{API}/groups/{group}/members", {"userIds": [str(bob.id)]}, format="json"))

    assert data["memberCount"] == 3
    assert len(_events(group)) == before


def test_a_plain_member_cannot_add_members(
    as_user: AsUser, bob: User, make_user: Callable[..., User], group: int
) -> None:
    dave = make_user("dave")

    response = as_user(bob).post(f"{API}/groups/{group}/members", {"userIds": [str(dave.id)]}, format="json")

    error(response, 403, ErrorCode.PERMISSION_DENIED)


def test_adding_members_respects_the_size_limit(
    as_user: AsUser, alice: User, make_user: Callable[..., User], group: int, small_groups: int
) -> None:
    dave = make_user("dave")

    response = as_user(alice).post(f"{API}/groups/{group}/members", {"userIds": [str(dave.id)]}, format="json")

    error(response, 400, ErrorCode.VALIDATION, mentions="at most 3")


@pytest.mark.parametrize("body", [{}, {"userIds": []}, {"userIds": "1"}, {"userIds": [True]}, {"userIds": ["-1"]}])
def test_adding_members_validates_user_ids(as_user: AsUser, alice: User, group: int, body: dict[str, Any]) -> None:
    error(as_user(alice).post(f"{API}/groups/{group}/members", body, format="json"), 400, ErrorCode.VALIDATION)


# --- DELETE /groups/{id}/members/{userId}


def test_the_owner_removes_a_member_who_then_loses_the_conversation(
    as_user: AsUser, alice: User, charlie: User, group: int
) -> None:
    data = ok(as_user(alice).delete(f"{API}/groups/{group}/members/{charlie.id}"))

    assert data["memberCount"] == 2
    assert charlie.id not in _roles(group)
    assert _events(group)[-1] == {"event": "member_removed", "actorId": str(alice.id), "userIds": [str(charlie.id)]}
    error(as_user(charlie).get(f"{API}/conversations/{group}/messages"), 404, ErrorCode.NOT_FOUND)
    assert ok(as_user(charlie).get(f"{API}/conversations")) == []


def test_an_admin_cannot_remove_the_owner_or_another_admin(
    as_user: AsUser, alice: User, bob: User, charlie: User, group: int
) -> None:
    set_member_role(alice, conversation_id=group, user_id=bob.id, role=MemberRole.ADMIN)
    set_member_role(alice, conversation_id=group, user_id=charlie.id, role=MemberRole.ADMIN)
    client = as_user(bob)

    error(client.delete(f"{API}/groups/{group}/members/{alice.id}"), 403, ErrorCode.PERMISSION_DENIED, mentions="owner")
    error(client.delete(f"{API}/groups/{group}/members/{charlie.id}"), 403, ErrorCode.PERMISSION_DENIED)
    assert len(_roles(group)) == 3


def test_an_admin_removes_a_plain_member(as_user: AsUser, alice: User, bob: User, charlie: User, group: int) -> None:
    set_member_role(alice, conversation_id=group, user_id=bob.id, role=MemberRole.ADMIN)

    ok(as_user(bob).delete(f"{API}/groups/{group}/members/{charlie.id}"))

    assert set(_roles(group)) == {alice.id, bob.id}


def test_a_plain_member_removes_nobody(as_user: AsUser, bob: User, charlie: User, group: int) -> None:
    error(as_user(bob).delete(f"{API}/groups/{group}/members/{charlie.id}"), 403, ErrorCode.PERMISSION_DENIED)


def test_removing_someone_not_in_the_group_answers_404(
    as_user: AsUser, alice: User, make_user: Callable[..., User], group: int
) -> None:
    eve = make_user("eve")

    error(as_user(alice).delete(f"{API}/groups/{group}/members/{eve.id}"), 404, ErrorCode.NOT_FOUND)
    error(as_user(alice).delete(f"{API}/groups/{group}/members/not-an-id"), 404, ErrorCode.NOT_FOUND)


def test_removing_yourself_points_to_leaving(as_user: AsUser, alice: User, group: int) -> None:
    error(
        as_user(alice).delete(f"{API}/groups/{group}/members/{alice.id}"), 400, ErrorCode.VALIDATION, mentions="leave"
    )


# --- POST /groups/{id}/leave and /owner


def test_a_member_leaves_and_the_group_hears_of_it(as_user: AsUser, bob: User, group: int) -> None:
    assert ok(as_user(bob).post(f"{API}/groups/{group}/leave")) is None

    assert bob.id not in _roles(group)
    assert Conversation.objects.get(id=group).member_count == 2
    assert _events(group)[-1] == {"event": "member_left", "actorId": str(bob.id), "userIds": [str(bob.id)]}


def test_the_owner_cannot_leave_until_handing_the_group_over(
    as_user: AsUser, alice: User, bob: User, charlie: User, group: int
) -> None:
    client = as_user(alice)

    error(client.post(f"{API}/groups/{group}/leave"), 409, ErrorCode.CONFLICT, mentions="hand it over")
    handed = ok(client.post(f"{API}/groups/{group}/owner", {"userId": str(bob.id)}, format="json"))
    ok(client.post(f"{API}/groups/{group}/leave"))

    assert handed["ownerId"] == str(bob.id)
    assert handed["role"] == MemberRole.ADMIN
    assert _roles(group) == {bob.id: "owner", charlie.id: "member"}
    assert [e["event"] for e in _events(group)][-2:] == ["owner_changed", "member_left"]


def test_the_last_member_leaving_dissolves_the_group(as_user: AsUser, alice: User) -> None:
    client = as_user(alice)
    group = ok(client.post(f"{API}/groups", {"name": "Solo", "memberIds": []}, format="json"), 201)["id"]

    ok(client.post(f"{API}/groups/{group}/leave"))

    assert Conversation.all_objects.get(id=int(group)).deleted is True
    assert ok(client.get(f"{API}/conversations")) == []


def test_only_the_owner_hands_the_group_over_and_only_to_a_member(
    as_user: AsUser, alice: User, bob: User, charlie: User, make_user: Callable[..., User], group: int
) -> None:
    eve = make_user("eve")

    error(as_user(bob).post(f"{API}/groups/{group}/owner", {"userId": str(charlie.id)}, format="json"), 403)
    error(as_user(alice).post(f"{API}/groups/{group}/owner", {"userId": str(eve.id)}, format="json"), 404)
    error(as_user(alice).post(f"{API}/groups/{group}/owner", {"userId": str(alice.id)}, format="json"), 400)
    error(as_user(alice).post(f"{API}/groups/{group}/owner", {"userId": "x"}, format="json"), 400)
    error(as_user(alice).post(f"{API}/groups/{group}/owner", {}, format="json"), 400)
    assert Conversation.objects.get(id=group).owner_id == alice.id


# --- PATCH /groups/{id}/members/{userId}


def test_the_owner_makes_a_member_an_admin_and_back(as_user: AsUser, alice: User, bob: User, group: int) -> None:
    client = as_user(alice)

    made = ok(client.patch(f"{API}/groups/{group}/members/{bob.id}", {"role": "admin"}, format="json"))
    assert {m["id"]: m["role"] for m in made["members"]}[str(bob.id)] == "admin"
    assert _events(group)[-1] == {
        "event": "role_changed",
        "actorId": str(alice.id),
        "userIds": [str(bob.id)],
        "role": "admin",
    }

    ok(client.patch(f"{API}/groups/{group}/members/{bob.id}", {"role": "member"}, format="json"))
    assert _roles(group)[bob.id] == "member"


def test_only_the_owner_sets_roles(as_user: AsUser, alice: User, bob: User, charlie: User, group: int) -> None:
    set_member_role(alice, conversation_id=group, user_id=bob.id, role=MemberRole.ADMIN)

    response = as_user(bob).patch(f"{API}/groups/{group}/members/{charlie.id}", {"role": "admin"}, format="json")

    error(response, 403, ErrorCode.PERMISSION_DENIED, mentions="owner")


@pytest.mark.parametrize("body", [{}, {"role": "owner"}, {"role": "king"}, {"role": None}, {"role": 1}])
def test_a_role_is_admin_or_member(as_user: AsUser, alice: User, bob: User, group: int, body: dict[str, Any]) -> None:
    error(
        as_user(alice).patch(f"{API}/groups/{group}/members/{bob.id}", body, format="json"), 400, ErrorCode.VALIDATION
    )


def test_group_endpoints_need_a_token(api: APIClient, bob: User, group: int) -> None:
    error(api.patch(f"{API}/groups/{group}", {"name": "G"}, format="json"), 401)
    error(api.post(f"{API}/groups/{group}/members", {"userIds": [str(bob.id)]}, format="json"), 401)
    error(api.delete(f"{API}/groups/{group}/members/{bob.id}"), 401)
    error(api.post(f"{API}/groups/{group}/leave"), 401)
    error(api.post(f"{API}/groups/{group}/owner", {"userId": str(bob.id)}, format="json"), 401)
    error(api.patch(f"{API}/groups/{group}/members/{bob.id}", {"role": "admin"}, format="json"), 401)


def test_every_group_change_is_a_system_message_in_seq_order(
    as_user: AsUser, alice: User, bob: User, charlie: User, make_user: Callable[..., User]
) -> None:
    dave = make_user("dave")
    client = as_user(alice)
    group = ok(client.post(f"{API}/groups", {"name": "G", "memberIds": [str(bob.id)]}, format="json"), 201)["id"]
    ok(client.post(f"{API}/groups/{group}/members", {"userIds": [str(charlie.id), str(dave.id)]}, format="json"))
    ok(client.patch(f"{API}/groups/{group}", {"name": "G2"}, format="json"))
    ok(client.patch(f"{API}/groups/{group}/members/{bob.id}", {"role": "admin"}, format="json"))
    ok(client.delete(f"{API}/groups/{group}/members/{dave.id}"))
    ok(as_user(charlie).post(f"{API}/groups/{group}/leave"))
    ok(client.post(f"{API}/groups/{group}/owner", {"userId": str(bob.id)}, format="json"))

    page = ok(as_user(bob).get(f"{API}/conversations/{group}/messages"))

    assert [m["seq"] for m in page["messages"]] == list(range(1, 8))
    assert {m["kind"] for m in page["messages"]} == {"system"}
    assert [json.loads(m["body"])["event"] for m in page["messages"]] == [
        "group_created",
        "member_added",
        "group_updated",
        "role_changed",
        "member_removed",
        "member_left",
        "owner_changed",
    ]
