"""Service rules the endpoints do not reach directly: races, recall, read state, hidden bodies."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from imsite.errors import Forbidden, InvalidInput, NotFound
from messaging import selectors
from messaging.models import Conversation, Membership, Message
from messaging.services import conversations as conversation_services
from messaging.services import (
    get_or_create_direct_conversation,
    mark_read,
    mark_read_by_id,
    recall_message,
)
from messaging.tests.conftest import send

pytestmark = pytest.mark.django_db


def test_two_people_opening_the_same_direct_conversation_at_once_share_it(
    alice: User, bob: User, direct: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation_services, "_direct_conversation_id", lambda key: None)

    result = get_or_create_direct_conversation(bob, other_user_id=alice.id)

    assert result.conversation_id == direct
    assert result.created is False
    assert Conversation.objects.count() == 1


def test_recalling_hides_the_body_but_keeps_the_seq(alice: User, bob: User, direct: int) -> None:
    send(alice, direct, "keep", "oops", "after")
    oops = Message.objects.get(body="oops")

    result = recall_message(alice, message_id=oops.id)
    again = recall_message(None, message_id=oops.id)

    assert (result.changed, again.changed) == (True, False)
    page = selectors.history(bob, direct)
    assert [(m.seq, m.body, m.recalled) for m in page.messages] == [
        (1, "keep", False),
        (2, "", True),
        (3, "after", False),
    ]


def test_a_soft_deleted_message_keeps_its_seq_without_a_body(alice: User, direct: int) -> None:
    send(alice, direct, "one", "two")
    Message.objects.filter(body="one").update(deleted=True)

    page = selectors.history(alice, direct)

    assert [(m.seq, m.body) for m in page.messages] == [(1, ""), (2, "two")]


def test_only_the_sender_or_staff_recall_a_message(alice: User, bob: User, direct: int, make_user: Any) -> None:
    send(alice, direct, "mine")
    message = Message.objects.get()
    staff = make_user("mod", is_staff=True)

    with pytest.raises(Forbidden):
        recall_message(bob, message_id=message.id)
    assert recall_message(staff, message_id=message.id).changed is True
    with pytest.raises(NotFound):
        recall_message(None, message_id=424242)


def test_mark_read_moves_forward_only_and_reports_where_it_is(alice: User, bob: User, direct: int) -> None:
    send(alice, direct, "1", "2", "3")

    forward = mark_read(bob, conversation_id=direct, seq=2)
    back = mark_read(bob, conversation_id=direct, seq=1)
    beyond = mark_read(bob, conversation_id=direct, seq=99)

    assert (forward.last_read_seq, forward.changed) == (2, True)
    assert (back.last_read_seq, back.changed) == (2, False)
    assert (beyond.last_read_seq, beyond.changed) == (3, True)
    assert Membership.objects.get(conversation_id=direct, user_id=bob.id).last_read_seq == 3


def test_mark_read_refuses_non_members_and_negative_seqs(alice: User, charlie: User, direct: int) -> None:
    with pytest.raises(NotFound):
        mark_read(charlie, conversation_id=direct, seq=1)
    with pytest.raises(InvalidInput):
        mark_read(alice, conversation_id=direct, seq=-1)


def test_history_refuses_both_cursors_and_bad_limits(alice: User, direct: int) -> None:
    with pytest.raises(InvalidInput):
        selectors.history(alice, direct, before_seq=3, after_seq=1)
    with pytest.raises(InvalidInput):
        selectors.history(alice, direct, limit=0)
    with pytest.raises(InvalidInput):
        selectors.history(alice, direct, limit=201)


def test_history_takes_two_queries(alice: User, direct: int, django_assert_num_queries: Any) -> None:
    send(alice, direct, *[str(i) for i in range(30)])

    with django_assert_num_queries(2):
        page = selectors.history(alice, direct, limit=10)

    assert [m.seq for m in page.messages] == list(range(21, 31))


def test_member_ids_by_conversation_lists_live_members_in_one_query(
    alice: User, bob: User, charlie: User, direct: int, group: int, django_assert_num_queries: Any
) -> None:
    conversation_services.leave_group(charlie, conversation_id=group)

    with django_assert_num_queries(1):
        members = selectors.member_ids_by_conversation({direct, group, 424242})

    assert {key: sorted(value) for key, value in members.items()} == {
        direct: sorted([alice.id, bob.id]),
        group: sorted([alice.id, bob.id]),
    }


def test_messages_after_pages_forward_for_members_only(alice: User, bob: User, charlie: User, direct: int) -> None:
    send(alice, direct, "1", "2", "3", "4", "5")
    recall_message(alice, message_id=Message.objects.get(body="4").id)

    page = selectors.messages_after(bob.id, conversation_id=direct, after_seq=1, limit=3)
    rest = selectors.messages_after(bob.id, conversation_id=direct, after_seq=4, limit=3)

    assert page is not None
    assert rest is not None
    assert ([m.seq for m in page[0]], page[1]) == ([2, 3, 4], True)
    assert page[0][2].body == ""
    assert ([m.body for m in rest[0]], rest[1]) == (["5"], False)
    assert selectors.messages_after(charlie.id, conversation_id=direct, after_seq=0) is None


def test_many_sync_cursors_are_answered_in_their_order_each_from_its_own_seq(
    alice: User, bob: User, charlie: User, direct: int, group: int, django_assert_max_num_queries: Any
) -> None:
    send(alice, direct, "d1", "d2", "d3")
    send(alice, group, "g1", "g2", "g3", "g4")
    seq = {m.body: m.seq for m in Message.objects.all()}
    cursors = [
        selectors.SyncCursor(bob.id, group, seq["g2"]),
        selectors.SyncCursor(charlie.id, direct, 0),  # not a member
        selectors.SyncCursor(bob.id, direct, seq["d1"]),
        selectors.SyncCursor(charlie.id, group, seq["g1"] - 1),  # the same conversation from another seq
        selectors.SyncCursor(alice.id, group, seq["g2"]),  # the same page as bob's
        selectors.SyncCursor(bob.id, group, seq["g4"]),  # nothing new
    ]

    with django_assert_max_num_queries(4):  # membership, then a round per seq the group is asked from
        pages = selectors.messages_after_many(cursors, limit=2)

    summary = [None if page is None else ([m.body for m in page[0]], page[1]) for page in pages]
    assert summary == [
        (["g3", "g4"], False),
        None,
        (["d2", "d3"], False),
        (["g1", "g2"], True),
        (["g3", "g4"], False),
        ([], False),
    ]
    assert selectors.messages_after_many([]) == []


def test_a_deleted_conversation_is_synced_by_no_one(alice: User, bob: User, group: int) -> None:
    send(alice, group, "g1")
    Conversation.objects.filter(id=group).update(deleted=True)

    assert selectors.messages_after_many([selectors.SyncCursor(bob.id, group, 0)]) == [None]


def test_mark_read_by_id_serves_callers_without_a_user_object(alice: User, bob: User, direct: int) -> None:
    send(alice, direct, "1", "2")

    state = mark_read_by_id(bob.id, conversation_id=direct, seq=2)

    assert (state.user_id, state.last_read_seq, state.changed) == (bob.id, 2, True)
