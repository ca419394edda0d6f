"""The access node runtime: client sessions (any transport) on one side, NATS and presence on the other.

`AccessNode` holds one NATS connection and every Session of this process. A transport adapter calls
`attach(transport)` for each accepted connection and feeds the returned handler what happens
(on_frame, on_error, on_closed); the node carries out the session core's intents:

- SendToClient: collected per connection and written in one `send_many` per loop wake-up;
- PublishUpstream: published on im.logic.upstream;
- Authenticate: the access token is read and its device session checked on one DB thread, off the
  loop, then Session.authenticated / authentication_failed;
- RegisterPresence / UnregisterPresence: applied to the presence store in order, by one task;
- Close: the frames before it are written, then the transport is closed.

Presence changes reach the user's friends: after a device registers, PresenceUpdate(online) goes to
every live connection of the user's friends; after one unregisters and the user has no device left
anywhere, PresenceUpdate(offline). Friends are read on the DB thread, their connections from the
presence store, and the frame is published to each node holding them, as the logic workers push.

Pushes arrive on im.access.{node_id}.downstream; kicks (SessionsKicked) on im.user.*.event. One timer
task fires due session timers; one task refreshes every live location each presence ttl / 3.
`stop()` (SIGTERM) closes every session with ErrorCode.UNAVAILABLE so clients reconnect elsewhere,
removes their presence and drains NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from imsite import nats_subjects
from imsite.events import SessionsKicked, decode_event
from realtime.fanout import Fanout, route_fanouts
from realtime.presence import Location, PresenceStore, open_presence
from realtime.session import (
    Authenticate,
    Close,
    Intent,
    PublishUpstream,
    RegisterPresence,
    SendToClient,
    Session,
    SessionConfig,
    State,
    UnregisterPresence,
    answers_a_send,
)
from schema.codec import (
    ErrorCode,
    ErrorFrame,
    FrameError,
    PresenceUpdate,
    decode_downstream,
    encode_frame,
)

logger = logging.getLogger(__name__)

SHUTDOWN_REASON = "server shutting down: reconnect"
MAX_AUTH_BATCH = 500  # tokens checked in one query
MAX_PRESENCE_BATCH = 500  # presence changes in one store call
MAX_TIMER_SLEEP = 1.0
OFFLINE_SETTLE_SECONDS = 1.0
"""How long after a device leaves the node checks whether its user has any device left."""


class Transport(Protocol):
    """What the node needs of one client connection (WebTransportSession has it; a WebSocket adapter can)."""

    @property
    def pending_bytes(self) -> int: ...

    def send_many(self, frames: Iterable[bytes]) -> None: ...

    def close(self, code: int = 0, reason: str = "") -> None: ...


@dataclass(frozen=True, slots=True)
class AuthAnswer:
    user_id: int
    session_id: int


Authenticator = Callable[[str], AuthAnswer]
"""Checks an access token on the DB thread; raises TokenInvalid (or any error) to refuse it."""

FriendLookup = Callable[[list[int]], dict[int, list[int]]]
"""The ids of each user's friends (users without any left out), read on the DB thread."""


def friends_of(user_ids: list[int]) -> dict[int, list[int]]:
    from django.db import close_old_connections

    from friends.selectors import friend_ids_of_many

    close_old_connections()
    return friend_ids_of_many(user_ids)


def session_config() -> SessionConfig:
    """The session limits and timers of this deployment's settings (every transport uses the same)."""
    from django.conf import settings

    return SessionConfig(
        heartbeat_seconds=settings.HEARTBEAT_SECONDS,
        heartbeat_timeout=float(settings.HEARTBEAT_TIMEOUT_SECONDS),
        rate=float(settings.SESSION_RATE_PER_SECOND),
        burst=settings.SESSION_RATE_BURST,
        send_window=settings.SESSION_SEND_WINDOW,
    )


