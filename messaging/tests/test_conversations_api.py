"""GET /conversations, POST /conversations/direct, GET .../messages and POST .../read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from friends.services import block_user
from imsite.errors import ErrorCode
from messaging.models import Conversation, ConversationKind, MemberRole, Membership
from messaging.selectors import list_conversations
from messaging.services import create_group, recall_message
from messaging.tests.conftest import API, error, ok, send

pytestmark = pytest.mark.django_db

AsUser = Callable[[User], APIClient]


def _bulk_users(count: int, prefix: str) -> list[User]:
    """Users without a password hash: quick to make, never logged in."""
    return User.objects.bulk_create([User(username=f"{prefix}{i}", password="!") for i in range(count)])


# --- GET /conversations


def test_a_new_user_has_no_conversations(as_user: AsUser, charlie: User) -> None:
    assert ok(as_user(charlie).get(f"{API}/conversations")) == []


def test_the_list_shows_members_last_message_and_unread_count(
    as_user: AsUser, alice: User, bob: User, direct: int
) -> None:
    send(alice, direct, "one", "two")
    send(bob, direct, "three")

    (item,) = ok(as_user(alice).get(f"{API}/conversations"))

    assert item["id"] == str(direct)
    assert item["kind"] == "direct"
    assert item["lastSeq"] == 3
    assert item["lastReadSeq"] == 2
    assert item["unreadCount"] == 1
    assert item["memberCount"] == 2
    assert item["role"] == "member"
    assert item["muted"] is False
    assert item["ownerId"] is None
    assert {m["id"] for m in item["members"]} == {str(alice.id), str(bob.id)}
    assert set(item["members"][0]) == {"id", "username", "nickname", "avatar", "role"}
    last = item["lastMessage"]
    assert (last["body"], last["seq"], last["senderId"], last["kind"]) == ("three", 3, str(bob.id), "text")
    assert last["replyToId"] is None
    assert last["recalled"] is False


def test_the_list_puts_the_most_recently_active_conversation_first(
    as_user: AsUser, alice: User, bob: User, charlie: User, direct: int, group: int
) -> None:
    send(bob, direct, "latest")

    items = ok(as_user(alice).get(f"{API}/conversations"))

    assert [item["id"] for item in items] == [str(direct), str(group)]


def test_members_are_left_out_of_conversations_over_twenty_members(as_user: AsUser, alice: User) -> None:
    others = _bulk_users(20, "member")
    big = create_group(alice, name="Crowd", member_ids=[u.id for u in others]).conversation_id
    small = create_group(alice, name="Few", member_ids=[others[0].id]).conversation_id

    items = {item["id"]: item for item in ok(as_user(alice).get(f"{API}/conversations"))}

    assert items[str(big)]["members"] is None
    assert items[str(big)]["memberCount"] == 21
    assert len(items[str(small)]["members"]) == 2


def test_a_recalled_last_message_shows_no_body(as_user: AsUser, alice: User, bob: User, direct: int) -> None:
    send(alice, direct, "oops")
    message_id = Conversation.objects.get(id=direct).last_message_id
    recall_message(alice, message_id=message_id)

    (item,) = ok(as_user(bob).get(f"{API}/conversations"))

    assert item["lastMessage"]["recalled"] is True
    assert item["lastMessage"]["body"] == ""


def test_the_unread_count_is_never_negative(as_user: AsUser, alice: User, direct: int) -> None:
    Membership.objects.filter(conversation_id=direct, user_id=alice.id).update(last_read_seq=7)

    (item,) = ok(as_user(alice).get(f"{API}/conversations"))

    assert item["unreadCount"] == 0


def test_listing_takes_the_same_queries_for_one_or_many_conversations(alice: User, bob: User, direct: int) -> None:
    send(alice, direct, "hi")

    with CaptureQueriesContext(connection) as one:
        assert len(list_conversations(alice)) == 1
    others = _bulk_users(25, "crowd")
    for index in range(6):
        group = create_group(alice, name=f"G{index}", member_ids=[u.id for u in others[: 4 + index * 4]])
        send(alice, group.conversation_id, "hello")
    with CaptureQueriesContext(connection) as many:
        assert len(list_conversations(alice)) == 7

    assert len(one.captured_queries) == len(many.captured_queries) == 3


def test_the_list_needs_a_token(api: APIClient) -> None:
    error(api.get(f"{API}/conversations"), 401, ErrorCode.NOT_AUTHENTICATED)


# --- POST /conversations/direct


def test_alice_opens_a_direct_conversation_with_her_friend_once(
    as_user: AsUser, alice: User, bob: User, alice_and_bob_are_friends: None
) -> None:
    created = ok(as_user(alice).post(f"{API}/conversations/direct", {"userId": str(bob.id)}, format="json"), 201)
    again = ok(as_user(alice).post(f"{API}/conversations/direct", {"userId": str(bob.id)}, format="json"))
    from_bob = ok(as_user(bob).post(f"{API}/conversations/direct", {"userId": str(alice.id)}, format="json"))

    assert created["id"] == again["id"] == from_bob["id"]
    assert created["kind"] == ConversationKind.DIRECT
    assert {m["id"] for m in created["members"]} == {str(alice.id), str(bob.id)}
    assert Conversation.objects.filter(kind=ConversationKind.DIRECT).count() == 1
    assert Membership.objects.filter(conversation_id=int(created["id"])).count() == 2


def test_charlie_cannot_open_a_direct_conversation_with_alice(as_user: AsUser, alice: User, charlie: User) -> None:
    response = as_user(charlie).post(f"{API}/conversations/direct", {"userId": str(alice.id)}, format="json")

    error(response, 403, ErrorCode.PERMISSION_DENIED, mentions="friend")
    assert not Conversation.objects.exists()


def test_strangers_may_talk_when_friendship_is_not_required(
    as_user: AsUser, alice: User, charlie: User, settings: Any
) -> None:
    settings.DIRECT_MESSAGES_REQUIRE_FRIENDSHIP = False

    ok(as_user(charlie).post(f"{API}/conversations/direct", {"userId": str(alice.id)}, format="json"), 201)


def test_nobody_opens_a_direct_conversation_across_a_block(
    as_user: AsUser, alice: User, bob: User, settings: Any
) -> None:
    settings.DIRECT_MESSAGES_REQUIRE_FRIENDSHIP = False
    block_user(bob, user_id=alice.id)

    blocked = as_user(alice).post(f"{API}/conversations/direct", {"userId": str(bob.id)}, format="json")
    blocker = as_user(bob).post(f"{API}/conversations/direct", {"userId": str(alice.id)}, format="json")

    error(blocked, 403, ErrorCode.BLOCKED, mentions="not accepting")
    error(blocker, 403, ErrorCode.BLOCKED, mentions="unblock")


def test_a_direct_conversation_with_yourself_or_nobody_is_refused(as_user: AsUser, alice: User) -> None:
    client = as_user(alice)

    error(
        client.post(f"{API}/conversations/direct", {"userId": str(alice.id)}, format="json"), 400, mentions="yourself"
    )
    error(client.post(f"{API}/conversations/direct", {"userId": "999999"}, format="json"), 404, ErrorCode.NOT_FOUND)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"userId": None},
        {"userId": ""},
        {"userId": "abc"},
        {"userId": -5},
        {"userId": 1.5},
        {"userId": True},
        {"userId": ["1"]},
        {"userId": {"id": "1"}},
        {"userId": "9" * 20},
        {"userId": "1" * 5000},
        [],
        "text",
    ],
)
def test_a_direct_conversation_needs_a_user_id(as_user: AsUser, alice: User, body: Any) -> None:
    response = as_user(alice).post(f"{API}/conversations/direct", body, format="json")

    error(response, 400, ErrorCode.VALIDATION)


def test_invalid_json_is_refused_with_a_parse_error(as_user: AsUser, alice: User) -> None:
    response = as_user(alice).post(f"{API}/conversations/direct", '{"userId": ', content_type="application/json")

    error(response, 400, ErrorCode.MALFORMED_REQUEST)


def test_opening_a_direct_conversation_needs_a_token(api: APIClient, bob: User) -> None:
    error(api.post(f"{API}/conversations/direct", {"userId": str(bob.id)}, format="json"), 401)


# --- GET /conversations/{id}/messages


def _history(client: APIClient, conversation_id: int | str, **query: Any) -> Any:
    return client.get(f"{API}/conversations/{conversation_id}/messages", query)


def test_history_without_a_cursor_is_the_newest_page_in_ascending_order(
    as_user: AsUser, alice: User, direct: int
) -> None:
    send(alice, direct, *[f"m{i}" for i in range(1, 8)])

    page = ok(_history(as_user(alice), direct, limit=3))

    assert [m["seq"] for m in page["messages"]] == [5, 6, 7]
    assert [m["body"] for m in page["messages"]] == ["m5", "m6", "m7"]
    assert page["hasMore"] is True


def test_history_pages_backwards_with_before_seq(as_user: AsUser, alice: User, direct: int) -> None:
    send(alice, direct, *[f"m{i}" for i in range(1, 8)])
    client = as_user(alice)

    second = ok(_history(client, direct, beforeSeq=5, limit=3))
    last = ok(_history(client, direct, beforeSeq=2, limit=3))

    assert [m["seq"] for m in second["messages"]] == [2, 3, 4]
    assert second["hasMore"] is True
    assert [m["seq"] for m in last["messages"]] == [1]
    assert last["hasMore"] is False


def test_history_pages_forwards_with_after_seq(as_user: AsUser, alice: User, bob: User, direct: int) -> None:
    send(alice, direct, *[f"m{i}" for i in range(1, 8)])
    client = as_user(bob)

    first = ok(_history(client, direct, afterSeq=0, limit=4))
    rest = ok(_history(client, direct, afterSeq=4, limit=4))
    nothing = ok(_history(client, direct, afterSeq=7))

    assert [m["seq"] for m in first["messages"]] == [1, 2, 3, 4]
    assert first["hasMore"] is True
    assert [m["seq"] for m in rest["messages"]] == [5, 6, 7]
    assert rest["hasMore"] is False
    assert nothing == {"messages": [], "hasMore": False}


def test_history_shows_every_message_field_with_ids_as_strings(as_user: AsUser, alice: User, direct: int) -> None:
    send(alice, direct, "hello")

    (message,) = ok(_history(as_user(alice), direct))["messages"]

    assert set(message) == {
        "id",
        "conversationId",
        "seq",
        "senderId",
        "clientMsgId",
        "kind",
        "body",
        "replyToId",
        "createdAt",
        "editedAt",
        "recalled",
    }
    assert message["conversationId"] == str(direct)
    assert message["senderId"] == str(alice.id)
    assert isinstance(message["id"], str)


def test_another_users_conversation_answers_404(as_user: AsUser, charlie: User, direct: int) -> None:
    error(_history(as_user(charlie), direct), 404, ErrorCode.NOT_FOUND)


@pytest.mark.parametrize("conversation_id", ["abc", "0", "-1", "9" * 25, "1.5", "424242"])
def test_a_conversation_id_that_names_nothing_answers_404(as_user: AsUser, alice: User, conversation_id: str) -> None:
    error(_history(as_user(alice), conversation_id), 404, ErrorCode.NOT_FOUND)


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ({"beforeSeq": 5, "afterSeq": 1}, "not both"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"beforeSeq": "x"}, "beforeSeq"),
        ({"afterSeq": -1}, "afterSeq"),
        ({"afterSeq": "1e3"}, "afterSeq"),
        ({"beforeSeq": str(1 << 64)}, "beforeSeq"),
        ({"beforeSeq": ""}, "beforeSeq"),
    ],
)
def test_history_validates_its_query(
    as_user: AsUser, alice: User, direct: int, query: dict[str, Any], mentions: str
) -> None:
    error(_history(as_user(alice), direct, **query), 400, ErrorCode.VALIDATION, mentions=mentions)


def test_history_needs_a_token(api: APIClient, direct: int) -> None:
    error(_history(api, direct), 401)


# --- POST /conversations/{id}/read


def _read(client: APIClient, conversation_id: int | str, body: Any) -> Any:
    return client.post(f"{API}/conversations/{conversation_id}/read", body, format="json")


def test_read_state_only_moves_forward(as_user: AsUser, alice: User, bob: User, direct: int) -> None:
    send(alice, direct, "1", "2", "3", "4")
    client = as_user(bob)

    assert ok(_read(client, direct, {"seq": 3})) == {"conversationId": str(direct), "lastReadSeq": 3}
    assert ok(_read(client, direct, {"seq": 1}))["lastReadSeq"] == 3
    assert ok(_read(client, direct, {"seq": 4}))["lastReadSeq"] == 4
    (item,) = ok(client.get(f"{API}/conversations"))
    assert (item["lastReadSeq"], item["unreadCount"]) == (4, 0)


def test_read_state_never_passes_the_last_seq(as_user: AsUser, alice: User, bob: User, direct: int) -> None:
    send(alice, direct, "1", "2")

    assert ok(_read(as_user(bob), direct, {"seq": 1000}))["lastReadSeq"] == 2


def test_charlie_cannot_mark_someone_elses_conversation_read(as_user: AsUser, charlie: User, direct: int) -> None:
    error(_read(as_user(charlie), direct, {"seq": 1}), 404, ErrorCode.NOT_FOUND)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"seq": None},
        {"seq": -1},
        {"seq": "two"},
        {"seq": "2"},
        {"seq": 1.5},
        {"seq": True},
        {"seq": 1 << 64},
        {"seq": [1]},
        [],
        "seq",
    ],
)
def test_read_needs_a_non_negative_seq(as_user: AsUser, alice: User, direct: int, body: Any) -> None:
    error(_read(as_user(alice), direct, body), 400, ErrorCode.VALIDATION)


def test_read_needs_a_token(api: APIClient, direct: int) -> None:
    error(_read(api, direct, {"seq": 1}), 401)


def test_the_group_creator_is_the_owner_in_the_list(
    as_user: AsUser, alice: User, bob: User, charlie: User, group: int
) -> None:
    items = {item["id"]: item for item in ok(as_user(bob).get(f"{API}/conversations"))}

    item = items[str(group)]
    assert item["role"] == MemberRole.MEMBER
    assert item["ownerId"] == str(alice.id)
    assert {m["id"]: m["role"] for m in item["members"]}[str(alice.id)] == MemberRole.OWNER
