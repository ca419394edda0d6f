"""The Python client library against fake servers that speak the protocol over a real WebSocket (and a real
WebTransport session), and the `chat` command. No sleeps: every wait is an event or queue with a timeout."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from realtime.certificates import ensure_dev_certificate
from realtime.client import (
    AuthError,
    ClientClosed,
    ImClient,
    KickedError,
    SendRefused,
    TransportClosed,
    TransportError,
    WebSocketTransport,
    websocket_factory,
    webtransport_factory,
)
from realtime.webtransport import WebTransportSession, serve_webtransport
from schema.codec import (
    Auth,
    AuthResult,
    ClientFrame,
    ErrorCode,
    ErrorFrame,
    Kicked,
    Message,
    MessageAck,
    Ping,
    Pong,
    PushMessage,
    ReadReceipt,
    ReadUpdate,
    Resync,
    SendError,
    SendErrorCode,
    SendMessage,
    Sync,
    SyncResult,
    Typing,
    decode_client_frame,
    decode_frame,
    encode_frame,
)

TIMEOUT = 10.0
USER_ID = 7
TOKEN = "good-token"


async def within(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, TIMEOUT)


@dataclass
class FakeServer:
    """The server side of the protocol, in memory: dedup by client_msg_id, seqs per conversation, Sync with
    an optional page size. Tests steer it (pushes, kicks, drops, refusals) and watch what clients send."""

    heartbeat_seconds: int = 30
    sync_limit: int = 100
    history: dict[int, list[Message]] = field(default_factory=dict)
    stored: dict[str, Message] = field(default_factory=dict)
    sends_seen: list[SendMessage] = field(default_factory=list)
    refuse: dict[str, list[int]] = field(default_factory=dict)  # client_msg_id -> SendError codes, in turn
    drop_on_send: set[str] = field(default_factory=set)  # store these, then drop the connection unacked
    hold_acks: bool = False
    lose_syncs: int = 0  # the next Sync frames go unanswered, as one lost in a NATS restart would
    token: str = TOKEN  # the one token accepted
    auth_timeouts: int = 0  # the next connections answered with AUTH_TIMEOUT, as a node too busy would
    auth_drops: int = 0  # the next connections dropped at their Auth without a word, as a lost stream is
    connections: list[ServerConnection] = field(default_factory=list)
    authed: asyncio.Queue[ServerConnection] = field(default_factory=asyncio.Queue)
    frames: asyncio.Queue[tuple[int, ClientFrame]] = field(default_factory=asyncio.Queue)  # (connection no., frame)
    port: int = 0

    def store(self, conversation_id: int, body: str, sender_id: int = 99, client_msg_id: str = "") -> Message:
        messages = self.history.setdefault(conversation_id, [])
        seq = len(messages) + 1
        message = Message(
            id=conversation_id * 1000 + seq,
            conversation_id=conversation_id,
            seq=seq,
            sender_id=sender_id,
            client_msg_id=client_msg_id or f"server-{conversation_id}-{seq}",
            body=body,
            created_at=1_700_000_000_000 + seq,
        )
        messages.append(message)
        return message

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def send(self, connection: ServerConnection, *frames: Any) -> None:
        for frame in frames:
            await connection.send(encode_frame(frame))

    async def push(self, connection: ServerConnection, *messages: Message) -> None:
        await self.send(connection, *(PushMessage(message=m) for m in messages))

    async def next_frame(self, kind: type[Any]) -> tuple[int, Any]:
        """The next client frame of this type (others are skipped)."""
        while True:
            number, frame = await within(self.frames.get())
            if isinstance(frame, kind):
                return number, frame

    def answer(self, frame: ClientFrame) -> list[Any]:
        """What the server sends back for one client frame, dropping the connection aside."""
        if isinstance(frame, Ping):
            return [Pong()]
        if isinstance(frame, Sync):
            if self.lose_syncs:
                self.lose_syncs -= 1
                return []
            replies = []
            for cursor in frame.cursors:
                later = [m for m in self.history.get(cursor.conversation_id, []) if m.seq > cursor.after_seq]
                page = tuple(later[: self.sync_limit])
                replies.append(
                    SyncResult(conversation_id=cursor.conversation_id, messages=page, has_more=len(later) > len(page))
                )
            return replies
        if isinstance(frame, SendMessage):
            codes = self.refuse.get(frame.client_msg_id)
            if codes:
                return [SendError(client_msg_id=frame.client_msg_id, code=codes.pop(0), reason="refused by the fake")]
            message = self.stored.get(frame.client_msg_id)
            if message is None:
                message = self.stored[frame.client_msg_id] = self.store(
                    frame.conversation_id, frame.body, USER_ID, frame.client_msg_id
                )
            if self.hold_acks:
                return []
            return [
                MessageAck(
                    client_msg_id=frame.client_msg_id,
                    message_id=message.id,
                    conversation_id=message.conversation_id,
                    seq=message.seq,
                    created_at=message.created_at,
                )
            ]
        return []

    async def handler(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        number = len(self.connections)
        try:
            auth = decode_client_frame(await connection.recv(decode=False))
            if self.auth_drops:
                self.auth_drops -= 1
                connection.transport.abort()
                return
            if self.auth_timeouts:
                self.auth_timeouts -= 1
                await self.send(connection, ErrorFrame(code=ErrorCode.AUTH_TIMEOUT, message="no Auth in time"))
                await connection.close(ErrorCode.AUTH_TIMEOUT, "no Auth in time")
                return
            if not isinstance(auth, Auth) or auth.token != self.token:
                await self.send(connection, ErrorFrame(code=ErrorCode.AUTH_FAILED, message="invalid token"))
                await connection.close(ErrorCode.AUTH_FAILED, "invalid token")
                return
            await self.send(
                connection, AuthResult(user_id=USER_ID, session_id=number, heartbeat_seconds=self.heartbeat_seconds)
            )
            self.authed.put_nowait(connection)
            async for data in connection:
                assert isinstance(data, bytes)
                frame = decode_client_frame(data)
                self.frames.put_nowait((number, frame))
                if isinstance(frame, SendMessage):
                    self.sends_seen.append(frame)
                replies = self.answer(frame)
                if isinstance(frame, SendMessage) and frame.client_msg_id in self.drop_on_send:
                    self.drop_on_send.discard(frame.client_msg_id)
                    connection.transport.abort()  # stored, never acked: as if the access node died
                    return
                await self.send(connection, *replies)
        except ConnectionClosed:
            pass


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = FakeServer()
    async with serve(fake.handler, "127.0.0.1", 0, compression=None) as ws_server:
        fake.port = next(iter(ws_server.sockets)).getsockname()[1]
        yield fake


def make_client(server: FakeServer, **options: Any) -> ImClient:
    options.setdefault("reconnect_initial", 0.01)
    options.setdefault("reconnect_max", 0.05)
    return ImClient(websocket_factory(server.url), options.pop("token", TOKEN), "dev-1", "test", **options)


def drain(server: FakeServer) -> list[Any]:
    """The Sync frames the server has received and nobody has looked at yet."""
    frames = []
    while not server.frames.empty():
        _, frame = server.frames.get_nowait()
        if isinstance(frame, Sync):
            frames.append(frame)
    return frames


async def take(client: ImClient, count: int) -> list[Message]:
    stream = client.messages()
    return [await within(anext(stream)) for _ in range(count)]


async def test_connect_authenticates_and_send_returns_the_ack(server: FakeServer) -> None:
    async with make_client(server) as client:
        assert client.auth_result == AuthResult(user_id=USER_ID, session_id=1, heartbeat_seconds=30)
        first = await within(client.send(5, "hello", "m-1"))
        second = await within(client.send(5, "again"))
        assert (first.client_msg_id, first.conversation_id, first.seq) == ("m-1", 5, 1)
        assert second.seq == 2
        assert [s.body for s in server.sends_seen] == ["hello", "again"]
        assert client.unacked == []


async def test_sends_made_together_leave_in_one_write_and_in_order(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[list[Any]] = []
    real_send = WebSocketTransport.send

    async def counting_send(self: WebSocketTransport, frames: Any) -> None:
        writes.append([type(decode_frame(f)).__name__ for f in frames])
        await real_send(self, frames)

    monkeypatch.setattr(WebSocketTransport, "send", counting_send)
    async with make_client(server) as client:
        writes.clear()  # Auth
        acks = await within(asyncio.gather(*(client.send(5, f"m{i}", f"c-{i}") for i in range(10))))

        assert [ack.seq for ack in acks] == list(range(1, 11))
        assert [s.body for s in server.sends_seen] == [f"m{i}" for i in range(10)]
        assert writes == [["SendMessage"] * 10]


async def test_a_cancelled_send_is_forgotten_and_not_sent_again_after_a_reconnect(server: FakeServer) -> None:
    server.hold_acks = True
    async with make_client(server) as client:
        waiting = asyncio.get_running_loop().create_task(client.send(5, "never mind", "c-gone"))
        await within(server.next_frame(SendMessage))
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert client.unacked == []

        server.hold_acks = False
        (await within(server.authed.get())).transport.abort()
        ack = await within(client.send(5, "after the drop", "c-next"))

        assert ack.seq == 2  # the cancelled one may have been stored: only its answer is ignored
        assert [s.client_msg_id for s in server.sends_seen] == ["c-gone", "c-next"]


async def test_pushes_are_delivered_in_order_and_duplicates_once(server: FakeServer) -> None:
    delivered: list[int] = []
    async with make_client(server, on_message=lambda m: delivered.append(m.seq)) as client:
        connection = await within(server.authed.get())
        one, two, three = (server.store(3, f"m{i}") for i in range(3))
        await server.push(connection, one, one, two, one, two, three, three)
        messages = await take(client, 3)
        assert [m.seq for m in messages] == [1, 2, 3]
        assert delivered == [1, 2, 3]
        assert client.last_seq(3) == 3
        # a later push proves nothing else was queued
        four = server.store(3, "m4")
        await server.push(connection, four)
        assert [m.seq for m in await take(client, 1)] == [4]


async def test_a_seq_gap_syncs_and_delivers_the_missing_messages_first(server: FakeServer) -> None:
    server.sync_limit = 1  # every SyncResult says has_more while there is more: the client must ask again
    for i in range(6):
        server.store(8, f"m{i + 1}")
    async with make_client(server, seed={8: 1}) as client:
        connection = await within(server.authed.get())
        _, first_sync = await server.next_frame(Sync)  # the seeded conversation is synced at connect
        assert [(c.conversation_id, c.after_seq) for c in first_sync.cursors] == [(8, 1)]
        assert [m.seq for m in await take(client, 5)] == [2, 3, 4, 5, 6]
        catch_up = drain(server)
        assert [(c.conversation_id, c.after_seq) for f in catch_up for c in f.cursors] == [(8, s) for s in range(2, 6)]
        # now a gap: 7 is pushed, 8 and 9 only stored, then 10 pushed
        seven, eight, nine, ten = (server.store(8, f"m{i}") for i in range(7, 11))
        del eight, nine
        await server.push(connection, seven, ten)
        assert [m.seq for m in await take(client, 4)] == [7, 8, 9, 10]
        syncs = [(c.conversation_id, c.after_seq) for frame in drain(server) for c in frame.cursors]
        assert syncs[0] == (8, 7)  # the gap after 7 asks from 7
        assert (8, 8) in syncs  # has_more asked again from where the page ended
        assert client.last_seq(8) == 10


async def test_an_unanswered_sync_is_asked_again_and_the_gap_still_fills(server: FakeServer) -> None:
    async with make_client(server, seed={4: 0}, sync_timeout=0.3) as client:
        connection = await within(server.authed.get())
        await server.next_frame(Sync)  # the connect sync, answered: nothing stored yet
        one, two, three = (server.store(4, f"m{i}") for i in range(1, 4))
        del two
        server.lose_syncs = 1
        await server.push(connection, one, three)  # 2 is missing: a Sync that the server loses
        assert [m.seq for m in await take(client, 1)] == [1]
        _, lost = await server.next_frame(Sync)
        assert client.syncing  # 3 waits behind the gap
        _, again = await server.next_frame(Sync)  # no answer within sync_timeout: asked again
        assert [(c.conversation_id, c.after_seq) for c in (*lost.cursors, *again.cursors)] == [(4, 1), (4, 1)]
        assert [m.seq for m in await take(client, 2)] == [2, 3]
        assert not client.syncing


async def test_wait_caught_up_waits_for_the_connect_sync_and_for_a_gap_to_fill(server: FakeServer) -> None:
    server.store(4, "m1")
    async with make_client(server, seed={4: 0}, sync_timeout=0.3) as client:
        connection = await within(server.authed.get())
        await within(client.wait_caught_up())
        assert not client.syncing
        assert client.last_seq(4) == 1  # the connect Sync's answer is in
        await server.next_frame(Sync)  # that Sync, seen by the server

        two, three = server.store(4, "m2"), server.store(4, "m3")
        del two
        server.lose_syncs = 1
        await server.push(connection, three)  # 2 is missing: a Sync the server loses, then asked again
        await server.next_frame(Sync)
        assert client.syncing
        assert not client._caught_up.is_set()
        await within(client.wait_caught_up())
        assert not client.syncing
        assert client.last_seq(4) == 3


async def test_resync_from_the_server_syncs_every_known_conversation(server: FakeServer) -> None:
    async with make_client(server, seed={4: 0, 6: 0}) as client:
        connection = await within(server.authed.get())
        await server.next_frame(Sync)  # the connect sync, answered: nothing stored yet
        lost = server.store(6, "pushed while the node was away from NATS")  # never pushed
        await server.send(connection, Resync())
        _, sync = await server.next_frame(Sync)
        assert sorted((c.conversation_id, c.after_seq) for c in sync.cursors) == [(4, 0), (6, 0)]
        assert await take(client, 1) == [lost]


async def test_a_dropped_connection_resends_unacked_sends_with_the_same_id(server: FakeServer) -> None:
    server.drop_on_send.add("lost-ack")
    async with make_client(server, seed={4: 0}) as client:
        await within(server.authed.get())
        ack = await within(client.send(4, "survives", "lost-ack"))
        assert client.connections == 2
        # the fake stored it on the first connection and saw it again on the second: one message, one seq
        assert [s.client_msg_id for s in server.sends_seen] == ["lost-ack", "lost-ack"]
        assert len(server.history[4]) == 1
        assert (ack.client_msg_id, ack.seq) == ("lost-ack", 1)
        # on the new connection the known conversation was synced before the resend
        frames_on_second = []
        while not server.frames.empty():
            number, frame = server.frames.get_nowait()
            if number == 2:
                frames_on_second.append(frame)
        assert isinstance(frames_on_second[0], Sync)
        assert [(c.conversation_id, c.after_seq) for c in frames_on_second[0].cursors] == [(4, 0)]
        assert isinstance(frames_on_second[1], SendMessage)
        assert frames_on_second[1].client_msg_id == "lost-ack"


async def test_sends_queued_while_disconnected_go_in_order_after_the_reconnect(server: FakeServer) -> None:
    server.hold_acks = True
    async with make_client(server) as client:
        first_connection = await within(server.authed.get())
        sends = [asyncio.ensure_future(client.send(2, f"m{i}", f"id-{i}")) for i in range(3)]
        for i in range(3):
            _, frame = await server.next_frame(SendMessage)
            assert frame.client_msg_id == f"id-{i}"
        server.hold_acks = False
        first_connection.transport.abort()
        acks = await within(asyncio.gather(*sends))
        assert [a.seq for a in acks] == [1, 2, 3]
        assert [s.client_msg_id for s in server.sends_seen] == ["id-0", "id-1", "id-2"] * 2
        assert client.connections == 2


async def test_kicked_stops_the_client_without_reconnecting(server: FakeServer) -> None:
    events: list[Any] = []
    server.hold_acks = True
    client = make_client(server, on_event=events.append)
    await within(client.connect())
    connection = await within(server.authed.get())
    pending = asyncio.ensure_future(client.send(1, "never acked"))
    await server.next_frame(SendMessage)
    await server.send(connection, Kicked(reason="logout"))
    await within(client.wait_closed())
    assert client.kicked == Kicked(reason="logout")
    assert isinstance(client.error, KickedError)
    assert events == [Kicked(reason="logout")]
    with pytest.raises(KickedError, match="logout"):
        await within(pending)
    with pytest.raises(KickedError):
        await client.send(1, "after the kick")
    assert [m async for m in client.messages()] == []
    assert not client.connected
    assert len(server.connections) == 1
    await client.close()


async def test_a_token_refused_at_reconnect_stops_the_client(server: FakeServer) -> None:
    client = make_client(server)
    await within(client.connect())
    connection = await within(server.authed.get())
    server.token = "rotated"
    connection.transport.abort()
    await within(client.wait_closed())
    assert isinstance(client.error, AuthError)
    assert len(server.connections) == 2
    with pytest.raises(AuthError):
        await client.send(1, "too late")
    await client.close()


@pytest.mark.parametrize("failure", ["auth_timeouts", "auth_drops"])
async def test_an_auth_timeout_or_a_drop_at_auth_is_retried_at_reconnect_not_fatal(
    server: FakeServer, failure: str
) -> None:
    """AUTH_TIMEOUT says "not now", and a connection dropped without a word (a stream reset in a
    reconnect storm, a lost link) says nothing of the token: neither is a refusal."""
    client = make_client(server)
    await within(client.connect())
    connection = await within(server.authed.get())
    setattr(server, failure, 2)
    connection.transport.abort()
    await within(server.authed.get())  # the third attempt gets in
    await within(client.wait_connected())
    assert client.error is None
    assert len(server.connections) == 4
    assert (await within(client.send(1, "still here"))).seq == 1
    await client.close()


async def test_a_first_connect_dropped_at_auth_without_a_word_is_a_transport_error(server: FakeServer) -> None:
    server.auth_drops = 1
    with pytest.raises(TransportError, match="closed before the Auth answer"):
        await within(make_client(server).connect())


async def test_an_unknown_conversation_starts_at_its_first_message(server: FakeServer) -> None:
    for i in range(5):
        server.store(30, f"m{i + 1}")
    async with make_client(server) as client:
        connection = await within(server.authed.get())
        await server.push(connection, server.history[30][4])
        assert [m.seq for m in await take(client, 1)] == [5]
        assert client.last_seq(30) == 5
        assert drain(server) == []  # nothing older was asked for


async def test_a_refused_token_raises_auth_error(server: FakeServer) -> None:
    client = make_client(server, token="stolen")
    with pytest.raises(AuthError) as caught:
        await within(client.connect())
    assert caught.value.code == ErrorCode.AUTH_FAILED
    assert "invalid token" in str(caught.value)


async def test_an_unreachable_server_raises_transport_error() -> None:
    client = ImClient(websocket_factory("ws://127.0.0.1:9/ws", timeout=2), TOKEN)
    with pytest.raises(TransportError):
        await within(client.connect())


async def test_send_error_raises_send_refused_and_unavailable_is_retried(server: FakeServer) -> None:
    server.refuse["not-member"] = [SendErrorCode.NOT_MEMBER]
    server.refuse["busy"] = [SendErrorCode.UNAVAILABLE, SendErrorCode.UNAVAILABLE]
    async with make_client(server, retry_unavailable_after=0.01) as client:
        with pytest.raises(SendRefused) as caught:
            await within(client.send(6, "hi", "not-member"))
        assert caught.value.code == SendErrorCode.NOT_MEMBER
        assert "NOT_MEMBER" in str(caught.value)
        ack = await within(client.send(6, "eventually", "busy"))
        assert ack.seq == 1
        assert [s.client_msg_id for s in server.sends_seen].count("busy") == 3
        assert client.unacked == []


async def test_read_receipts_typing_heartbeat_and_events(server: FakeServer) -> None:
    events: list[Any] = []
    # A client gives a server up after three silent intervals: at 10 ms a CI worker busy for 30 ms
    # made it reconnect mid-test (typing() then found it disconnected).
    async with make_client(server, on_event=events.append, heartbeat_seconds=0.2) as client:
        connection = await within(server.authed.get())
        await server.next_frame(Ping)
        await client.mark_read(3, 9)
        _, receipt = await server.next_frame(ReadReceipt)
        assert receipt == ReadReceipt(conversation_id=3, seq=9)
        assert await client.typing(3)
        _, typing = await server.next_frame(Typing)
        assert typing == Typing(conversation_id=3)
        update = ReadUpdate(conversation_id=3, user_id=8, seq=9)
        await server.send(connection, update)
        marker = server.store(3, "after the update")
        await server.push(connection, marker)
        await take(client, 1)
        assert events == [update]


async def test_close_fails_pending_sends_and_ends_messages(server: FakeServer) -> None:
    server.hold_acks = True
    client = make_client(server)
    await within(client.connect())
    pending = asyncio.ensure_future(client.send(1, "unacked"))
    await server.next_frame(SendMessage)
    await client.close()
    with pytest.raises(ClientClosed):
        await within(pending)
    assert client.error is None
    assert [m async for m in client.messages()] == []


async def test_websocket_transport_reads_frames_in_batches(server: FakeServer) -> None:
    transport = await WebSocketTransport.connect(server.url)
    await transport.send([encode_frame(Auth(token=TOKEN)), encode_frame(Ping()), encode_frame(Ping())])
    frames: list[Any] = []
    while len(frames) < 3:
        frames.extend(decode_frame(f) for f in await within(transport.recv_batch()))
    assert [type(f) for f in frames] == [AuthResult, Pong, Pong]
    (await within(server.authed.get())).transport.abort()

    async def read_until_closed() -> None:
        while True:
            await within(transport.recv_batch())

    with pytest.raises(TransportClosed):
        await read_until_closed()
    with pytest.raises(TransportClosed):
        await transport.send([encode_frame(Ping())])
    await transport.close()


# WebTransport: the real server, with an echo-protocol handler


class ProtocolHandler:
    """Answers Auth with AuthResult and each SendMessage with a MessageAck, seqs counted from 1."""

    def __init__(self, session: WebTransportSession) -> None:
        self.session = session
        self.seq = 0

    def on_frame(self, data: bytes) -> None:
        frame = decode_client_frame(data)
        if isinstance(frame, Auth):
            self.session.send(encode_frame(AuthResult(user_id=USER_ID, session_id=1, heartbeat_seconds=30)))
        elif isinstance(frame, SendMessage):
            self.seq += 1
            ack = MessageAck(
                client_msg_id=frame.client_msg_id,
                message_id=100 + self.seq,
                conversation_id=frame.conversation_id,
                seq=self.seq,
                created_at=1,
            )
            self.session.send(encode_frame(ack))
            message = Message(
                id=100 + self.seq,
                conversation_id=frame.conversation_id,
                seq=self.seq,
                sender_id=USER_ID,
                client_msg_id=frame.client_msg_id,
                body=frame.body,
            )
            self.session.send(encode_frame(PushMessage(message=message)))

    def on_error(self, code: int, message: str) -> None:
        pass

    def on_closed(self) -> None:
        pass


async def test_the_client_over_the_real_webtransport_server(tmp_path: Any) -> None:
    certificate = ensure_dev_certificate(tmp_path)
    wt_server = await serve_webtransport("127.0.0.1", 0, certificate, ProtocolHandler)
    try:
        url = f"https://127.0.0.1:{wt_server.address[1]}/wt"
        factory = webtransport_factory(url, certificate_hashes=[certificate.sha256])
        async with ImClient(factory, TOKEN, "dev-1", "test") as client:
            assert client.auth_result is not None
            assert client.auth_result.user_id == USER_ID
            acks = [await within(client.send(12, f"over QUIC {i}")) for i in range(3)]
            assert [a.seq for a in acks] == [1, 2, 3]
            assert [m.body for m in await take(client, 3)] == ["over QUIC 0", "over QUIC 1", "over QUIC 2"]
    finally:
        wt_server.close()


# the chat command


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--user", "alice", "--ws", "ws://h/ws"], "--password .* or --token"),
        (["--user", "alice", "--password", "p", "--token", "t", "--ws", "ws://h/ws"], "not both"),
        (["--user", " ", "--token", "t", "--ws", "ws://h/ws"], "--user must not be empty"),
        (["--user", "alice", "--token", "t"], "--ws URL .* or --wt URL"),
        (["--user", "alice", "--token", "t", "--ws", "ws://h/ws", "--wt", "https://h/wt"], "--ws or --wt, not both"),
        (["--user", "alice", "--token", "t", "--ws", "http://h/ws"], "--ws must be a ws:// or wss:// URL"),
        (["--user", "alice", "--token", "t", "--wt", "ws://h/wt"], "--wt must be an https:// URL"),
        (["--user", "alice", "--token", "t", "--wt", "https://h/wt", "--cert-hash", "abc"], "64 digits"),
        (["--user", "alice", "--token", "t", "--ws", "ws://h/ws", "--cert-hash", "a" * 64], "use it with --wt"),
        (["--user", "alice", "--token", "t", "--ws", "ws://h/ws", "--conversation", "x1"], "positive integer"),
        (["--user", "alice", "--token", "t", "--ws", "ws://h/ws", "--conversation", "0"], "positive integer"),
        (["--user", "alice", "--token", "t", "--ws", "ws://h/ws", "--api", "ftp://h"], "--api must be"),
    ],
)
def test_chat_validates_its_arguments(arguments: list[str], complaint: str) -> None:
    with pytest.raises(CommandError, match=complaint):
        call_command("chat", *arguments)


def test_chat_reports_an_unreachable_api() -> None:
    with pytest.raises(CommandError, match="cannot reach"):
        call_command(
            "chat", "--user", "alice", "--password", "pw", "--ws", "ws://127.0.0.1:9/ws", "--api", "http://127.0.0.1:9"
        )


class FakeApi(BaseHTTPRequestHandler):
    """POST /api/v1/auth/login and GET /api/v1/conversations, as the REST API answers them."""

    conversations: list[dict[str, Any]] = []
    logins: list[dict[str, Any]] = []

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.logins.append(body)
        if self.path == "/api/v1/auth/login" and body.get("password") == "right":
            self._reply(200, {"code": 0, "message": "success", "data": {"userId": "7", "accessToken": TOKEN}})
        else:
            self._reply(401, {"code": 40100, "message": "wrong username or password", "data": None})

    def do_GET(self) -> None:
        if self.path == "/api/v1/conversations" and self.headers["Authorization"] == f"Bearer {TOKEN}":
            self._reply(200, {"code": 0, "message": "success", "data": self.conversations})
        else:
            self._reply(401, {"code": 40101, "message": "not authenticated", "data": None})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Any:
    FakeApi.logins = []
    FakeApi.conversations = [
        {"id": "21", "lastSeq": 1, "members": [{"id": "7", "username": "alice"}, {"id": "99", "username": "bob"}]}
    ]
    http = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_address[1]}"
    http.shutdown()
    http.server_close()


async def test_chat_logs_in_prints_pushes_and_sends_stdin_lines(server: FakeServer, api: str) -> None:
    server.store(21, "old, already read")
    server.store(21, "missed while away", sender_id=99)
    stdout, stderr = io.StringIO(), io.StringIO()
    stdin = io.StringIO("hello bob\n\nsecond line\n")
    await within(
        asyncio.to_thread(
            call_command,
            "chat",
            "--user",
            "alice",
            "--password",
            "right",
            "--conversation",
            "21",
            "--ws",
            server.url,
            "--api",
            api,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
        )
    )
    assert FakeApi.logins[0]["username"] == "alice"
    assert [s.body for s in server.sends_seen] == ["hello bob", "second line"]
    _, sync = await server.next_frame(Sync)
    assert [(c.conversation_id, c.after_seq) for c in sync.cursors] == [(21, 1)]
    assert "[2] bob: missed while away" in stdout.getvalue()
    assert "connected as alice" in stderr.getvalue()


def test_chat_reports_a_refused_login(api: str) -> None:
    with pytest.raises(CommandError, match="wrong username or password"):
        call_command("chat", "--user", "alice", "--password", "wrong", "--ws", "ws://127.0.0.1:9/ws", "--api", api)


def test_chat_refuses_a_conversation_the_user_is_not_in(api: str) -> None:
    with pytest.raises(CommandError, match="not a member"):
        call_command(
            *("chat", "--user", "alice", "--token", TOKEN, "--conversation", "22"),
            *("--ws", "ws://127.0.0.1:9/ws", "--api", api),
        )
