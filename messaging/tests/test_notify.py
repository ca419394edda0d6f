"""Pushes from the web process: group changes and recalls reach the members' devices after commit,
over real NATS and the real presence store, to a simulated access node."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from django.db import transaction
from django.test import Client

from accounts.models import User
from bench.node import SimNode
from imsite.nats_bridge import bridge
from messaging import notify
from messaging.models import Message
from messaging.services import create_group, recall_message
from messaging.tests.conftest import API, ok, send
from messaging.worker.routing import route
from realtime.presence import _shared_store
from schema.codec import MessageKind, PushMessage

pytestmark = pytest.mark.django_db(transaction=True)

NODE = "node-n"
T = TypeVar("T")


class LiveNode:
    """A SimNode on an event loop of its own thread: the test thread stays synchronous and does every
    request and query itself (one database connection), while the node keeps receiving."""

    def __init__(self, nats_url: str, node_id: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"sim-{node_id}", daemon=True)
        self._thread.start()
        self.node = self._run(SimNode(nats_url, node_id).start())

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def pushes(self, connection_id: int, count: int) -> list[PushMessage]:
        """Waits until the connection holds `count` pushes; returns them."""
        self._run(self.node.wait_for(lambda: len(self.node.frames(connection_id, PushMessage)) >= count))
        return self.node.frames(connection_id, PushMessage)

    def close(self) -> None:
        self._run(self.node.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def node(nats_url: str) -> Iterator[LiveNode]:
    live = LiveNode(nats_url, NODE)
    yield live
    live.close()


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def create_group_through_api(client: Any, name: str, *members: User) -> dict[str, Any]:
    body = {"name": name, "memberIds": [str(member.id) for member in members]}
    data: dict[str, Any] = ok(client.post(f"{API}/groups", body, format="json"), 201)
    return data


def event(push: PushMessage) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(push.message.body)
    return body


def test_creating_a_group_pushes_its_system_message_to_an_online_member(
    as_user: Any, alice: User, bob: User, go_online: Any, node: LiveNode
) -> None:
    go_online(bob, node_id=NODE, connection_id=5)

    data = create_group_through_api(as_user(alice), "Climbers", bob)

    (push,) = node.pushes(5, 1)
    assert push.message.conversation_id == int(data["id"])
    assert push.message.kind == MessageKind.SYSTEM
    assert push.message.seq == 1
    assert push.message.sender_id == alice.id
    assert event(push) == {
        "event": "group_created",
        "actorId": str(alice.id),
        "name": "Climbers",
        "userIds": [str(bob.id)],
    }


def test_adding_a_member_pushes_the_notice_to_every_member_the_newcomer_included(
    as_user: Any, alice: User, bob: User, charlie: User, go_online: Any, node: LiveNode
) -> None:
    go_online(bob, node_id=NODE, connection_id=5)
    go_online(charlie, node_id=NODE, connection_id=7)
    group = create_group(alice, name="Climbers", member_ids=[bob.id]).conversation_id

    ok(as_user(alice).post(f"{API}/groups/{group}/members", {"userIds": [str(charlie.id)]}, format="json"))

    bobs = node.pushes(5, 2)
    (charlies,) = node.pushes(7, 1)  # the group's creation was before his time
    assert [push.message.seq for push in bobs] == [1, 2]
    assert bobs[1].message == charlies.message
    assert event(charlies) == {"event": "member_added", "actorId": str(alice.id), "userIds": [str(charlie.id)]}


def test_removing_a_member_pushes_the_notice_to_the_members_and_to_the_removed_member(
    as_user: Any, alice: User, bob: User, charlie: User, go_online: Any, node: LiveNode
) -> None:
    go_online(bob, node_id=NODE, connection_id=5)
    go_online(charlie, node_id=NODE, connection_id=7)
    group = create_group(alice, name="Climbers", member_ids=[bob.id, charlie.id]).conversation_id

    ok(as_user(alice).delete(f"{API}/groups/{group}/members/{charlie.id}"))

    # Charlie is no member once it commits, but his devices must learn he is out of the group.
    removal = {"event": "member_removed", "actorId": str(alice.id), "userIds": [str(charlie.id)]}
    assert event(node.pushes(5, 2)[1]) == removal
    assert event(node.pushes(7, 2)[1]) == removal


def test_leaving_a_group_tells_the_members_and_the_leavers_other_devices(
    as_user: Any, alice: User, bob: User, go_online: Any, node: LiveNode
) -> None:
    go_online(alice, node_id=NODE, connection_id=4)
    go_online(bob, node_id=NODE, connection_id=6)
    group = create_group(alice, name="Climbers", member_ids=[bob.id]).conversation_id

    ok(as_user(bob).post(f"{API}/groups/{group}/leave"))

    left = {"event": "member_left", "actorId": str(bob.id), "userIds": [str(bob.id)]}
    assert event(node.pushes(4, 2)[1]) == left
    assert event(node.pushes(6, 2)[1]) == left


def test_the_admin_recall_action_pushes_the_message_recalled_with_an_empty_body(
    alice: User, bob: User, direct: int, superuser: User, go_online: Any, node: LiveNode
) -> None:
    go_online(bob, node_id=NODE, connection_id=5)
    (seq,) = send(alice, direct, "a secret plan")
    message = Message.objects.get(conversation_id=direct, seq=seq)
    admin = Client()
    admin.force_login(superuser)

    response = admin.post(
        "/admin/messaging/message/", {"action": "recall_selected", "_selected_action": [str(message.id)]}, follow=True
    )

    assert "Recalled 1 message(s)." in response.content.decode()
    (push,) = node.pushes(5, 1)
    assert push.message.id == message.id
    assert push.message.seq == seq
    assert push.message.recalled is True
    assert push.message.body == ""


def test_recalling_a_message_twice_pushes_once(alice: User, direct: int, monkeypatch: pytest.MonkeyPatch) -> None:
    pushed: list[int] = []
    monkeypatch.setattr(notify, "_push", lambda conversation_id, frame, also: pushed.append(conversation_id))
    (seq,) = send(alice, direct, "oops")
    message_id = Message.objects.get(conversation_id=direct, seq=seq).id

    assert recall_message(alice, message_id=message_id).changed
    assert not recall_message(alice, message_id=message_id).changed

    assert pushed == [direct]


def create_group_then_fail(alice: User, bob: User) -> None:
    with transaction.atomic():
        create_group(alice, name="Rolled back", member_ids=[bob.id])
        raise RuntimeError("the surrounding work failed")


def test_a_group_change_is_pushed_only_after_its_transaction_commits(
    alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    pushed: list[int] = []
    monkeypatch.setattr(notify, "_push", lambda conversation_id, frame, also: pushed.append(conversation_id))

    with transaction.atomic():
        group = create_group(alice, name="Kept", member_ids=[bob.id]).conversation_id
        assert pushed == []
    with pytest.raises(RuntimeError):
        create_group_then_fail(alice, bob)

    assert pushed == [group]


def test_offline_members_get_nothing_and_nothing_fails(
    as_user: Any, alice: User, charlie: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    routed: list[list[tuple[str, bytes]]] = []

    async def spy(outbox: Any, presence: Any) -> list[tuple[str, bytes]]:
        envelopes = await route(outbox, presence)
        routed.append(envelopes)
        return envelopes

    monkeypatch.setattr(notify, "route", spy)

    create_group_through_api(as_user(alice), "Quiet", charlie)

    eventually(lambda: bool(routed))
    assert routed == [[]]
    assert not [record for record in caplog.records if record.name == "messaging.notify"]


def test_a_failing_presence_lookup_is_logged_and_the_request_still_succeeds(
    as_user: Any,
    alice: User,
    bob: User,
    go_online: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    go_online(bob, node_id=NODE, connection_id=5)
    store = bridge.run(_shared_store, timeout=5)

    async def unreachable(user_ids: Any) -> Any:
        raise ConnectionError("presence store unreachable")

    monkeypatch.setattr(store, "locate", unreachable)

    data = create_group_through_api(as_user(alice), "Climbers", bob)

    eventually(lambda: any(record.name == "messaging.notify" for record in caplog.records))
    (record,) = [record for record in caplog.records if record.name == "messaging.notify"]
    assert record.levelname == "ERROR"
    assert record.getMessage() == "push to members failed"
    assert record.conversationId == data["id"]  # type: ignore[attr-defined]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ConnectionError)