def check_access_token(token: str) -> AuthAnswer:
    """The real check: a valid access token whose device session is still live."""
    from django.db import close_old_connections

    from accounts.tokens import live_session, read_access_token

    close_old_connections()  # a connection the database dropped is replaced, not reused
    user_id, session_id, version = read_access_token(token)
    live_session(user_id, session_id, version)
    return AuthAnswer(user_id, session_id)


def check_access_tokens(tokens: list[str]) -> list[AuthAnswer | Exception]:
    """check_access_token for many tokens with one query: an answer or the refusal of each, in order."""
    from django.db import close_old_connections

    from accounts.tokens import read_access_token, session_refusals

    close_old_connections()
    answers: list[AuthAnswer | Exception] = []
    claims: list[tuple[int, int, int]] = []
    for token in tokens:
        try:
            claims.append(read_access_token(token))
            answers.append(AuthAnswer(claims[-1][0], claims[-1][1]))
        except Exception as exc:
            answers.append(exc)
    refusals = iter(session_refusals(claims))
    for index, answer in enumerate(answers):
        if isinstance(answer, AuthAnswer):
            refusal = next(refusals)
            if refusal is not None:
                answers[index] = refusal
    return answers


class Connection:
    """The node's side of one client connection; the transport adapter calls its on_* methods."""

    __slots__ = ("_node", "connection_id", "held", "outbox", "scheduled", "session", "transport")

    def __init__(self, node: AccessNode, connection_id: int, transport: Transport, session: Session) -> None:
        self._node = node
        self.connection_id = connection_id
        self.transport = transport
        self.session = session
        self.outbox: list[bytes] = []
        # Frames held back (the AuthResult first) until this connection's presence is registered: a client
        # that syncs on AuthResult must already be where pushes go, or the messages stored between its
        # Sync and its registration would reach it by neither (seen in W6: thousands after a mass reconnect).
        self.held: list[bytes] | None = None
        self.scheduled: float | None = None  # the deadline last pushed on the timer heap

    def on_frame(self, frame: bytes) -> None:
        self._node.carry(self, self.session.receive(frame, time.time()))

    def on_error(self, code: int, message: str) -> None:
        """The transport refused what the client sent (a frame over its size limit): the session core
        answers it like a bad frame, and closes a client that keeps doing it."""
        logger.info(
            "transport error", extra={"nodeId": self._node.node_id, "connectionId": self.connection_id, "code": code}
        )
        error_code = ErrorCode(code) if code in _ERROR_CODES else ErrorCode.MALFORMED
        self._node.carry(self, self.session.refuse(error_code, message, time.time()))

    def on_closed(self) -> None:
        self._node.detach(self)


_ERROR_CODES = {int(code) for code in ErrorCode}


