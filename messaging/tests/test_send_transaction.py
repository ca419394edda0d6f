"""Send batches outside any atomic block (the logic worker's case): on PostgreSQL their BEGIN rides
with the reads and their COMMIT with the writes (bulk.own_transaction). These tests commit for real
(transaction=True), so what they check is what another connection would see."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.models import User
from messaging.models import Conversation, Membership, Message
from messaging.services import SendStatus, bulk, send_messages, sending
from messaging.tests.conftest import text

pytestmark = pytest.mark.django_db(transaction=True)

# Both ways of inserting: in the round trip of the UPDATEs, and by COPY.
SIZES = [1, bulk.SMALL_INSERT_ROWS, bulk.SMALL_INSERT_ROWS + 1]


def _idle() -> bool:
    """The connection holds no open transaction (none left behind for the next batch to inherit)."""
    if connection.vendor != "postgresql":
        return True
    from psycopg.pq import TransactionStatus

    return bool(connection.connection.info.transaction_status == TransactionStatus.IDLE)


@pytest.mark.parametrize("size", SIZES)
def test_a_batch_stores_every_message_with_gap_free_seqs_and_commits(
    alice: User, bob: User, direct: int, size: int
) -> None:
    assert not connection.in_atomic_block
    outcomes = send_messages([text(alice, direct, f"m-{i}", f"body {i}") for i in range(size)])

    assert [o.status for o in outcomes] == [SendStatus.STORED] * size
    assert [o.message.seq for o in outcomes if o.message] == list(range(1, size + 1))
    assert _idle()
    stored = list(Message.objects.filter(conversation_id=direct).order_by("seq").values_list("seq", "body"))
    assert stored == [(i + 1, f"body {i}") for i in range(size)]
    conversation = Conversation.objects.get(id=direct)
    assert conversation.last_seq == size
    assert conversation.last_message_id == outcomes[-1].message.id  # type: ignore[union-attr]
    assert Membership.objects.get(conversation_id=direct, user_id=alice.id).last_read_seq == size
    assert Membership.objects.get(conversation_id=direct, user_id=bob.id).last_read_seq == 0


@pytest.mark.parametrize("size", [1, bulk.SMALL_INSERT_ROWS + 1])
def test_bodies_that_need_escaping_are_stored_exactly_either_way(alice: User, direct: int, size: int) -> None:
    weird = ['quote " here', "back\\slash \\N", "tab\tand\nnewline", "{braces,commas}", "NULL", "emoji 😀 中文"]
    bodies = [weird[i % len(weird)] for i in range(max(size, len(weird)))]
    cmids = [f'k"{i}\\{{' for i in range(len(bodies))]

    outcomes = send_messages([text(alice, direct, cmid, body) for cmid, body in zip(cmids, bodies, strict=True)])

    assert all(o.status is SendStatus.STORED for o in outcomes)
    stored = dict(Message.objects.filter(conversation_id=direct).values_list("client_msg_id", "body"))
    assert stored == dict(zip(cmids, bodies, strict=True))


def test_a_batch_that_stores_nothing_leaves_no_transaction_open(alice: User, charlie: User, direct: int) -> None:
    (first,) = send_messages([text(alice, direct, "once")])

    again = send_messages([text(alice, direct, "once"), text(charlie, direct, "intruder")])

    assert [o.status for o in again] == [SendStatus.DUPLICATE, SendStatus.REJECTED]
    assert again[0].message == first.message
    assert _idle()
    assert Message.objects.filter(conversation_id=direct).count() == 1


@pytest.mark.parametrize("in_callers_transaction", [False, True])
def test_a_send_racing_a_concurrent_send_of_the_same_message_rolls_back_and_answers_duplicate(
    alice: User, direct: int, monkeypatch: pytest.MonkeyPatch, in_callers_transaction: bool
) -> None:
    (first,) = send_messages([text(alice, direct, "raced")])
    real = sending._lock_and_read
    calls: list[int] = []

    def blind_first_time(conversations: set[int], keys: set[tuple[int, str]], **options: bool) -> Any:
        calls.append(1)
        reads = real(conversations, keys, **options)
        return reads._replace(stored=[]) if len(calls) == 1 else reads

    monkeypatch.setattr(sending, "_lock_and_read", blind_first_time)
    with transaction.atomic() if in_callers_transaction else contextlib.nullcontext():
        (again,) = send_messages([text(alice, direct, "raced")])

    assert len(calls) == 2, "the unique constraint stopped the insert and the batch ran again"
    assert again.status is SendStatus.DUPLICATE
    assert again.message == first.message
    assert _idle()
    assert Conversation.objects.get(id=direct).last_seq == 1


@pytest.mark.parametrize("size", [1, bulk.SMALL_INSERT_ROWS + 1])
def test_a_failing_write_rolls_the_whole_batch_back_and_the_next_batch_is_stored(
    alice: User, direct: int, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_messages([text(alice, direct, "before")])
    # A small batch's INSERT runs after the UPDATEs in their round trip: an id array PostgreSQL cannot
    # read fails it there. A larger batch's COPY (and SQLite's insert) fails on a missing table.
    real_params = bulk._insert_params

    def unreadable_ids(rows: Any, params: dict[str, object]) -> None:
        real_params(rows, params)
        params["n_id"] = "{not-a-number}"

    monkeypatch.setattr(bulk, "_insert_params", unreadable_ids)
    broken = "SELECT * FROM no_such_table"
    monkeypatch.setattr(bulk, "insert_new_messages", lambda rows, now: connection.cursor().execute(broken))

    with pytest.raises(DatabaseError):
        send_messages([text(alice, direct, f"lost-{i}") for i in range(size)])

    assert _idle()
    assert Conversation.objects.get(id=direct).last_seq == 1, "the UPDATE of last_seq was rolled back"
    assert Membership.objects.get(conversation_id=direct, user_id=alice.id).last_read_seq == 1
    monkeypatch.undo()
    (after,) = send_messages([text(alice, direct, "after")])
    assert after.message is not None
    assert after.message.seq == 2
    stored = Message.objects.filter(conversation_id=direct).order_by("seq").values_list("client_msg_id", flat=True)
    assert list(stored) == ["before", "after"]


def test_a_database_session_that_lost_the_prepared_statements_gets_them_again(alice: User, direct: int) -> None:
    send_messages([text(alice, direct, "first")])
    if connection.vendor != "postgresql":  # SQLite's path prepares nothing
        assert not bulk._prepared_on
        return
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's DISCARD ALL between clients does

    (again,) = send_messages([text(alice, direct, "second")])

    assert again.message is not None
    assert again.message.seq == 2
    assert _idle()


def test_inside_a_callers_atomic_block_the_batch_is_part_of_the_callers_transaction(alice: User, direct: int) -> None:
    from django.db import transaction

    outcomes: list[SendStatus] = []
    with transaction.atomic():
        (outcome,) = send_messages([text(alice, direct, "inside")])
        outcomes.append(outcome.status)
        transaction.set_rollback(True)  # the caller gives up: the send goes with it

    assert outcomes == [SendStatus.STORED]
    assert not Message.objects.filter(conversation_id=direct).exists()
    assert Conversation.objects.get(id=direct).last_seq == 0
    assert _idle()
