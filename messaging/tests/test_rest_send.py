"""POST /conversations/{id}/messages: through the logic worker (a real process), like a realtime send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from friends.services import block_user
from messaging.models import Message
from messaging.services import get_or_create_direct_conversation
from messaging.tests.conftest import API, error, ok
from messaging.tests.worker_processes import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(nats_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(nats_url, tmp_path, "rest-worker").wait_ready()
    yield process
    process.terminate()


@pytest.fixture
def direct(alice, bob, alice_and_bob_are_friends) -> int:
    return get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id


def post(client: Any, conversation_id: Any, body: Any) -> Any:
    return client.post(f"{API}/conversations/{conversation_id}/messages", body, format="json")


def test_a_message_sent_over_rest_is_stored_by_the_worker_and_returned(worker, as_user, alice, direct) -> None:
    data = ok(post(as_user(alice), direct, {"clientMsgId": "r-1", "body": "hi over REST"}), 201)
    assert data["seq"] == 1
    assert data["body"] == "hi over REST"
    assert data["senderId"] == str(alice.id)
    assert data["conversationId"] == str(direct)
    assert isinstance(data["id"], str)
    stored = Message.objects.get(id=int(data["id"]))
    assert (stored.client_msg_id, stored.seq) == ("r-1", 1)


def test_a_retried_rest_send_returns_the_first_message(worker, as_user, alice, direct) -> None:
    first = ok(post(as_user(alice), direct, {"clientMsgId": "r-2", "body": "once"}), 201)
    again = ok(post(as_user(alice), direct, {"clientMsgId": "r-2", "body": "once"}), 201)
    assert again["id"] == first["id"]
    assert again["seq"] == first["seq"]
    assert Message.objects.filter(conversation_id=direct).count() == 1


def test_rest_and_history_agree(worker, as_user, alice, bob, direct) -> None:
    for index in range(3):
        ok(post(as_user(alice), direct, {"clientMsgId": f"h-{index}", "body": f"m{index}"}), 201)
    history = ok(as_user(bob).get(f"{API}/conversations/{direct}/messages?afterSeq=1"))
    assert [(m["seq"], m["body"]) for m in history["messages"]] == [(2, "m1"), (3, "m2")]


def test_charlie_cannot_send_into_alice_and_bobs_conversation(worker, as_user, charlie, direct) -> None:
    error(post(as_user(charlie), direct, {"clientMsgId": "x", "body": "hi"}), 404, 40400)


def test_a_blocked_sender_is_refused(worker, as_user, alice, bob, direct) -> None:
    block_user(bob, user_id=alice.id)
    error(post(as_user(alice), direct, {"clientMsgId": "b", "body": "hi"}), 403)


def test_an_oversize_body_is_refused_by_field(worker, as_user, alice, direct, settings) -> None:
    body = "é" * (settings.MESSAGE_MAX_BODY_BYTES // 2 + 1)
    response = error(post(as_user(alice), direct, {"clientMsgId": "big", "body": body}), 400, 40000)
    assert response["data"]["field"] == "body"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "hi"}, "clientMsgId"),
        ({"clientMsgId": "a"}, "body"),
        ({"clientMsgId": 12, "body": "hi"}, "clientMsgId"),
        ({"clientMsgId": "a", "body": ["hi"]}, "body"),
        ({"clientMsgId": "a" * 65, "body": "hi"}, "clientMsgId"),
        ({"clientMsgId": "a", "body": "hi", "kind": "system"}, "kind"),
        ({"clientMsgId": "a", "body": "hi", "replyToId": "not-an-id"}, "replyToId"),
    ],
)
def test_bad_send_requests_name_the_field(as_user, alice, direct, payload, field) -> None:
    error(post(as_user(alice), direct, payload), 400, 40000, mentions=field)


def test_invalid_json_and_no_token_are_refused(api, as_user, alice, direct) -> None:
    response = as_user(alice).post(
        f"{API}/conversations/{direct}/messages", data="{oops", content_type="application/json"
    )
    error(response, 400, 40001)
    error(post(api, direct, {"clientMsgId": "a", "body": "hi"}), 401)


def test_without_a_worker_the_send_is_503_and_says_to_retry(as_user, alice, direct, settings) -> None:
    settings.REST_SEND_TIMEOUT_SECONDS = 1
    response = error(post(as_user(alice), direct, {"clientMsgId": "late", "body": "hi"}), 503, 50300)
    assert "clientMsgId" in response["message"]


def test_garbage_path_ids_are_404(as_user, alice) -> None:
    error(post(as_user(alice), "abc", {"clientMsgId": "a", "body": "hi"}), 404)