class AccessNode:
    def __init__(
        self,
        node_id: str,
        nats_url: str,
        *,
        config: SessionConfig | None = None,
        presence_factory: Callable[[Any], Awaitable[PresenceStore]] | None = None,
        authenticator: Authenticator = check_access_token,
        friend_lookup: FriendLookup = friends_of,
        refresh_interval: float | None = None,
    ) -> None:
        if not node_id or "/" in node_id or "." in node_id or "*" in node_id or ">" in node_id:
            raise ValueError(f"a node id is a non-empty NATS subject token without '/', got {node_id!r}")
        self.node_id = node_id
        self.nats_url = nats_url
        self.config = config or SessionConfig()
        self._presence_factory = presence_factory or (lambda js: open_presence(js))
        self._authenticator = authenticator
        self._friend_lookup = friend_lookup
        self._refresh_interval = refresh_interval
        self._ids = itertools.count(1)
        self.connections: dict[int, Connection] = {}
        self._by_user: dict[int, set[int]] = {}
        self._locations: dict[int, Location] = {}
        self._dirty: dict[int, Connection] = {}
        # Connections whose session still counts bytes as unsent: the timer loop re-checks only these, so
        # that thousands of idle sessions cost nothing between their heartbeats.
        self._unconfirmed: dict[int, Connection] = {}
        self._flush_scheduled = False
        self._timers: list[tuple[float, int]] = []
        self._timer_wake = asyncio.Event()
        self._presence_ops: asyncio.Queue[tuple[bool, Location, Connection | None] | None] = asyncio.Queue()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="access-db")
        # Friend lookups for presence announcements get a thread of their own: one per new session, they
        # queued every Auth check behind them on access-db, and sessions hit their auth timeout (W3).
        self._lookups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="access-lookups")
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()  # token checks, presence announcements
        self._auth_waiting: list[tuple[Connection, Authenticate]] = []
        self._auth_task: asyncio.Task[None] | None = None  # the one task checking waiting tokens
        self._nc: Any = None
        self._presence: PresenceStore | None = None
        self._stopped = False

    # Lifecycle.

    async def start(self) -> None:
        import nats

        async def on_error(exc: Exception) -> None:
            logger.warning("nats connection error", extra={"nodeId": self.node_id, "error": repr(exc)})

        self._nc = await nats.connect(
            self.nats_url,
            name=f"access-{self.node_id}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            error_cb=on_error,
            reconnected_cb=self._on_nats_reconnected,
            pending_size=64 * 1024 * 1024,
        )
        self._presence = await self._presence_factory(self._nc.jetstream())
        await self._nc.subscribe(
            nats_subjects.access_downstream(self.node_id),
            cb=self._on_downstream,
            pending_msgs_limit=200_000,
            pending_bytes_limit=512 * 1024 * 1024,
        )
        await self._nc.subscribe(nats_subjects.USER_EVENT_WILDCARD, cb=self._on_user_event)
        await self._nc.flush()
        interval = self._refresh_interval
        if interval is None:
            interval = max(float(getattr(self._presence, "ttl", 90.0)) / 3, 0.5)
        self._tasks = [
            asyncio.create_task(self._timer_loop()),
            asyncio.create_task(self._presence_loop()),
            asyncio.create_task(self._refresh_loop(interval)),
        ]

    async def stop(self) -> None:
        """Close every session with UNAVAILABLE, remove their presence, drain NATS."""
        if self._stopped:
            return
        self._stopped = True
        now = time.time()
        farewell = encode_frame(ErrorFrame(code=ErrorCode.UNAVAILABLE, message=SHUTDOWN_REASON))
        for connection in list(self.connections.values()):
            if connection.session.state is State.CLOSED:  # closed already; its transport is going
                self._forget(connection)
                continue
            intents = connection.session.closed(now)  # presence goes; nothing more is sent but the farewell
            self.write(connection)
            connection.transport.send_many([farewell])
            connection.transport.close(ErrorCode.UNAVAILABLE, SHUTDOWN_REASON)
            self.carry(connection, intents)
            self._forget(connection)
        for task in list(self._side_tasks):
            task.cancel()
        await self._presence_ops.put(None)
        presence_task = self._tasks[1] if len(self._tasks) > 1 else None
        if presence_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(presence_task), 5.0)
            except TimeoutError:
                logger.warning("presence updates not finished at shutdown", extra={"nodeId": self.node_id})
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._presence is not None:
            await self._presence.close()
        if self._nc is not None:
            try:
                await self._nc.drain()
            except Exception as exc:
                logger.warning("nats drain failed", extra={"nodeId": self.node_id, "error": repr(exc)})
        self._db.shutdown(wait=True, cancel_futures=True)
        self._lookups.shutdown(wait=True, cancel_futures=True)
        logger.info("access node stopped", extra={"nodeId": self.node_id})

    # Transport side.

    def attach(self, transport: Transport) -> Connection:
        """A new client connection: returns the handler its transport reports to."""
        connection_id = next(self._ids)
        session = Session(self.node_id, connection_id, self.config)
        connection = Connection(self, connection_id, transport, session)
        if self._stopped:
            transport.close(ErrorCode.UNAVAILABLE, SHUTDOWN_REASON)
            return connection
        self.connections[connection_id] = connection
        self.carry(connection, session.connected(time.time()))
        return connection

    def detach(self, connection: Connection) -> None:
        """The transport is gone."""
        if self.connections.get(connection.connection_id) is not connection:
            return
        self.carry(connection, connection.session.closed(time.time()))
        self._forget(connection)

    def _forget(self, connection: Connection) -> None:
        self.connections.pop(connection.connection_id, None)
        self._dirty.pop(connection.connection_id, None)
        self._unconfirmed.pop(connection.connection_id, None)
        self._locations.pop(connection.connection_id, None)
        identity = connection.session.identity
        if identity is not None:
            users = self._by_user.get(identity.user_id)
            if users is not None:
                users.discard(connection.connection_id)
                if not users:
                    del self._by_user[identity.user_id]

    # Intents.

    def carry(self, connection: Connection, intents: list[Intent], *, reschedule: bool = True) -> None:
        """Act on a session's intents; then its timer, unless the caller knows the input left the
        session's timers as they were (`reschedule=False`)."""
        for intent in intents:
            if isinstance(intent, SendToClient):
                if connection.held is not None:
                    connection.held.append(intent.data)
                    continue
                connection.outbox.append(intent.data)
                self.mark_dirty(connection)
            elif isinstance(intent, PublishUpstream):
                self._publish(nats_subjects.LOGIC_UPSTREAM, intent.payload)
            elif isinstance(intent, Authenticate):
                self._auth_waiting.append((connection, intent))
                if self._auth_task is None or self._auth_task.done():
                    self._auth_task = asyncio.get_running_loop().create_task(self._authenticate_waiting())
                    self._side_tasks.add(self._auth_task)
                    self._auth_task.add_done_callback(self._side_tasks.discard)
            elif isinstance(intent, RegisterPresence):
                location = self._location(connection, intent)
                self._locations[connection.connection_id] = location
                self._by_user.setdefault(intent.user_id, set()).add(connection.connection_id)
                connection.held = []
                self._presence_ops.put_nowait((True, location, connection))
            elif isinstance(intent, UnregisterPresence):
                self._locations.pop(connection.connection_id, None)
                self._presence_ops.put_nowait((False, self._location(connection, intent), None))
            elif isinstance(intent, Close):
                self._release(connection)
                self.write(connection)
                connection.transport.close(intent.code, intent.reason)
        if reschedule:
            self._schedule_timer(connection)

    def _location(self, connection: Connection, intent: RegisterPresence | UnregisterPresence) -> Location:
        return Location(
            intent.user_id, self.node_id, connection.connection_id, intent.session_id, intent.device_id, intent.platform
        )

    def _publish(self, subject: str, payload: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._nc.publish(subject, payload))
        task.add_done_callback(_log_failure)

    @staticmethod
    def _release(connection: Connection) -> None:
        """The frames held back until the presence registration, in order, ahead of anything later."""
        if connection.held is not None:
            held, connection.held = connection.held, None
            connection.outbox[:0] = held

    def mark_dirty(self, connection: Connection) -> None:
        self._dirty[connection.connection_id] = connection
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_writes)

    def _flush_writes(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, {}
        for connection in dirty.values():
            self.write(connection)

    def write(self, connection: Connection) -> None:
        """Hand the connection's collected frames to its transport in one call; report what left."""
        if connection.outbox:
            frames, connection.outbox = connection.outbox, []
            connection.transport.send_many(frames)
        self._confirm_written(connection)

    def _confirm_written(self, connection: Connection) -> None:
        session = connection.session
        unsent = min(session.pending_bytes, max(0, connection.transport.pending_bytes))
        written = session.pending_bytes - unsent
        if written:
            session.written(written)
        if session.pending_bytes and connection.connection_id in self.connections:
            self._unconfirmed[connection.connection_id] = connection
        else:
            self._unconfirmed.pop(connection.connection_id, None)

    async def _authenticate_waiting(self) -> None:
        """Check the waiting Auth tokens in batches, one DB-thread call per batch: when sessions arrive
        by the hundred (a reconnect storm) a hand-off and a query per token would queue them past their
        auth timeout, each hand-off waiting for the busy loop to let go of the GIL."""
        loop = asyncio.get_running_loop()
        while self._auth_waiting:
            batch, self._auth_waiting = self._auth_waiting[:MAX_AUTH_BATCH], self._auth_waiting[MAX_AUTH_BATCH:]
            tokens = [intent.token for _, intent in batch]
            answers: list[AuthAnswer | Exception]
            try:
                answers = await loop.run_in_executor(self._db, self._check_tokens, tokens)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                answers = [exc] * len(batch)
            for (connection, intent), answer in zip(batch, answers, strict=True):
                self.carry(connection, self._auth_outcome(connection, intent, answer))

    def _check_tokens(self, tokens: list[str]) -> list[AuthAnswer | Exception]:
        if self._authenticator is check_access_token:
            return check_access_tokens(tokens)
        answers: list[AuthAnswer | Exception] = []
        for token in tokens:
            try:
                answers.append(self._authenticator(token))
            except Exception as exc:
                answers.append(exc)
        return answers

    def _auth_outcome(
        self, connection: Connection, intent: Authenticate, answer: AuthAnswer | Exception
    ) -> list[Intent]:
        """The session's intents once its token was checked (none when it closed while the check ran)."""
        if isinstance(answer, Exception):
            from imsite.errors import TokenInvalid

            if isinstance(answer, TokenInvalid):
                reason = str(answer) or "invalid token"
            else:
                logger.error("token check failed", exc_info=answer, extra={"nodeId": self.node_id})
                reason = "the token could not be checked: try again"
            return connection.session.authentication_failed(reason, time.time())
        return connection.session.authenticated(
            answer.user_id, answer.session_id, intent.device_id, intent.platform, time.time()
        )

    # NATS side.

    async def _on_downstream(self, msg: Any) -> None:
        try:
            downstream = decode_downstream(msg.data)
        except FrameError as exc:
            logger.error("malformed downstream envelope dropped", extra={"nodeId": self.node_id, "error": str(exc)})
            return
        now = time.time()
        for delivery in downstream.deliveries:
            # A group message goes to hundreds of connections as one frame: what it is is read once,
            # and a push (not an answer to a send) leaves every session's timers as they were.
            frame, answers = delivery.frame, answers_a_send(delivery.frame)
            for connection_id in delivery.connection_ids:
                connection = self.connections.get(connection_id)
                if connection is not None:  # a connection that closed meanwhile is skipped
                    intents = connection.session.deliver(frame, now, answers=answers)
                    self.carry(connection, intents, reschedule=answers)

    async def _on_nats_reconnected(self) -> None:
        """Pushes published while this node was away from NATS are lost, and a client notices a
        missing message only when a later one arrives: every open session is told to sync. nats-py
        calls this after the subscriptions are back, so what the syncs miss is pushed."""
        now = time.time()
        told = 0
        for connection in list(self.connections.values()):
            intents = connection.session.resync(now)
            if intents:
                told += 1
                self.carry(connection, intents)
        logger.warning("nats reconnected: sessions told to resync", extra={"nodeId": self.node_id, "sessions": told})

    async def _on_user_event(self, msg: Any) -> None:
        try:
            event = decode_event(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            logger.error("unreadable user event dropped", extra={"subject": msg.subject, "error": str(exc)})
            return
        if not isinstance(event, SessionsKicked):
            return
        now = time.time()
        for connection_id in list(self._by_user.get(event.user_id, ())):
            connection = self.connections.get(connection_id)
            identity = connection.session.identity if connection is not None else None
            if connection is None or identity is None:
                continue
            if event.session_id in (0, identity.session_id):
                logger.info(
                    "session kicked",
                    extra={"nodeId": self.node_id, "userId": event.user_id, "reason": event.reason},
                )
                self.carry(connection, connection.session.kick(event.reason, now))

    # Background tasks.

    def _schedule_timer(self, connection: Connection) -> None:
        deadline = connection.session.next_timer()
        if deadline is None or (connection.scheduled is not None and connection.scheduled <= deadline):
            # An earlier wake-up stands: the session then reschedules (early, its timer does nothing).
            # Every frame received moves the heartbeat deadline later, and a heap entry per frame
            # was a few percent of the node's time.
            return
        connection.scheduled = deadline
        heapq.heappush(self._timers, (deadline, connection.connection_id))
        if self._timers[0] == (deadline, connection.connection_id):
            self._timer_wake.set()

    async def _timer_loop(self) -> None:
        while True:
            now = time.time()
            while self._timers and self._timers[0][0] <= now:
                deadline, connection_id = heapq.heappop(self._timers)
                connection = self.connections.get(connection_id)
                if connection is None or connection.scheduled != deadline:
                    continue  # gone, or rescheduled: a later heap entry stands for it
                connection.scheduled = None
                self.carry(connection, connection.session.handle_timer(now))
            for connection in list(self._unconfirmed.values()):
                self._confirm_written(connection)
            delay = MAX_TIMER_SLEEP if not self._timers else min(MAX_TIMER_SLEEP, self._timers[0][0] - now)
            self._timer_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_wake.wait(), max(delay, 0.001))

    async def _presence_loop(self) -> None:
        """Register and unregister in the order the sessions asked for them, all that queued meanwhile
        in one call to the store."""
        while True:
            op = await self._presence_ops.get()
            batch: list[tuple[bool, Location, Connection | None]] = []
            while op is not None:
                batch.append(op)
                if len(batch) == MAX_PRESENCE_BATCH or self._presence_ops.empty():
                    break
                op = self._presence_ops.get_nowait()
            if batch:
                await self._apply_presence(batch)
            if op is None:
                return

    async def _apply_presence(self, batch: list[tuple[bool, Location, Connection | None]]) -> None:
        assert self._presence is not None
        try:
            await self._presence.apply([(register, location) for register, location, _ in batch])
        except Exception:
            users = [location.user_id for _, location, _ in batch]
            logger.exception("presence update failed", extra={"nodeId": self.node_id, "userIds": users[:20]})
            return
        finally:
            for _, _, waiting in batch:
                if waiting is not None and self.connections.get(waiting.connection_id) is waiting:
                    self._release(waiting)
                    self.mark_dirty(waiting)
        if self._stopped:  # at shutdown the clients come back through another node at once
            return
        for online in (True, False):
            users = list(dict.fromkeys(location.user_id for register, location, _ in batch if register is online))
            if users:
                task = asyncio.get_running_loop().create_task(self._announce(users, online=online))
                self._side_tasks.add(task)
                task.add_done_callback(self._side_tasks.discard)

    async def _announce(self, user_ids: list[int], *, online: bool) -> None:
        """Tell these users' friends' live connections that they are online, or no longer online: one
        friends query and one presence lookup for all of them (a batch of sessions that opened or closed)."""
        assert self._presence is not None
        try:
            if not online:
                # Two devices leaving at once on two nodes would each still see the other's entry:
                # look once both are gone. A device that comes back meanwhile spares its friends a
                # flicker of offline.
                await asyncio.sleep(OFFLINE_SETTLE_SECONDS)
                still_connected = await self._presence.locate(user_ids)
                user_ids = [user_id for user_id in user_ids if not still_connected.get(user_id)]
                if not user_ids:
                    return
            loop = asyncio.get_running_loop()
            friends = await loop.run_in_executor(self._lookups, self._friend_lookup, user_ids)
            if not friends:
                return
            fanouts = [
                Fanout(encode_frame(PresenceUpdate(user_id=user_id, online=online)), tuple(friend_ids))
                for user_id, friend_ids in friends.items()
            ]
            envelopes = await route_fanouts(fanouts, self._presence)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("presence announcement failed", extra={"nodeId": self.node_id, "userIds": user_ids[:20]})
            return
        for node_id, payload in envelopes:
            self._publish(nats_subjects.access_downstream(node_id), payload)

    async def _refresh_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            assert self._presence is not None
            try:
                await self._presence.refresh(self.node_id, list(self._locations.values()))
            except Exception:
                logger.exception("presence refresh failed", extra={"nodeId": self.node_id})


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("nats publish failed", exc_info=task.exception())
