"""Pushes from the web process: a frame for every live connection of a conversation's members, after commit.

Group changes and recalls are written by the web process (REST views, the admin), not by the logic
worker, so nothing routes them; this does, the way the worker does. Once the transaction commits,
the members are read (one query, in the committing thread) and the frame is handed to the NATS
bridge's loop, which locates them (one presence lookup) and publishes one Downstream per access node
through messaging.worker.routing.route. The request never waits for that: when NATS or the presence
store is down the push is logged and dropped (the change is committed; devices see it on their next
sync or history read).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Iterable

from django.db import transaction

from imsite import nats_subjects
from imsite.nats_bridge import bridge
from messaging.selectors import member_ids_by_conversation
from messaging.services import StoredMessage
from messaging.wire import wire_message
from messaging.worker.handlers import Outbox
from messaging.worker.routing import route
from realtime.fanout import Fanout
from realtime.presence import _shared_store
from schema.codec import PushMessage, encode_frame

logger = logging.getLogger(__name__)

PUSH_TIMEOUT_SECONDS = 10.0

# Pushes under way on the bridge loop: a strong reference keeps each alive until it is done.
_in_flight: set[concurrent.futures.Future[None]] = set()


def push_to_members_on_commit(conversation_id: int, frame: bytes, *, also: Iterable[int] = ()) -> None:
    """After commit, send the encoded frame to every live connection of the conversation's members
    and of the `also` users (members who have just left or been removed hear of it too)."""
    extra = tuple(also)
    transaction.on_commit(lambda: _push(conversation_id, frame, extra))


def push_message_on_commit(message: StoredMessage, *, recalled: bool = False, also: Iterable[int] = ()) -> None:
    """push_to_members_on_commit of a PushMessage carrying the stored message (bodiless when recalled)."""
    frame = encode_frame(PushMessage(message=wire_message(message, recalled=recalled)))
    push_to_members_on_commit(message.conversation_id, frame, also=also)


def _push(conversation_id: int, frame: bytes, also: tuple[int, ...]) -> None:
    try:
        members = member_ids_by_conversation([conversation_id]).get(conversation_id, [])
        user_ids = tuple(dict.fromkeys([*members, *also]))
        if not user_ids:
            return
        future = asyncio.run_coroutine_threadsafe(_deliver(conversation_id, frame, user_ids), bridge.loop)
    except Exception:
        # The write is committed; its push is lost, not the request.
        logger.exception("push to members not sent", extra={"conversationId": str(conversation_id)})
        return
    _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)


async def _deliver(conversation_id: int, frame: bytes, user_ids: tuple[int, ...]) -> None:
    """On the bridge loop (in a copy of the request's log context): locate, group per node, publish."""
    try:
        async with asyncio.timeout(PUSH_TIMEOUT_SECONDS):
            presence = await _shared_store()
            envelopes = await route(Outbox(fanouts=[Fanout(frame, user_ids)]), presence)
            if envelopes:
                nc = await bridge.connection()
                for node_id, payload in envelopes:
                    await nc.publish(nats_subjects.access_downstream(node_id), payload)
    except Exception:
        logger.exception(
            "push to members failed", extra={"conversationId": str(conversation_id), "recipients": len(user_ids)}
        )
