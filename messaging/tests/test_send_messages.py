"""send_messages, the one write path of every message: dedup, seqs, rules, and its query count."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from friends.services import block_user, remove_friend
from messaging.models import Conversation, Membership, Message, MessageKind
from messaging.services import RejectCode, SendRequest, SendStatus, create_group, leave_group, send_messages
from messaging.tests.conftest import text

pytestmark = pytest.mark.django_db

# dedup, memberships, blocks, friendships, replies, lock, seq update, insert, read positions,
# plus the savepoint of the batch's transaction: a fixed bound, whatever the batch size.
MAX_QUERIES_PER_BATCH = 12


def test_a_message_is_stored_with_the_next_seq(alice: User, direct: int) -> None:
    (first,) = send_messages([text(alice, direct, "c1", "hi bob")])
    (second,) = send_messages([text(alice, direct, "c2", "are you there?")])

    assert first.status is SendStatus.STORED
    assert first.message is not None
    assert second.message is not None
    assert (first.message.seq, second.message.seq) == (1, 2)
    stored = Message.objects.get(id=second.message.id)
    assert (stored.body, stored.sender_id, stored.kind, stored.client_msg_id) == (
        "are you there?",
        alice.id,
        "text",
        "c2",
    )
    conversation = Conversation.objects.get(id=direct)
    assert (conversation.last_seq, conversation.last_message_id) == (2, second.message.id)


def test_a_retried_send_gets_the_first_messages_id_and_seq_back(alice: User, direct: int) -> None:
    (first,) = send_messages([text(alice, direct, "retry-me", "once")])
    (retry,) = send_messages([text(alice, direct, "retry-me", "once")])

    assert retry.status is SendStatus.DUPLICATE
    assert first.message is not None
    assert retry.message == first.message
    assert Message.objects.filter(conversation_id=direct).count() == 1
    assert Conversation.objects.get(id=direct).last_seq == 1


def test_duplicates_within_one_batch_collapse_to_one_message(alice: User, direct: int) -> None:
    outcomes = send_messages([text(alice, direct, "same"), text(alice, direct, "other"), text(alice, direct, "same")])

    assert [o.status for o in outcomes] == [SendStatus.STORED, SendStatus.STORED, SendStatus.DUPLICATE]
    assert outcomes[2].message == outcomes[0].message
    assert Message.objects.filter(conversation_id=direct).count() == 2
    assert Conversation.objects.get(id=direct).last_seq == 2


def test_the_same_client_msg_id_of_two_senders_makes_two_messages(alice: User, bob: User, direct: int) -> None:
    outcomes = send_messages([text(alice, direct, "x"), text(bob, direct, "x")])

    assert [o.status for o in outcomes] == [SendStatus.STORED, SendStatus.STORED]


def test_seqs_are_gap_free_per_conversation_and_each_senders_order_is_kept(
    alice: User, bob: User, charlie: User, direct: int, group: int
) -> None:
    send_messages([text(alice, group, "before")])  # the group already holds seq 1 (created) and 2
    plan = [
        (alice, direct),
        (bob, group),
        (alice, group),
        (bob, direct),
        (charlie, group),
        (alice, direct),
        (bob, group),
        (charlie, group),
        (alice, group),
        (bob, direct),
    ]
    requests = [
        text(sender, conversation, f"m{index}", f"{sender.username} {index}")
        for index, (sender, conversation) in enumerate(plan)
    ]

    outcomes = send_messages(requests)

    assert all(o.status is SendStatus.STORED for o in outcomes)
    seqs: dict[int, list[int]] = defaultdict(list)
    by_sender: dict[tuple[int, int], list[int]] = defaultdict(list)
    for request, outcome in zip(requests, outcomes, strict=True):
        assert outcome.message is not None
        seqs[request.conversation_id].append(outcome.message.seq)
        by_sender[(request.conversation_id, request.sender_id)].append(outcome.message.seq)
    assert sorted(seqs[direct]) == [1, 2, 3, 4]
    assert sorted(seqs[group]) == [3, 4, 5, 6, 7, 8]
    for sender_seqs in by_sender.values():
        assert sender_seqs == sorted(sender_seqs), "a sender's messages keep the order they were sent in"
    assert list(Message.objects.filter(conversation_id=group).order_by("seq").values_list("seq", flat=True)) == list(
        range(1, 9)
    )
    assert Conversation.objects.get(id=group).last_seq == 8


def test_charlie_who_is_not_a_member_gets_not_member(charlie: User, direct: int) -> None:
    (outcome,) = send_messages([text(charlie, direct, "intrude")])

    assert outcome.status is SendStatus.REJECTED
    assert outcome.code is RejectCode.NOT_MEMBER
    assert outcome.message is None
    assert not Message.objects.filter(conversation_id=direct).exists()


def test_a_member_who_left_a_group_gets_not_member(bob: User, group: int) -> None:
    leave_group(bob, conversation_id=group)

    (outcome,) = send_messages([text(bob, group, "still here?")])

    assert outcome.code is RejectCode.NOT_MEMBER


def test_a_blocked_sender_gets_blocked_both_ways(alice: User, bob: User, direct: int) -> None:
    block_user(bob, user_id=alice.id)

    blocked, blocker = send_messages([text(alice, direct, "a1"), text(bob, direct, "b1")])

    assert blocked.code is RejectCode.BLOCKED
    assert "not accepting" in blocked.reason
    assert blocker.code is RejectCode.BLOCKED
    assert "unblock" in blocker.reason


def test_blocks_do_not_stop_messages_in_a_group(alice: User, bob: User, group: int) -> None:
    block_user(bob, user_id=alice.id)

    (outcome,) = send_messages([text(alice, group, "hi all")])

    assert outcome.status is SendStatus.STORED


def test_direct_messages_need_friendship_when_the_setting_is_on(
    alice: User, bob: User, direct: int, settings: Any
) -> None:
    remove_friend(alice, friend_id=bob.id)

    (refused,) = send_messages([text(alice, direct, "n1")])
    settings.DIRECT_MESSAGES_REQUIRE_FRIENDSHIP = False
    (allowed,) = send_messages([text(alice, direct, "n2")])

    assert refused.code is RejectCode.NOT_FRIENDS
    assert allowed.status is SendStatus.STORED


def test_an_oversize_body_gets_body_too_large(alice: User, direct: int) -> None:
    limit = 16 * 1024
    just_fits = "é" * (limit // 2)  # two bytes each in UTF-8
    too_large = just_fits + "x"

    fits, rejected = send_messages([text(alice, direct, "fits", just_fits), text(alice, direct, "big", too_large)])

    assert fits.status is SendStatus.STORED
    assert rejected.code is RejectCode.BODY_TOO_LARGE
    assert str(limit) in rejected.reason


def test_the_body_limit_is_read_from_settings_at_call_time(alice: User, direct: int, settings: Any) -> None:
    settings.MESSAGE_MAX_BODY_BYTES = 5

    (outcome,) = send_messages([text(alice, direct, "c", "123456")])

    assert outcome.code is RejectCode.BODY_TOO_LARGE


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"body": ""}, "empty"),
        ({"body": "   \n\t"}, "empty"),
        ({"body": "nul\x00byte"}, "NUL"),
        ({"body": "lone \ud800 surrogate"}, "Unicode"),
        ({"client_msg_id": ""}, "clientMsgId"),
        ({"client_msg_id": "x" * 65}, "clientMsgId"),
        ({"kind": "image"}, "kind"),
        ({"kind": MessageKind.SYSTEM}, "server only"),
        ({"reply_to_id": -1}, "replyToId"),
        ({"reply_to_id": 123456789}, "replyToId"),
        ({"conversation_id": 0}, "conversationId"),
        ({"conversation_id": 1 << 64}, "conversationId"),
    ],
)
def test_a_malformed_request_is_rejected_as_invalid(
    alice: User, direct: int, changes: dict[str, Any], mentions: str
) -> None:
    fields: dict[str, Any] = {
        "sender_id": alice.id,
        "conversation_id": direct,
        "client_msg_id": "c",
        "body": "hello",
        **changes,
    }

    (outcome,) = send_messages([SendRequest(**fields)])

    assert outcome.code is RejectCode.INVALID
    assert mentions in outcome.reason


def test_a_reply_to_a_message_of_the_same_conversation_is_stored(
    alice: User, bob: User, direct: int, group: int
) -> None:
    (original,) = send_messages([text(alice, direct, "q", "lunch?")])
    (elsewhere,) = send_messages([text(alice, group, "g", "hi group")])
    assert original.message is not None
    assert elsewhere.message is not None

    reply, wrong = send_messages(
        [
            text(bob, direct, "r1", "yes", reply_to_id=original.message.id),
            text(bob, direct, "r2", "no", reply_to_id=elsewhere.message.id),
        ]
    )

    assert reply.message is not None
    assert reply.message.reply_to_id == original.message.id
    assert wrong.code is RejectCode.INVALID


def test_one_rejection_does_not_stop_the_batch(alice: User, bob: User, charlie: User, direct: int) -> None:
    outcomes = send_messages(
        [
            text(alice, direct, "ok-1"),
            text(charlie, direct, "nope"),
            text(alice, direct, "empty", ""),
            text(bob, direct, "ok-2"),
        ]
    )

    assert [o.status for o in outcomes] == [
        SendStatus.STORED,
        SendStatus.REJECTED,
        SendStatus.REJECTED,
        SendStatus.STORED,
    ]
    assert [o.message.seq for o in outcomes if o.message is not None] == [1, 2]
    assert [o.request.client_msg_id for o in outcomes] == ["ok-1", "nope", "empty", "ok-2"]


def test_a_retry_after_a_rejection_is_judged_on_its_own(alice: User, direct: int) -> None:
    outcomes = send_messages([text(alice, direct, "k", ""), text(alice, direct, "k", "now with a body")])

    assert [o.status for o in outcomes] == [SendStatus.REJECTED, SendStatus.STORED]


def test_a_duplicate_of_a_refused_request_is_refused_the_same_way(charlie: User, direct: int) -> None:
    outcomes = send_messages([text(charlie, direct, "k"), text(charlie, direct, "k")])

    assert [o.code for o in outcomes] == [RejectCode.NOT_MEMBER, RejectCode.NOT_MEMBER]


def test_the_senders_own_messages_are_not_unread_for_them(alice: User, bob: User, direct: int) -> None:
    send_messages([text(alice, direct, "1"), text(alice, direct, "2"), text(bob, direct, "3")])

    reads = dict(Membership.objects.filter(conversation_id=direct).values_list("user_id", "last_read_seq"))

    assert reads == {alice.id: 2, bob.id: 3}


def test_an_empty_batch_stores_nothing(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert send_messages([]) == []


def test_a_system_message_is_stored_only_when_the_server_allows_it(alice: User, group: int) -> None:
    request = text(alice, group, "sys-1", '{"event":"x"}', kind=MessageKind.SYSTEM)

    (refused,) = send_messages([request])
    (stored,) = send_messages([request], allow_system=True)

    assert refused.code is RejectCode.INVALID
    assert stored.status is SendStatus.STORED


def test_a_system_message_to_a_missing_conversation_is_rejected(alice: User) -> None:
    request = text(alice, 424242, "sys-x", "{}", kind=MessageKind.SYSTEM)

    (outcome,) = send_messages([request], allow_system=True)

    assert outcome.code is RejectCode.INVALID
    assert not Message.objects.exists()


def _batch(senders: list[User], conversations: list[int], size: int, tag: str) -> list[SendRequest]:
    return [
        text(senders[index % len(senders)], conversations[index % len(conversations)], f"{tag}-{index}", f"m {index}")
        for index in range(size)
    ]


@pytest.mark.parametrize("size", [1, 200])
def test_a_batch_takes_a_fixed_number_of_queries(
    alice: User, bob: User, direct: int, group: int, size: int, django_assert_max_num_queries: Any
) -> None:
    requests = _batch([alice, bob], [direct, group], size, "q")

    with django_assert_max_num_queries(MAX_QUERIES_PER_BATCH):
        outcomes = send_messages(requests)

    assert all(o.status is SendStatus.STORED for o in outcomes)


def test_the_query_count_does_not_grow_with_the_batch_size(alice: User, bob: User, charlie: User, direct: int) -> None:
    other_group = create_group(alice, name="Other", member_ids=[bob.id, charlie.id]).conversation_id
    (anchor,) = send_messages([text(alice, direct, "anchor")])
    assert anchor.message is not None
    anchor_id = anchor.message.id

    def count(size: int, tag: str) -> int:
        requests = _batch([alice, bob], [direct, other_group], size, tag)
        requests.append(text(charlie, direct, f"{tag}-intruder"))  # a rejection
        requests.append(text(bob, direct, f"{tag}-reply", "re", reply_to_id=anchor_id))  # a reply
        requests.append(requests[0])  # an in-batch duplicate
        with CaptureQueriesContext(connection) as queries:
            send_messages(requests)
        return len(queries.captured_queries)

    small = count(1, "small")
    large = count(200, "large")

    assert small == large
    assert large <= MAX_QUERIES_PER_BATCH
