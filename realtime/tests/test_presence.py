"""The presence store under a burst: many registrations and lookups at once (a mass reconnect) all
go through, on the configured backend (Redis in CI's service run, the NATS KV bucket otherwise)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from pathlib import Path
from typing import Any

import nats
from django.conf import settings

from conftest import nats_server_binary
from realtime.presence import (
    Location,
    NatsKvPresence,
    _shared_store,
    close_shared_store,
    online_user_ids,
    open_presence,
)
from tests.system.platform import free_port


def wait_for_port(port: int) -> None:
    import socket
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nats-server did not listen on port {port}")


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


async def test_the_entries_of_a_node_whose_liveness_key_is_gone_are_not_located(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    store = await open_presence(nc.jetstream(), ttl=30)
    if not settings.REDIS_URL:  # the embedded store has no liveness keys: entries expire with the bucket
        assert isinstance(store, NatsKvPresence)
        await store.close()
        await nc.close()
        return
    import redis.asyncio as aioredis

    from imsite import redis_keys

    run = uuid.uuid4().hex[:8]
    both, dead_only = (10**15 + uuid.uuid4().int % 10**12 + i for i in range(2))
    dead, live = f"dead-{run}", f"live/{run}"  # a node id may hold a "/": the field's last one counts
    entries = [Location(both, dead, 1, 11), Location(both, live, 2, 12), Location(dead_only, dead, 3, 13)]
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        for location in entries:
            await store.register(location)
        assert await store.locate([both, dead_only]) == {both: entries[:2], dead_only: entries[2:]}

        await client.delete(redis_keys.presence_node(dead))  # the node stopped refreshing and its key expired

        assert await store.locate([both, dead_only]) == {both: [entries[1]]}
    finally:
        await client.delete(*(redis_keys.presence_user(user) for user in (both, dead_only)))
        await client.aclose()
        await store.close()
        await nc.close()


async def test_changes_applied_together_take_effect_in_their_order(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    store = await open_presence(nc.jetstream(), ttl=30)
    node = f"apply-{uuid.uuid4().hex[:8]}"
    base = 10**15 + uuid.uuid4().int % 10**12
    first, second, third = (Location(base + i, node, i, session_id=i + 1, device_id=f"d{i}") for i in range(3))
    again = Location(base, node, 9, session_id=10, device_id="d9")  # the first user on another connection
    try:
        await store.apply([(True, first), (True, second), (False, first), (True, third), (True, again)])
        await store.apply([(False, third)])
        await _eventually_located(store, [base, base + 1, base + 2], {base: [again], base + 1: [second]})
    finally:
        await store.apply([(False, second), (False, again)])
        await store.close()
        await nc.close()


async def test_a_refresh_in_several_chunks_writes_back_every_entry_and_renews_every_ttl(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    store = await open_presence(nc.jetstream(), ttl=30)
    if not settings.REDIS_URL:  # the embedded store's entries live as long as the bucket's TTL says
        assert isinstance(store, NatsKvPresence)
        await store.close()
        await nc.close()
        return
    import redis.asyncio as aioredis

    from imsite import redis_keys
    from realtime.presence import REFRESH_CHUNK

    node = f"refresh-{uuid.uuid4().hex[:8]}"
    base = 10**15 + uuid.uuid4().int % 10**12
    count = REFRESH_CHUNK * 2 + 7
    locations = [Location(base + i, node, i, session_id=i + 1, device_id=f"d{i}", platform="web") for i in range(count)]
    keys = [redis_keys.presence_user(location.user_id) for location in locations]
    client = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    try:
        for location in locations[:3]:
            await store.register(location)
        await client.hdel(keys[1], locations[1].field)  # an entry lost (a flushed Redis): refresh restores it
        await client.persist(keys[2])
        await store.refresh(node, locations)
        async with client.pipeline(transaction=False) as pipe:
            for key, location in zip(keys, locations, strict=True):
                pipe.hget(key, location.field)
                pipe.ttl(key)
            replies = await pipe.execute()
        assert replies[0::2] == [location.value() for location in locations]
        assert all(0 < ttl <= 30 for ttl in replies[1::2])
        assert 0 < await client.ttl(redis_keys.presence_node(node)) <= 30
        assert await store.locate([locations[-1].user_id]) == {locations[-1].user_id: [locations[-1]]}
    finally:
        await client.delete(*keys, redis_keys.presence_node(node))
        await client.aclose()
        await store.close()
        await nc.close()


async def test_the_embedded_store_sees_its_own_registrations_at_once(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    store = NatsKvPresence(nc.jetstream(), ttl=30)  # whatever the configured backend: this is its own test
    node = f"own-{uuid.uuid4().hex[:8]}"
    base = 10**15 + uuid.uuid4().int % 10**12
    locations = [Location(base + i, node, i, session_id=i + 1, device_id=f"d{i}") for i in range(30)]
    try:
        await store.locate([base])  # the replica is synced, as in a web process
        for location in locations[:10]:
            await store.register(location)
            assert await store.locate([location.user_id]) == {location.user_id: [location]}  # not when echoed
        for location in locations[:10]:
            await store.unregister(location)
        await _eventually_gone(store, [location.user_id for location in locations[:10]])
        assert await store.locate([location.user_id for location in locations]) == {}  # no late echo brings one back

        watch = store._watch_task  # an echo that is slow to come (a loaded machine): here, none comes
        assert watch is not None
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        for location in locations[10:]:
            await store.register(location)
            assert await store.locate([location.user_id]) == {location.user_id: [location]}
    finally:
        await store.close()
        await nc.close()


async def test_a_closed_embedded_store_leaves_no_task_of_its_watch_behind(nats_url: str) -> None:
    """A watch left subscribed keeps a heartbeat task that, once the connection closes, tries to make
    its consumer again and reports the closed connection (a traceback at the end of a process)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.account_info()  # the connection's own task for answers to requests runs from here on
    before = asyncio.all_tasks()
    store = NatsKvPresence(js, ttl=30)
    try:
        await store.locate([1])  # the replica's watch runs
        assert asyncio.all_tasks() - before  # the watch, and what its subscription runs
        await store.close()
        await asyncio.sleep(0)  # a cancelled task is done at the next step of the loop
        assert {task for task in asyncio.all_tasks() - before if not task.done()} == set()
    finally:
        await store.close()
        await nc.close()


