"""The logic worker as a real process: frames in over real NATS, a real database, answers and pushes
out to (simulated) access nodes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from bench.node import SimNode, upstream_bytes
from friends.services import block_user
from messaging.models import Message
from messaging.services import create_group, get_or_create_direct_conversation
from messaging.tests.worker_processes import WorkerProcess
from schema.codec import (
    Cursor,
    ErrorFrame,
    MessageAck,
    PushMessage,
    SendError,
    SendErrorCode,
    SendMessage,
    Sync,
    SyncResult,
    encode_frame,
)

pytestmark = pytest.mark.django_db(transaction=True)

NODE = "node-a"


@pytest.fixture
def start_worker(nats_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def _start(*extra: str) -> WorkerProcess:
        worker = WorkerProcess(nats_url, tmp_path, f"worker-{len(started)}", *extra).wait_ready()
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        worker.terminate()


def run(scenario: Any) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 120))


def acks_reach(node: SimNode, connection_id: int, count: int) -> bool:
    return len(node.frames(connection_id, MessageAck)) == count


def all_acked(node: SimNode, client_msg_ids: set[str]) -> bool:
    return client_msg_ids <= {ack.client_msg_id for ack in node.frames(1, MessageAck)}


def send_frame(client_msg_id: str, conversation_id: int, body: str = "hello") -> SendMessage:
    return SendMessage(client_msg_id=client_msg_id, conversation_id=conversation_id, body=body)


@pytest.fixture
def direct(alice: User, bob: User, alice_and_bob_are_friends: None) -> int:
    return get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id


def test_a_retried_send_is_stored_once_and_acked_with_the_first_message(
    start_worker, nats_url, alice, bob, direct, go_online
) -> None:
    start_worker()
    go_online(bob, node_id=NODE, connection_id=20)

    async def scenario() -> tuple[list[MessageAck], list[PushMessage]]:
        node = await SimNode(nats_url, NODE).start()
        await node.send(send_frame("m-1", direct), user_id=alice.id, connection_id=10)
        await node.wait_for(lambda: len(node.frames(10, MessageAck)) == 1)
        await node.send(send_frame("m-1", direct), user_id=alice.id, connection_id=10)
        await node.wait_for(lambda: len(node.frames(10, MessageAck)) == 2)
        await node.wait_for(lambda: len(node.frames(20, PushMessage)) == 2)
        await node.close()
        return node.frames(10, MessageAck), node.frames(20, PushMessage)

    acks, pushes = run(scenario())
    assert acks[0] == acks[1]
    assert acks[0].seq == 1
    assert Message.objects.filter(conversation_id=direct, sender_id=alice.id).count() == 1
    # Bob's device gets the push; a repeat push carries the same message (devices drop it by seq).
    assert {push.message.id for push in pushes} == {acks[0].message_id}
    assert pushes[0].message.body == "hello"


def test_the_sends_of_one_envelope_are_stored_in_the_order_they_were_sent(
    start_worker, nats_url, alice, bob, direct
) -> None:
    """An access node sends what queued behind a connection's envelope as one envelope (more_frames)."""
    start_worker()
    frames = [send_frame(f"grouped-{i}", direct, body=f"body {i}") for i in range(5)]

    async def scenario() -> list[MessageAck]:
        node = await SimNode(nats_url, NODE).start()
        payload = upstream_bytes(frames[0], user_id=alice.id, node_id=NODE, connection_id=10, more=tuple(frames[1:]))
        await node.publish_raw(payload)
        await node.wait_for(lambda: len(node.frames(10, MessageAck)) == 5)
        await node.publish_raw(payload)  # the same envelope again, as after a timeout: nothing new
        await node.wait_for(lambda: len(node.frames(10, MessageAck)) == 10)
        await node.close()
        return node.frames(10, MessageAck)

    acks = run(scenario())
    by_id = {ack.client_msg_id: ack.seq for ack in acks[:5]}
    assert [by_id[f"grouped-{i}"] for i in range(5)] == [1, 2, 3, 4, 5]
    assert {(a.client_msg_id, a.seq) for a in acks[5:]} == set(by_id.items())
    stored = Message.objects.filter(conversation_id=direct).order_by("seq").values_list("body", flat=True)
    assert list(stored) == [f"body {i}" for i in range(5)]


