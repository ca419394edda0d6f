"""ImClient: the Python client of the delivery contract (ARCHITECTURE.md), over any Transport.

- connect() authenticates (AuthError when the server refuses), then a background task reads frames,
  sends a Ping every heartbeat_seconds and reconnects with backoff when the connection drops.
- send() keeps every message until its MessageAck; after a reconnect the unacked ones go again, in the
  order first sent, with the same client_msg_id (the server's dedup makes that safe).
- Messages are delivered once each, in seq order per conversation (the ones this client sent come from
  their MessageAcks, since the server pushes to the other devices only): duplicates are dropped, a seq gap
  asks for a Sync from the last seq seen and holds the later messages back until the gap is filled.
  After a reconnect every known conversation is synced from its last seq.
- A Kicked frame ends the client for good (no reconnect): `kicked` holds it and pending sends fail.

State is in memory: the last seq per conversation, which the caller may seed (`seed`, e.g. from the
lastSeq of GET /conversations). A conversation the client knows nothing about starts at its first
message received: nothing older is fetched for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass

from realtime.client.transports import Transport, TransportClosed, TransportError, TransportFactory
from schema.codec import (
    AnyFrame,
    Auth,
    AuthResult,
    Cursor,
    ErrorCode,
    ErrorFrame,
    FrameError,
    Kicked,
    Message,
    MessageAck,
    MessageKind,
    Ping,
    PresenceUpdate,
    PushMessage,
    ReadReceipt,
    ReadUpdate,
    Resync,
    SendError,
    SendErrorCode,
    SendMessage,
    Sync,
    SyncResult,
    SystemNotification,
    Typing,
    TypingUpdate,
    decode_frame,
    encode_frame,
)

logger = logging.getLogger(__name__)

Event = ReadUpdate | TypingUpdate | PresenceUpdate | SystemNotification | Kicked
"""What the client hands to `on_event` besides messages."""

_CONNECT_ERRORS = (OSError, TimeoutError, FrameError)  # worth another try
SERVER_CLOSE_CODES = 4000  # the session core's close codes (ErrorCode) start here
# Auth answers that say "not now" rather than "not this token": a node too busy to see the Auth frame in
# time (a reconnect storm), one shutting down, one failing inside. The reconnect goes on after them.
_TRANSIENT_AUTH_CODES = frozenset({ErrorCode.AUTH_TIMEOUT, ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL})


class ClientError(Exception):
    """Base of the client's own errors."""


class AuthError(ClientError):
    """The server refused the token (or closed the connection before it answered)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"authentication failed ({code}{': ' + message if message else ''})")
        self.code = code
        self.message = message


class SendRefused(ClientError):
    """The server refused a message with a SendError that is not worth retrying."""

    def __init__(self, code: int, reason: str) -> None:
        name = SendErrorCode(code).name if code in SendErrorCode._value2member_map_ else str(code)
        super().__init__(f"message refused ({name}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class KickedError(ClientError):
    """The server ended this session for good (logout, password change, ban, replaced)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"kicked by the server ({reason})")
        self.reason = reason


class ClientClosed(ClientError):
    """The client was closed before the operation could finish."""


@dataclass
class _Pending:
    frame: SendMessage
    future: asyncio.Future[MessageAck]
    data: bytes  # the frame, encoded once
    generation: int = -1  # the connection it was last written to