def test_the_shared_store_closes_with_its_watch_and_opens_again_when_next_used() -> None:
    from imsite.nats_bridge import bridge

    nobody = 10**15 + uuid.uuid4().int % 10**12
    assert online_user_ids([nobody]) == set()  # the web process's store, opened on first use
    first = bridge.run(_shared_store, timeout=5)
    close_shared_store()
    close_shared_store()  # nothing left to close
    if isinstance(first, NatsKvPresence):
        assert first._watch_task is not None
        assert first._watch_task.done()
    assert online_user_ids([nobody]) == set()
    assert bridge.run(_shared_store, timeout=5) is not first  # opened anew


async def _eventually_gone(store: object, user_ids: list[int]) -> None:
    await _eventually_located(store, user_ids, {})


async def _eventually_located(store: object, user_ids: list[int], expected: dict[int, list[Location]]) -> None:
    """Waits until the store locates exactly `expected`: the KV replica hears of unregistrations
    asynchronously, through its watch, which signals nothing a test could await (up to 10 s)."""
    locate = store.locate  # type: ignore[attr-defined]
    for _ in range(200):
        if await locate(user_ids) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the store locates {await locate(user_ids)}, not {expected}")


async def test_the_embedded_store_works_on_after_a_nats_server_restart(tmp_path: Path) -> None:
    """The KV bucket lives in the server's memory: a restarted server has none, and the old watch is
    dead. Registrations make the bucket anew and the replica's watch starts again on reconnect."""
    port = free_port()
    argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    nc: Any = None
    try:
        await asyncio.to_thread(wait_for_port, port)
        nc = await nats.connect(f"nats://127.0.0.1:{port}", max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        writer, reader = NatsKvPresence(nc.jetstream(), ttl=30), NatsKvPresence(nc.jetstream(), ttl=30)
        before = Location(1, "node-a", 1, session_id=1)
        await writer.register(before)
        assert (await reader.locate([1]))[1] == [before]

        server.terminate()
        server.wait(timeout=10)
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
        await asyncio.to_thread(wait_for_port, port)

        after = Location(2, "node-b", 7, session_id=2)
        for _ in range(200):  # the client reconnects, then the register goes through
            try:
                await writer.register(after)
                break
            except Exception:
                await asyncio.sleep(0.05)
        for _ in range(200):
            if (await reader.locate([2])).get(2) == [after]:
                break
            await asyncio.sleep(0.05)
        assert (await reader.locate([2])).get(2) == [after]
        assert (await reader.locate([1]))[1] == [before]  # kept until its ttl: nodes refresh it anew
        await writer.close()
        await reader.close()
    finally:
        if nc is not None:
            await nc.close()
        server.terminate()
        server.wait(timeout=10)
