"""The presence store under a burst: many registrations and lookups at once (a mass reconnect) all
go through, on the configured backend (Redis in CI's service run, the NATS KV bucket otherwise)."""

from __future__ import annotations

import asyncio
import uuid

import nats
from django.conf import settings

from realtime.presence import Location, open_presence

BURST = 300  # well over the Redis pool's 64 connections


async def test_a_burst_of_registrations_and_lookups_all_go_through(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    store = await open_presence(nc.jetstream(), ttl=30)
    node = f"burst-{uuid.uuid4().hex[:8]}"
    base = 10**15 + uuid.uuid4().int % 10**12  # user ids of our own, whatever else the store holds
    locations = [Location(base + i, node, i, session_id=i + 1, device_id=f"d{i}", platform="web") for i in range(BURST)]
    try:
        await asyncio.gather(*(store.register(location) for location in locations))
        answers = await asyncio.gather(*(store.locate([location.user_id]) for location in locations))
        assert [answer[location.user_id] for answer, location in zip(answers, locations, strict=True)] == [
            [location] for location in locations
        ]
        await asyncio.gather(*(store.unregister(location) for location in locations))
        await _eventually_gone(store, [location.user_id for location in locations])
    finally:
        await store.close()
        await nc.close()
    assert bool(settings.REDIS_URL) == (type(store).__name__ == "RedisPresence")


async def _eventually_gone(store: object, user_ids: list[int]) -> None:
    locate = store.locate  # type: ignore[attr-defined]
    for _ in range(200):  # the KV replica hears of deletes asynchronously: up to 10 s
        if not await locate(user_ids):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("unregistered users are still located")