class ImClient:
    """An IM connection that survives drops. Use `async with ImClient(...)` or connect() / close()."""

    def __init__(
        self,
        transport_factory: TransportFactory,
        token: str,
        device_id: str = "",
        platform: str = "python",
        *,
        on_message: Callable[[Message], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        seed: Mapping[int, int] | None = None,
        buffer_messages: bool = True,
        auth_timeout: float = 10.0,
        heartbeat_seconds: float | None = None,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
        retry_unavailable_after: float = 1.0,
        sync_timeout: float = 5.0,
    ) -> None:
        self._factory = transport_factory
        self._auth = Auth(token=token, device_id=device_id, platform=platform)
        self._on_message = on_message
        self._on_event = on_event
        self._auth_timeout = auth_timeout
        self._heartbeat_override = heartbeat_seconds
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self._retry_unavailable_after = retry_unavailable_after
        self._sync_timeout = sync_timeout
        self._last_seq: dict[int, int] = dict(seed or {})
        self._held: dict[int, dict[int, Message]] = {}  # messages past a gap, by conversation and seq
        self._syncing: set[int] = set()  # conversations with a Sync outstanding on this connection
        # Each outstanding Sync's number: the node forwards Syncs at most once (NATS core), so one
        # lost in a NATS restart would hold its conversation behind a gap for good without a retry.
        self._sync_numbers: dict[int, int] = {}
        self._sync_counter = 0
        self._unacked: dict[str, _Pending] = {}  # in the order sent
        self._unread_receipts: dict[int, int] = {}  # read receipts not sent yet, by conversation
        self._send_lock = asyncio.Lock()
        self._flush_scheduled = False
        self._background: set[asyncio.Task[None]] = set()
        self._transport: Transport | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._caught_up = asyncio.Event()  # set while `syncing` is False
        self._messages: asyncio.Queue[Message | None] = asyncio.Queue()
        self._buffer_messages = buffer_messages  # False: on_message only, nothing kept for messages()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._done = asyncio.Event()
        self.auth_result: AuthResult | None = None
        self.kicked: Kicked | None = None
        self.error: BaseException | None = None  # what ended the client, when it was not close()
        self.connections = 0  # sessions opened so far (1 + reconnects)
        self._last_heard = 0.0  # monotonic time of the last batch of frames from the server

    # lifecycle

    async def __aenter__(self) -> ImClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> AuthResult:
        """Open the first session; AuthError when the server refuses the token, TransportError when it
        cannot be reached. Afterwards the client reconnects by itself."""
        if self._runner is not None:
            raise ClientError("connect() was already called")
        transport, result, leftover = await self._open()
        self.auth_result = result
        self._runner = asyncio.get_running_loop().create_task(self._run(transport, leftover))
        await self._connected.wait()
        return result

    async def close(self) -> None:
        """Stop for good: close the connection, fail pending sends with ClientClosed, end messages()."""
        self._closing = True
        transport = self._transport
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.close()
        if self._runner is not None:
            # a cancellation can get lost in a wait_for that finishes at the same moment (Python 3.11):
            # ask again until the runner is gone (it also checks _closing before reconnecting)
            while not self._runner.done():
                self._runner.cancel()
                await asyncio.wait({self._runner}, timeout=0.5)
        self._finish(ClientClosed("the client was closed"))

    async def wait_closed(self) -> None:
        """Wait until the client stops: close(), a kick, or a refused reconnect (see `error`)."""
        await self._done.wait()

    @property
    def connected(self) -> bool:
        return self._transport is not None

    async def wait_connected(self) -> None:
        await self._connected.wait()

    @property
    def syncing(self) -> bool:
        """True while a Sync is outstanding or messages wait behind a gap: the client is not caught up."""
        return bool(self._syncing) or any(self._held.values())

    async def wait_caught_up(self) -> None:
        """Wait until no Sync is outstanding and no message waits behind a gap (`syncing` is False)."""
        await self._caught_up.wait()

    def _refresh_caught_up(self) -> None:
        if self.syncing:
            self._caught_up.clear()
        else:
            self._caught_up.set()

    def drop_connection(self) -> None:
        """Lose the current connection at once, saying nothing to the server, as a network failure would
        (for tests and benchmarks): the client notices and reconnects as after any drop."""
        transport = self._transport
        if transport is not None:
            transport.abort()

    def last_seq(self, conversation_id: int) -> int | None:
        """The seq of the last message delivered in this conversation, or None if it is unknown."""
        return self._last_seq.get(conversation_id)

    def seed(self, last_seqs: Mapping[int, int]) -> None:
        """Tell the client how far the caller has read: later messages of these conversations are the
        ones it delivers (and syncs). Seqs lower than what the client already has are ignored."""
        for conversation_id, seq in last_seqs.items():
            if seq > self._last_seq.get(conversation_id, -1):
                self._last_seq[conversation_id] = seq

    # sending

    async def send(
        self,
        conversation_id: int,
        body: str,
        client_msg_id: str | None = None,
        *,
        kind: MessageKind = MessageKind.TEXT,
        reply_to_id: int = 0,
    ) -> MessageAck:
        """Send a message and wait for its MessageAck, across reconnects. SendRefused on a SendError
        (UNAVAILABLE is retried instead), KickedError or ClientClosed when the client stops first.
        Cancelling the wait stops retrying (the message may have been stored already)."""
        if self._done.is_set():
            raise self.error or ClientClosed("the client is closed")
        client_msg_id = client_msg_id or uuid.uuid4().hex
        if client_msg_id in self._unacked:
            raise ValueError(f"client_msg_id {client_msg_id!r} is already being sent")
        frame = SendMessage(
            client_msg_id=client_msg_id, conversation_id=conversation_id, kind=kind, body=body, reply_to_id=reply_to_id
        )
        data = encode_frame(frame)  # a number out of range fails here, not on the connection
        pending = _Pending(frame, asyncio.get_running_loop().create_future(), data)
        self._unacked[client_msg_id] = pending
        try:
            self._flush_soon()
            # Cancelling this wait cancels the future, and the finally forgets the send: every
            # answer for it is then ignored (its handlers look it up, and check done()).
            return await pending.future
        finally:
            if self._unacked.get(client_msg_id) is pending:
                del self._unacked[client_msg_id]

    @property
    def unacked(self) -> list[SendMessage]:
        """Sends still waiting for their MessageAck, in order."""
        return [pending.frame for pending in self._unacked.values()]

    async def mark_read(self, conversation_id: int, seq: int) -> None:
        """Send a ReadReceipt; while disconnected the latest one per conversation waits for the reconnect."""
        if seq > self._unread_receipts.get(conversation_id, 0):
            self._unread_receipts[conversation_id] = seq
        await self._flush()

    async def typing(self, conversation_id: int) -> bool:
        """Send a Typing frame; False (and nothing is kept) while disconnected."""
        transport = self._transport
        if transport is None:
            return False
        try:
            await transport.send([encode_frame(Typing(conversation_id=conversation_id))])
        except TransportClosed:
            return False
        return True

    async def _flush(self) -> None:
        """Write every send and read receipt not yet written on the current connection, in order."""
        async with self._send_lock:
            transport, generation = self._transport, self._generation
            if transport is None:
                return
            batch = [pending for pending in self._unacked.values() if pending.generation != generation]
            receipts = [ReadReceipt(conversation_id=c, seq=s) for c, s in self._unread_receipts.items()]
            if not batch and not receipts:
                return
            frames = [pending.data for pending in batch] + [encode_frame(r) for r in receipts]
            try:
                await transport.send(frames)
            except TransportClosed:
                return  # the reader sees the drop and reconnects; these go again then
            for pending in batch:
                pending.generation = generation
            for receipt in receipts:
                if self._unread_receipts.get(receipt.conversation_id) == receipt.seq:
                    del self._unread_receipts[receipt.conversation_id]

    # receiving

    async def messages(self) -> AsyncIterator[Message]:
        """Every message, once, in seq order per conversation, until the client stops."""
        if not self._buffer_messages:
            raise ClientError("messages() needs buffer_messages=True")
        while True:
            message = await self._messages.get()
            if message is None:
                self._messages.put_nowait(None)  # for any other reader
                return
            yield message

    def _deliver(self, message: Message) -> None:
        self._last_seq[message.conversation_id] = message.seq
        if self._buffer_messages:
            self._messages.put_nowait(message)
        if self._on_message is not None:
            try:
                self._on_message(message)
            except Exception:
                logger.exception("on_message failed")

    def _event(self, event: Event) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                logger.exception("on_event failed")

    def _receive(self, message: Message, *, from_sync: bool) -> None:
        conversation_id, seq = message.conversation_id, message.seq
        last = self._last_seq.get(conversation_id)
        if last is None:
            last = seq - 1  # the first news of this conversation: start from here
        if seq <= last:
            return  # a duplicate
        if seq > last + 1:
            self._held.setdefault(conversation_id, {})[seq] = message
            if not from_sync and conversation_id not in self._syncing:
                self._request_sync([conversation_id])
            return
        self._deliver(message)
        held = self._held.get(conversation_id)
        while held:
            following = held.pop(self._last_seq[conversation_id] + 1, None)
            if following is None:
                # drop what is already delivered; keep what is still past a gap
                for stale in [s for s in held if s <= self._last_seq[conversation_id]]:
                    del held[stale]
                break
            self._deliver(following)
        if not held:
            self._held.pop(conversation_id, None)

    def _sync_frame(self, conversation_ids: Iterable[int]) -> Sync | None:
        """A Sync for these conversations from their last seqs (None if each has one outstanding)."""
        wanted = [c for c in conversation_ids if c not in self._syncing]
        if not wanted:
            return None
        self._syncing.update(wanted)
        loop = asyncio.get_running_loop()
        for conversation_id in wanted:
            self._sync_counter += 1
            self._sync_numbers[conversation_id] = number = self._sync_counter
            loop.call_later(self._sync_timeout, self._sync_overdue, conversation_id, number)
        self._caught_up.clear()
        return Sync(cursors=tuple(Cursor(conversation_id=c, after_seq=self._last_seq.get(c, 0)) for c in wanted))

    def _sync_overdue(self, conversation_id: int, number: int) -> None:
        """No SyncResult for this Sync in time: it or its answer was lost; ask again."""
        if self._done.is_set() or self._sync_numbers.get(conversation_id) != number:
            return  # answered, or superseded by a later Sync (a reconnect's)
        logger.info("sync of conversation %s unanswered after %ss: asking again", conversation_id, self._sync_timeout)
        self._syncing.discard(conversation_id)
        del self._sync_numbers[conversation_id]
        self._request_sync([conversation_id])
        self._refresh_caught_up()

    def _request_sync(self, conversation_ids: Iterable[int]) -> None:
        if self._transport is None:
            return  # the reconnect syncs every known conversation
        frame = self._sync_frame(conversation_ids)
        if frame is not None:
            self._write_soon(frame)

    def _write_soon(self, frame: AnyFrame) -> None:
        transport = self._transport
        if transport is None:
            return
        data = encode_frame(frame)

        async def write() -> None:
            with contextlib.suppress(TransportClosed):
                await transport.send([data])

        task = asyncio.get_running_loop().create_task(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _sync_result(self, result: SyncResult) -> None:
        conversation_id = result.conversation_id
        self._syncing.discard(conversation_id)
        self._sync_numbers.pop(conversation_id, None)
        before = self._last_seq.get(conversation_id)
        for message in sorted(result.messages, key=lambda m: m.seq):
            if message.conversation_id == conversation_id:
                self._receive(message, from_sync=True)
        progressed = self._last_seq.get(conversation_id) != before
        if result.has_more and result.messages:
            self._request_sync([conversation_id])
        elif self._held.get(conversation_id) and progressed:
            self._request_sync([conversation_id])  # the gap is not filled yet: ask for what is still missing

    def _ack(self, ack: MessageAck) -> None:
        pending = self._unacked.pop(ack.client_msg_id, None)
        if pending is None:
            return
        if not pending.future.done():
            pending.future.set_result(ack)
        if self.auth_result is not None:
            # The server pushes a message to every device but the sending one, which has its ack: the
            # timeline gets the sent message from the ack, in seq order like any other.
            frame = pending.frame
            own = Message(
                id=ack.message_id,
                conversation_id=ack.conversation_id,
                seq=ack.seq,
                sender_id=self.auth_result.user_id,
                client_msg_id=ack.client_msg_id,
                kind=frame.kind,
                body=frame.body,
                reply_to_id=frame.reply_to_id,
                created_at=ack.created_at,
            )
            self._receive(own, from_sync=False)

    def _send_error(self, error: SendError) -> None:
        pending = self._unacked.get(error.client_msg_id)
        if pending is None or pending.future.done():
            return
        if error.code == SendErrorCode.UNAVAILABLE:
            pending.generation = -1  # write it again, after a pause
            loop = asyncio.get_running_loop()
            loop.call_later(self._retry_unavailable_after, lambda: self._spawn_flush())
            return
        del self._unacked[error.client_msg_id]
        pending.future.set_exception(SendRefused(error.code, error.reason))

    def _flush_soon(self) -> None:
        """A flush at the end of this event-loop iteration: the sends made meanwhile (a window
        refilled by one batch of acks) leave in one transport write instead of one each."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._spawn_flush()

    def _spawn_flush(self) -> None:
        if self._done.is_set():
            return
        task = asyncio.get_running_loop().create_task(self._flush())
        self._background.add(task)
        task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a bug: a closed transport returns
            logger.error("flush failed", exc_info=task.exception())

    def _handle(self, frame: AnyFrame) -> bool:
        """Act on one server frame; False when the session must end (kicked)."""
        if isinstance(frame, PushMessage):
            self._receive(frame.message, from_sync=False)
        elif isinstance(frame, MessageAck):
            self._ack(frame)
        elif isinstance(frame, SyncResult):
            self._sync_result(frame)
        elif isinstance(frame, Resync):
            self._request_sync(list(self._last_seq))  # pushes may be lost: catch up as after a reconnect
        elif isinstance(frame, SendError):
            self._send_error(frame)
        elif isinstance(frame, Kicked):
            self.kicked = frame
            self._event(frame)
            return False
        elif isinstance(frame, ReadUpdate | TypingUpdate | PresenceUpdate | SystemNotification):
            self._event(frame)
        elif isinstance(frame, ErrorFrame):
            logger.warning("the server reported an error: %s %s", frame.code, frame.message)
        return True

    # connection

    async def _open(self) -> tuple[Transport, AuthResult, list[bytes]]:
        """A new authenticated transport, its AuthResult, and frames that came right after it."""
        transport = await self._factory()
        try:
            await transport.send([encode_frame(self._auth)])
            async with asyncio.timeout(self._auth_timeout):
                while True:
                    try:
                        batch = await transport.recv_batch()
                    except TransportClosed as error:
                        # The server gives its verdicts as codes of 4000 and up; anything else (none, a
                        # reset stream, WebSocket's 1006 for a lost link) says nothing of the token.
                        if error.code < SERVER_CLOSE_CODES:
                            reason = error.reason or f"code {error.code}"
                            raise TransportError(f"the connection closed before the Auth answer ({reason})") from error
                        raise AuthError(error.code, error.reason or "closed") from error
                    for index, data in enumerate(batch):
                        frame = decode_frame(data)
                        if isinstance(frame, AuthResult):
                            return transport, frame, batch[index + 1 :]
                        if isinstance(frame, ErrorFrame):
                            raise AuthError(frame.code, frame.message)
                        if isinstance(frame, Kicked):
                            raise AuthError(ErrorCode.AUTH_FAILED, f"kicked: {frame.reason}")
        except BaseException:
            with contextlib.suppress(Exception):
                await transport.close()
            raise

    async def _run(self, transport: Transport, leftover: list[bytes]) -> None:
        try:
            while True:
                outcome = await self._session(transport, leftover)
                if outcome is None and self._closing:
                    outcome = ClientClosed("the client was closed")
                if outcome is not None:
                    self._finish(outcome)
                    return
                transport, leftover = await self._reconnect()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # a refused reconnect, or a bug: stop, tell the waiters
            logger.warning("the client stops: %s", error)
            self._finish(error)

    async def _session(self, transport: Transport, leftover: list[bytes]) -> BaseException | None:
        """Serve one connection until it drops (None: reconnect) or the client must stop (the reason)."""
        self._generation += 1
        self.connections += 1
        self._syncing.clear()
        self._sync_numbers.clear()
        self._transport = transport
        self._connected.set()
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(transport))
        try:
            sync = self._sync_frame(list(self._last_seq))
            self._refresh_caught_up()
            if sync is not None:  # before the resends, as a fresh client would: catch up, then send
                with contextlib.suppress(TransportClosed):
                    await transport.send([encode_frame(sync)])
            await self._flush()
            batch = leftover
            while True:
                self._last_heard = time.monotonic()
                for data in batch:
                    try:
                        frame = decode_frame(data)
                    except FrameError as error:
                        logger.warning("dropping a frame that does not decode: %s", error)
                        continue
                    if not self._handle(frame):
                        assert self.kicked is not None
                        return KickedError(self.kicked.reason)
                self._refresh_caught_up()  # SyncResults and pushes past a gap change it, only in frames
                try:
                    batch = await transport.recv_batch()
                except TransportClosed as error:
                    if not self._closing:  # our own close() ends the connection too: nothing was lost
                        logger.info("connection lost (%s); reconnecting", error)
                    return None
        finally:
            heartbeat.cancel()
            self._transport = None
            self._connected.clear()
            with contextlib.suppress(Exception):
                await transport.close()

    async def _heartbeat(self, transport: Transport) -> None:
        interval = self._heartbeat_override
        if interval is None:
            interval = self.auth_result.heartbeat_seconds if self.auth_result is not None else 0
        if interval <= 0:
            return
        ping = encode_frame(Ping())
        while True:
            await asyncio.sleep(interval)
            # A server that died without closing (SIGKILL, a lost network) answers nothing, not even
            # Pongs: after three silent intervals the connection is given up and another one opened.
            if time.monotonic() - self._last_heard > 3 * interval:
                logger.info("no answer from the server for %.1fs; reconnecting", time.monotonic() - self._last_heard)
                with contextlib.suppress(Exception):
                    await transport.close()
                return
            try:
                await transport.send([ping])
            except TransportClosed:
                return

    async def _reconnect(self) -> tuple[Transport, list[bytes]]:
        """Open and authenticate a new transport, waiting longer after each failure. AuthError stops, unless
        its code says the server could not check the token in time (_TRANSIENT_AUTH_CODES)."""
        delay = self._reconnect_initial
        while True:
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not a secret
            if self._closing:
                raise ClientClosed("the client was closed")
            try:
                transport, result, leftover = await self._open()
            except _CONNECT_ERRORS as error:
                logger.info("reconnect failed: %s", error)
                delay = min(delay * 2, self._reconnect_max)
                continue
            except AuthError as error:
                if error.code not in _TRANSIENT_AUTH_CODES:
                    raise
                logger.info("reconnect not authenticated yet: %s", error)
                delay = min(delay * 2, self._reconnect_max)
                continue
            if self._closing:
                with contextlib.suppress(Exception):
                    await transport.close()
                raise ClientClosed("the client was closed")
            self.auth_result = result
            return transport, leftover

    def _finish(self, reason: BaseException) -> None:
        if self._done.is_set():
            return
        if not isinstance(reason, ClientClosed):
            self.error = reason
        for pending in self._unacked.values():
            if not pending.future.done():
                pending.future.set_exception(reason)
                pending.future.exception()  # retrieved: nobody may be waiting any more
        self._unacked.clear()
        self._messages.put_nowait(None)
        self._done.set()