def test_seqs_are_gap_free_and_in_sender_order_with_four_senders_and_two_workers(
    start_worker, nats_url, make_user, alice
) -> None:
    start_worker()
    start_worker()
    others = [make_user(f"sender{i}") for i in range(3)]
    senders = [alice, *others]
    group = create_group(alice, name="busy", member_ids=[u.id for u in others]).conversation_id
    per_sender = 40

    async def sender(node: SimNode, user: User, connection_id: int) -> list[int]:
        seqs = []
        for index in range(per_sender):
            # Like an access node: one send of a connection in flight at a time.
            await node.send(
                send_frame(f"{user.username}-{index}", group, f"{index}"), user_id=user.id, connection_id=connection_id
            )
            await node.wait_for(partial(acks_reach, node, connection_id, index + 1))
            seqs.append(node.frames(connection_id, MessageAck)[-1].seq)
        return seqs

    async def scenario() -> list[list[int]]:
        node = await SimNode(nats_url, NODE).start()
        results = await asyncio.gather(*(sender(node, user, 100 + i) for i, user in enumerate(senders)))
        await node.close()
        return list(results)

    acked = run(scenario())
    for seqs in acked:
        assert seqs == sorted(seqs)
    rows = list(
        Message.objects.filter(conversation_id=group).order_by("seq").values_list("seq", "sender_id", "body", "kind")
    )
    assert [seq for seq, _, _, _ in rows] == list(range(1, len(rows) + 1))  # gap-free, from 1
    assert len(rows) == 1 + 4 * per_sender  # the group_created notice and every message
    for user in senders:
        bodies = [int(body) for _, sender_id, body, kind in rows if sender_id == user.id and kind == "text"]
        assert bodies == list(range(per_sender))  # each sender's messages in the order sent


def test_non_member_blocked_sender_and_oversize_body_get_send_errors(
    start_worker, nats_url, alice, bob, charlie, direct, settings
) -> None:
    start_worker()
    block_user(bob, user_id=alice.id)
    big = "x" * (settings.MESSAGE_MAX_BODY_BYTES + 1)

    async def scenario() -> dict[int, list[Any]]:
        node = await SimNode(nats_url, NODE).start()
        await node.send(send_frame("c-1", direct), user_id=charlie.id, connection_id=1)
        await node.send(send_frame("a-1", direct), user_id=alice.id, connection_id=2)
        await node.send(send_frame("b-1", direct, big), user_id=bob.id, connection_id=3)
        await node.wait_for(lambda: all(node.frames(c) for c in (1, 2, 3)))
        await node.close()
        return node.received

    frames = run(scenario())
    assert [(type(f), f.client_msg_id, f.code) for f in frames[1]] == [(SendError, "c-1", SendErrorCode.NOT_MEMBER)]
    assert [(type(f), f.code) for f in frames[2]] == [(SendError, SendErrorCode.BLOCKED)]
    assert [(type(f), f.code) for f in frames[3]] == [(SendError, SendErrorCode.BODY_TOO_LARGE)]
    assert not Message.objects.filter(conversation_id=direct).exists()


def test_sync_returns_exactly_the_missing_messages(start_worker, nats_url, alice, bob, direct) -> None:
    start_worker()

    async def scenario() -> list[Any]:
        node = await SimNode(nats_url, NODE).start()
        for index in range(5):
            await node.send(send_frame(f"s-{index}", direct, f"body {index}"), user_id=alice.id, connection_id=1)
        await node.wait_for(lambda: len(node.frames(1, MessageAck)) == 5)
        await node.send(Sync(cursors=(Cursor(conversation_id=direct, after_seq=2),)), user_id=bob.id, connection_id=2)
        await node.send(Sync(cursors=(Cursor(conversation_id=direct, after_seq=5),)), user_id=bob.id, connection_id=3)
        await node.wait_for(lambda: bool(node.frames(2)) and bool(node.frames(3)))
        await node.close()
        return node.frames(2) + node.frames(3)

    missing, nothing = run(scenario())
    assert isinstance(missing, SyncResult)
    assert [(m.seq, m.body) for m in missing.messages] == [(3, "body 2"), (4, "body 3"), (5, "body 4")]
    assert missing.has_more is False
    assert isinstance(nothing, SyncResult)
    assert nothing.messages == ()


