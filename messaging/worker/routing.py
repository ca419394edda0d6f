"""Turns a batch's Outbox into Downstream envelopes: one (or a few, when large) per access node,
with the recipients of user-addressed frames found by one presence query for the whole batch."""

from __future__ import annotations

from messaging.worker.handlers import Outbox
from realtime.fanout import route_fanouts
from realtime.presence import PresenceStore


async def route(outbox: Outbox, presence: PresenceStore) -> list[tuple[str, bytes]]:
    return await route_fanouts(outbox.fanouts, presence, direct=outbox.direct)
