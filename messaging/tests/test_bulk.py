"""The send path's bulk statements write the columns the model has."""

from __future__ import annotations

from typing import Any

import pytest

from messaging.models import Message
from messaging.services.bulk import MESSAGE_COLUMNS


def test_bulk_message_columns_are_the_models_concrete_columns_in_order() -> None:
    assert tuple(field.column for field in Message._meta.concrete_fields) == MESSAGE_COLUMNS


@pytest.mark.django_db
def test_bodies_with_tabs_newlines_backslashes_and_unicode_are_stored_exactly(
    alice: Any, bob: Any, befriend: Any
) -> None:
    from messaging.services import SendRequest, get_or_create_direct_conversation, send_messages

    befriend(alice, bob)
    conversation = get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id
    bodies = ["tab\there", "line\nbreak\r\nwindows", "back\\slash \\N \\t", "emoji 😀 and 中文", "\\", "  spaced  "]
    outcomes = send_messages(
        [SendRequest(alice.id, conversation, f"weird-{i}\t\\", body) for i, body in enumerate(bodies)]
    )
    assert all(outcome.message is not None for outcome in outcomes)
    stored = dict(Message.objects.filter(conversation_id=conversation).values_list("client_msg_id", "body"))
    assert stored == {f"weird-{i}\t\\": body for i, body in enumerate(bodies)}