def test_a_worker_killed_mid_burst_loses_no_acked_message_and_stores_none_twice(
    start_worker, nats_url, alice, direct
) -> None:
    doomed = start_worker()
    start_worker()
    total = 300

    async def scenario() -> dict[str, MessageAck]:
        node = await SimNode(nats_url, NODE).start()
        acked: dict[str, MessageAck] = {}
        killed = False
        pending = [f"k-{index}" for index in range(total)]
        while pending:
            # Send what is unacknowledged (a client resends after a timeout), 25 at a time.
            for client_msg_id in pending[:25]:
                await node.send(send_frame(client_msg_id, direct), user_id=alice.id, connection_id=1)
            await node.flush()
            window = set(pending[:25])
            with contextlib.suppress(TimeoutError):
                await node.wait_for(partial(all_acked, node, window), timeout=1.0)
            for ack in node.frames(1, MessageAck):
                first = acked.setdefault(ack.client_msg_id, ack)
                assert (first.message_id, first.seq) == (ack.message_id, ack.seq)
            pending = [c for c in pending if c not in acked]
            if not killed and len(acked) >= total // 3:
                doomed.kill()
                killed = True
        await node.close()
        return acked

    acked = run(scenario())
    assert not doomed.alive
    rows = list(Message.objects.filter(conversation_id=direct).values_list("client_msg_id", "id", "seq"))
    assert len(rows) == total == len({cmid for cmid, _, _ in rows})  # every message once
    stored = {cmid: (message_id, seq) for cmid, message_id, seq in rows}
    assert {cmid: (a.message_id, a.seq) for cmid, a in acked.items()} == stored
    assert sorted(seq for _, _, seq in rows) == list(range(1, total + 1))


def test_garbage_and_truncated_frames_neither_crash_nor_stall_the_worker(start_worker, nats_url, alice, direct) -> None:
    worker = start_worker()
    rng = random.Random(7)
    valid = upstream_bytes(send_frame("g-ok", direct), user_id=alice.id, node_id=NODE, connection_id=1)

    async def scenario() -> list[Any]:
        node = await SimNode(nats_url, NODE).start()
        for _ in range(50):
            await node.publish_raw(os.urandom(rng.randrange(0, 300)))
        for cut in range(0, len(valid), 3):
            await node.publish_raw(valid[:cut])
        garbage_frame = upstream_bytes(b"\x00" * 40 + os.urandom(30), user_id=alice.id, node_id=NODE, connection_id=2)
        truncated_frame = upstream_bytes(
            encode_frame(send_frame("g-cut", direct))[:-9], user_id=alice.id, node_id=NODE, connection_id=3
        )
        await node.publish_raw(garbage_frame)
        await node.publish_raw(truncated_frame)
        await node.publish_raw(valid)
        await node.wait_for(lambda: bool(node.frames(1, MessageAck)) and bool(node.frames(2)) and bool(node.frames(3)))
        await node.close()
        return node.frames(1) + node.frames(2) + node.frames(3)

    ack, garbage_answer, truncated_answer = run(scenario())
    assert isinstance(ack, MessageAck)
    assert ack.client_msg_id == "g-ok"
    assert isinstance(garbage_answer, ErrorFrame)
    assert isinstance(truncated_answer, ErrorFrame)
    assert worker.alive
    assert "undecodable upstream envelope dropped" in worker.log()


def test_sigterm_finishes_the_batch_in_hand_and_exits_cleanly(start_worker, nats_url, alice, direct) -> None:
    worker = start_worker()

    async def scenario() -> Any:
        node = await SimNode(nats_url, NODE).start()
        for index in range(50):
            await node.send(send_frame(f"t-{index}", direct), user_id=alice.id, connection_id=1)
        await node.wait_for(lambda: len(node.frames(1, MessageAck)) >= 1)
        code = await asyncio.to_thread(worker.terminate)
        await node.close()
        return code

    assert run(scenario()) == 0
    assert "logic worker stopped" in worker.log()
    # Whatever it stored it acknowledged first-hand or will on retry: no message is stored twice.
    rows = list(Message.objects.filter(conversation_id=direct).values_list("seq", flat=True))
    assert sorted(rows) == list(range(1, len(rows) + 1))
