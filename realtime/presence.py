"""Presence: where each user's live connections are (user -> device session -> access node).

Two backends behind one interface: Redis (hashes with a TTL kept alive by heartbeats, plus a
liveness key per node so a dead node's entries are ignored at once and expire soon after) and,
without Redis, a NATS JetStream key-value bucket whose readers keep a local replica by watching
it. Lookups take many users at once: the logic worker routes a whole batch with one query.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from imsite import redis_keys

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Location:
    user_id: int
    node_id: str
    connection_id: int
    session_id: int
    device_id: str = ""
    platform: str = ""

    @property
    def field(self) -> str:
        return f"{self.node_id}/{self.connection_id}"

    def value(self) -> str:
        return f"{self.session_id}|{self.device_id}|{self.platform}"

    @classmethod
    def parse(cls, user_id: int, field: str, value: str) -> Location | None:
        """None for an entry that is not ours (written by something else): skipped, never fatal."""
        try:
            node_id, connection = field.rsplit("/", 1)
            session, device_id, platform = value.split("|", 2)
            return cls(user_id, node_id, int(connection), int(session), device_id, platform)
        except ValueError:
            return None


class PresenceStore(Protocol):
    async def register(self, location: Location) -> None: ...
    async def unregister(self, location: Location) -> None: ...
    async def apply(self, changes: list[tuple[bool, Location]]) -> None:
        """Registrations (True) and unregistrations (False), done in the order given."""
        ...

    async def refresh(self, node_id: str, locations: Iterable[Location]) -> None: ...
    async def locate(self, user_ids: Iterable[int]) -> dict[int, list[Location]]: ...
    async def close(self) -> None: ...


# HGETALL of every key, as one JSON array of [field, value, field, value, ...] arrays (an empty
# hash encodes as {} in cjson, read as empty too), leaving out the entries of nodes whose liveness
# key (ARGV[1] .. node id) is gone: one round trip for routing, not a second one for the nodes.
# A field is "<node>/<connection>" (Location.field): the node is everything before the last "/".
_LOCATE = """
local prefix = ARGV[1]
local alive = {}
local rows = {}
for i, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  local kept = {}
  for j = 1, #flat - 1, 2 do
    local node = string.match(flat[j], '^(.*)/[^/]*$')
    if node then
      local up = alive[node]
      if up == nil then
        up = redis.call('EXISTS', prefix .. node) == 1
        alive[node] = up
      end
      if up then
        kept[#kept + 1] = flat[j]
        kept[#kept + 1] = flat[j + 1]
      end
    end
  end
  rows[i] = kept
end
return cjson.encode(rows)
"""


# Every entry a node holds, written again with its key's TTL renewed: KEYS are the users' hashes,
# ARGV the ttl and then a field and value per key. One command and one reply per chunk, where a
# pipeline of HSET and EXPIRE made two of each per entry: for 20,000 sessions, 40,000 replies parsed in
# Python every refresh, a stall of the access node's loop long enough to show in connect latency.
_REFRESH = """
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, ARGV[2 * i], ARGV[2 * i + 1])
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""
REFRESH_CHUNK = 1000  # entries per script call: the loop runs other work between chunks


class RedisPresence:
    """Redis hashes; `ttl` seconds without a refresh and an entry (or a node) is gone."""

    def __init__(self, url: str, *, ttl: float = 90.0) -> None:
        import redis.asyncio as aioredis

        # A burst (a thousand reconnects) waits for a free connection instead of failing: the plain
        # pool raises MaxConnectionsError past its size.
        pool = aioredis.BlockingConnectionPool.from_url(url, decode_responses=True, max_connections=64, timeout=30)
        self._redis: Any = aioredis.Redis(connection_pool=pool)
        self.ttl = int(max(ttl, 1))
        self._locate: Any = self._redis.register_script(_LOCATE)
        self._refresh: Any = self._redis.register_script(_REFRESH)

    async def register(self, location: Location) -> None:
        key = redis_keys.presence_user(location.user_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, location.field, location.value())
            pipe.expire(key, self.ttl)
            pipe.set(redis_keys.presence_node(location.node_id), "1", ex=self.ttl)
            await pipe.execute()

    async def unregister(self, location: Location) -> None:
        await self._redis.hdel(redis_keys.presence_user(location.user_id), location.field)

    async def apply(self, changes: list[tuple[bool, Location]]) -> None:
        """One pipeline (one round trip, commands in order) for every change: a thousand sessions
        opening at once were a thousand round trips one after another, each holding back an AuthResult."""
        nodes: set[str] = set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for register, location in changes:
                key = redis_keys.presence_user(location.user_id)
                if register:
                    pipe.hset(key, location.field, location.value())
                    pipe.expire(key, self.ttl)
                    nodes.add(location.node_id)
                else:
                    pipe.hdel(key, location.field)
            for node_id in nodes:
                pipe.set(redis_keys.presence_node(node_id), "1", ex=self.ttl)
            await pipe.execute()

    async def refresh(self, node_id: str, locations: Iterable[Location]) -> None:
        """A node's heartbeat round: its liveness key, then every entry it holds, in chunks."""
        await self._redis.set(redis_keys.presence_node(node_id), "1", ex=self.ttl)
        chunk: list[Location] = []
        for location in locations:
            chunk.append(location)
            if len(chunk) == REFRESH_CHUNK:
                await self._refresh_chunk(chunk)
                chunk = []
        if chunk:
            await self._refresh_chunk(chunk)

    async def _refresh_chunk(self, locations: list[Location]) -> None:
        keys = [redis_keys.presence_user(location.user_id) for location in locations]
        args: list[object] = [self.ttl]
        for location in locations:
            args += (location.field, location.value())
        await self._refresh(keys=keys, args=args)

    async def locate(self, user_ids: Iterable[int]) -> dict[int, list[Location]]:
        users = list(dict.fromkeys(user_ids))
        if not users:
            return {}
        # One script call reads every user's hash, leaves out dead nodes' entries and answers one
        # JSON document: a pipeline of an HGETALL per user spent most of the logic worker's routing
        # time in redis-py's per-command packing and reply parsing (W5: 400 users a batch), and a
        # second call for the nodes' liveness keys cost the worker 6% of its time at W1's small batches.
        keys = [redis_keys.presence_user(u) for u in users]
        rows: list[list[str]] = json.loads(await self._locate(keys=keys, args=[redis_keys.PRESENCE_NODE_PREFIX]))
        found: dict[int, list[Location]] = {}
        for user_id, row in zip(users, rows, strict=True):
            if not row:
                continue
            locations = [
                loc
                for i in range(0, len(row) - 1, 2)
                if (loc := Location.parse(user_id, row[i], row[i + 1])) is not None
            ]
            if locations:
                found[user_id] = locations
        return found

    async def close(self) -> None:
        await self._redis.aclose(close_connection_pool=True)  # the pool is ours


WATCH_CHECK_SECONDS = 1.0


class NatsKvPresence:
    """The embedded backend: a JetStream KV bucket; each reader holds a replica fed by a watch."""

    def __init__(self, js: Any, *, ttl: float = 90.0) -> None:
        self._js = js
        self.ttl = max(ttl, 1.0)
        self._kv: Any = None
        self._replica: dict[str, tuple[Location, float]] = {}
        self._by_user: dict[int, set[str]] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self._closing = False
        self._synced = asyncio.Event()

    async def _bucket(self) -> Any:
        if self._kv is None:
            from nats.js.api import KeyValueConfig, StorageType

            try:
                self._kv = await self._js.key_value(redis_keys.PRESENCE_KV_BUCKET)
            except Exception:
                config = KeyValueConfig(
                    bucket=redis_keys.PRESENCE_KV_BUCKET, history=1, ttl=self.ttl, storage=StorageType.MEMORY
                )
                self._kv = await self._js.create_key_value(config=config)
        return self._kv

    @staticmethod
    def _key(location: Location) -> str:
        return f"{location.user_id}.{location.node_id}.{location.connection_id}"

    async def _on_bucket(self, operation: Callable[[Any], Awaitable[object]]) -> None:
        """Runs an operation on the bucket; when it fails (a nats-server restarted without the bucket
        in memory), the bucket is looked up, or made, anew and the operation tried once more."""
        try:
            await operation(await self._bucket())
        except Exception:
            self._kv = None
            await operation(await self._bucket())

    async def register(self, location: Location) -> None:
        key, value = self._key(location), location.value().encode()
        await self._on_bucket(lambda kv: kv.put(key, value))
        # This process sees its own registration at once, not when the watch echoes it back: a user's
        # friends list right after they came online showed them offline. (The echo agrees with it.
        # An unregistration waits for its echo as before: removed here at once, it would come back
        # for a moment with the late echo of its registration.)
        self._apply(key, value, None)

    async def unregister(self, location: Location) -> None:
        await self._on_bucket(lambda kv: kv.delete(self._key(location)))

    async def apply(self, changes: list[tuple[bool, Location]]) -> None:
        for register, location in changes:  # a KV bucket has no pipeline: each change is a request
            await (self.register(location) if register else self.unregister(location))

    async def refresh(self, node_id: str, locations: Iterable[Location]) -> None:
        entries = [(self._key(loc), loc.value().encode()) for loc in locations]
        await self._on_bucket(lambda kv: asyncio.gather(*(kv.put(key, value) for key, value in entries)))

    async def _watch(self) -> None:
        """Feeds the replica for as long as the store lives. The watch starts again after the NATS
        connection reconnects (a restarted server may have lost the bucket, and the old consumer with
        it) or when it breaks; the replica keeps what it had meanwhile, and entries nobody refreshes
        go stale after the ttl as usual."""
        import nats.errors

        while not self._closing:
            watcher: Any = None
            try:
                reconnects = self._reconnects()
                kv = await self._bucket()
                watcher = await kv.watchall()
                while not self._closing and self._reconnects() == reconnects:
                    try:
                        entry = await watcher.updates(timeout=WATCH_CHECK_SECONDS)
                    except nats.errors.TimeoutError:
                        continue
                    if entry is None:  # the initial values have all been delivered
                        self._synced.set()
                        continue
                    self._apply(entry.key, entry.value, entry.operation)
                if not self._closing:
                    logger.info("nats reconnected: presence watch starting again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("presence watch broke; starting it again", extra={"error": repr(exc)})
                await asyncio.sleep(WATCH_CHECK_SECONDS)
            finally:
                # Also when the store closes: a watcher left subscribed keeps a heartbeat task that,
                # once the connection is closed, tries to make its consumer again and reports failing.
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()
            self._kv = None

    def _reconnects(self) -> int:
        stats = getattr(getattr(self._js, "_nc", None), "stats", None) or {}
        return int(stats.get("reconnects", 0))

    def _apply(self, key: str, value: bytes | None, operation: str | None) -> None:
        try:
            user, node_id, connection = key.split(".", 2)
            user_id = int(user)
        except ValueError:
            return
        if operation in ("DEL", "PURGE") or not value:
            self._replica.pop(key, None)
            self._by_user.get(user_id, set()).discard(key)
            return
        location = Location.parse(user_id, f"{node_id}/{connection}", value.decode(errors="replace"))
        if location is not None:
            self._replica[key] = (location, time.monotonic())
            self._by_user.setdefault(user_id, set()).add(key)

    async def start_replica(self, timeout: float = 5.0) -> None:
        if self._watch_task is None:
            self._watch_task = asyncio.create_task(self._watch(), name="presence-replica")
        await asyncio.wait_for(self._synced.wait(), timeout)

    async def locate(self, user_ids: Iterable[int]) -> dict[int, list[Location]]:
        await self.start_replica()
        # Expired KV entries send no delete to watchers: entries not refreshed within the TTL are stale.
        fresh_after = time.monotonic() - self.ttl
        found: dict[int, list[Location]] = {}
        for user_id in user_ids:
            keys = self._by_user.get(user_id)
            if not keys:
                continue
            locations = [
                loc for k in keys if (item := self._replica.get(k)) and item[1] >= fresh_after for loc in (item[0],)
            ]
            if locations:
                found[user_id] = locations
        return found

    async def close(self) -> None:
        """Stops the replica's watch, and its subscription with it, before the caller's connection goes."""
        self._closing = True
        task = self._watch_task
        if task is not None and not task.done():
            task.cancel()
            # nats-py's wait for the next update can swallow a cancellation that meets an arriving
            # update: the flag then ends the watch within a check.
            await asyncio.wait({task}, timeout=2 * WATCH_CHECK_SECONDS)


async def open_presence(js: Any | None = None, *, ttl: float | None = None) -> PresenceStore:
    """The configured backend: Redis when REDIS_URL is set, otherwise the NATS KV bucket."""
    from django.conf import settings

    seconds = float(ttl if ttl is not None else settings.PRESENCE_TTL_SECONDS)
    if settings.REDIS_URL:
        return RedisPresence(settings.REDIS_URL, ttl=seconds)
    if js is None:
        raise ValueError("the embedded presence backend needs a JetStream context")
    return NatsKvPresence(js, ttl=seconds)


_web_store: PresenceStore | None = None


async def _shared_store() -> PresenceStore:
    global _web_store
    if _web_store is None:
        from django.conf import settings

        from imsite.nats_bridge import bridge

        js = None if settings.REDIS_URL else (await bridge.connection()).jetstream()
        _web_store = await open_presence(js)
    return _web_store


def close_shared_store() -> None:
    """Closes this process's shared store, if one was opened (its replica's watch first), before the
    bridge's connection closes: at the end of a process or a test session. The next use opens one anew."""
    global _web_store
    store, _web_store = _web_store, None
    if store is not None:
        from imsite.nats_bridge import bridge

        bridge.run(store.close, timeout=5.0)


def online_user_ids(user_ids: Iterable[int]) -> set[int]:
    """For synchronous code (REST views): which of these users have a live connection right now.

    Raises TimeoutError when the presence store cannot be reached within two seconds.
    """
    from imsite.nats_bridge import bridge

    wanted = list(user_ids)
    if not wanted:
        return set()

    async def lookup() -> set[int]:
        store = await _shared_store()
        return set((await store.locate(wanted)).keys())

    return bridge.run(lookup, timeout=2.0)
